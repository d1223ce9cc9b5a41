"""One HTTP/1.1 exchange, specified for both twins against scripted loopback peers.

Each test runs for the sync twin and for the async twin under asyncio and
trio, over real sockets to a :class:`~tests.behaviour.peers.Peer` playing a
slow or hostile server the emulator cannot: one that reads slowly or stops
reading, drips its answer, sends a malformed head, answers early and
closes, or drops a keep-alive connection. Retries are off unless a test
says otherwise, so that what is asserted is the exchange itself (the
transparent resend of a request lost on a stale keep-alive connection is
part of the exchange, not a retry).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from objectstore_core import (
    Forbidden,
    ProtocolError,
    ReadError,
    ReadTimeout,
    RetryPolicy,
    Timeout,
    Usecase,
    WriteTimeout,
)
from objectstore_core import TimeoutError as ObjectstoreTimeout
from tests.behaviour.peers import Peer, PeerConnection, RequestHead, json_response, response
from tests.behaviour.twins import Twin

MiB = 1024 * 1024
NO_RETRIES = RetryPolicy(max_attempts=1)
LOOPBACK_CONNECT = 10.0  # seconds
SMALL_WINDOW = 64 * 1024  # the peer's receive buffer: little of the upload hides in it

Connect = Callable[..., Any]
Serve = Callable[..., Peer]


@pytest.fixture(params=["sync", "asyncio", "trio"])
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(script, **options)``: a started :class:`Peer`, closed at teardown."""
    peers: list[Peer] = []

    def serve(script: Callable[[PeerConnection], None], **options: Any) -> Peer:
        peer = Peer(script, **options).start()
        peers.append(peer)
        return peer

    yield serve
    for peer in peers:
        peer.close()


@pytest.fixture
def connect(kind: str, serve: Serve) -> Iterator[Connect]:
    """``connect(peer, timeout=..., retry=...)``: a blocking session of this twin on the peer.

    Depends on ``serve`` so that clients close before their peers do.
    """
    twins: list[Twin] = []

    def connect(peer: Peer, *, timeout: Timeout, retry: RetryPolicy = NO_RETRIES) -> Any:
        # No test here is about connecting: a loopback connect on a loaded
        # machine may take longer than the default 0.1 s.
        timeout = dataclasses.replace(timeout, connect=LOOPBACK_CONNECT)
        twin = Twin(kind, peer.url, None, timeout=timeout, retry=retry)
        twins.append(twin)
        return twin.session(Usecase("exchange"), org=1, project=2)

    yield connect
    for twin in twins:
        twin.close()


def _answer(head: RequestHead, *, close: bool = False) -> bytes:
    """What a well-behaved server answers to ``head`` (PROTOCOL §3)."""
    if head.method == "HEAD":
        return response(204, headers=[("content-type", "text/plain")], length=False, close=close)
    if head.method == "GET":
        return response(200, b"ok", [("content-type", "text/plain")], close=close)
    if head.method == "POST":
        return json_response(201, {"key": "generated"}, close=close)
    return json_response(200, {"key": head.target.rsplit("/", 1)[-1]}, close=close)


def _keep_serving(conn: PeerConnection) -> None:
    """Answer every request on the connection until the client closes it."""
    while (head := conn.read_request()) is not None:
        conn.send(_answer(head))


def _fetch(session: Any, key: str) -> bytes:
    """GET ``key`` and read the whole body (releasing the connection)."""
    got = session.get(key)
    assert got is not None
    with got:
        data: bytes = got.read()
    return data


def _op(session: Any, op: str, key: str) -> object:
    """``get`` (whole body) or ``head``."""
    return _fetch(session, key) if op == "get" else session.head(key)


# ------------------------------------------------------------------ writes


UPLOAD = 12 * MiB
UPLOAD_RATE = 6 * MiB  # bytes/s: the upload takes ~2 s, twice the write timeout
UPLOAD_WRITE_TIMEOUT = 1.0


def test_write_timeout_measures_progress_not_the_whole_upload(
    serve: Serve, connect: Connect
) -> None:
    """A server taking the body steadily, but slower than ``size / write timeout``,
    never trips the write timeout: it bounds each wait for progress (Timeout docs)."""
    read_seconds: list[float] = []

    def script(conn: PeerConnection) -> None:
        head = conn.read_head()
        assert head is not None
        started = time.monotonic()
        size = conn.read_body(head, rate=UPLOAD_RATE)
        read_seconds.append(time.monotonic() - started)
        assert size == UPLOAD
        conn.send(_answer(head))
        conn.wait_for_close()

    peer = serve(script, receive_buffer=SMALL_WINDOW)
    session = connect(peer, timeout=Timeout(write=UPLOAD_WRITE_TIMEOUT, read=10))

    assert session.put(bytes(UPLOAD), key="big", compress="none") == "big"
    assert not peer.errors
    # The test's own premise: the transfer took well over the write timeout.
    assert read_seconds[0] > 1.8 * UPLOAD_WRITE_TIMEOUT


