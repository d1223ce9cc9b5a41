"""Resumable uploads (API §4, PROTOCOL §14.1), for both twins over both transports."""

from __future__ import annotations

import inspect
import io
import os
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import objectstore_core._resumable as resumable
from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core import (
    Request,
    RequestError,
    ResumeHandle,
    RetryPolicy,
    TransportError,
    WriteError,
)
from objectstore_core.emulator import MemoryStorage
from objectstore_core.emulator._resumable import DEFAULT_GRANULARITY
from objectstore_sync import Usecase
from objectstore_sync._inprocess import InProcessTransport
from objectstore_sync.emulator import Emulator
from objectstore_sync.testing import LocalServer
from tests.behaviour.twins import Twin

RAW = Usecase("raw_things", compression="none", resumable_threshold_bytes=1000)
PAYLOAD = os.urandom(5000)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resumable, "CHUNK_BYTES", 1024)


@pytest.fixture
def served(request: pytest.FixtureRequest, twin: Twin) -> Iterator[Emulator]:
    """The emulator behind the ``twin`` fixture, with a small granularity."""
    where = request.node.callspec.params["twin"][1]
    if where == "loopback":
        emulator: Emulator = request.getfixturevalue("loopback_server").emulator
    else:
        emulator = request.getfixturevalue("emulator")
    emulator.resumable.granularity = 256
    yield emulator
    emulator.resumable.granularity = DEFAULT_GRANULARITY


def _read(session: Any, key: str) -> bytes:
    response = session.get(key)
    assert response is not None
    with response:
        data: bytes = response.read()
    return data


@pytest.mark.parametrize("source", ["bytes", "path", "file", "bytesio"])
def test_large_raw_payloads_go_through_a_session(
    twin: Twin, served: Emulator, tmp_path: Path, source: str
) -> None:
    session = twin.session(RAW, org=1, test=source)
    path = tmp_path / "payload"
    path.write_bytes(PAYLOAD)
    before = served.resumable.received
    with path.open("rb") as file:
        sources = {"bytes": PAYLOAD, "path": path, "file": file, "bytesio": io.BytesIO(PAYLOAD)}
        key = session.put(sources[source], key=f"resumable-{source}")
    assert served.resumable.received - before == len(PAYLOAD)
    assert _read(session, key) == PAYLOAD
    assert len(served.resumable) == 0


def test_a_server_without_sessions_gets_a_plain_upload(twin: Twin, served: Emulator) -> None:
    session = twin.session(RAW, org=1, test="fallback")
    served.resumable.enabled = False
    try:
        key = session.put(PAYLOAD)
    finally:
        served.resumable.enabled = True
    assert _read(session, key) == PAYLOAD


def test_below_the_threshold_a_put_is_plain(twin: Twin, served: Emulator) -> None:
    session = twin.session(RAW, org=1, test="plain")
    before = served.resumable.received
    assert _read(session, session.put(PAYLOAD[:999])) == PAYLOAD[:999]
    assert _read(session, session.put(PAYLOAD, resumable_threshold_bytes="none")) == PAYLOAD
    assert _read(session, session.put(io.BytesIO(PAYLOAD[:999]))) == PAYLOAD[:999]
    assert served.resumable.received == before


def test_a_compressed_put_over_the_threshold_goes_through_a_session(
    twin: Twin, served: Emulator
) -> None:
    """Compressed whole first: the session carries the compressed bytes (PROTOCOL §14.1).

    More in tests/behaviour/test_resumable_compressed.py.
    """
    session = twin.session(RAW, org=1, test="compressed")
    text = b"".join(b"line %d\n" % i for i in range(2000))
    before = served.resumable.received
    key = session.put(text, compress="zstd")
    response = session.get(key, decompress=False)
    assert response is not None
    with response:
        stored = response.read()
    assert served.resumable.received - before == len(stored) < len(text)
    assert _read(session, key) == text


# -------------------------------------------- interrupted, then resumed elsewhere


