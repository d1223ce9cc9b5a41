"""Operation metrics: the official client's ``storage.*`` events, from both twins.

The reference is the official client 0.2.10 itself, run against the same
emulator with the same recording backend: for the same operations both
twins must emit the same metric names, kinds, units and tags, in the same
order, with values that mean the same (sizes in bytes, latency in seconds,
throughput as size over latency).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import objectstore_client
import pytest

from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core.emulator import Fault, MemoryStorage
from objectstore_sync import MetricsBackend, NoOpMetricsBackend, ServerError, Usecase
from objectstore_sync.emulator import Emulator
from objectstore_sync.testing import InProcessTransport, LocalServer
from tests.behaviour.recording import Event, Recorder
from tests.behaviour.twins import COMBOS, Twin

_scopes = itertools.count()
PAYLOAD = b"observability " * 200  # compressible, so the two sizes differ


def _run_operations(session: Any, recorder: Recorder, faults: Any) -> dict[str, list[Event]]:
    """The same operations for any client; the events each one emitted, by label."""
    seen: dict[str, list[Event]] = {}
    key = session.put(PAYLOAD, key="doc")
    seen["put zstd"] = recorder.take()
    raw = session.put(PAYLOAD, key="raw", compress="none")
    seen["put none"] = recorder.take()
    seen["stored size"] = [Event("", "", session.head(key).size, {}, None)]
    recorder.take()
    response = session.get(key)
    seen["get head"] = recorder.take()
    assert response.payload.read() == PAYLOAD
    seen["get zstd"] = recorder.take()
    response = session.get(raw)
    response.payload.read()
    seen["get none"] = recorder.take()
    assert session.get("missing") is None
    seen["get missing"] = recorder.take()
    session.head(key)
    seen["head"] = recorder.take()
    assert session.head("missing") is None
    seen["head missing"] = recorder.take()
    session.delete(raw)
    seen["delete"] = recorder.take()
    faults.inject(Fault.status(500), count=1, method="DELETE")
    with pytest.raises(Exception) as failed:
        session.delete(key)
    assert getattr(failed.value, "status", None) == 500
    seen["delete failed"] = recorder.take()
    return seen


def _shapes(events: list[Event]) -> list[Any]:
    return [event.shape for event in events]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def test_official_client_and_both_twins_emit_the_same_metrics(server: LocalServer) -> None:
    official_recorder = Recorder()
    official = objectstore_client.Client(
        server.url, metrics_backend=official_recorder, retries=0
    ).session(objectstore_client.Usecase("attachments"), org=1, run=next(_scopes))
    reference = _run_operations(official, official_recorder, server.faults)

    for kind in ("sync", "asyncio"):
        recorder = Recorder()
        twin = Twin(kind, server.url, metrics_backend=recorder, retries=0, timeout=10)
        try:
            session = twin.session(Usecase("attachments"), org=1, run=next(_scopes))
            ours = _run_operations(session, recorder, server.faults)
        finally:
            twin.close()
        # The same events, in the same order, for puts, heads and deletes.
        for label in ("put zstd", "put none", "get missing", "head", "head missing", "delete"):
            assert _shapes(ours[label]) == _shapes(reference[label]), (kind, label)
            assert ours[label], label
        # A failure: the official client's latency, with an outcome tag added.
        (failed,) = ours["delete failed"]
        (reference_failed,) = reference["delete failed"]
        assert failed.name == reference_failed.name == "storage.delete.latency"
        assert failed.tags == {**reference_failed.tags, "outcome": "ServerError"}
        # A get is recorded once its body was read (the official client records
        # its latency at the head); its latency event is the official one.
        assert reference["get head"] and not ours["get head"]
        latency = [e.shape for e in ours["get zstd"] if e.name == "storage.get.latency"]
        assert latency == _shapes(reference["get head"])
        # Values mean the same: the payload's length, the stored length, and
        # throughputs that are size over latency.
        _check_put_values(ours["put zstd"], stored=ours["stored size"][0].value)
        _check_put_values(reference["put zstd"], stored=reference["stored size"][0].value)
        _check_get_values(ours["get zstd"], stored=ours["stored size"][0].value)


def _by_name(events: list[Event], name: str) -> list[Event]:
    return [event for event in events if event.name == name]


def _check_put_values(events: list[Event], stored: float) -> None:
    sizes = {e.tags["compression"]: e.value for e in _by_name(events, "storage.put.size")}
    assert sizes == {"none": len(PAYLOAD), "zstd": stored}
    (latency,) = _by_name(events, "storage.put.latency")
    assert latency.value > 0
    (ratio,) = _by_name(events, "storage.put.compression_ratio")
    assert ratio.value == pytest.approx(stored / len(PAYLOAD))
    for event in _by_name(events, "storage.put.throughput"):
        size = sizes[event.tags["compression"]]
        assert event.value == pytest.approx(size / latency.value)
    for event in _by_name(events, "storage.put.inverse_throughput"):
        size = sizes[event.tags["compression"]]
        assert event.value == pytest.approx(latency.value / size)


def _check_get_values(events: list[Event], stored: float) -> None:
    sizes = {e.tags["compression"]: e.value for e in _by_name(events, "storage.get.size")}
    assert sizes == {"none": len(PAYLOAD), "zstd": stored}
    (latency,) = _by_name(events, "storage.get.latency")
    assert latency.tags == {"usecase": "attachments"} and latency.value > 0
    for event in _by_name(events, "storage.get.throughput"):
        assert event.value == pytest.approx(sizes[event.tags["compression"]] / latency.value)


# ------------------------------------------------------- both twins, both transports


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def measured(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[tuple[Any, Any]]:
    """(session, recorder, faults) for every twin and transport."""
    kind, where = request.param
    recorder = Recorder()
    if where == "loopback":
        twin = Twin(kind, server.url, None, metrics_backend=recorder, timeout=10, retries=0)
        faults = server.faults
    else:
        emulator = Emulator(MemoryStorage(lock=threading.RLock()))
        transport = (
            InProcessTransport(emulator) if kind == "sync" else AsyncInProcessTransport(emulator)
        )
        twin = Twin("sync" if kind == "sync" else kind, "http://objectstore.test", transport,
                    metrics_backend=recorder, timeout=10, retries=0)  # fmt: skip
        faults = emulator.faults
    try:
        yield twin.session(Usecase("attachments"), org=2, run=next(_scopes)), (recorder, faults)
    finally:
        twin.close()


def test_a_get_body_closed_early_records_its_latency_as_closed(
    measured: tuple[Any, Any],
) -> None:
    session, (recorder, _) = measured
    key = session.put(PAYLOAD * 50, compress="none")
    recorder.take()
    response = session.get(key)
    response.payload.read(10)
    assert recorder.take() == []  # nothing until the body is done with
    response.close()
    (latency,) = recorder.take()
    assert latency.name == "storage.get.latency"
    assert latency.tags == {"usecase": "attachments", "outcome": "closed"}
    response.close()
    assert recorder.take() == []  # once only


def test_a_truncated_get_body_records_the_error(measured: tuple[Any, Any]) -> None:
    session, (recorder, faults) = measured
    key = session.put(PAYLOAD, compress="none")
    recorder.take()
    faults.inject(Fault.truncate(100), count=1, method="GET")
    response = session.get(key)
    with pytest.raises(Exception, match="truncated"):
        response.payload.read()
    (latency,) = recorder.take()
    assert latency.tags == {"usecase": "attachments", "outcome": "IntegrityError"}
    response.close()
    assert recorder.take() == []


def test_every_operation_records_its_latency(measured: tuple[Any, Any]) -> None:
    from datetime import timedelta

    from objectstore_sync import TimeToLive

    session, (recorder, faults) = measured
    key = session.put(b"x", expiration_policy=TimeToLive(timedelta(hours=1)))
    session.extend_expiry(key, from_now=timedelta(days=1))
    faults.inject(Fault.status(503), count=1, method="HEAD")
    with pytest.raises(ServerError):
        session.head(key)
    names = [(e.name, e.tags.get("outcome")) for e in recorder.take() if "latency" in e.name]
    assert names == [
        ("storage.put.latency", None),
        ("storage.extend_expiry.latency", None),
        ("storage.head.latency", "ServerError"),
    ]


def test_the_backends_follow_the_official_protocol() -> None:
    assert isinstance(NoOpMetricsBackend(), MetricsBackend)
    assert isinstance(Recorder(), objectstore_client.MetricsBackend)
    assert isinstance(Recorder(), MetricsBackend)
