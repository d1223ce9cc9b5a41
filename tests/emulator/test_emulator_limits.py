"""The socket server's limits against hostile or broken clients, on real sockets.

A connection cap (503 past it), idle, head, body and send timeouts, small
receive buffers, hyper's head limits (431, PROTOCOL §4.2), and the framing
rules that keep a request from being smuggled (RFC 9112 §6.1) or answered
in a version it was not asked in (505). Waits are bounded polls on the
server's state, never assertions on durations.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import anyio
import pytest

from objectstore_async import AsyncClient
from objectstore_async import Usecase as AsyncUsecase
from objectstore_core.emulator import ServerRequest
from objectstore_sync import Client, Usecase
from objectstore_sync.emulator import EmulatorServer, LocalCertificate, LocalServer
from objectstore_sync.emulator._server import MAX_HEAD_BYTES, MAX_HEADERS
from tests.emulator.emulator_helpers import connect, recv_all

OBJ = "/v1/objects/test/org=1"
GET = f"GET {OBJ}/k HTTP/1.1\r\nhost: x\r\n\r\n".encode()
BOUND = 10.0  # seconds any wait below may take at most before the test fails


def _until(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` until it holds or BOUND passes; whether it held."""
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def make_server() -> Iterator[Callable[..., EmulatorServer]]:
    with ExitStack() as stack:

        def make(**options: object) -> EmulatorServer:
            server = EmulatorServer("127.0.0.1", 0, **options)  # type: ignore[arg-type]
            stack.enter_context(server)
            return server

        yield make


