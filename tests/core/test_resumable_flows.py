"""The resumable upload flow of objectstore_core._resumable, driven by hand (PROTOCOL §14.1).

Scripted responses stand in for the server; the requests, sleeps and
measurements the flow yields are checked.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

import objectstore_core._resumable as resumable
from objectstore_core import (
    ProtocolError,
    ReadTimeout,
    Request,
    RequestError,
    Response,
    ResumeHandle,
    RetryPolicy,
    SendRequest,
    ServerError,
    Target,
    Upload,
    Usecase,
    put_flow,
    resume_upload_flow,
)
from objectstore_core._config import client_config, session_target
from objectstore_core._http import (
    Compress,
    Flow,
    Measure,
    PayloadKind,
    Sleep,
    Spool,
    Spooled,
    SpoolTally,
)

RAW = Usecase("raw_things", compression="none", resumable_threshold_bytes=10)
TARGET = Target("", RAW, RAW.for_organization(1))
PAYLOAD = bytes(range(100))
OBJECT = "/v1/objects/raw_things/org=1/k"


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resumable, "CHUNK_BYTES", 40)


def created(granularity: int = 0, key: str = "k") -> Response:
    body = {"key": key, "session": "s-1", "granularity": granularity}
    return Response(201, {"content-type": "application/json"}, json.dumps(body).encode())


def stored(offset: int, status: int = 204) -> Response:
    return Response(status, {"upload-offset": str(offset)})


class Script:
    """Answers a flow's steps from a list; records the requests and sleeps."""

    def __init__(self, flow: Flow[Any]) -> None:
        self.flow = flow
        self.requests: list[Request] = []
        self.sleeps: list[float] = []
        self.value: Any = None
        self.step: object = next(flow)
        self._settle()

    def _settle(self) -> None:
        """Perform the waits and compressions a driver would, up to the next request."""
        while isinstance(self.step, Sleep | Compress):
            if isinstance(self.step, Sleep):
                self.sleeps.append(self.step.seconds)
                self.step = self.flow.send(None)
            else:
                self.step = self.flow.send(self.step.run(cpus=1))

    def answer(self, *replies: Response | Exception | int | None) -> Script:
        for reply in replies:
            if isinstance(self.step, SendRequest):
                self.requests.append(self.step.request)
            try:
                if isinstance(reply, Exception):
                    self.step = self.flow.throw(reply)
                else:
                    self.step = self.flow.send(reply)
            except StopIteration as done:
                self.value = done.value
                self.step = None
            self._settle()
        return self

    @property
    def last(self) -> Request:
        assert isinstance(self.step, SendRequest), self.step
        return self.step.request


def policy_target(attempts: int = 3) -> Target:
    config = client_config(
        "http://h", retry=RetryPolicy(max_attempts=attempts, backoff=0.5, jitter=0)
    )
    return session_target(config, RAW, {"org": 1})


def test_a_large_payload_goes_in_chunks_after_creating_a_session() -> None:
    script = Script(put_flow(TARGET, PAYLOAD, key="k", content_type="text/plain"))
    create = script.last
    assert (create.method, create.target) == ("PUT", f"{OBJECT}?upload_type=resumable")
    assert ("upload-length", "100") in create.headers
    assert ("content-type", "text/plain") in create.headers and create.body is None
    script.answer(created(granularity=16))
    offsets = []
    for stop in (32, 64, 96):  # 40 rounded down to the granularity
        request = script.last
        assert request.target == f"{OBJECT}?session=s-1"
        offsets.append(dict(request.headers)["upload-offset"])
        assert request.body == PAYLOAD[int(offsets[-1]) : stop]
        script.answer(stored(stop))
    assert script.last.body == PAYLOAD[96:]
    script.answer(Response(201))
    assert offsets == ["0", "32", "64"] and script.value == "k"


