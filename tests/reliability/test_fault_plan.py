"""The emulator's fault plan, decided without I/O (objectstore_core.emulator._faults)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from objectstore_core import IntegrityError, ReadError
from objectstore_core.emulator import (
    Fault,
    FaultedBody,
    FaultKind,
    FaultPlan,
    MemoryStorage,
    ServerRequest,
)
from objectstore_sync.emulator import Emulator

GET = ServerRequest("GET", "/v1/objects/demo/org=1/key")
PUT = ServerRequest("PUT", "/v1/objects/demo/org=1/key")
POST = ServerRequest("POST", "/v1/objects/demo/org=1/")


def test_rules_apply_to_the_next_n_matching_requests_in_order() -> None:
    plan = FaultPlan()
    plan.inject(Fault.status(503), count=2, method="GET")
    plan.inject(Fault.reset(), path="/org=1/")
    assert plan.take(PUT) == Fault.reset()  # the GET rule does not match; the path rule does
    assert plan.take(PUT) is None
    assert plan.take(GET) == Fault.status(503)
    assert plan.pending == 1
    assert plan.take(GET) == Fault.status(503)
    assert plan.take(GET) is None
    assert plan.injected == 3 and plan.counts() == {"reset": 1, "status": 2}


def test_predicates_and_method_sets() -> None:
    plan = FaultPlan()
    plan.inject(Fault.stall(1), count=5, method=["put", "POST"], when=lambda r: "key" in r.target)
    assert plan.take(GET) is None
    assert plan.take(POST) is None  # the predicate refuses it
    assert plan.take(PUT) == Fault.stall(1)


def test_clear_keeps_counts() -> None:
    plan = FaultPlan()
    plan.fail_next(3, 500)
    plan.take(GET)
    plan.clear()
    assert plan.take(GET) is None and plan.injected == 1 and plan.pending == 0


def test_random_mode_is_seeded_and_close_to_its_rate() -> None:
    def run(seed: int) -> list[Fault | None]:
        plan = FaultPlan()
        plan.randomly(0.05, seed=seed)
        return [plan.take(GET if n % 2 else PUT) for n in range(4000)]

    first = run(11)
    assert first == run(11)
    assert first != run(12)
    faults = [f for f in first if f is not None]
    assert 120 <= len(faults) <= 290  # 5 % of 4000 = 200
    kinds = Counter(f.kind for f in faults)
    assert set(kinds) == set(FaultKind)
    # Body faults only for GET: a write's answer names the key.
    for n, fault in enumerate(first):
        if fault is not None and n % 2 == 0:
            assert fault.kind in (FaultKind.STATUS, FaultKind.RESET, FaultKind.STALL)
            assert fault.after is None


def test_explicit_rules_win_over_the_random_mode() -> None:
    plan = FaultPlan()
    plan.randomly(1.0, seed=1)
    plan.inject(Fault.corrupt(3))
    assert plan.take(GET) == Fault.corrupt(3)
    assert plan.take(GET) is not None
    plan.randomly(0)
    assert plan.take(GET) is None


def test_plan_uses_the_lock_it_is_given() -> None:
    class Lock:
        def __init__(self) -> None:
            self.entered = 0

        def __enter__(self) -> None:
            self.entered += 1

        def __exit__(self, *exc: Any) -> None:
            return None

    lock = Lock()
    plan = FaultPlan()
    plan.use_lock(lock)
    plan.fail_next()
    plan.take(GET)
    assert lock.entered >= 2


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Fault.status(200), "error status"),
        (lambda: Fault.reset(after=-1), "after=-1"),
        (lambda: Fault.stall(-1), "durations"),
        (lambda: Fault(FaultKind.TRUNCATE), "offset"),
    ],
)
def test_invalid_faults_are_refused(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
    with pytest.raises(ValueError, match="count"):
        FaultPlan().inject(Fault.reset(), count=0)
    with pytest.raises(ValueError, match="rate"):
        FaultPlan().randomly(2)


def test_status_fault_response_shape() -> None:
    response = Fault.status(429, retry_after=1.5).response()
    assert response.status == 429
    assert response.header("retry-after") == "1.5"
    assert json.loads(bytes(response.body))["detail"] == "service error: injected fault"  # type: ignore[arg-type]


# ------------------------------------------------------------------------ FaultedBody


def _drain(body: FaultedBody, n: int = 7) -> bytes:
    out = b""
    while chunk := body.read(n):
        out += chunk
    return out


def test_truncation_stops_reads_at_the_offset() -> None:
    body = FaultedBody(b"0123456789", Fault.truncate(4))
    assert body.read(100) == b"0123"
    assert body.due() is FaultKind.TRUNCATE
    with pytest.raises(IntegrityError):
        body.read(100)  # a reader that does not act (in-process) gets the client's view


def test_transport_acknowledges_and_reading_stops_there() -> None:
    body = FaultedBody(b"0123456789", Fault.stall(1.0, after=3))
    assert body.read(100) == b"012"
    assert body.due() is FaultKind.STALL
    body.acknowledge()
    assert _drain(body) == b"3456789"


def test_stall_is_skipped_by_readers_that_cannot_wait() -> None:
    assert _drain(FaultedBody(b"abcdef", Fault.stall(5.0, after=2))) == b"abcdef"
    assert _drain(FaultedBody(b"abcdef", Fault.stall(5.0))) == b"abcdef"


def test_reset_mid_body() -> None:
    body = FaultedBody(b"abcdef", Fault.reset(after=2))
    assert body.read(10) == b"ab"
    with pytest.raises(ReadError):
        body.read(10)


def test_before_head_faults() -> None:
    body = FaultedBody(b"abc", Fault.reset())
    assert body.before_head and body.due() is FaultKind.RESET
    with pytest.raises(ReadError):
        body.read(1)


def test_corruption_flips_exactly_one_byte_across_chunk_boundaries() -> None:
    data = bytes(range(50))
    for at in (0, 6, 7, 49, 80):
        corrupted = _drain(FaultedBody(data, Fault.corrupt(at)), n=7)
        diff = [i for i in range(50) if corrupted[i] != data[i]]
        assert diff == ([at] if at < 50 else [])


def test_faults_beyond_the_body_never_fire() -> None:
    assert _drain(FaultedBody(b"abc", Fault.truncate(10))) == b"abc"
    assert _drain(FaultedBody(b"abc", Fault.corrupt(3))) == b"abc"
    at_end = FaultedBody(b"abc", Fault.reset(after=3))  # at the end: before end-of-message
    assert at_end.read(10) == b"abc"
    with pytest.raises(ReadError):
        at_end.read(10)


def test_emulator_status_fault_processes_nothing() -> None:
    emulator = Emulator(MemoryStorage())
    emulator.faults.inject(Fault.status(503), method="PUT")
    response, _ = emulator.handle(PUT, b"data")
    assert response.status == 503
    assert len(emulator.storage) == 0  # type: ignore[arg-type]
    response, _ = emulator.handle(PUT, b"data")
    assert response.status == 200 and len(emulator.storage) == 1  # type: ignore[arg-type]


def test_emulator_wraps_other_faults_around_the_real_response() -> None:
    emulator = Emulator(MemoryStorage())
    emulator.handle(PUT, b"hello world")
    emulator.faults.inject(Fault.corrupt(0), method="GET")
    response, body = emulator.handle(GET)
    assert response.status == 200 and body == b"\x97ello world"
    emulator.faults.inject(Fault.reset(), method="DELETE")
    exchange = emulator.begin(ServerRequest("DELETE", GET.target))
    assert exchange.response is not None and isinstance(exchange.response.body, FaultedBody)
    assert emulator.handle(GET)[0].status == 404  # the delete was processed before the reset
