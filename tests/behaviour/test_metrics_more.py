"""Metrics of batches, multipart uploads, resumable uploads and managed transfers, both twins.

Every operation reports to the client's metrics backend, also when it fails
(its latency then carries ``outcome``: the error's class). The multipart
calls and the resumable requests report what the official client 0.2.10
reports for the same calls (compared at the end of this module, against the
official client run on the same emulator); batches and managed transfers
have no official counterpart: the README's Metrics section names their events.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core import BatchBuilder, Clock, NoOpMetricsBackend, SendRequest, session_target
from objectstore_core._multipart import initiate_multipart_flow
from objectstore_core._transfer import upload_flow
from objectstore_core.emulator import MemoryStorage
from objectstore_sync import (
    Client,
    MultipartCompleteError,
    ObjectNotFound,
    RetryPolicy,
    ServerError,
    Usecase,
)
from objectstore_sync._inprocess import InProcessTransport
from objectstore_sync.emulator import Emulator
from objectstore_sync.testing import Fault, LocalServer
from tests.behaviour.recording import Event, Recorder
from tests.behaviour.twins import COMBOS, Twin
from tests.compat.official import OFFICIAL, OURS, PACKAGE, load

USECASE = {"usecase": "attachments"}
MIB = 1024 * 1024
_scopes = itertools.count()


def names(events: list[Event]) -> list[str]:
    return [event.name for event in events]


def one(events: list[Event], name: str, **tags: str) -> Event:
    """The single event called ``name`` whose tags include ``tags``."""
    found = [e for e in events if e.name == name and tags.items() <= e.tags.items()]
    assert len(found) == 1, (name, tags, events)
    return found[0]


def assert_latency(events: list[Event], operation: str, outcome: str | None = None) -> None:
    event = one(events, f"storage.{operation}.latency")
    expected = USECASE if outcome is None else {**USECASE, "outcome": outcome}
    assert (event.kind, event.tags, event.unit) == ("distribution", expected, None)
    assert 0 < event.value < 30  # seconds


@dataclass
class Measured:
    session: Any
    recorder: Recorder
    faults: Any
    kind: str


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def measured(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Measured]:
    kind, where = request.param
    recorder = Recorder()
    options: dict[str, Any] = {"metrics_backend": recorder, "retry": RetryPolicy.disabled()}
    if where == "loopback":
        twin = Twin(kind, server.url, None, timeout=10, **options)
        faults = server.faults
    else:
        emulator = Emulator(MemoryStorage(lock=threading.RLock()))
        transport = (
            InProcessTransport(emulator) if kind == "sync" else AsyncInProcessTransport(emulator)
        )
        twin = Twin(kind, "http://objectstore.test", transport, **options)
        faults = emulator.faults
    session = twin.session(Usecase("attachments"), org=7, test=next(_scopes))
    yield Measured(session, recorder, faults, kind)
    faults.clear()
    twin.close()


# ------------------------------------------------------------------- batches


def test_a_batch_request_reports_latency_sizes_and_results(measured: Measured) -> None:
    session, recorder = measured.session, measured.recorder
    session.put(b"stored", key="there", compress="none")
    recorder.take()
    batch = session.many()
    batch.put(b"small " * 10, key="b1")
    batch.put(os.urandom(2 * MIB), key="large", compress="none")  # too big: its own request
    batch.get("there")
    batch.head("missing")
    batch.delete("b1")
    results = batch.send()
    assert results.ok
    events = recorder.take()
    # The large put went alone and reports what any put does; the rest shared one request.
    assert one(events, "storage.put.size", compression="none").value == 2 * MIB
    assert_latency(events, "batch")
    batched = [e for e in events if e.name.startswith("storage.batch.")]
    assert names(batched)[:4] == [
        "storage.batch.latency",
        "storage.batch.operations",
        "storage.batch.request_size",
        "storage.batch.response_size",
    ]
    assert one(events, "storage.batch.operations").value == 4
    request = one(events, "storage.batch.request_size")
    response = one(events, "storage.batch.response_size")
    assert (request.unit, response.unit, request.tags) == ("byte", "byte", USECASE)
    assert 60 < request.value < 10_000 and len(b"stored") < response.value < 100_000
    counted = {e.tags["kind"]: e.value for e in events if e.name == "storage.batch.results"}
    assert counted == {"put": 1, "get": 1, "head": 1, "delete": 1}
    assert all(e.kind == "increment" for e in events if e.name == "storage.batch.results")
    assert not any(
        e.name.startswith(("storage.get.", "storage.head.", "storage.delete.")) for e in events
    )


def test_a_failed_batch_request_tags_its_latency_and_results(measured: Measured) -> None:
    session, recorder = measured.session, measured.recorder
    measured.faults.inject(Fault.status(500), count=1, method="POST", path="objects:batch")
    batch = session.many()
    batch.get("a")
    batch.head("b")
    results = batch.send()
    assert [type(r.error) for r in results] == [ServerError, ServerError]
    events = recorder.take()
    assert_latency(events, "batch", outcome="ServerError")
    failed = [e for e in events if e.name == "storage.batch.results"]
    assert sorted((e.tags["kind"], e.tags["outcome"], e.value) for e in failed) == [
        ("get", "ServerError", 1),
        ("head", "ServerError", 1),
    ]


def test_batch_results_are_counted_per_kind(measured: Measured) -> None:
    session, recorder = measured.session, measured.recorder
    session.put(b"here", key="here")
    recorder.take()
    batch = session.many()
    batch.get("missing")  # a success whose value is None
    batch.get("here")
    batch.delete("here")
    assert batch.send().ok
    counted = [e for e in recorder.take() if e.name == "storage.batch.results"]
    assert [(e.tags, e.value) for e in counted] == [
        ({**USECASE, "kind": "get"}, 2),
        ({**USECASE, "kind": "delete"}, 1),
    ]


# ---------------------------------------------------------------- multipart


def test_each_multipart_call_reports_its_metrics(measured: Measured) -> None:
    session, recorder = measured.session, measured.recorder
    upload = session.initiate_multipart_upload(key="mp", compression="none")
    events = recorder.take()
    assert names(events) == ["storage.multipart.initiate.latency"]
    assert_latency(events, "multipart.initiate")

    part = upload.put_part(b"a" * 1000, part_number=1, content_length=1000)
    events = recorder.take()
    assert names(events) == [
        "storage.multipart.put_part.size",
        "storage.multipart.put_part.latency",
        "storage.multipart.put_part.throughput",
        "storage.multipart.put_part.inverse_throughput",
    ]
    size = one(events, "storage.multipart.put_part.size")
    assert (size.value, size.tags, size.unit) == (1000, USECASE, "byte")
    latency = one(events, "storage.multipart.put_part.latency").value
    throughput = one(events, "storage.multipart.put_part.throughput").value
    assert throughput == pytest.approx(1000 / latency)
    second = upload.put_part(io.BytesIO(b"b" * 500), part_number=2, content_length=500)
    assert one(recorder.take(), "storage.multipart.put_part.size").value == 500

    assert len(upload.list_parts()) == 2
    events = recorder.take()
    assert names(events) == ["storage.multipart.list_parts.latency"]
    assert upload.complete([part, second]) == "mp"
    events = recorder.take()
    assert names(events) == ["storage.multipart.complete.latency"]
    assert_latency(events, "multipart.complete")

    other = session.initiate_multipart_upload()
    recorder.take()
    other.abort()
    events = recorder.take()
    assert names(events) == ["storage.multipart.abort.latency"]
    assert_latency(events, "multipart.abort")


def test_failed_multipart_calls_report_their_outcome(measured: Measured) -> None:
    session, recorder, faults = measured.session, measured.recorder, measured.faults
    faults.inject(Fault.status(500), count=1, path="objects:multipart/")
    with pytest.raises(ServerError):
        session.initiate_multipart_upload(key="f")
    assert_latency(recorder.take(), "multipart.initiate", outcome="ServerError")

    upload = session.initiate_multipart_upload(key="f", compression="none")
    recorder.take()
    faults.inject(Fault.status(503), count=1, method="PUT", path="objects:multipart:parts")
    with pytest.raises(ServerError):
        upload.put_part(b"abc", part_number=1, content_length=3)
    events = recorder.take()
    assert names(events) == ["storage.multipart.put_part.latency"]  # no size: nothing stored
    assert_latency(events, "multipart.put_part", outcome="ServerError")

    part = upload.put_part(b"abc", part_number=1, content_length=3)
    part.etag = '"not-the-etag"'
    recorder.take()
    with pytest.raises(MultipartCompleteError):
        upload.complete([part])
    assert_latency(recorder.take(), "multipart.complete", outcome="MultipartCompleteError")

    faults.inject(Fault.status(500), count=1, method="DELETE", path="objects:multipart")
    with pytest.raises(ServerError):
        upload.abort()
    assert_latency(recorder.take(), "multipart.abort", outcome="ServerError")
    faults.inject(Fault.status(500), count=1, method="GET", path="objects:multipart:parts")
    with pytest.raises(ServerError):
        upload.list_parts()
    assert_latency(recorder.take(), "multipart.list_parts", outcome="ServerError")


# ---------------------------------------------------------------- resumable


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Appends of 256 KiB (the emulator's granularity), so 600 kB take three."""
    monkeypatch.setattr("objectstore_core._resumable.CHUNK_BYTES", 256 * 1024)
    return 256 * 1024


