"""Retries, timeouts and integrity checks against the emulator's injected faults.

Both twins, over loopback (the real urllib3 and httpx paths) and in-process
(the same emulator without sockets). API §6, §7; PROTOCOL §5, §12.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core import (
    IntegrityError,
    ObjectstoreError,
    ReadError,
    ReadTimeout,
    RetryPolicy,
    ServerError,
    Timeout,
    TimeToLive,
    compress,
)
from objectstore_core.emulator import Fault, FaultPlan, MemoryStorage
from objectstore_sync.emulator import Emulator
from objectstore_sync.testing import InProcessTransport, LocalServer
from tests.reliability.conftest import RawServer, Twin, pausing_reader

FAST = RetryPolicy(backoff=0.001, max_backoff=0.01)
WHERE = ["loopback", "inprocess"]


class Counter:
    """A metrics backend that counts increments by name."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = {}

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    def gauge(self, name: str, value: float, tags: Any = None) -> None: ...

    def distribution(self, *args: Any, **kwargs: Any) -> None: ...


class Setup:
    """A twin wired to an emulator either over loopback or in-process, plus its fault plan."""

    def __init__(self, twin: Twin, faults: FaultPlan, storage: Any) -> None:
        self.twin = twin
        self.faults = faults
        self.storage = storage
        self.session = twin.session()


