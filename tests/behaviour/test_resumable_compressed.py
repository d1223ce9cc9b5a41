"""Resumable uploads of payloads the client compresses, and of seekable streams
(API §4, PROTOCOL §14.1, §5), for both twins over both transports.

A payload the client compresses is compressed whole into a temporary file
first: the session's Upload-Length is the compressed size and every offset
counts compressed bytes. What the server receives is observed through the
emulator (its append byte count, and the request heads its fault plan sees),
never by mocking HTTP.
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

import objectstore_core._resumable as resumable
from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core import RequestError, ResumeHandle, RetryPolicy
from objectstore_core.emulator import MemoryStorage
from objectstore_core.emulator._messages import ServerRequest
from objectstore_core.emulator._resumable import DEFAULT_GRANULARITY
from objectstore_sync import Usecase
from objectstore_sync._inprocess import InProcessTransport
from objectstore_sync.emulator import Emulator
from objectstore_sync.testing import Fault, LocalServer
from tests.behaviour.recording import Recorder
from tests.behaviour.test_resumable import Cut, CutAsync, CutSync, interrupted
from tests.behaviour.twins import COMBOS, Twin

# The usecase compresses (zstd, the default); 1000 bytes before compression resume.
ZSTD = Usecase("zstd_things", resumable_threshold_bytes=1000)
RAW = Usecase("raw_things", compression="none", resumable_threshold_bytes=1000)
# Compresses to several KiB: several appends of 1024 bytes.
TEXT = b"".join(b"%d: line of a log file, entry %x\n" % (i, i * 7919) for i in range(4000))
RANDOM = os.urandom(5000)
MIB = 1024 * 1024
_scopes = itertools.count()


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resumable, "CHUNK_BYTES", 1024)


@pytest.fixture(autouse=True)
def spool_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Temporary files of this test go to a directory of its own, to be looked for."""
    where = tmp_path / "spool"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def open_spools(where: Path) -> list[str]:
    """The files in ``where`` this process holds open (a spool is unlinked at once)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(where)):
            held.append(target)
    return held


needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc"
)


class Setup:
    """A twin with fast retries, its emulator, and a fresh scope."""

    def __init__(self, twin: Twin, emulator: Emulator, url: str) -> None:
        self.twin = twin
        self.emulator = emulator
        self.url = url
        self.scope = {"org": 3, "test": next(_scopes)}

    def session(self, usecase: Usecase = ZSTD) -> Any:
        return self.twin.session(usecase, **self.scope)


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    kind, where = request.param
    retry = RetryPolicy(max_attempts=3, backoff=0)
    if where == "loopback":
        server: LocalServer = request.getfixturevalue("loopback_server")
        emulator: Any = server.emulator
        made = Twin(kind, server.url, None, timeout=10, retry=retry)
        url = server.url
    else:
        emulator = request.getfixturevalue("emulator")
        transport = (
            InProcessTransport(emulator) if kind == "sync" else AsyncInProcessTransport(emulator)
        )
        made = Twin(kind, "http://objectstore.test", transport, timeout=10, retry=retry)
        url = ""
    emulator.resumable.granularity = 256
    try:
        yield Setup(made, emulator, url)
    finally:
        emulator.faults.clear()
        emulator.resumable.enabled = True
        emulator.resumable.granularity = DEFAULT_GRANULARITY
        made.close()


def watch(emulator: Emulator, needle: str = "") -> list[ServerRequest]:
    """The request heads the emulator sees from now on whose target holds ``needle``
    (through a fault rule that never matches; ``faults.clear()`` ends it)."""
    seen: list[ServerRequest] = []

    def note(request: ServerRequest) -> bool:
        if needle in request.target:
            seen.append(request)
        return False

    emulator.faults.inject(Fault.status(500), when=note)
    return seen


def is_append(request: ServerRequest) -> bool:
    return "session=" in request.target and request.header("upload-offset") not in (None, "*")


def read(session: Any, key: str, **options: Any) -> bytes:
    response = session.get(key, **options)
    assert response is not None
    with response:
        data: bytes = response.read()
    return data


def stored(session: Any, key: str) -> bytes:
    """The object's bytes as the server stores them (not decompressed)."""
    return read(session, key, decompress=False)