@pytest.mark.parametrize(
    "answer",
    [
        Response(501, {}, b'{"detail":"not implemented"}'),
        Response(403, {}, b"declined"),
        Response(201, {}, b"not json"),
        Response(201, {}, b'{"key":"k"}'),
        ReadTimeout("slow"),
    ],
)
def test_no_session_means_a_plain_upload(answer: Response | Exception) -> None:
    script = Script(put_flow(TARGET, PAYLOAD, key="k")).answer(answer)
    plain = script.last
    assert (plain.method, plain.target, plain.body) == ("PUT", OBJECT, PAYLOAD)
    script.answer(Response(200, {}, b'{"key":"k"}'))
    assert script.value == "k"


@pytest.mark.parametrize(
    ("kwargs", "usecase"),
    [
        ({"resumable_threshold_bytes": 101}, RAW),
        ({"resumable_threshold_bytes": "none"}, RAW),
        ({}, Usecase("raw_things", compression="none")),  # 256 MiB by default
        ({}, Usecase("zipped")),  # compressed here, below 256 MiB before compression
        ({"compress": "zstd", "resumable_threshold_bytes": 101}, RAW),
    ],
)
def test_small_payloads_take_the_plain_path(kwargs: dict[str, Any], usecase: Usecase) -> None:
    target = Target("", usecase, usecase.for_organization(1))
    request = Script(put_flow(target, PAYLOAD, key="k", **kwargs)).last
    assert "upload_type" not in request.target


def test_files_are_measured_by_the_driver(tmp_path: Path) -> None:
    path = tmp_path / "f"
    flow = put_flow(TARGET, path, key="k")
    step = next(flow)
    assert isinstance(step, Measure) and step.source == path
    create = flow.send(100)
    assert isinstance(create, SendRequest) and ("upload-length", "100") in create.request.headers
    append = flow.send(created())
    assert isinstance(append, SendRequest)
    body = append.request.body
    assert isinstance(body, Upload) and (body.offset, body.length) == (0, 40)
    # An unmeasurable file (a pipe) goes the plain way.
    plain = put_flow(TARGET, io.BytesIO(PAYLOAD), key="k")
    assert isinstance(next(plain), Measure)
    request = plain.send(None)
    assert isinstance(request, SendRequest) and "upload_type" not in request.request.target


def test_a_transient_failure_probes_and_continues_from_the_server_offset() -> None:
    script = Script(put_flow(policy_target(), PAYLOAD, key="k")).answer(created(), stored(40))
    script.answer(ReadTimeout("lost"))
    probe = script.last
    assert dict(probe.headers)["upload-offset"] == "*" and probe.body is None
    assert script.sleeps == [0.5]
    script.answer(stored(72))  # the server had more than it confirmed
    resumed = script.last
    assert dict(resumed.headers)["upload-offset"] == "72" and resumed.body == PAYLOAD[72:100]
    script.answer(Response(201))
    assert script.value == "k"


def test_a_409_adopts_the_server_offset() -> None:
    script = Script(put_flow(TARGET, PAYLOAD, key="k")).answer(created(), stored(8, 409))
    assert dict(script.last.headers)["upload-offset"] == "8"


@pytest.mark.parametrize("offset", ["-1", "101", "x", None])
def test_an_offset_outside_previous_and_total_is_a_protocol_error(offset: str | None) -> None:
    script = Script(put_flow(TARGET, PAYLOAD, key="k")).answer(created(), stored(40))
    headers = {} if offset is None else {"upload-offset": offset}
    with pytest.raises(ProtocolError, match=r"outside \[40, 100\]"):
        script.answer(Response(204, headers))


def test_going_backwards_is_a_protocol_error() -> None:
    script = Script(put_flow(TARGET, PAYLOAD, key="k")).answer(created(), stored(40))
    with pytest.raises(ProtocolError):
        script.answer(stored(20))


def test_a_fatal_error_cancels_the_session() -> None:
    script = Script(put_flow(TARGET, PAYLOAD, key="k")).answer(created())
    script.answer(Response(400, {}, b"bad"))
    cancel = script.last
    assert (cancel.method, cancel.target) == ("DELETE", f"{OBJECT}?session=s-1")
    with pytest.raises(RequestError) as info:
        script.answer(Response(500))  # the cancel's own failure does not hide the cause
    assert info.value.status == 400