STALL_AFTER = 1 * MiB
STALL_WRITE_TIMEOUT = 0.75


def test_write_timeout_when_the_server_stops_reading_tells_the_truth(
    serve: Serve, connect: Connect
) -> None:
    """A server that took part of the body and then stops reading (holding the
    connection open) gives a WriteTimeout soon after the write timeout, whose
    message names that timeout and does not claim nothing was accepted."""

    def script(conn: PeerConnection) -> None:
        assert conn.read_head() is not None
        conn.read_exactly(STALL_AFTER)
        conn.hold()

    peer = serve(script, receive_buffer=SMALL_WINDOW)
    session = connect(peer, timeout=Timeout(write=STALL_WRITE_TIMEOUT, read=10))

    started = time.monotonic()
    with pytest.raises(WriteTimeout) as caught:
        session.put(bytes(16 * MiB), key="stalled", compress="none")
    elapsed = time.monotonic() - started

    assert elapsed < STALL_WRITE_TIMEOUT + 1.25
    message = str(caught.value)
    assert "accepted no request bytes" not in message
    assert str(STALL_WRITE_TIMEOUT) in message
    assert peer.connections[0].received > STALL_AFTER  # the premise: some bytes were taken


# ------------------------------------------------------------------ deadlines


@pytest.mark.parametrize("op", ["head", "get"])
def test_total_timeout_bounds_a_head_dripped_forever(
    serve: Serve, connect: Connect, op: str
) -> None:
    """A head arriving one byte every 0.2 s never trips a read timeout, but the
    total timeout bounds the whole exchange, head included."""

    def script(conn: PeerConnection) -> None:
        assert conn.read_request() is not None
        conn.drip(b"HTTP/1.1 200 OK\r\n" + b"x-drip: " + b"." * 1000, interval=0.2)

    peer = serve(script)
    session = connect(peer, timeout=Timeout(total=3))

    started = time.monotonic()
    with pytest.raises(ObjectstoreTimeout):
        _op(session, op, "dripped")
    assert time.monotonic() - started < 3.5


# ------------------------------------------------------------------ body reads


BODY = bytes(range(256)) * (12 * 1024)  # 3 MiB: streamed in many socket reads
BODY_READ_TIMEOUT = 1.0


def _body_in_bursts(pause: float, bursts: int) -> Callable[[PeerConnection], None]:
    """A script: the head and the body's first MiB, then ``bursts`` - 1 more MiB-sized
    bursts ``pause`` seconds apart (the rest of the body is then never sent)."""

    def script(conn: PeerConnection) -> None:
        assert conn.read_request() is not None
        whole = response(200, BODY, [("content-type", "application/octet-stream")])
        cut = len(whole) - len(BODY) + MiB
        conn.send(whole[:cut])
        for start in range(cut, min(len(whole), cut + (bursts - 1) * MiB), MiB):
            time.sleep(pause)
            conn.send(whole[start : start + MiB])
        conn.wait_for_close()

    return script


def _read_in_pieces(payload: Any, pieces: list[bytes]) -> bytes:
    """Read ``payload`` 256 KiB at a time into ``pieces``; their join."""
    while piece := payload.read(256 * 1024):
        pieces.append(piece)
    return b"".join(pieces)


def test_a_body_with_pauses_shorter_than_the_read_timeout_reads_whole(
    serve: Serve, connect: Connect
) -> None:
    """Each wait for more of a streamed body is bounded by the read timeout, not the
    whole body: pauses of 0.4 s under read=1 s never trip it."""
    peer = serve(_body_in_bursts(pause=0.4, bursts=3))
    session = connect(peer, timeout=Timeout(read=BODY_READ_TIMEOUT))
    got = session.get("bursts")
    assert got is not None
    with got:
        assert _read_in_pieces(got.payload, []) == BODY