@pytest.fixture(params=WHERE)
def where(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def setup(
    where: str, kind: str, server: LocalServer, make_twin: Callable[..., Twin]
) -> Callable[..., Setup]:
    def build(**kwargs: Any) -> Setup:
        kwargs.setdefault("retry", FAST)
        if where == "loopback":
            twin = make_twin(server.url, **kwargs)
            return Setup(twin, server.faults, server.storage)
        emulator = Emulator(MemoryStorage())
        transport: Any = (
            InProcessTransport(emulator) if kind == "sync" else AsyncInProcessTransport(emulator)
        )
        twin = make_twin("http://objectstore.test", transport, **kwargs)
        return Setup(twin, emulator.faults, emulator.storage)

    return build


# -------------------------------------------------------------------------- retries


def test_statuses_are_retried_until_success(setup: Callable[..., Setup]) -> None:
    metrics = Counter()
    s = setup(metrics_backend=metrics)
    before = s.faults.injected
    s.faults.inject(Fault.status(503), count=2, method="PUT")
    s.faults.inject(Fault.status(429, retry_after=0), count=1, method="GET")
    s.faults.inject(Fault.status(502), count=1, method="HEAD")
    s.faults.inject(Fault.status(504), count=1, method="DELETE")
    s.faults.inject(Fault.status(500), count=1, method="PATCH")
    key = s.session.put(b"retried", key="k", expiration_policy=TimeToLive(timedelta(hours=1)))
    assert s.session.get(key).read() == b"retried"
    assert s.session.head(key) is not None
    s.session.extend_expiry(key, from_now=timedelta(days=1))
    s.session.delete(key)
    assert metrics.counts["objectstore.retries"] == 6
    assert s.faults.injected - before == 6 and s.faults.pending == 0


def test_exhausted_retries_raise_the_last_status(setup: Callable[..., Setup]) -> None:
    s = setup(retry=RetryPolicy(max_attempts=3, backoff=0.001))
    s.faults.inject(Fault.status(503), count=5, method="HEAD")
    with pytest.raises(ServerError) as info:
        s.session.head("k")
    assert info.value.status == 503
    assert s.faults.pending == 2  # exactly three attempts


def test_retry_after_is_waited_for(setup: Callable[..., Setup]) -> None:
    s = setup(retry=RetryPolicy(backoff=0.0, jitter=0.0))
    s.faults.inject(Fault.status(503, retry_after=0.3), method="HEAD")
    started = time.monotonic()
    assert s.session.head("missing") is None
    assert time.monotonic() - started >= 0.29


def test_keyless_put_is_not_duplicated_after_a_lost_response(setup: Callable[..., Setup]) -> None:
    """The server stores the object, then resets: a retry would store a second one."""
    s = setup()
    s.session.head("warm-up")  # the POST then goes over a reused keep-alive connection
    s.faults.inject(Fault.reset(), method="POST")
    before = len(s.storage)
    with pytest.raises(ReadError):
        s.session.put(b"once")
    assert len(s.storage) == before + 1  # stored once, never twice
    s.faults.inject(Fault.status(503), method="POST")
    with pytest.raises(ServerError):
        s.session.put(b"never")  # may have arrived: not repeated
    assert len(s.storage) == before + 1


def test_put_with_key_is_retried_after_a_lost_response(setup: Callable[..., Setup]) -> None:
    s = setup()
    s.faults.inject(Fault.reset(), method="PUT")
    assert s.session.put(b"v2", key="k") == "k"
    assert s.session.get("k").read() == b"v2"


def test_seekable_file_is_rewound_to_its_start_for_each_attempt(
    setup: Callable[..., Setup],
) -> None:
    s = setup()
    payload = os.urandom(300_000)
    source = io.BytesIO(b"HEADER" + payload)
    source.seek(6)  # the upload starts here, not at 0
    s.faults.inject(Fault.status(503), count=2, method="PUT")
    s.session.put(source, key="file")
    assert s.session.get("file").read() == payload


def test_file_path_is_reopened_for_each_attempt(setup: Callable[..., Setup], tmp_path: Any) -> None:
    s = setup()
    path = tmp_path / "payload.bin"
    path.write_bytes(b"from a path" * 1000)
    s.faults.inject(Fault.reset(), method="PUT")
    s.session.put(path, key="path")
    assert s.session.get("path").read() == b"from a path" * 1000


def _chunks() -> Iterator[bytes]:
    yield b"one-shot "
    yield b"iterator"


def test_one_shot_iterator_is_not_sent_twice(setup: Callable[..., Setup], where: str) -> None:
    s = setup()
    s.faults.inject(Fault.status(503), method="PUT")
    if where == "inprocess":
        # The emulator answered before taking a byte: nothing was read, so a retry is safe.
        assert s.session.put(_chunks(), key="iter") == "iter"
        return
    with pytest.raises(ServerError):  # over a socket the body went out with the request
        s.session.put(_chunks(), key="iter")
    assert s.faults.pending == 0
    assert s.session.get("iter") is None


def test_streaming_get_is_retried_before_the_body_is_handed_over(
    setup: Callable[..., Setup],
) -> None:
    s = setup()
    s.session.put(b"body" * 1000, key="g")
    s.faults.inject(Fault.reset(), method="GET")  # before the head: retried
    assert s.session.get("g").read() == b"body" * 1000
    s.faults.inject(Fault.reset(after=10), method="GET")  # mid-body: the caller's
    response = s.session.get("g")
    with pytest.raises((ReadError, IntegrityError)):
        response.read()


# ------------------------------------------------------------------------- integrity


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_truncated_download_raises_integrity_error(
    setup: Callable[..., Setup], compress: str
) -> None:
    s = setup()
    payload = os.urandom(50_000)
    s.session.put(payload, key="t", compress=compress)
    s.faults.inject(Fault.truncate(after=1000), method="GET")
    response = s.session.get("t")
    with pytest.raises(IntegrityError):
        response.read()
    assert s.session.get("t").read() == payload  # the stored object is intact


def test_corrupted_zstd_download_raises_integrity_error(setup: Callable[..., Setup]) -> None:
    s = setup()
    payload = b"compressible " * 10_000
    s.session.put(payload, key="c")
    assert len(compress(payload)) > 30
    for offset in (0, 5, 20, -1):  # magic, frame header, block data, the checksum
        at = offset if offset >= 0 else len(compress(payload)) - 1
        s.faults.inject(Fault.corrupt(at=at), method="GET")
        response = s.session.get("c")
        with pytest.raises(IntegrityError):
            response.read()
    assert s.session.get("c").read() == payload


def test_range_reads_are_checked_against_content_length(setup: Callable[..., Setup]) -> None:
    s = setup()
    s.session.put(b"0123456789" * 100, key="r", compress="none")
    s.faults.inject(Fault.truncate(after=10), method="GET")
    response = s.session.get("r", byte_range=(0, 99))
    with pytest.raises(IntegrityError):
        response.read()


# -------------------------------------------------------------------------- timeouts


def test_connect_timeout_never_applies_to_writing_the_body(make_twin: Callable[..., Twin]) -> None:
    """connect=0.05 s; the server stops reading for 0.5 s mid-body; the upload must succeed."""
    with RawServer(pausing_reader(pause=0.5, after=256 * 1024), rcvbuf=16 * 1024) as raw:
        limits = Timeout(connect=0.05, read=5.0)
        session = make_twin(raw.url, timeout=limits, retry=RetryPolicy.disabled()).session()
        started = time.monotonic()
        assert session.put(b"\0" * (16 * 1024 * 1024), key="k", compress="none") == "k"
        assert time.monotonic() - started >= 0.45  # the writer really was held up


def test_connect_timeout_never_applies_to_a_streamed_compressed_body(
    make_twin: Callable[..., Twin],
) -> None:
    with RawServer(pausing_reader(pause=0.5, after=64 * 1024), rcvbuf=16 * 1024) as raw:
        session = make_twin(raw.url, timeout=Timeout(connect=0.05)).session()
        chunks = (os.urandom(1024 * 1024) for _ in range(12))  # incompressible, streamed
        assert session.put(chunks, key="k") == "k"


def test_total_timeout_bounds_retries(server: LocalServer, make_twin: Callable[..., Twin]) -> None:
    policy = RetryPolicy(max_attempts=50, backoff=0.05, jitter=0.0, multiplier=1.0)
    session = make_twin(server.url, retry=policy, timeout=Timeout(total=0.5)).session()
    server.faults.inject(Fault.status(503), count=100, method="HEAD")
    started = time.monotonic()
    with pytest.raises(ServerError):
        session.head("k")
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.0
    assert 100 - server.faults.pending < 15


def test_total_timeout_cuts_a_stalled_attempt(
    server: LocalServer, make_twin: Callable[..., Twin]
) -> None:
    session = make_twin(server.url, timeout=Timeout(read=10, total=0.3)).session()
    server.faults.inject(Fault.stall(30), method="HEAD")  # ends when the client leaves
    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        session.head("k")
    assert time.monotonic() - started < 0.9


def test_per_call_timeout_overrides_the_client(
    server: LocalServer, make_twin: Callable[..., Twin]
) -> None:
    session = make_twin(
        server.url, timeout=Timeout(read=10), retry=RetryPolicy.disabled()
    ).session()
    server.faults.inject(Fault.stall(30), method="HEAD")  # ends when the client leaves
    with pytest.raises(ReadTimeout):
        session.head("k", timeout=Timeout(read=0.1))


def test_read_timeouts_are_retried_for_idempotent_requests(
    server: LocalServer, make_twin: Callable[..., Twin]
) -> None:
    session = make_twin(server.url, timeout=Timeout(read=0.1), retry=FAST).session()
    server.faults.inject(Fault.stall(30), method="HEAD")  # ends when the client leaves
    assert session.head("missing") is None


def test_errors_are_ours_only(setup: Callable[..., Setup]) -> None:
    """A seeded random fault mix: every call succeeds or raises an ObjectstoreError."""
    s = setup(timeout=Timeout(read=0.05))
    before = s.faults.injected
    s.faults.randomly(0.4, seed=3, stall_seconds=0.1)
    for n in range(30):
        try:
            key = s.session.put(b"v%d" % n, key=f"k{n}")
            with s.session.get(key) as response:
                response.read()
        except ObjectstoreError:
            pass
        except Exception as exc:  # pragma: no cover - the assertion of this test
            pytest.fail(f"foreign exception escaped: {exc!r}")
    assert s.faults.injected - before > 10
