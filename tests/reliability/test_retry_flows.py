"""Retries decided in the core: RetryPolicy, the safety rules, Retry-After, Timeout.total.

Flows are driven by hand with a scripted fake (no sockets, no sleeping): each
test answers the flow's requests with responses or transport errors, plays
the driver's clock, and checks the requests and sleeps the flow yields.
API §6, PROTOCOL §12, §14.1.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from objectstore_core import (
    Clock,
    Compress,
    ConnectError,
    ConnectTimeout,
    IntegrityError,
    ObjectstoreError,
    PoolTimeout,
    ProtocolError,
    ReadError,
    ReadTimeout,
    Request,
    Response,
    RetryPolicy,
    SendRequest,
    ServerError,
    Sleep,
    Timeout,
    Upload,
    Usecase,
    WriteError,
    client_config,
    delete_flow,
    extend_expiry_flow,
    get_flow,
    head_flow,
    put_flow,
    session_target,
)
from objectstore_core._http import Flow, Measure
from objectstore_core._paths import Target
from objectstore_core._retry import body_replayable, retry_delay

T = TypeVar("T")

OK_PUT = Response(200, {"content-type": "application/json"}, b'{"key":"k"}')
OK_POST = Response(201, {"content-type": "application/json"}, b'{"key":"generated"}')
OK_HEAD = Response(204, {"x-sn-time-created": "2026-01-01T00:00:00.000000Z"})
NO_JITTER = RetryPolicy(backoff=0.1, multiplier=2.0, max_backoff=1.0, jitter=0.0)


def target(
    retry: RetryPolicy | None = NO_JITTER, retries: int | None = None, **config: Any
) -> Target:
    made = client_config("http://objectstore.test", retries=retries, retry=retry, **config)
    return session_target(made, Usecase("attachments"), {"org": 42})


@dataclass
class Script:
    """Plays the driver: answers requests from ``answers``, keeps a fake clock."""

    answers: list[Response | ObjectstoreError]
    attempt_cost: float = 0.0  # seconds each attempt takes on the fake clock
    now: float = 1000.0
    sent: list[Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    reads_bodies: bool = False  # like a transport: a request that got through reads its body

    def run(self, flow: Flow[T]) -> T:
        step = next(flow)
        try:
            while True:
                reply: Response | float | bytes | None = None
                if isinstance(step, Compress):
                    reply = step.run(cpus=1)
                elif isinstance(step, Sleep):
                    self.sleeps.append(step.seconds)
                    self.now += step.seconds
                elif isinstance(step, Clock):
                    reply = self.now
                else:
                    assert isinstance(step, SendRequest)
                    self.sent.append(step.request)
                    self.now += self.attempt_cost
                    answer = self.answers.pop(0)
                    body = step.request.body
                    connected = not isinstance(answer, ConnectError | ConnectTimeout | PoolTimeout)
                    if self.reads_bodies and connected and isinstance(body, Upload):
                        body.replay.started = True
                    if isinstance(answer, ObjectstoreError):
                        step = flow.throw(answer)
                        continue
                    reply = answer
                step = flow.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def _cause(error: ObjectstoreError) -> ObjectstoreError:
    try:
        raise error from OSError("underlying")
    except ObjectstoreError as raised:
        return raised


# ------------------------------------------------------------------ the policy itself


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(backoff=0.1, multiplier=3.0, max_backoff=0.5, jitter=0.0)
    assert [policy.backoff_delay(n) for n in (1, 2, 3, 4, 50_000)] == [
        pytest.approx(0.1),
        pytest.approx(0.3),
        0.5,
        0.5,
        0.5,
    ]


def test_jitter_comes_from_the_injected_source() -> None:
    class Fixed:
        def __init__(self, values: Sequence[float]) -> None:
            self.values = list(values)

        def random(self) -> float:
            return self.values.pop(0)

    full = RetryPolicy(backoff=1.0, max_backoff=8.0, jitter=1.0, random=Fixed([0.0, 0.5, 0.999]))
    assert full.backoff_delay(1) == 0.0
    assert full.backoff_delay(2) == pytest.approx(1.0)  # half of the 2 s ceiling
    assert full.backoff_delay(3) == pytest.approx(3.996)
    half = RetryPolicy(backoff=1.0, jitter=0.5, random=Fixed([0.0]))
    assert half.backoff_delay(1) == pytest.approx(0.5)  # never below (1 - jitter) * ceiling


def test_seeded_jitter_is_reproducible_and_bounded() -> None:
    a = RetryPolicy(backoff=0.2, max_backoff=2.0, random=random.Random(7))
    b = RetryPolicy(backoff=0.2, max_backoff=2.0, random=random.Random(7))
    delays = [a.backoff_delay(n) for n in range(1, 30)]
    assert delays == [b.backoff_delay(n) for n in range(1, 30)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert len(set(delays)) > 20


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_attempts": 0}, "max_attempts=0"),
        ({"max_attempts": True}, "max_attempts=True"),
        ({"backoff": -1}, "backoff=-1"),
        ({"backoff": float("nan")}, "backoff=nan"),
        ({"multiplier": 0.5}, "multiplier=0.5"),
        ({"jitter": 1.5}, "jitter=1.5"),
        ({"statuses": {200, 999}}, "statuses="),
        ({"errors": (ValueError,)}, "errors="),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        RetryPolicy(**kwargs)


def test_client_config_precedence() -> None:
    default = client_config("http://h").retry
    assert default == RetryPolicy()
    official = client_config("http://h", retries=2).retry
    assert official is not None and official.max_attempts == 3
    assert official.statuses == frozenset()
    assert set(official.errors) == {ConnectError, ConnectTimeout, PoolTimeout}
    never = client_config("http://h", retries=0).retry
    assert never is not None and never.max_attempts == 1
    mine = RetryPolicy(max_attempts=9)
    assert client_config("http://h", retry=mine).retry is mine
    with pytest.raises(ValueError, match="retry= or retries="):
        client_config("http://h", retries=1, retry=mine)
    with pytest.raises(TypeError, match="RetryPolicy"):
        client_config("http://h", retry=3)  # type: ignore[arg-type]


def test_timeout_total_is_validated() -> None:
    assert Timeout(total=2).total == 2.0
    with pytest.raises(ValueError, match=r"Timeout\.total"):
        Timeout(total=0)


# ------------------------------------------------------------- which requests retry


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_idempotent_requests_retry_the_listed_statuses(status: int) -> None:
    script = Script([Response(status), Response(status), OK_HEAD])
    assert script.run(head_flow(target(), "k")) is not None
    assert len(script.sent) == 3
    assert script.sleeps == [pytest.approx(0.1), pytest.approx(0.2)]


@pytest.mark.parametrize("status", [400, 401, 403, 409, 413, 501])
def test_other_statuses_are_not_retried(status: int) -> None:
    script = Script([Response(status)])
    with pytest.raises(ObjectstoreError):
        script.run(head_flow(target(), "k"))
    assert len(script.sent) == 1 and script.sleeps == []


def test_attempts_are_bounded_and_the_last_answer_wins() -> None:
    script = Script([Response(503)] * 4)
    with pytest.raises(ServerError) as info:
        script.run(delete_flow(target(), "k"))
    assert len(script.sent) == 4  # max_attempts=4 by default
    assert info.value.status == 503 and info.value.operation == "delete"


@pytest.mark.parametrize(
    "error",
    [ConnectError("x"), ConnectTimeout("x"), PoolTimeout("x"), ReadTimeout("x"), ReadError("x")],
)
def test_transport_errors_are_retried_for_get(error: ObjectstoreError) -> None:
    ok = Response(200, {"content-length": "0"})
    script = Script([error, ok])
    assert script.run(get_flow(target(), "k")) is not None
    assert len(script.sent) == 2


@pytest.mark.parametrize("error", [ProtocolError("x"), IntegrityError("x")])
def test_protocol_and_integrity_errors_are_not_retried(error: ObjectstoreError) -> None:
    script = Script([error])
    with pytest.raises(type(error)):
        script.run(get_flow(target(), "k"))
    assert len(script.sent) == 1


@pytest.mark.parametrize("error", [ConnectError("x"), ConnectTimeout("x"), PoolTimeout("x")])
def test_keyless_post_retries_only_when_it_never_left(error: ObjectstoreError) -> None:
    script = Script([error, OK_POST])
    assert script.run(put_flow(target(), b"data")) == "generated"
    assert [r.method for r in script.sent] == ["POST", "POST"]


@pytest.mark.parametrize(
    "outcome",
    [Response(503), Response(429, {"retry-after": "0"}), ReadError("x"), ReadTimeout("x")],
)
def test_keyless_post_is_never_repeated_once_it_may_have_arrived(
    outcome: Response | ObjectstoreError,
) -> None:
    script = Script([outcome, OK_POST])
    with pytest.raises(ObjectstoreError):
        script.run(put_flow(target(), b"data"))
    assert len(script.sent) == 1


def test_put_with_key_and_bytes_is_retried_with_the_same_body() -> None:
    script = Script([WriteError("x"), Response(502), OK_PUT])
    assert script.run(put_flow(target(), b"payload", key="k", compress="none")) == "k"
    assert [r.body for r in script.sent] == [b"payload"] * 3


def test_patch_is_retried() -> None:
    from datetime import timedelta

    script = Script([Response(503), Response(200)])
    script.run(extend_expiry_flow(target(), "k", from_now=timedelta(days=1)))
    assert [r.method for r in script.sent] == ["PATCH", "PATCH"]


def _iterator() -> Iterator[bytes]:
    yield b"chunk"


def test_one_shot_iterator_is_retried_only_before_its_first_byte() -> None:
    script = Script([ConnectError("x"), ReadError("x"), OK_PUT], reads_bodies=True)
    with pytest.raises(ReadError):
        script.run(put_flow(target(), _iterator(), key="k"))
    # 1st: connect failed before reading (retried); 2nd: failed after reading (not).
    assert len(script.sent) == 2


def _upload(flow: Flow[str]) -> Upload:
    step = next(flow)
    if isinstance(step, Measure):  # a file is measured first (resumable uploads, §14.1)
        step = flow.send(None)  # a size the twin cannot tell: one plain put
    assert isinstance(step, SendRequest) and isinstance(step.request.body, Upload)
    return step.request.body


def test_body_replayability() -> None:
    body = _upload(put_flow(target(), _iterator(), key="k"))
    assert body_replayable(body)  # untouched
    body.replay.started = True
    assert not body_replayable(body)
    seekable = _upload(put_flow(target(), io.BytesIO(b"x" * 10), key="k"))
    seekable.replay.started = True
    assert not body_replayable(seekable)  # read, but no start position noted
    seekable.replay.start = 0
    assert body_replayable(seekable)
    assert body_replayable(b"bytes") and body_replayable(None)


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(backoff=0.1, jitter=0.0, max_retry_after=5.0)
    script = Script(
        [
            Response(503, {"retry-after": "2"}),
            Response(429, {"retry-after": "3600"}),
            Response(503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}),  # dates: ignored
            OK_HEAD,
        ]
    )
    script.run(head_flow(target(policy), "k"))
    assert script.sleeps == [2.0, 5.0, pytest.approx(0.4)]


def test_official_retries_argument_retries_connects_only() -> None:
    script = Script([ConnectError("x"), ConnectError("x"), OK_HEAD])
    script.run(head_flow(target(None, retries=2), "k"))
    assert len(script.sent) == 3
    script = Script([Response(503)])
    with pytest.raises(ServerError):
        script.run(head_flow(target(None, retries=2), "k"))
    script = Script([ReadTimeout("x")])
    with pytest.raises(ReadTimeout):
        script.run(head_flow(target(None, retries=2), "k"))
    script = Script([ConnectError("x")])
    with pytest.raises(ConnectError):
        script.run(head_flow(target(None, retries=0), "k"))


def test_flows_without_a_client_never_retry() -> None:
    from objectstore_core import Scope

    script = Script([Response(503)])
    with pytest.raises(ServerError):
        script.run(head_flow(Target("", Usecase("attachments"), Scope(org=1)), "k"))
    assert len(script.sent) == 1


def test_final_error_keeps_cause_and_context() -> None:
    script = Script([_cause(ConnectError("refused"))] * 4)
    with pytest.raises(ConnectError) as info:
        script.run(head_flow(target(), "some/key"))
    assert isinstance(info.value.__cause__, OSError)
    assert (info.value.operation, info.value.usecase, info.value.scope, info.value.key) == (
        "head",
        "attachments",
        "org=42",
        "some/key",
    )


def test_retries_are_counted_in_the_metrics_backend() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, Any, Any]] = []

        def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
            self.calls.append((name, value, dict(tags or {})))

        def gauge(self, name: str, value: float, tags: Any = None) -> None: ...

        def distribution(self, *args: Any, **kwargs: Any) -> None: ...

    metrics = Recorder()
    script = Script([Response(503), ReadError("x"), OK_HEAD])
    script.run(head_flow(target(metrics_backend=metrics), "k"))
    first = {"operation": "head", "reason": "503"}
    second = {"operation": "head", "reason": "ReadError"}
    assert metrics.calls == [
        ("objectstore.retries", 1, first),
        ("objectstore.retry_backoff", script.sleeps[0], first),
        ("objectstore.retries", 1, second),
        ("objectstore.retry_backoff", script.sleeps[1], second),
    ]
    assert script.sleeps[0] > 0 and script.sleeps[1] > script.sleeps[0]


# ------------------------------------------------------------------- Timeout.total


def test_total_deadline_clips_attempts_and_stops_retrying() -> None:
    policy = RetryPolicy(backoff=0.5, multiplier=2.0, jitter=0.0, max_attempts=10)
    limits = Timeout(connect=0.1, read=5.0, total=2.0)
    script = Script([ReadTimeout("x")] * 10, attempt_cost=0.4)
    with pytest.raises(ReadTimeout):
        script.run(head_flow(target(policy, timeout=limits), "k"))
    # t=0.4 fail, sleep 0.5 -> 0.9; t=1.3 fail, sleep 1.0 would end at 2.3 > 2.0: stop.
    assert script.sleeps == [0.5]
    assert len(script.sent) == 2
    first, second = (r.timeout for r in script.sent)
    assert first is not None and second is not None
    assert first.read == pytest.approx(2.0) and first.connect == pytest.approx(0.1)
    assert second.read == pytest.approx(1.1)  # what is left of the deadline


def test_per_call_timeout_total_overrides_the_client() -> None:
    policy = RetryPolicy(backoff=1.0, jitter=0.0)
    script = Script([Response(503)] * 4)
    with pytest.raises(ServerError):
        script.run(head_flow(target(policy), "k", timeout=Timeout(total=1.5)))
    assert script.sleeps == [1.0]  # a second wait (2 s) would not fit


def test_without_total_no_clock_is_read() -> None:
    flow = head_flow(target(), "k")
    assert isinstance(next(flow), SendRequest)


def test_retry_delay_ignores_successes() -> None:
    request = Request("GET", "/x")
    assert retry_delay(RetryPolicy(), request, 1, Response(200)) is None
    assert retry_delay(None, request, 1, Response(503)) is None
    assert retry_delay(RetryPolicy(max_attempts=1), request, 1, Response(503)) is None