def test_exhausted_retries_raise_with_a_picklable_resume_handle() -> None:
    script = Script(put_flow(policy_target(attempts=2), PAYLOAD, key="k"))
    script.answer(created(), stored(40), Response(503))
    assert dict(script.last.headers)["upload-offset"] == "*"
    with pytest.raises(ServerError) as info:
        script.answer(Response(503))
    handle = info.value.resume_handle  # type: ignore[attr-defined]
    assert handle == ResumeHandle("raw_things", "org=1", "k", "s-1", 40, 100, 0)
    assert pickle.loads(pickle.dumps(handle)) == handle


def test_a_gone_session_is_not_resumable() -> None:
    script = Script(put_flow(TARGET, PAYLOAD, key="k")).answer(created())
    with pytest.raises(RequestError) as info:
        script.answer(Response(410))
    assert not hasattr(info.value, "resume_handle")


def test_resume_probes_first_and_sends_only_the_rest() -> None:
    handle = ResumeHandle("raw_things", "org=1", "k", "s-1", 40, 100, 0)
    script = Script(resume_upload_flow(TARGET, handle, PAYLOAD))
    assert dict(script.last.headers)["upload-offset"] == "*"
    script.answer(stored(80))
    assert script.last.body == PAYLOAD[80:]
    script.answer(Response(201))
    assert script.value == "k"


def test_resume_refuses_another_scope_or_source() -> None:
    handle = ResumeHandle("raw_things", "org=2", "k", "s-1", 0, 100, 0)
    with pytest.raises(ValueError, match="scope 'org=2'"):
        resume_upload_flow(TARGET, handle, PAYLOAD)
    same = ResumeHandle("raw_things", "org=1", "k", "s-1", 0, 100, 0)
    with pytest.raises(ValueError, match="holds 99 bytes"):
        Script(resume_upload_flow(TARGET, same, PAYLOAD[:99]))
    with pytest.raises(ValueError, match="offset"):
        resume_upload_flow(TARGET, same, iter([PAYLOAD]))
    with pytest.raises(TypeError, match="ResumeHandle"):
        resume_upload_flow(TARGET, ("k", "s"), PAYLOAD)  # type: ignore[arg-type]


# ------------------------------------------------ compressed here (PROTOCOL §14.1)

ZIPPED = Usecase("zipped", resumable_threshold_bytes=10)
ZIPPED_TARGET = Target("", ZIPPED, ZIPPED.for_organization(1))
ZIPPED_OBJECT = "/v1/objects/zipped/org=1/k"


def spooled(data: bytes, spool: Spool) -> tuple[Spooled, io.BytesIO]:
    """What a driver sends back for ``spool``: ``data`` compressed by its encoder, in a
    file standing in for the twin's temporary one."""
    tally = SpoolTally()
    file = io.BytesIO()
    for piece in tally.compressed(spool, iter([data]), cpus=1):
        file.write(piece)
    file.seek(0)
    return tally.spooled(file), file


def test_a_compressed_payload_is_spooled_and_its_compressed_bytes_go_in_a_session() -> None:
    flow = put_flow(ZIPPED_TARGET, PAYLOAD * 3, key="k")
    step = next(flow)
    assert isinstance(step, Spool)  # bytes need no measuring; compressed ahead, by the twin
    assert (step.size, step.workers, step.upload.compress) == (300, None, True)
    assert step.upload.source == PAYLOAD * 3
    reply, file = spooled(PAYLOAD * 3, step)
    assert reply.source_size == 300 and reply.size == len(file.getvalue()) < 300
    script = Script.__new__(Script)  # the same flow, driven on from here
    script.flow, script.requests, script.sleeps, script.value = flow, [], [], None
    script.step = flow.send(reply)
    create = script.last
    assert ("upload-length", str(reply.size)) in create.headers  # the compressed size
    assert ("content-encoding", "zstd") in create.headers
    script.answer(created())
    body = script.last.body
    assert isinstance(body, Upload) and body.source is file  # read from the spool...
    assert (body.kind, body.compress, body.offset, body.length) == (
        PayloadKind.FILE,
        False,
        0,
        min(40, reply.size),
    )
    assert body.replay.start == 0  # ...counted from its start