def test_a_resumable_put_reports_its_requests_and_the_whole_put(
    measured: Measured, small_chunks: int, tmp_path: Path
) -> None:
    session, recorder = measured.session, measured.recorder
    data = os.urandom(600_000)
    assert session.put(data, key="big", compress="none", resumable_threshold_bytes=1000) == "big"
    events = recorder.take()
    assert names(events)[0] == "storage.resumable.create.latency"
    appended = [e.value for e in events if e.name == "storage.resumable.put.size"]
    assert appended == [small_chunks, small_chunks, 600_000 - 2 * small_chunks]
    assert all(e.tags == USECASE for e in events if e.name.startswith("storage.resumable."))
    assert names(events)[-4:] == [
        "storage.put.size",
        "storage.put.latency",
        "storage.put.throughput",
        "storage.put.inverse_throughput",
    ]
    whole = one(events, "storage.put.size")
    assert (whole.value, whole.tags, whole.unit) == (
        600_000,
        {**USECASE, "compression": "none"},
        "byte",
    )
    assert_latency(events, "put")

    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    session.put(path, key="from-a-path", compress="none", resumable_threshold_bytes=1000)
    events = recorder.take()
    assert one(events, "storage.put.size").value == 600_000  # measured by the twin
    assert sum(e.value for e in events if e.name == "storage.resumable.put.size") == 600_000