class Cut:
    """Fails every append after the first ``keep`` with a lost connection; counts requests."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.requests = 0

    def check(self, request: Request) -> None:
        self.requests += 1
        if "session=" in request.target and request.body is not None:
            self.keep -= 1
            if self.keep < 0:
                raise WriteError("the connection was lost (injected)")


class CutSync(InProcessTransport):
    def __init__(self, emulator: Emulator, cut: Cut) -> None:
        super().__init__(emulator)
        self.cut = cut

    def send(self, request: Request) -> Any:
        self.cut.check(request)
        return super().send(request)


class CutAsync(AsyncInProcessTransport):
    def __init__(self, emulator: Emulator, cut: Cut) -> None:
        super().__init__(emulator)
        self.cut = cut

    async def send(self, request: Request) -> Any:
        self.cut.check(request)
        return await super().send(request)


def interrupted(
    kind: str, emulator: Emulator, usecase: Usecase, source: Any, key: str
) -> ResumeHandle:
    """Put ``source`` until the third append is lost; the handle, as another process
    would get it (pickled)."""
    cut = Cut(keep=2)
    transport = CutSync(emulator, cut) if kind == "sync" else CutAsync(emulator, cut)
    retry = RetryPolicy(max_attempts=2, backoff=0)
    first = Twin(kind, "http://objectstore.test", transport, retry=retry)
    try:
        with pytest.raises(WriteError) as info:
            first.session(usecase, org=1).put(source, key=key)
    finally:
        first.close()
    handle = info.value.resume_handle  # type: ignore[attr-defined]
    assert isinstance(handle, ResumeHandle)
    restored: ResumeHandle = pickle.loads(pickle.dumps(handle))
    assert restored == handle
    return restored


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
def test_an_interrupted_upload_resumes_with_only_the_missing_bytes(kind: str) -> None:
    emulator = Emulator(MemoryStorage(lock=threading.RLock()))
    emulator.resumable.granularity = 256
    restored = interrupted(kind, emulator, RAW, PAYLOAD, "big")
    assert (restored.key, restored.offset, restored.total) == ("big", 2048, len(PAYLOAD))
    # A new client (think: after a restart) continues on the same server.
    plain = InProcessTransport(emulator) if kind == "sync" else AsyncInProcessTransport(emulator)
    second = Twin(kind, "http://objectstore.test", plain)
    try:
        session = second.session(RAW, org=1)
        assert session.get("big") is None
        before = emulator.resumable.received
        assert session.resume_upload(restored, PAYLOAD) == "big"
        assert emulator.resumable.received - before == len(PAYLOAD) - 2048
        assert _read(session, "big") == PAYLOAD
    finally:
        second.close()


def test_resume_upload_checks_its_source_and_session(twin: Twin) -> None:
    session = twin.session(RAW, org=1, test="checks")
    scope = str(session.scope)
    with pytest.raises(ValueError, match="holds 10 bytes"):
        session.resume_upload(ResumeHandle("raw_things", scope, "k", "s", 0, 5000), PAYLOAD[:10])
    with pytest.raises(ValueError, match="belongs to usecase"):
        session.resume_upload(ResumeHandle("other", scope, "k", "s", 0, 5000), PAYLOAD)
    with pytest.raises(RequestError) as info:  # the server does not know the session
        session.resume_upload(ResumeHandle("raw_things", scope, "k", "unknown", 0, 5000), PAYLOAD)
    assert info.value.status == 404


class _StopsServer:
    """Wraps a client's transport: stops ``server`` just before the append ``at``."""

    def __init__(self, transport: Any, server: LocalServer, at: int) -> None:
        self._transport = transport
        self._server = server
        self._left = at

    def _count(self, request: Request) -> None:
        if "session=" in request.target and request.body is not None:
            self._left -= 1
            if self._left == 0:
                self._server.stop()  # the emulator goes away in the middle of the upload

    def send(self, request: Request) -> Any:
        self._count(request)
        if inspect.iscoroutinefunction(self._transport.send):
            return self._asend(request)
        return self._transport.send(request)

    async def _asend(self, request: Request) -> Any:
        return await self._transport.send(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@pytest.mark.parametrize("kind", ["sync", "asyncio", "trio"])
def test_an_upload_cut_off_by_a_server_restart_resumes_with_only_the_missing_bytes(
    kind: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    source = tmp_path / "source"
    source.write_bytes(PAYLOAD)
    first_server = LocalServer(data_dir=data_dir).start()
    first_server.emulator.resumable.granularity = 256
    client = Twin(kind, first_server.url, retry=RetryPolicy(max_attempts=2, backoff=0), timeout=5)
    # Appends of 1024 bytes: the server stops before the third one.
    client.client._transport = _StopsServer(client.client._transport, first_server, at=3)
    try:
        with pytest.raises(TransportError) as info:
            client.session(RAW, org=1).put(source, key="restarted")
    finally:
        client.close()
        first_server.stop()
    handle = pickle.loads(pickle.dumps(info.value.resume_handle))  # type: ignore[attr-defined]
    assert (handle.offset, handle.total) == (2048, len(PAYLOAD))
    with LocalServer(data_dir=data_dir) as second_server:  # the same data, a new process
        second_server.emulator.resumable.granularity = 256
        client = Twin(kind, second_server.url, timeout=5)
        try:
            session = client.session(RAW, org=1)
            assert session.get("restarted") is None
            assert session.resume_upload(handle, source) == "restarted"
            received = second_server.emulator.resumable.received
            assert received == len(PAYLOAD) - 2048  # only the missing bytes were sent
            assert _read(session, "restarted") == PAYLOAD
        finally:
            client.close()
