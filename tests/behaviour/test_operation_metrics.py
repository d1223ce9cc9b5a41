"""Per-operation metrics (the official client's ``storage.<operation>.*``) in both twins.

A client given a ``metrics_backend`` reports every session operation's
latency, also when it fails, and a put of an in-memory payload its sizes,
compression ratio and throughputs; tests/compat compares the names and
tags with the official client's.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core import NoOpMetricsBackend, session_target
from objectstore_core._metrics import meter_for
from objectstore_core.emulator import MemoryStorage
from objectstore_sync import Client, ExpiryExtensionRejected, RetryPolicy, Usecase
from objectstore_sync._inprocess import InProcessTransport
from objectstore_sync.emulator import Emulator
from objectstore_sync.testing import Fault, LocalServer
from tests.behaviour.twins import COMBOS, Twin

USECASE = {"usecase": "attachments"}
_scopes = itertools.count()


class Recorder:
    """A metrics backend keeping (name, tags, unit) and the sizes it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], str | None]] = []
        self.sizes: list[float] = []

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        self.calls.append((name, dict(tags or {}), None))

    def gauge(self, name: str, value: float, tags: Any = None) -> None:
        self.calls.append((name, dict(tags or {}), None))

    def distribution(self, name: str, value: float, tags: Any = None, unit: Any = None) -> None:
        self.calls.append((name, dict(tags or {}), unit))
        if name.endswith(".size"):
            self.sizes.append(value)

    def names(self) -> list[str]:
        found, self.calls = [c[0] for c in self.calls], []
        return found


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def measured_twin(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Any]:
    kind, where = request.param
    backend = Recorder()
    if where == "loopback":
        twin = Twin(kind, server.url, None, timeout=10, metrics_backend=backend)
    else:
        emulator = Emulator(MemoryStorage(lock=threading.RLock()))
        transport = (
            InProcessTransport(emulator) if kind == "sync" else AsyncInProcessTransport(emulator)
        )
        twin = Twin(kind, "http://objectstore.test", transport, metrics_backend=backend)
    yield twin, backend, twin.session(Usecase("attachments"), org=1, test=next(_scopes))
    twin.close()


PUT_IN_MEMORY = [
    "storage.put.size",
    "storage.put.size",
    "storage.put.latency",
    "storage.put.compression_ratio",
    "storage.put.throughput",
    "storage.put.inverse_throughput",
    "storage.put.throughput",
    "storage.put.inverse_throughput",
]


def test_every_operation_reports_its_latency(measured_twin: Any) -> None:
    _, backend, session = measured_twin
    key = session.put(b"x" * 1000)
    assert backend.names() == PUT_IN_MEMORY
    assert backend.sizes[0] == 1000 and 0 < backend.sizes[1] < 1000  # raw, then compressed
    with session.get(key) as response:
        assert response.read() == b"x" * 1000
    got = backend.names()  # the whole body's latency, sizes and throughputs (see test_metrics)
    assert got.count("storage.get.latency") == 1 and "storage.get.size" in got
    assert session.get("missing") is None
    assert backend.names() == ["storage.get.latency"]
    session.head(key)
    session.delete(key)
    assert backend.names() == ["storage.head.latency", "storage.delete.latency"]
    assert all(tags == USECASE for _, tags, _ in backend.calls)


def test_put_sizes_follow_the_encoding(measured_twin: Any) -> None:
    _, backend, session = measured_twin
    session.put(b"raw bytes", compress="none")
    assert backend.calls[0] == ("storage.put.size", {**USECASE, "compression": "none"}, "byte")
    assert backend.names()[:2] == ["storage.put.size", "storage.put.latency"]
    session.put(b"\x28\xb5\x2f\xfd\x00\x00\x01\x00\x00", precompressed="zstd")
    assert backend.calls[0] == ("storage.put.size", {**USECASE, "compression": "zstd"}, "byte")
    backend.names()
    # Streamed and compressed on the fly: the payload's size as the twin measured the
    # stream, not the stored size (the transport compresses as it sends).
    session.put(io.BytesIO(b"streamed"))
    assert backend.calls[0] == ("storage.put.size", {**USECASE, "compression": "none"}, "byte")
    assert backend.names() == [
        "storage.put.size",
        "storage.put.latency",
        "storage.put.throughput",
        "storage.put.inverse_throughput",
    ]
    session.put(iter([b"streamed"]))  # unsized: latency only
    assert backend.names() == ["storage.put.latency"]


def test_a_failed_operation_still_reports_its_latency(measured_twin: Any) -> None:
    _, backend, session = measured_twin
    key = session.put(b"no expiry", compress="none")
    backend.names()
    with pytest.raises(ExpiryExtensionRejected):
        session.extend_expiry(key, from_now=timedelta(days=1))
    assert backend.names() == ["storage.extend_expiry.latency"]


def test_without_a_backend_flows_run_unwrapped() -> None:
    client = Client("http://objectstore.test", transport=InProcessTransport())
    target = session_target(client.config, Usecase("attachments"), {"org": 1})
    assert isinstance(client.config.metrics_backend, NoOpMetricsBackend)
    assert meter_for(target, "head") is None  # no meter: flows run unwrapped


@pytest.mark.parametrize("kind", ["sync", "asyncio", "trio"])
def test_a_retried_operation_reports_one_latency_after_its_retries(kind: str) -> None:
    backend = Recorder()
    with LocalServer() as server:
        server.faults.inject(Fault.status(503), count=2, method="HEAD")
        twin = Twin(kind, server.url, None, metrics_backend=backend, retry=RetryPolicy(backoff=0.0))
        try:
            session = twin.session(Usecase("attachments"), org=1)
            assert session.head("missing") is None  # answered after two retried 503s
        finally:
            twin.close()
    assert backend.names() == [
        "objectstore.retries",
        "objectstore.retry_backoff",
        "objectstore.retries",
        "objectstore.retry_backoff",
        "storage.head.latency",
    ]