def test_a_resumable_put_that_gives_up_and_its_resumption(
    measured: Measured, small_chunks: int
) -> None:
    session, recorder, faults = measured.session, measured.recorder, measured.faults
    data = os.urandom(10_000)
    faults.inject(Fault.status(503), count=1, method="PUT", path="session=")
    with pytest.raises(ServerError) as failed:
        session.put(data, key="r", compress="none", resumable_threshold_bytes=1000)
    events = recorder.take()
    assert names(events) == [
        "storage.resumable.create.latency",
        "storage.resumable.put.latency",
        "storage.put.latency",
    ]
    assert_latency(events, "resumable.put", outcome="ServerError")
    assert_latency(events, "put", outcome="ServerError")

    handle = getattr(failed.value, "resume_handle")  # noqa: B009 - set on the error at run time
    assert session.resume_upload(handle, data) == "r"
    events = recorder.take()
    assert names(events)[0] == "storage.resumable.probe.latency"
    assert sum(e.value for e in events if e.name == "storage.resumable.put.size") == 10_000
    whole = one(events, "storage.resume_upload.size")
    assert (whole.value, whole.tags, whole.unit) == (10_000, USECASE, "byte")
    assert_latency(events, "resume_upload")


# ---------------------------------------------------------- managed transfers


def test_a_managed_upload_reports_the_whole_upload_and_its_parts(measured: Measured) -> None:
    session, recorder = measured.session, measured.recorder
    data = (b"managed upload " * 800_000)[: 11 * MIB]  # compressible; parts of 5, 5 and 1 MiB
    assert session.upload(data, key="managed", part_size=5 * MIB) == "managed"
    events = recorder.take()
    parts = [e.value for e in events if e.name == "storage.multipart.put_part.size"]
    assert len(parts) == 3 and names(events)[0] == "storage.multipart.initiate.latency"
    assert "storage.multipart.complete.latency" in names(events)
    assert names(events)[-8:] == [
        "storage.upload.size",
        "storage.upload.size",
        "storage.upload.latency",
        "storage.upload.compression_ratio",
        "storage.upload.throughput",
        "storage.upload.inverse_throughput",
        "storage.upload.throughput",
        "storage.upload.inverse_throughput",
    ]
    raw = one(events, "storage.upload.size", compression="none")
    stored = one(events, "storage.upload.size", compression="zstd")
    assert (raw.value, raw.unit) == (11 * MIB, "byte")
    assert stored.value == sum(parts) < raw.value  # each part one zstd frame
    ratio = one(events, "storage.upload.compression_ratio").value
    assert ratio == pytest.approx(stored.value / raw.value)
    assert_latency(events, "upload")

    session.upload(b"fits in one request", key="single")
    events = recorder.take()
    assert [n.split(".")[1] for n in names(events)] == ["put"] * 8 + ["upload"] * 8


