"""The core's HTTP/1.1 exchange and pool policy, without sockets."""

from __future__ import annotations

import pytest

from objectstore_core import (
    ConnectError,
    ConnectTimeout,
    PoolTimeout,
    ProtocolError,
    ReadError,
    ReadTimeout,
    Request,
    Timeout,
    Upload,
    WriteError,
    WriteTimeout,
)
from objectstore_core._connection import RESEND, WRITE_SLICE, Exchange, Failure, ResponseHead
from objectstore_core._http import PayloadKind
from objectstore_core._pool import PoolPolicy, Return

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def _exchange(request: Request, limits: Timeout | None = None, now: float = 0.0) -> Exchange:
    return Exchange(request, "h", limits or Timeout(), now)


def _written(exchange: Exchange) -> bytes:
    return b"".join(bytes(piece) for piece in exchange.writes())


def test_a_get_is_framed_and_its_answer_read() -> None:
    exchange = _exchange(Request("GET", "/x"))
    exchange.start(reused=False)
    assert _written(exchange) == b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n"
    exchange.sent()
    assert exchange.next_head() is None
    exchange.receive_data(OK)
    head = exchange.next_head()
    assert isinstance(head, ResponseHead)
    assert exchange.next_data() == b"ok"
    assert exchange.complete and exchange.reusable


def test_large_bodies_are_written_in_slices() -> None:
    body = bytes(3 * WRITE_SLICE + 1)
    exchange = _exchange(Request("PUT", "/x", body=body))
    exchange.start(reused=False)
    pieces = list(exchange.writes())
    assert max(len(piece) for piece in pieces) <= WRITE_SLICE
    assert b"".join(bytes(p) for p in pieces).endswith(body)


def test_upload_chunks_are_framed_chunked() -> None:
    upload = Upload(b"", PayloadKind.BYTES, compress=False)
    exchange = _exchange(Request("PUT", "/x", body=upload))
    exchange.start(reused=False)
    head = _written(exchange)
    assert b"transfer-encoding: chunked" in head
    framed = b"".join(bytes(p) for p in exchange.upload_writes(b"abc"))
    framed += b"".join(bytes(p) for p in exchange.upload_end())
    assert framed == b"3\r\nabc\r\n0\r\n\r\n"


def test_an_idempotent_request_on_a_reused_connection_closed_silently_is_resent_once() -> None:
    exchange = _exchange(Request("GET", "/x"))
    exchange.start(reused=True)
    _written(exchange)
    exchange.sent()
    exchange.receive_data(b"")
    assert exchange.next_head() is RESEND
    assert exchange.resent
    exchange.start(reused=False)  # on a fresh connection
    _written(exchange)
    exchange.sent()
    exchange.receive_data(b"")
    with pytest.raises(ReadError, match="without a response"):
        exchange.next_head()


@pytest.mark.parametrize("reused", [False, True])
def test_a_keyless_post_is_never_resent(reused: bool) -> None:
    exchange = _exchange(Request("POST", "/x", body=b"data"))
    exchange.start(reused=reused)
    _written(exchange)
    exchange.sent()
    with pytest.raises(ReadError):
        exchange.receive_failed(Failure.BROKEN, ConnectionResetError("reset"))