def test_a_body_that_stops_coming_raises_read_timeout(serve: Serve, connect: Connect) -> None:
    """One MiB of the body, then nothing: a ReadTimeout about a second later."""
    peer = serve(_body_in_bursts(pause=0.0, bursts=1))
    session = connect(peer, timeout=Timeout(read=BODY_READ_TIMEOUT))
    got = session.get("stalled")
    assert got is not None
    pieces: list[bytes] = []
    started = time.monotonic()
    with got, pytest.raises(ReadTimeout):
        _read_in_pieces(got.payload, pieces)
    assert sum(map(len, pieces)) == MiB
    assert BODY_READ_TIMEOUT * 0.9 <= time.monotonic() - started < BODY_READ_TIMEOUT + 2


# ------------------------------------------------------------------ malformed heads


# Far above the 2 s in which a malformed head must be refused, so that waiting
# for bytes that never come shows as a failure; kept low so that a transport
# that does wait costs the suite little.
HEAD_READ_TIMEOUT = 4.0


def _filler_head(size: int) -> bytes:
    line = b"x-filler: " + b"a" * 90 + b"\r\n"
    return b"HTTP/1.1 200 OK\r\n" + line * (size // len(line)) + b"content-length: 0\r\n\r\n"


BAD_HEADS = {
    "length-after-a-control-byte": b"HTTP/1.1 200 OK\r\ncontent-length:\x1e2\r\n\r\nok",
    "length-in-full-width-digits": "HTTP/1.1 200 OK\r\ncontent-length: ２\r\n\r\nok".encode(),
    "length-negative": b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\nok",
    "length-with-underscore": b"HTTP/1.1 200 OK\r\ncontent-length: 1_0\r\n\r\nokokokokok",
    "twenty-informational-responses": b"HTTP/1.1 100 Continue\r\n\r\n" * 20
    + b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    "head-of-one-mebibyte": _filler_head(MiB),
    "switching-protocols": (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    ),
}


def _answering(data: bytes) -> Callable[[PeerConnection], None]:
    """A script: read the request, send ``data``, keep the connection open."""

    def script(conn: PeerConnection) -> None:
        assert conn.read_request() is not None
        conn.send(data)
        conn.wait_for_close()

    return script


@pytest.mark.parametrize("data", list(BAD_HEADS.values()), ids=list(BAD_HEADS))
def test_a_malformed_head_is_a_protocol_error_at_once(
    serve: Serve, connect: Connect, data: bytes
) -> None:
    """Never a foreign exception, never a wait for bytes that will not come."""
    session = connect(serve(_answering(data)), timeout=Timeout(read=HEAD_READ_TIMEOUT))

    started = time.monotonic()
    with pytest.raises(ProtocolError):
        _fetch(session, "bad")
    assert time.monotonic() - started < 2


def test_a_minimal_head_is_read(serve: Serve, connect: Connect) -> None:
    """The control for the malformed heads: the same head, well formed, reads fine."""
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    session = connect(serve(_answering(head)), timeout=Timeout(read=HEAD_READ_TIMEOUT))
    assert _fetch(session, "fine") == b"ok"


def test_a_head_with_bare_line_feeds_is_read_or_refused_at_once(
    serve: Serve, connect: Connect
) -> None:
    """Bare LF line ends (RFC 9112 §2.2 lets a recipient accept them): either the
    response is read as meant, or it is a ProtocolError; either way at once."""
    head = b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok"
    session = connect(serve(_answering(head)), timeout=Timeout(read=HEAD_READ_TIMEOUT))

    started = time.monotonic()
    outcome: object
    try:
        outcome = _fetch(session, "lf")
    except ProtocolError as exc:
        outcome = exc
    assert time.monotonic() - started < 2
    assert outcome == b"ok" or isinstance(outcome, ProtocolError)


# ------------------------------------------------------------------ early answers


@pytest.mark.parametrize("after", [0, MiB], ids=["after-the-head", "after-some-body"])
def test_an_early_answer_to_an_upload_is_the_error(
    serve: Serve, connect: Connect, after: int
) -> None:
    """A server that refuses an upload before reading its body answers 403 and
    closes; the client's writes then fail, but the answer is what it raises."""

    def script(conn: PeerConnection) -> None:
        assert conn.read_head() is not None
        conn.read_exactly(after)
        conn.send(json_response(403, {"detail": "auth error: operation not allowed"}, close=True))
        conn.wait(0.05)  # let the answer reach the client before the reset
        conn.close()  # unread request bytes: the kernel resets the connection

    peer = serve(script, receive_buffer=SMALL_WINDOW)
    session = connect(peer, timeout=Timeout(read=10, write=10))

    started = time.monotonic()
    with pytest.raises(Forbidden) as caught:
        session.put(bytes(8 * MiB), key="refused", compress="none")
    assert time.monotonic() - started < 5
    assert caught.value.status == 403
    assert "operation not allowed" in str(caught.value)


# ------------------------------------------------------------------ connection reuse


@pytest.mark.parametrize("op", ["get", "head"])
def test_a_keepalive_connection_closed_while_idle_is_not_used(
    serve: Serve, connect: Connect, op: str
) -> None:
    """The peer answers a GET with keep-alive, then closes the idle connection:
    the next request goes on a new one and succeeds."""
    closed = threading.Event()

    def script(conn: PeerConnection) -> None:
        if conn.index == 0:
            head = conn.read_request()
            assert head is not None
            conn.send(_answer(head))
            conn.wait(0.1)
            conn.close()
            closed.set()
        else:
            _keep_serving(conn)

    peer = serve(script)
    session = connect(peer, timeout=Timeout(read=5, write=5))

    assert _fetch(session, "first") == b"ok"
    assert closed.wait(5)
    time.sleep(0.05)  # the FIN has arrived
    assert _op(session, op, "second") is not None
    assert peer.connection_count == 2


@pytest.mark.parametrize("op", ["get", "head"])
def test_an_idempotent_request_lost_on_a_stale_connection_is_resent_once(
    serve: Serve, connect: Connect, op: str
) -> None:
    """The race a keep-alive client must survive: the server closes an idle
    connection just as the next request goes out on it. With retries off,
    the request is sent once more on a fresh connection, transparently."""

    def script(conn: PeerConnection) -> None:
        if conn.index == 0:
            head = conn.read_request()
            assert head is not None
            conn.send(_answer(head))
            assert conn.read_head() is not None  # the next request arrives ...
            conn.close()  # ... and is dropped unanswered
        else:
            _keep_serving(conn)

    peer = serve(script)
    session = connect(peer, timeout=Timeout(read=5, write=5))

    assert _fetch(session, "first") == b"ok"
    assert _op(session, op, "second") is not None
    method = op.upper()
    assert peer.methods() == [(0, "GET"), (0, method), (1, method)]
    assert peer.connection_count == 2


def test_a_keyless_put_lost_on_a_stale_connection_is_not_resent(
    serve: Serve, connect: Connect
) -> None:
    """A POST (server-generated key) that the peer read whole and dropped
    unanswered may have stored an object: it is never sent again."""

    def script(conn: PeerConnection) -> None:
        if conn.index == 0:
            head = conn.read_request()
            assert head is not None
            conn.send(_answer(head))
            assert conn.read_request() is not None  # the POST, body and all ...
            conn.close()  # ... dropped unanswered
        else:
            _keep_serving(conn)  # a resend would succeed here: it must not happen

    peer = serve(script)
    session = connect(peer, timeout=Timeout(read=5, write=5))

    assert _fetch(session, "first") == b"ok"
    with pytest.raises(ReadError):
        session.put(b"only once", compress="none")
    assert [method for _, method in peer.methods()].count("POST") == 1
    assert peer.connection_count == 1


def test_a_response_with_connection_close_is_not_reused(serve: Serve, connect: Connect) -> None:
    """``connection: close`` ends the connection's use even if the server keeps it open."""

    def script(conn: PeerConnection) -> None:
        while (head := conn.read_request()) is not None:
            conn.send(_answer(head, close=True))  # ... and serve on regardless

    peer = serve(script)
    session = connect(peer, timeout=Timeout(read=5, write=5))

    assert _fetch(session, "first") == b"ok"
    assert _fetch(session, "second") == b"ok"
    assert peer.methods() == [(0, "GET"), (1, "GET")]
    assert peer.connection_count == 2


# ------------------------------------------------------------------ connect errors


def test_a_refused_connection_is_described_alike_without_a_library_s_words(kind: str) -> None:
    """Both twins name the system's reason, never urllib3's or httpcore's wrapper."""
    import socket

    from objectstore_core import ConnectError

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    twin = Twin(kind, f"http://127.0.0.1:{port}", None, retry=NO_RETRIES)
    try:
        session = twin.session(Usecase("exchange"), org=1)
        with pytest.raises(ConnectError) as caught:
            session.head("k")
    finally:
        twin.close()
    message = str(caught.value)
    assert message.startswith(f"cannot connect to 127.0.0.1:{port}: Connection refused (errno ")
    for foreign in ("urllib3", "httpcore", "NewConnectionError", "HTTPConnection", "attempts"):
        assert foreign not in message