def test_a_failed_managed_upload_reports_its_outcome_and_the_abort(measured: Measured) -> None:
    session, recorder, faults = measured.session, measured.recorder, measured.faults
    faults.inject(Fault.status(500), count=10, method="PUT", path="objects:multipart:parts")
    with pytest.raises(ServerError):
        session.upload(b"\1" * (6 * MIB), key="fails", part_size=5 * MIB, compress="none")
    events = recorder.take()
    assert_latency(events, "upload", outcome="ServerError")
    assert_latency(events, "multipart.abort")
    failed = [e for e in events if e.name == "storage.multipart.put_part.latency"]
    assert failed and all(e.tags.get("outcome") == "ServerError" for e in failed)
    assert not any(e.name == "storage.upload.size" for e in events)


def test_a_managed_download_reports_the_whole_download(measured: Measured, tmp_path: Path) -> None:
    session, recorder = measured.session, measured.recorder
    data = os.urandom(17 * MIB)  # over one part of 16 MiB: fetched in two ranges
    session.put(data, key="raw", compress="none")
    recorder.take()
    metadata = session.download("raw", tmp_path / "raw.bin", concurrency=2)
    assert metadata.size == len(data) and (tmp_path / "raw.bin").read_bytes() == data
    events = recorder.take()
    gets = [e for e in events if e.name == "storage.get.latency"]
    assert len(gets) == 2 and "storage.head.latency" in names(events)  # ranges, side by side
    assert names(events)[-4:] == [
        "storage.download.size",
        "storage.download.latency",
        "storage.download.throughput",
        "storage.download.inverse_throughput",
    ]
    size = one(events, "storage.download.size")
    assert (size.value, size.tags, size.unit) == (
        len(data),
        {**USECASE, "compression": "none"},
        "byte",
    )
    assert_latency(events, "download")

    session.put(b"zstd " * 1000, key="packed")
    recorder.take()
    sink = io.BytesIO()
    session.download("packed", sink)
    events = recorder.take()
    assert one(events, "storage.download.size").value == 5000  # the bytes written, decoded
    assert one(events, "storage.get.size", compression="zstd").value < 5000


def test_a_failed_managed_download_reports_its_outcome(measured: Measured, tmp_path: Path) -> None:
    session, recorder = measured.session, measured.recorder
    with pytest.raises(ObjectNotFound):
        session.download("missing", tmp_path / "nothing")
    events = recorder.take()
    assert names(events) == ["storage.get.latency", "storage.download.latency"]
    assert_latency(events, "download", outcome="ObjectNotFound")