def test_an_early_answer_wins_over_the_failed_write() -> None:
    exchange = _exchange(Request("PUT", "/x", body=bytes(1 << 20)))
    exchange.start(reused=False)
    next(iter(exchange.writes()))
    assert exchange.send_failed(Failure.BROKEN, BrokenPipeError("pipe")) is None
    exchange.receive_data(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
    head = exchange.next_head()
    assert isinstance(head, ResponseHead) and head.status == 403
    assert not exchange.reusable  # the request was not fully sent


def test_a_failed_write_without_an_answer_is_a_write_error() -> None:
    exchange = _exchange(Request("PUT", "/x", body=bytes(1 << 20)))
    exchange.start(reused=False)
    next(iter(exchange.writes()))
    exchange.send_failed(Failure.BROKEN, BrokenPipeError("pipe"))
    exchange.receive_data(b"")
    with pytest.raises(WriteError, match="lost while sending"):
        exchange.next_head()


def test_a_write_timeout_says_how_much_was_taken() -> None:
    exchange = _exchange(Request("PUT", "/x", body=bytes(4 * WRITE_SLICE)), Timeout(write=1))
    exchange.start(reused=False)
    writes = iter(exchange.writes())
    next(writes)
    next(writes)  # the head went out; the first body slice is pending
    with pytest.raises(WriteTimeout) as caught:
        exchange.send_failed(Failure.TIMEOUT, TimeoutError())
    assert "accepted no request bytes" not in str(caught.value)
    assert "1" in str(caught.value)

    fresh = _exchange(Request("PUT", "/x", body=b"x"), Timeout(write=1))
    fresh.start(reused=False)
    next(iter(fresh.writes()))
    with pytest.raises(WriteTimeout, match="accepted no request bytes"):
        fresh.send_failed(Failure.TIMEOUT, TimeoutError())


def test_the_total_deadline_bounds_every_wait_of_the_head() -> None:
    exchange = _exchange(Request("HEAD", "/x"), Timeout(read=30, total=3), now=100.0)
    exchange.start(reused=False)
    _written(exchange)
    exchange.sent()
    assert exchange.read_timeout(100.0) == 3
    exchange.receive_data(b"HTTP/1.1 2")  # a drip keeps arriving...
    assert exchange.read_timeout(102.5) == pytest.approx(0.5)
    with pytest.raises(ReadTimeout, match="total timeout"):
        exchange.read_timeout(103.0)  # ...but the deadline holds


def test_connect_failures_are_named() -> None:
    exchange = _exchange(Request("GET", "/x"), Timeout(connect=0.5))
    exchange.start(reused=False)
    error = exchange.connect_failed(Failure.TIMEOUT, TimeoutError(), "h:1")
    assert isinstance(error, ConnectTimeout) and "0.5" in str(error)


def test_the_pool_hands_a_freed_slot_to_the_oldest_waiter() -> None:
    policy: PoolPolicy[str] = PoolPolicy(1, pid=1)
    assert policy.take_slot()
    lease, _ = policy.lease()
    assert not policy.take_slot()
    first, second = object(), object()
    policy.wait_for_slot(first)
    policy.wait_for_slot(second)
    lease.connection = "conn"
    verdict, woken = policy.give_back(lease, reusable=True)
    assert verdict is Return.POOLED and woken is first
    assert policy.stop_waiting(first, woken=True)
    assert not policy.stop_waiting(second, woken=False)
    reused, _ = policy.lease()
    assert reused.connection == "conn" and reused.reused
    assert isinstance(policy.timeout_error(1.0), PoolTimeout)


def test_a_forked_child_starts_afresh_and_detaches_what_it_inherited() -> None:
    policy: PoolPolicy[str] = PoolPolicy(2, pid=1)
    policy.take_slot()
    lease, _ = policy.lease()
    policy.take_slot()
    held, _ = policy.lease()  # in use at fork time
    lease.connection = "a"
    policy.give_back(lease, reusable=True)
    assert policy.check_process(2) == ["a"]
    assert policy.stats() == {"idle": 0, "in_use": 0}
    assert policy.give_back(held, reusable=True) == (Return.DETACH, None)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length:\x1e2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\ncontent-length: ２\r\n\r\nok".encode(),
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1_0\r\n\r\nok",
        b"HTTP/1.1 100 Continue\r\n\r\n" * 17 + OK,
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"x-a: b\r\n" * 40_000 + b"\r\n",
    ],
)
def test_bad_heads_are_protocol_errors_at_once(head: bytes) -> None:
    exchange = _exchange(Request("GET", "/x"))
    exchange.start(reused=False)
    _written(exchange)
    exchange.sent()
    exchange.receive_data(head)
    with pytest.raises(ProtocolError):
        exchange.next_head()


