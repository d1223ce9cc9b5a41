"""The tracing hooks of the core's flows, without sockets and without the Sentry SDK.

:func:`traced` relays a flow's steps: every request carries the trace
headers, backoffs count as retries, errors the driver throws in reach the
flow, and a flow closed before its end ends its span as ``cancelled``. The
span here is a stand-in recording what it is told, so the SDK is not needed.
"""

from __future__ import annotations

from typing import Any

import pytest

from objectstore_core import (
    ConnectError,
    Response,
    RetryPolicy,
    SendRequest,
    ServerError,
    Sleep,
    Usecase,
    client_config,
    session_target,
)
from objectstore_core._http import Flow
from objectstore_core._operations import head_flow, put_flow
from objectstore_core._paths import Target
from objectstore_core._tracing import OperationTrace, traced

HEADERS = (("sentry-trace", "0123456789abcdef0123456789abcdef-0123456789abcdef-1"),)


class FakeSpan:
    """Records what an OperationTrace does to a transaction-mode span."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.status: str | None = None
        self.finished = 0

    def set_data(self, name: str, value: Any) -> None:
        self.data[name] = value

    def set_status(self, status: str) -> None:
        self.status = status

    def finish(self) -> None:
        self.finished += 1


def _target() -> Target:
    config = client_config("http://objectstore.test", retry=RetryPolicy(backoff=0.0))
    return session_target(config, Usecase("attachments"), {"org": 1})


def _trace() -> tuple[OperationTrace, FakeSpan]:
    span = FakeSpan()
    return OperationTrace(span, False, HEADERS, {"objectstore.key": "k"}), span


def test_every_attempt_carries_the_headers_and_backoffs_count_as_retries() -> None:
    trace, span = _trace()
    flow: Flow[Any] = traced(head_flow(_target(), "k"), trace)
    sent = []
    answers = iter([Response(503), Response(503), Response(404)])
    reply: Any = None
    with pytest.raises(StopIteration) as done:
        while True:
            step = flow.send(reply)
            if isinstance(step, SendRequest):
                sent.append(step.request.headers)
                reply = next(answers)
            else:
                assert isinstance(step, Sleep)
                reply = None
    assert done.value.value is None
    assert len(sent) == 3 and all(headers[:1] == HEADERS for headers in sent)
    assert trace.retries == 2
    assert span.finished == 0  # the meter ends the span (Meter.record), not the relay


def test_errors_thrown_in_reach_the_flow() -> None:
    trace, _ = _trace()
    flow: Flow[Any] = traced(head_flow(_target(), "k"), trace)
    assert isinstance(next(flow), SendRequest)
    step = flow.throw(ConnectError("connection refused"))  # retried by the flow's policy
    assert isinstance(step, Sleep) and trace.retries == 1
    assert isinstance(flow.send(None), SendRequest)
    reply: Any = Response(500)
    with pytest.raises(ServerError):  # once the policy gives up
        while True:
            reply = Response(500) if isinstance(flow.send(reply), SendRequest) else None


def test_a_returned_key_names_the_object() -> None:
    trace, _ = _trace()
    flow: Flow[Any] = traced(put_flow(_target(), b"data", compress="none"), trace)
    step = next(flow)
    assert isinstance(step, SendRequest) and step.request.headers[:1] == HEADERS
    with pytest.raises(StopIteration):
        flow.send(Response(201, {}, b'{"key":"generated"}'))
    assert trace.attributes["objectstore.key"] == "generated"


def test_a_flow_closed_early_ends_its_span_as_cancelled() -> None:
    trace, span = _trace()
    flow: Flow[Any] = traced(head_flow(_target(), "k"), trace)
    next(flow)
    flow.close()
    assert span.finished == 1 and span.status == "cancelled"
    assert span.data["objectstore.outcome"] == "cancelled"
    trace.end(None, {})  # a span ends once
    assert span.finished == 1


@pytest.mark.parametrize(
    ("outcome", "status"),
    [(None, "ok"), ("closed", "ok"), ("ServerError", "internal_error")],
)
def test_the_outcome_sets_the_status(outcome: str | None, status: str) -> None:
    trace, span = _trace()
    trace.end(outcome, {"objectstore.uncompressed_size": 4})
    assert span.status == status and span.finished == 1
    assert span.data["objectstore.outcome"] == (outcome or "ok")
    assert span.data["objectstore.uncompressed_size"] == 4
    assert span.data["objectstore.retries"] == 0