# ------------------------------------------------------------------- no-op


def test_the_no_op_backend_adds_no_clock_steps() -> None:
    client = Client("http://objectstore.test", transport=InProcessTransport())
    assert isinstance(client.config.metrics_backend, NoOpMetricsBackend)
    target = session_target(client.config, Usecase("attachments"), {"org": 1})
    builder = BatchBuilder(target)
    builder.head("k")
    (job,) = builder.plan()
    assert isinstance(next(job.flow()), SendRequest)
    assert isinstance(next(initiate_multipart_flow(target, key="k")), SendRequest)
    # A managed upload of bytes over one part: initiate first, unwrapped.
    flow = upload_flow(target, b"x" * (6 * MIB), "k", part_size=5 * MIB, compress="none")
    assert isinstance(next(flow), SendRequest)
    client.close()

    recording = Client(
        "http://objectstore.test", transport=InProcessTransport(), metrics_backend=Recorder()
    )
    target = session_target(recording.config, Usecase("attachments"), {"org": 1})
    builder = BatchBuilder(target)
    builder.head("k")
    (job,) = builder.plan()
    assert isinstance(next(job.flow()), Clock)
    recording.close()


# ------------------------------------------- compared with the official client


def _official_events(package: str, url: str, scenario: Any) -> dict[str, list[tuple[Any, ...]]]:
    module = load(package, "")
    recorder = Recorder()
    client = module.Client(url, metrics_backend=recorder, retries=0)
    session = client.session(module.Usecase("attachments"), org=99, run=next(_scopes))
    try:
        seen = scenario(session, recorder)
    finally:
        client.close() if hasattr(client, "close") else client._pool.close()
    return {
        label: [(e.kind, e.name, tuple(sorted(e.tags.items())), e.unit) for e in events]
        for label, events in seen.items()
    }


def _multipart_scenario(session: Any, recorder: Recorder) -> dict[str, list[Event]]:
    seen: dict[str, list[Event]] = {}
    upload = session.initiate_multipart_upload(key="mp", compression="none")
    seen["initiate"] = recorder.take()
    first = upload.put_part(b"a" * 1000, part_number=1, content_length=1000)
    seen["put_part"] = recorder.take()
    second = upload.put_part(io.BytesIO(b"b" * 500), part_number=2, content_length=500)
    seen["put_part stream"] = recorder.take()
    upload.list_parts()
    seen["list_parts"] = recorder.take()
    upload.complete([first, second])
    seen["complete"] = recorder.take()
    other = session.initiate_multipart_upload()
    recorder.take()
    other.abort()
    seen["abort"] = recorder.take()
    try:
        session.resume_multipart_upload("mp", "unknown-upload").complete([first])
    except Exception as error:  # the official client raises its own class
        assert type(error).__name__ == "MultipartCompleteError"
    seen["complete failed"] = recorder.take()
    session.put(b"r" * 5000, key="big", compress="none", resumable_threshold_bytes=1000)
    seen["resumable put"] = recorder.take()
    return seen


@pytest.mark.skipif(OFFICIAL is None, reason="the official client (group peer) is not installed")
def test_multipart_and_resumable_metrics_match_the_official_client(server: LocalServer) -> None:
    theirs = _official_events(PACKAGE, server.url, _multipart_scenario)
    ours = _official_events(OURS, server.url, _multipart_scenario)
    assert set(theirs) == set(ours)
    # Ours adds, on purpose: the latency of list_parts and abort (the official client reports
    # nothing for them), and the outcome of a failed call.
    only_usecase = (("usecase", "attachments"),)
    additions = {
        call: [("distribution", f"storage.multipart.{call}.latency", only_usecase, None)]
        for call in ("list_parts", "abort")
    }
    for label, official in theirs.items():
        if label in additions:
            assert official == [] and ours[label] == additions[label]
        elif label == "complete failed":
            ((kind, name, tags, unit),) = official
            assert ours[label] == [
                (kind, name, (("outcome", "MultipartCompleteError"), *tags), unit)
            ]
        else:
            assert ours[label] == official, label