@pytest.mark.parametrize("answer", [Response(501), Response(403, {}, b"declined")])
def test_a_compressed_fallback_sends_the_spooled_bytes_with_their_length(
    answer: Response,
) -> None:
    flow = put_flow(ZIPPED_TARGET, PAYLOAD * 3, key="k")
    step = next(flow)
    assert isinstance(step, Spool)
    reply, file = spooled(PAYLOAD * 3, step)
    create = flow.send(reply)
    assert isinstance(create, SendRequest) and "upload_type" in create.request.target
    plain = flow.send(answer)
    assert isinstance(plain, SendRequest)
    request = plain.request
    assert (request.method, request.target) == ("PUT", ZIPPED_OBJECT)
    assert ("content-encoding", "zstd") in request.headers
    body = request.body
    assert isinstance(body, Upload) and body.source is file and not body.compress
    assert (body.length, body.offset) == (reply.size, 0)  # as spooled, never compressed again


def test_a_compressed_file_below_the_threshold_is_streamed_as_before() -> None:
    source = io.BytesIO(PAYLOAD)
    flow = put_flow(ZIPPED_TARGET, source, key="k")
    step = next(flow)
    assert isinstance(step, Measure) and step.source is source
    plain = flow.send(9)  # under the threshold of 10 (before compression)
    assert isinstance(plain, SendRequest)
    body = plain.request.body
    assert isinstance(body, Upload) and body.compress and body.length is None


def _compressed_handle(offset: int = 40) -> tuple[ResumeHandle, Spooled]:
    flow = put_flow(ZIPPED_TARGET, PAYLOAD * 3, key="k")
    step = next(flow)
    assert isinstance(step, Spool)
    reply, _ = spooled(PAYLOAD * 3, step)
    flow.close()
    handle = ResumeHandle(
        "zipped", "org=1", "k", "s-1", offset, reply.size, 0, 300, reply.sha256, reply.workers
    )
    return handle, reply


def test_a_compressed_resume_spools_again_checks_and_sends_only_the_rest() -> None:
    handle, _ = _compressed_handle()
    assert handle.compressed
    flow = resume_upload_flow(ZIPPED_TARGET, handle, PAYLOAD * 3)
    step = next(flow)
    assert isinstance(step, Spool) and (step.size, step.workers) == (300, 0)  # as recorded
    reply, file = spooled(PAYLOAD * 3, step)
    probe = flow.send(reply)
    assert isinstance(probe, SendRequest) and dict(probe.request.headers)["upload-offset"] == "*"
    append = flow.send(stored(48))
    assert isinstance(append, SendRequest)
    body = append.request.body
    assert isinstance(body, Upload) and body.source is file and body.offset == 48


def test_a_compressed_resume_refuses_other_bytes_before_any_request() -> None:
    handle, _ = _compressed_handle()
    other = PAYLOAD[::-1] * 3  # the same size, other bytes
    flow = resume_upload_flow(ZIPPED_TARGET, handle, other)
    step = next(flow)
    assert isinstance(step, Spool)
    changed, _ = spooled(other, step)
    with pytest.raises(ValueError, match=r"compresses to .* identical bytes"):
        flow.send(changed)
    with pytest.raises(ValueError, match="compressed from 300"):
        next(resume_upload_flow(ZIPPED_TARGET, handle, PAYLOAD))
    source = io.BytesIO(PAYLOAD * 3)
    flow = resume_upload_flow(ZIPPED_TARGET, handle, source)
    step = next(flow)
    assert isinstance(step, Measure) and step.source is source
    with pytest.raises(ValueError, match="compressed from 300"):
        flow.send(299)


def test_a_compressed_handle_pickles_with_its_checks() -> None:
    handle, reply = _compressed_handle()
    restored = pickle.loads(pickle.dumps(handle))
    assert restored == handle and restored.compressed_sha256 == reply.sha256
    assert (restored.source_size, restored.zstd_workers) == (300, 0)