def test_a_head_with_bare_lf_line_ends_is_read_at_once() -> None:
    exchange = _exchange(Request("GET", "/x"))
    exchange.start(reused=False)
    _written(exchange)
    exchange.sent()
    exchange.receive_data(b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok")
    head = exchange.next_head()
    assert isinstance(head, ResponseHead) and head.status == 200
    assert exchange.next_data() == b"ok"


def test_receive_head_feeds_and_parses_in_one_step() -> None:
    exchange = _exchange(Request("GET", "/x"))
    exchange.start(reused=False)
    _written(exchange)
    exchange.sent()
    assert exchange.receive_head(OK[:10]) is None
    head = exchange.receive_head(OK[10:])
    assert isinstance(head, ResponseHead) and head.status == 200
    assert exchange.next_data() == b"ok"
    assert exchange.complete and exchange.reusable
    with pytest.raises(RuntimeError):
        exchange.receive_head(b"more")


def test_receive_head_gives_the_resend_verdict_and_the_errors_of_next_head() -> None:
    exchange = _exchange(Request("GET", "/x"))
    exchange.start(reused=True)
    _written(exchange)
    exchange.sent()
    assert exchange.receive_head(b"") is RESEND
    exchange.start(reused=False)
    _written(exchange)
    exchange.sent()
    with pytest.raises(ReadError, match="without a response"):
        exchange.receive_head(b"")

    bad = _exchange(Request("GET", "/x"))
    bad.start(reused=False)
    _written(bad)
    bad.sent()
    with pytest.raises(ProtocolError):
        bad.receive_head(b"SSH-2.0\r\n")


def test_a_clock_is_read_only_where_a_total_deadline_applies() -> None:
    reads: list[float] = []

    def clock() -> float:
        reads.append(100.0 + len(reads))
        return reads[-1]

    untimed = Exchange(Request("GET", "/x"), "h", Timeout(read=3), clock=clock)
    assert untimed.connect_timeout() == Timeout().connect
    assert untimed.write_timeout() == Timeout().write
    assert untimed.read_timeout() == 3
    assert reads == []

    timed = Exchange(Request("GET", "/x"), "h", Timeout(read=30, total=3), clock=clock)
    assert reads == [100.0]  # the deadline counts from here
    assert timed.read_timeout() == pytest.approx(2.0)  # read at 101
    assert timed.read_timeout(100.5) == pytest.approx(2.5)  # a given time wins
    with pytest.raises(TypeError):
        Exchange(Request("GET", "/x"), "h", Timeout(total=3))


def test_a_small_request_is_one_write_counted_once_sent() -> None:
    exchange = _exchange(Request("PUT", "/x", body=b"abc"), Timeout(write=1))
    exchange.start(reused=False)
    writes = exchange.writes()
    assert isinstance(writes, tuple) and len(writes) == 1
    assert bytes(writes[0]).endswith(b"\r\n\r\nabc")
    exchange.sent()
    exchange.receive_data(b"")  # a fresh connection closed without an answer
    with pytest.raises(ReadError):
        exchange.next_head()


def test_lease_free_takes_a_slot_and_a_lease_in_one_step() -> None:
    policy: PoolPolicy[str] = PoolPolicy(1, pid=1)
    taken = policy.lease_free()
    assert taken is not None
    lease, closing = taken
    assert lease.connection is None and not lease.reused and closing == []
    assert policy.lease_free() is None  # no slot left: nothing taken
    lease.connection = "conn"
    assert policy.give_back(lease, reusable=True) == (Return.POOLED, None)
    again = policy.lease_free()
    assert again is not None and again[0].connection == "conn" and again[0].reused
    policy.give_back(again[0], reusable=True)
    fresh = policy.lease_free(fresh=True)
    assert fresh is not None and fresh[0].connection is None and fresh[1] == ["conn"]
    policy.give_back(fresh[0], reusable=False)
    policy.close()
    with pytest.raises(ConnectError):
        policy.lease_free()