def sources(kind: str, data: bytes, tmp_path: Path) -> Any:
    """``data`` as a put source of ``kind`` (a file is closed when the test ends)."""
    if kind == "bytes":
        return data
    if kind == "bytesio":
        return io.BytesIO(data)
    if kind == "reader":
        return SeekableReader(data)
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    if kind == "path":
        return path
    file = path.open("rb")
    _opened.append(file)
    return file


_opened: list[Any] = []


@pytest.fixture(autouse=True)
def close_sources() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


class SeekableReader:
    """A seekable binary reader that is neither a file nor an ``io`` class."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._at + size
        piece = self._data[self._at : end]
        self._at += len(piece)
        return piece

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._at, os.SEEK_END: len(self._data)}[whence]
        self._at = base + offset
        return self._at


# ------------------------------------------------------------ compressed puts


@needs_proc
@pytest.mark.parametrize("kind", ["bytes", "path", "file", "bytesio", "reader"])
def test_a_compressed_put_over_the_threshold_sends_its_compressed_bytes_in_a_session(
    setup: Setup, tmp_path: Path, spool_dir: Path, kind: str
) -> None:
    session = setup.session()
    source = sources(kind, TEXT, tmp_path)
    creations = watch(setup.emulator, "upload_type=resumable")
    before = setup.emulator.resumable.received
    key = session.put(source, key=f"compressed-{kind}")
    received = setup.emulator.resumable.received - before
    raw = stored(session, key)
    assert len(raw) < len(TEXT) // 3  # it was compressed...
    assert zstandard.ZstdDecompressor().decompressobj().decompress(raw) == TEXT
    assert received == len(raw) > 2 * 1024  # ...and went in several appends, compressed
    (creation,) = creations
    assert creation.header("upload-length") == str(len(raw))  # the compressed size
    assert creation.header("content-encoding") == "zstd"
    assert read(session, key) == TEXT
    meta = session.head(key)
    assert meta is not None and meta.compression == "zstd"
    assert open_spools(spool_dir) == []  # the temporary file went with the put
    assert len(setup.emulator.resumable) == 0


def test_below_the_threshold_a_compressed_put_is_plain(setup: Setup, tmp_path: Path) -> None:
    session = setup.session()
    before = setup.emulator.resumable.received
    for kind in ("bytes", "path", "bytesio"):
        source = sources(kind, TEXT[:999], tmp_path)
        assert read(session, session.put(source)) == TEXT[:999]
    assert read(session, session.put(TEXT, resumable_threshold_bytes="none")) == TEXT
    assert read(session, session.put(iter([TEXT]))) == TEXT  # unsized: never resumable
    assert setup.emulator.resumable.received == before


def test_the_official_client_reads_a_compressed_resumable_put(loopback_server: LocalServer) -> None:
    oc: Any = pytest.importorskip("objectstore_client")
    loopback_server.emulator.resumable.granularity = 256
    try:
        for kind in ("sync", "asyncio", "trio"):
            twin = Twin(kind, loopback_server.url, timeout=10)
            scope = {"org": 3, "test": next(_scopes)}
            try:
                before = loopback_server.emulator.resumable.received
                key = twin.session(ZSTD, **scope).put(TEXT, key=f"official-{kind}")
                assert loopback_server.emulator.resumable.received > before
            finally:
                twin.close()
            theirs = oc.Client(loopback_server.url).session(oc.Usecase("zstd_things"), **scope)
            assert theirs.get(key).payload.read() == TEXT  # decompressed by the official client
            raw = theirs.get(key, accept_encoding=["zstd"])  # as stored
            assert raw.metadata.compression == "zstd"
            assert (
                zstandard.ZstdDecompressor().decompressobj().decompress(raw.payload.read()) == TEXT
            )
    finally:
        loopback_server.emulator.resumable.granularity = DEFAULT_GRANULARITY


def test_a_compressed_put_interrupted_by_the_server_resumes_with_the_missing_bytes(
    setup: Setup, tmp_path: Path
) -> None:
    session = setup.session()
    appends = watch(setup.emulator, "session=")
    # The third append is answered 503 unread: the put probes and goes on from there.
    setup.emulator.faults.inject(
        Fault.status(503),
        when=lambda r: is_append(r) and len([a for a in appends if is_append(a)]) == 3,
    )
    before = setup.emulator.resumable.received
    faulted = setup.emulator.faults.counts().get("status", 0)
    key = session.put(sources("path", TEXT, tmp_path), key="interrupted")
    received = setup.emulator.resumable.received - before
    raw = stored(session, key)
    assert received == len(raw)  # each compressed byte once: nothing sent twice
    assert setup.emulator.faults.counts().get("status", 0) == faulted + 1
    probes = [a for a in appends if a.header("upload-offset") == "*"]
    assert len(probes) == 1
    offsets = [int(a.header("upload-offset") or 0) for a in appends if is_append(a)]
    assert offsets[2] == offsets[3] == 2048  # the refused append, then the same again
    assert read(session, key) == TEXT


@needs_proc
def test_a_compressed_put_falls_back_to_one_plain_upload_of_the_spooled_bytes(
    setup: Setup, tmp_path: Path, spool_dir: Path
) -> None:
    session = setup.session()
    setup.emulator.resumable.enabled = False  # creations are answered 501
    seen = watch(setup.emulator)
    key = session.put(sources("bytesio", TEXT, tmp_path), key="fallback")
    raw = stored(session, key)
    creations = [r for r in seen if "upload_type=resumable" in r.target]
    plain = [r for r in seen if r.method == "PUT" and "?" not in r.target]
    assert len(creations) == 1 and creations[0].header("upload-length") == str(len(raw))
    assert len(plain) == 1  # sent once, as spooled: with its length, not chunked
    assert plain[0].header("content-length") == str(len(raw))
    assert plain[0].header("transfer-encoding") is None
    assert plain[0].header("content-encoding") == "zstd"
    assert read(session, key) == TEXT
    assert open_spools(spool_dir) == []


class _SpoolWatcher(io.BytesIO):
    """A payload that, read to its end, notes the spools open at that moment."""

    def __init__(self, data: bytes, where: Path) -> None:
        super().__init__(data)
        self.where = where
        self.seen: list[list[str]] = []

    def read(self, size: int | None = -1) -> bytes:
        piece = super().read(size)
        if not piece:
            self.seen.append(open_spools(self.where))
        return piece


@needs_proc
def test_the_spool_exists_while_compressing_and_is_gone_after_success_or_failure(
    setup: Setup, spool_dir: Path
) -> None:
    session = setup.session()
    source = _SpoolWatcher(TEXT, spool_dir)
    session.put(source, key="watched")
    assert len(source.seen) == 1 and len(source.seen[0]) == 1  # the one spool, while writing
    assert open_spools(spool_dir) == []
    # A fatal answer to an append: the session is cancelled and the put fails.
    setup.emulator.faults.inject(Fault.status(400), when=is_append)
    failing = _SpoolWatcher(TEXT, spool_dir)
    with pytest.raises(RequestError):
        session.put(failing, key="failing")
    assert len(failing.seen) == 1 and len(failing.seen[0]) == 1
    assert open_spools(spool_dir) == []


def test_a_compressed_resumable_put_records_both_sizes(loopback_server: LocalServer) -> None:
    loopback_server.emulator.resumable.granularity = 256
    try:
        for kind in ("sync", "asyncio"):
            recorder = Recorder()
            twin = Twin(kind, loopback_server.url, timeout=10, metrics_backend=recorder)
            try:
                session = twin.session(ZSTD, org=3, test=next(_scopes))
                key = session.put(TEXT, key="measured")
                raw_size = len(stored(session, key))
            finally:
                twin.close()
            events = recorder.events
            sizes = {e.tags["compression"]: e.value for e in events if e.name == "storage.put.size"}
            assert sizes == {"none": len(TEXT), "zstd": raw_size}
            (ratio,) = [e for e in events if e.name == "storage.put.compression_ratio"]
            assert ratio.value == pytest.approx(raw_size / len(TEXT))
            appended = sum(e.value for e in events if e.name == "storage.resumable.put.size")
            assert appended == raw_size
    finally:
        loopback_server.emulator.resumable.granularity = DEFAULT_GRANULARITY


# ------------------------------------------------- resumed by a fresh client


@pytest.fixture
def fresh() -> Emulator:
    emulator = Emulator(MemoryStorage(lock=threading.RLock()))
    emulator.resumable.granularity = 256
    return emulator


def _fresh_client(kind: str, emulator: Emulator, cut: Cut | None = None) -> Twin:
    cut = cut or Cut(keep=10**9)
    transport = CutSync(emulator, cut) if kind == "sync" else CutAsync(emulator, cut)
    return Twin(kind, "http://objectstore.test", transport)


@pytest.mark.parametrize("kind", ["sync", "asyncio", "trio"])
@pytest.mark.parametrize("again", ["bytes", "path", "bytesio"])
def test_resume_upload_of_a_compressed_upload_sends_only_the_missing_bytes(
    fresh: Emulator, tmp_path: Path, kind: str, again: str
) -> None:
    handle = interrupted(kind, fresh, ZSTD, TEXT, "big")
    assert handle.compressed and handle.offset == 2048
    assert handle.source_size == len(TEXT) and handle.total < len(TEXT) // 3
    second = _fresh_client(kind, fresh)
    try:
        session = second.session(ZSTD, org=1)
        assert session.get("big") is None
        before = fresh.resumable.received
        assert session.resume_upload(handle, sources(again, TEXT, tmp_path)) == "big"
        assert fresh.resumable.received - before == handle.total - 2048
        assert read(session, "big") == TEXT
        assert len(stored(session, "big")) == handle.total
    finally:
        second.close()


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
def test_resume_upload_refuses_a_source_that_compresses_differently_before_any_request(
    fresh: Emulator, kind: str
) -> None:
    handle = interrupted(kind, fresh, ZSTD, TEXT, "checked")
    cut = Cut(keep=10**9)
    second = _fresh_client(kind, fresh, cut)
    changed = TEXT[:100] + b"#" + TEXT[101:]  # the same size, other bytes
    try:
        session = second.session(ZSTD, org=1)
        with pytest.raises(ValueError, match=r"compresses to .* identical bytes"):
            session.resume_upload(handle, changed)
        with pytest.raises(ValueError, match=f"compressed from {len(TEXT)}"):
            session.resume_upload(handle, TEXT[:-1])
        assert cut.requests == 0  # nothing was sent for any of them
        assert session.resume_upload(handle, TEXT) == "checked"  # the right one still works
        assert read(session, "checked") == TEXT
    finally:
        second.close()


def _fields(handle: ResumeHandle) -> dict[str, Any]:
    return {name: getattr(handle, name) for name in ResumeHandle.__dataclass_fields__}


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
def test_a_large_payload_resumes_with_the_zstd_workers_it_was_compressed_with(
    fresh: Emulator, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A few MiB of compressible data compress on two libzstd workers (on two CPUs or
    more); the handle records them, so the resume produces the same bytes."""
    monkeypatch.setattr(resumable, "CHUNK_BYTES", 256 * 1024)
    data = os.urandom(3 * MIB // 2).hex().encode()  # 3 MiB, compressing to about half
    usecase = Usecase("zstd_things", resumable_threshold_bytes=MIB)
    handle = interrupted(kind, fresh, usecase, data, "large")
    assert handle.source_size == len(data) > 2 * MIB
    assert handle.zstd_workers == (2 if (os.cpu_count() or 1) >= 2 else 0)
    cut = Cut(keep=10**9)
    second = _fresh_client(kind, fresh, cut)
    try:
        session = second.session(usecase, org=1)
        if handle.zstd_workers:  # other workers, other bytes: refused before any request
            single = ResumeHandle(**{**_fields(handle), "zstd_workers": 0})
            with pytest.raises(ValueError, match="compresses to"):
                session.resume_upload(single, data)
            assert cut.requests == 0
        before = fresh.resumable.received
        assert session.resume_upload(handle, io.BytesIO(data)) == "large"
        assert fresh.resumable.received - before == handle.total - handle.offset
        assert read(session, "large") == data
    finally:
        second.close()


# ------------------------------------------------------------ seekable streams


@pytest.mark.parametrize("kind", ["bytesio", "reader"])
@pytest.mark.parametrize(
    ("usecase", "data"), [pytest.param(RAW, RANDOM, id="raw"), pytest.param(ZSTD, TEXT, id="zstd")]
)
def test_a_seekable_stream_over_the_threshold_goes_through_a_session_from_where_it_stands(
    setup: Setup, tmp_path: Path, kind: str, usecase: Usecase, data: bytes
) -> None:
    session = setup.session(usecase)
    before = setup.emulator.resumable.received
    source = sources(kind, data, tmp_path)
    source.seek(100)
    key = session.put(source, key=f"stream-{kind}")
    received = setup.emulator.resumable.received - before
    if usecase is RAW:
        assert received == len(data) - 100
    else:  # compressed (spooled) from where the stream stood
        assert 0 < received < len(data) - 100
    assert read(session, key) == data[100:]


@pytest.mark.parametrize("kind", ["sync", "asyncio", "trio"])
def test_an_interrupted_stream_upload_resumes_from_a_bytesio(fresh: Emulator, kind: str) -> None:
    handle = interrupted(kind, fresh, RAW, io.BytesIO(RANDOM), "stream")
    assert not handle.compressed and (handle.offset, handle.total) == (2048, len(RANDOM))
    second = _fresh_client(kind, fresh)
    try:
        session = second.session(RAW, org=1)
        before = fresh.resumable.received
        assert session.resume_upload(handle, io.BytesIO(RANDOM)) == "stream"
        assert fresh.resumable.received - before == len(RANDOM) - 2048
        assert read(session, "stream") == RANDOM
    finally:
        second.close()


def _old_pickle(handle: ResumeHandle, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """``handle`` pickled as a client without the compression fields pickled it: the
    same class, a state of its first seven fields."""
    names = list(ResumeHandle.__dataclass_fields__)[:7]
    with monkeypatch.context() as patched:
        patched.setattr(
            ResumeHandle, "__getstate__", lambda self: [getattr(self, n) for n in names]
        )
        return pickle.dumps(handle)


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
def test_a_handle_pickled_before_compressed_uploads_still_resumes(
    fresh: Emulator, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    handle = interrupted(kind, fresh, RAW, RANDOM, "old")
    old = pickle.loads(_old_pickle(handle, monkeypatch))
    assert isinstance(old, ResumeHandle) and old == handle
    assert (old.source_size, old.compressed_sha256, old.zstd_workers) == (None, None, None)
    assert not old.compressed
    second = _fresh_client(kind, fresh)
    try:
        session = second.session(RAW, org=1)
        before = fresh.resumable.received
        assert session.resume_upload(old, RANDOM) == "old"
        assert fresh.resumable.received - before == len(RANDOM) - 2048
    finally:
        second.close()