def _status(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1.1 "), reply[:100]
    return int(reply[9:12])


def _read_response(sock: socket.socket) -> bytes:
    """One response with a content-length body (what the emulator sends to GET 404)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


# -- item 6: connections, timeouts, buffers ------------------------------------------------


def test_connections_past_the_cap_get_503_and_others_are_still_served(
    make_server: Callable[..., EmulatorServer],
) -> None:
    server = make_server(max_connections=2)
    with connect(server.url) as first, connect(server.url) as second:
        assert _until(lambda: server.connections_open == 2)
        with connect(server.url) as third:
            third.sendall(GET)
            reply = recv_all(third)
        assert _status(reply) == 503
        assert reply.endswith(b"\r\n\r\n")  # an empty body (PROTOCOL §1.3)
        assert b"connection: close" in reply
        assert server.connections_refused == 1
        first.sendall(GET)  # the held connections are served meanwhile
        assert _status(_read_response(first)) == 404
        second.close()
        assert _until(lambda: server.connections_open == 1)
        with connect(server.url) as fourth:  # a freed place is taken again
            fourth.sendall(GET)
            assert _status(_read_response(fourth)) == 404


def test_an_idle_connection_is_closed_after_the_idle_timeout(
    make_server: Callable[..., EmulatorServer],
) -> None:
    server = make_server(idle_timeout=0.2)
    with connect(server.url) as kept_alive, connect(server.url) as silent:
        kept_alive.sendall(GET)
        assert _status(_read_response(kept_alive)) == 404
        assert kept_alive.recv(1) == b""  # closed by the server, quietly
        assert silent.recv(1) == b""  # never sent a byte
    assert _until(lambda: server.connections_open == 0)


def test_a_head_sent_too_slowly_gets_408(make_server: Callable[..., EmulatorServer]) -> None:
    server = make_server(head_timeout=0.2)
    with connect(server.url) as sock:
        sock.sendall(b"GET /v1/objects/test/org=1/k HTTP/1.1\r\nhost: x\r\n")  # no end
        assert _status(recv_all(sock)) == 408
    assert _until(lambda: server.connections_open == 0)


def test_a_body_that_stops_coming_gets_408_and_stores_nothing(
    make_server: Callable[..., EmulatorServer],
) -> None:
    server = make_server(body_timeout=0.2)
    with connect(server.url) as sock:
        sock.sendall(f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc".encode())
        assert _status(recv_all(sock)) == 408
    response, _ = server.emulator.handle(ServerRequest("GET", f"{OBJ}/k"))
    assert response.status == 404


@pytest.mark.parametrize("store", ["memory", "directory"])
def test_a_client_that_never_reads_is_dropped_after_the_send_timeout(
    make_server: Callable[..., EmulatorServer], tmp_path: Path, store: str
) -> None:
    options: dict[str, object] = {"send_timeout": 0.3}
    if store == "directory":  # stored files go out by sendfile, which needs its own timeout
        options["data_dir"] = tmp_path
    server = make_server(**options)
    body = bytes(32 << 20)  # far more than the socket buffers of both ends hold
    assert server.emulator.handle(ServerRequest("PUT", f"{OBJ}/big"), body)[0].status == 200
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with sock:
        sock.connect((server.host, server.port))
        sock.sendall(f"GET {OBJ}/big HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        assert _until(lambda: server.connections_open == 1)
        # The client reads nothing: the server's send blocks, then gives up.
        assert _until(lambda: server.connections_open == 0)


def test_receive_buffers_start_small_and_shrink_back_between_requests(
    make_server: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path)  # bodies are read through the buffer

    def buffer_sizes() -> list[int]:
        with server._lock:
            return [len(connection._buffer) for connection in server._connections]

    with connect(server.url) as sock:
        assert _until(lambda: server.connections_open == 1)
        assert buffer_sizes() == [16 * 1024]
        body = bytes(3 << 20)
        head = f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body)
        assert _status(_read_response(sock)) == 200
        assert _until(lambda: buffer_sizes() == [16 * 1024])  # back to small once idle
        # A long head makes the buffer grow, and is still served.
        long_head = f"GET {OBJ}/k HTTP/1.1\r\nhost: x\r\nx-pad: {'a' * 200_000}\r\n\r\n"
        sock.sendall(long_head.encode())
        reply = _read_response(sock)
        assert _status(reply) == 200
    stored = server.emulator.handle(ServerRequest("GET", f"{OBJ}/k"))[1]
    assert stored == body


def test_limits_are_checked_when_the_server_is_made() -> None:
    for name, bad in [
        ("max_connections", 0),
        ("max_connections", 1.5),
        ("idle_timeout", 0),
        ("head_timeout", -1),
        ("body_timeout", float("nan")),
        ("send_timeout", "5"),
        ("max_headers", True),
        ("max_head_bytes", 0),
    ]:
        with pytest.raises(ValueError, match=name):
            EmulatorServer("127.0.0.1", 0, **{name: bad})  # type: ignore[arg-type]


# -- item 7: hyper's head limits (PROTOCOL §4.2) ---------------------------------------------


def _head_with(fields: int, *, pad: int = 0, line_end: str = "\r\n") -> bytes:
    lines = [f"GET {OBJ}/k HTTP/1.1", "host: x"]
    lines += [f"x-field-{i}: v" for i in range(fields - 1)]
    if pad:
        lines[-1] += "a" * pad
    return (line_end.join(lines) + line_end * 2).encode()


@pytest.mark.parametrize("line_end", ["\r\n", "\n"])  # the fast parser, and h11's path
def test_the_header_count_limit_is_hypers(
    make_server: Callable[..., EmulatorServer], line_end: str
) -> None:
    server = make_server()
    assert MAX_HEADERS == 100
    with connect(server.url) as sock:
        sock.sendall(_head_with(MAX_HEADERS, line_end=line_end))
        assert _status(_read_response(sock)) == 404
        sock.sendall(_head_with(MAX_HEADERS + 1, line_end=line_end))
        assert _status(recv_all(sock)) == 431
    with connect(server.url) as sock:
        sock.sendall(_head_with(20_000, line_end=line_end))
        assert _status(recv_all(sock)) == 431


def test_the_head_size_limit_is_hypers(make_server: Callable[..., EmulatorServer]) -> None:
    server = make_server()
    assert 400 * 1024 <= MAX_HEAD_BYTES < 410 * 1024
    just_fits = _head_with(2)
    just_fits = _head_with(2, pad=MAX_HEAD_BYTES - len(just_fits))
    assert len(just_fits) == MAX_HEAD_BYTES
    with connect(server.url) as sock:
        sock.sendall(just_fits)
        assert _status(_read_response(sock)) == 404
    for extra in (1, 100_000):  # arriving whole, or found over the limit while incomplete
        with connect(server.url) as sock:
            sock.sendall(_head_with(2, pad=MAX_HEAD_BYTES - len(_head_with(2)) + extra))
            assert _status(recv_all(sock)) == 431


def test_head_limits_are_parameters(make_server: Callable[..., EmulatorServer]) -> None:
    server = make_server(max_headers=3, max_head_bytes=200)
    with connect(server.url) as sock:
        sock.sendall(_head_with(4))
        assert _status(recv_all(sock)) == 431
    with connect(server.url) as sock:
        sock.sendall(_head_with(2, pad=200))
        assert _status(recv_all(sock)) == 431


# -- item 8: framing and versions ------------------------------------------------------------


def test_content_length_with_transfer_encoding_is_answered_then_closed(
    make_server: Callable[..., EmulatorServer],
) -> None:
    server = make_server()
    smuggled = f"GET {OBJ}/k HTTP/1.1\r\nhost: x\r\n\r\n"
    request = (
        f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ncontent-length: {len(smuggled) + 5}\r\n"
        f"transfer-encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
    )
    with connect(server.url) as sock:
        sock.sendall(request.encode())
        reply = recv_all(sock)
    assert _status(reply) == 200  # framed by transfer-encoding: an empty body
    assert b"connection: close" in reply.split(b"\r\n\r\n")[0]
    assert reply.count(b"HTTP/1.1 ") == 1  # the second request was never served
    assert server.emulator.handle(ServerRequest("GET", f"{OBJ}/k"))[1] == b""


@pytest.mark.parametrize("version", ["2.0", "1.2", "0.9", "3.1"])
def test_versions_other_than_1_0_and_1_1_get_505(
    make_server: Callable[..., EmulatorServer], version: str
) -> None:
    server = make_server()
    with connect(server.url) as sock:
        sock.sendall(f"GET {OBJ}/k HTTP/{version}\r\nhost: x\r\n\r\n".encode())
        assert _status(recv_all(sock)) == 505


def test_http_1_0_with_transfer_encoding_gets_400(
    make_server: Callable[..., EmulatorServer],
) -> None:
    server = make_server()
    with connect(server.url) as sock:
        request = f"PUT {OBJ}/k HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
        sock.sendall(request.encode())
        assert _status(recv_all(sock)) == 400


def test_http_1_0_and_1_1_are_still_served(make_server: Callable[..., EmulatorServer]) -> None:
    server = make_server()
    for version in ("1.0", "1.1"):
        with connect(server.url) as sock:
            head = f"GET {OBJ}/k HTTP/{version}\r\nhost: x\r\nconnection: close\r\n\r\n"
            sock.sendall(head.encode())
            assert _status(recv_all(sock)) == 404


def test_tls_connections_have_the_same_timeouts(
    make_server: Callable[..., EmulatorServer],
) -> None:
    certificate = LocalCertificate.create()
    server = make_server(tls=certificate.server_context(), idle_timeout=0.2, head_timeout=0.2)
    with connect(server.url.replace("https://", "http://")) as never_shakes_hands:
        assert never_shakes_hands.recv(1) == b""  # the handshake is bounded by head_timeout
    context = certificate.client_context()
    plain = server.url.replace("https://", "http://")
    with connect(plain) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(GET)
        assert _status(_read_response(sock)) == 404
        assert sock.recv(1) == b""  # then closed after the idle timeout
    with connect(plain) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as slow:
        slow.sendall(GET[:10])
        assert _status(recv_all(slow)) == 408
    assert _until(lambda: server.connections_open == 0)


# -- clients across the idle timeout ---------------------------------------------------------


def test_clients_reuse_pools_across_the_idle_timeout(
    make_server: Callable[..., EmulatorServer],
) -> None:
    """A pooled connection the server closed for idleness is not a failed request."""
    server = make_server(idle_timeout=0.2)
    with Client(server.url) as client:
        session = client.session(Usecase("test"), org=1)
        for round_ in range(3):
            key = session.put(b"payload", key=f"k{round_}")
            assert _until(lambda: server.connections_open == 0)  # closed by the server
            found = session.get(key)
            assert found is not None and found.read() == b"payload"
    official = pytest.importorskip("objectstore_client")
    peer = official.Client(server.url).session(official.Usecase("test"), org=1)
    for round_ in range(3):
        peer.put(b"peer", key=f"p{round_}")
        assert _until(lambda: server.connections_open == 0)
        assert peer.get(f"p{round_}").payload.read() == b"peer"


def test_the_async_client_reuses_its_pool_across_the_idle_timeout(
    make_server: Callable[..., EmulatorServer],
) -> None:
    server = make_server(idle_timeout=0.2)

    async def main() -> None:
        with anyio.fail_after(BOUND):
            async with AsyncClient(server.url, timeout=10) as client:
                session = client.session(AsyncUsecase("test"), org=1)
                for round_ in range(3):
                    key = await session.put(b"payload", key=f"a{round_}")
                    while server.connections_open:  # closed by the server soon
                        await anyio.sleep(0.01)
                    found = await session.get(key)
                    assert found is not None and await found.aread() == b"payload"

    anyio.run(main)


def test_local_server_passes_limits_through() -> None:
    with LocalServer(limits={"idle_timeout": 0.2, "max_connections": 1}) as running:
        server = running.server
        assert server.idle_timeout == 0.2 and server.max_connections == 1
        with connect(running.url) as sock:
            assert sock.recv(1) == b""  # closed for idleness
    with pytest.raises(ValueError, match="idle_timout is not one of"):
        LocalServer(limits={"idle_timout": 1})
    with pytest.raises(ValueError, match="idle_timeout"), LocalServer(limits={"idle_timeout": 0}):
        pass
