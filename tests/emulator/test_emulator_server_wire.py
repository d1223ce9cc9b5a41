"""The socket server's own HTTP/1.1 framing: heads, chunked and sized bodies, replies.

The server parses plain heads itself and leaves every unusual one to h11;
it decodes request bodies and frames responses itself. These tests pin the
wire behaviour on raw sockets, plus the piece-wise bodies of MemoryStorage.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from objectstore_core.emulator import (
    Fault,
    MemoryStorage,
    ObjectId,
    ServerRequest,
    read_body,
)
from objectstore_core.emulator._storage import _PIECE
from objectstore_sync.emulator import Emulator
from objectstore_sync.emulator._server import MAX_HEAD_BYTES
from objectstore_sync.testing import LocalServer
from tests.emulator.emulator_helpers import connect, recv_all

OBJ = "/v1/objects/test/org=1"
OID = ObjectId("test", "org=1", "k")


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def _exchange(server: LocalServer, data: bytes | list[bytes]) -> bytes:
    """Send ``data`` (pieces with short pauses in between), half-close, read everything."""
    with connect(server.url) as sock:
        for piece in [data] if isinstance(data, bytes) else data:
            sock.sendall(piece)
            time.sleep(0.002)
        sock.shutdown(socket.SHUT_WR)
        return recv_all(sock)


def _pattern(size: int) -> bytes:
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def _stored(server: LocalServer, key: str = "k") -> bytes:
    emulator = server.server.emulator
    response, body = emulator.handle(ServerRequest("GET", f"{OBJ}/{key}"))
    assert response.status == 200
    return body


def _put_chunked(key: str, chunks: list[bytes], *, close: bool = False) -> bytes:
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
    extra = "connection: close\r\n" if close else ""
    head = f"PUT {OBJ}/{key} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{extra}\r\n"
    return head.encode() + framed


def test_many_small_chunks_with_extensions_and_trailers(server: LocalServer) -> None:
    parts = [_pattern(n) for n in (1, 16384, 7, 65536, 3000)] * 20
    framed = b"".join(b"%X;name=value \r\n%s\r\n" % (len(p), p) for p in parts)
    head = f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ntransfer-encoding: Chunked\r\n\r\n".encode()
    trailer = b"0\r\nx-checksum: abc\r\n\r\n"
    data = head + framed + trailer
    reply = _exchange(server, [data[i : i + 70001] for i in range(0, len(data), 70001)])
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert _stored(server) == b"".join(parts)


def test_a_head_and_chunk_lines_arriving_byte_by_byte(server: LocalServer) -> None:
    data = _put_chunked("k", [b"hello", b" world"], close=True)
    reply = _exchange(server, [data[i : i + 1] for i in range(len(data))])
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nconnection: close\r\n" in reply
    assert _stored(server) == b"hello world"


@pytest.mark.parametrize(
    "body",
    [
        b"3\r\nabcXY0\r\n\r\n",  # no CRLF after the data
        b"zz\r\nabc\r\n0\r\n\r\n",  # not a hex size
        b"3\r\nab",  # the peer stops in the middle
        b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n",
    ],
)
def test_bad_chunked_bodies_get_400_and_store_nothing(server: LocalServer, body: bytes) -> None:
    head = f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".encode()
    reply = _exchange(server, head + body)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert server.storage.lookup(OID) is None


def test_pipelined_chunked_put_sized_put_and_get(server: LocalServer) -> None:
    first = _put_chunked("a", [b"x" * 10, b"y" * 5])
    second = f"PUT {OBJ}/b HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\nabcd".encode()
    get = f"GET {OBJ}/a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode()
    reply = _exchange(server, first + second + get)
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert reply.endswith(b"f\r\nxxxxxxxxxxyyyyy\r\n0\r\n\r\n")
    assert _stored(server, "b") == b"abcd"


def test_large_sized_upload_round_trips_and_ranges_cross_pieces(server: LocalServer) -> None:
    payload = _pattern(3 * _PIECE + 12345)
    head = f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ncontent-length: {len(payload)}\r\n\r\n"
    with connect(server.url) as sock:
        sock.sendall(head.encode() + payload[:1000])
        time.sleep(0.01)
        sock.sendall(payload[1000:])
        reply = b""
        while not reply.endswith(b"}"):
            reply += sock.recv(1000)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert _stored(server) == payload
    emulator = server.server.emulator
    for first, last in [(_PIECE - 3, _PIECE + 2), (10, 3 * _PIECE + 100), (0, 0)]:
        request = ServerRequest("GET", f"{OBJ}/k", (("range", f"bytes={first}-{last}"),))
        response, body = emulator.handle(request)
        assert response.status == 206
        assert body == payload[first : last + 1]
    get = f"GET {OBJ}/k HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode()
    reply = _exchange(server, get)
    head_end = reply.index(b"\r\n\r\n") + 4
    assert b"\r\ntransfer-encoding: chunked\r\n" in reply[:head_end]
    body, rest = b"", reply[head_end:]
    while True:  # decode the chunked reply
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if not size:
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    assert body == payload


def test_an_http_10_get_of_a_large_object_is_unframed(server: LocalServer) -> None:
    payload = _pattern(_PIECE + 10)
    server.server.emulator.handle(ServerRequest("PUT", f"{OBJ}/k"), payload)
    reply = _exchange(server, f"GET {OBJ}/k HTTP/1.0\r\n\r\n".encode())
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head and b"connection: close" in head
    assert body == payload


@pytest.mark.parametrize(
    ("head", "status"),
    [
        ("PUT {obj}/k HTTP/1.1\r\nhost: x\r\ncontent-length: 3, 3\r\n\r\nabc", 200),
        (
            "PUT {obj}/k HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nContent-Length: 3\r\n\r\nabc",
            200,
        ),
        ("PUT {obj}/k HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n", 400),
        ("PUT {obj}/k HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n", 501),
        ("GET {obj}/k HTTP/1.1\r\n\r\n", 400),  # no host
        ("GET {obj}/k HTTP/1.1\nhost: x\n\n", 404),  # bare LF lines: h11 accepts them
        ("GET {obj}/k HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n  folded\r\n\r\n", 404),
        ("GET {obj}/k HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n", 400),
        ("GET  {obj}/k HTTP/1.1\r\nhost: x\r\n\r\n", 400),
        ("GET {obj}/k HTTP/2.0\r\nhost: x\r\n\r\n", 505),  # h11 would answer it as 1.1
    ],
)
def test_unusual_heads_get_h11s_verdict(server: LocalServer, head: str, status: int) -> None:
    data = head.format(obj=OBJ).encode()
    reply = _exchange(server, data)
    assert reply.startswith(f"HTTP/1.1 {status} ".encode())
    if status == 200:
        assert _stored(server) == b"abc"


def test_a_head_over_the_limit_gets_431(server: LocalServer) -> None:
    start = f"GET {OBJ}/k HTTP/1.1\r\nhost: x\r\nx-big: ".encode()
    data = start + b"a" * (MAX_HEAD_BYTES + 1 - len(start))  # just over the limit, no end
    reply = _exchange(server, data)
    assert reply.startswith(b"HTTP/1.1 431 ")


def test_obs_text_header_values_reach_the_emulator(server: LocalServer) -> None:
    head = f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\nx-snme-a: caf\xe9\r\n\r\nz"
    reply = _exchange(server, head.encode("latin-1"))
    assert reply.startswith(b"HTTP/1.1 400 ")  # metadata must be visible ASCII (§4.2)


# -- MemoryStorage pieces ---------------------------------------------------------------


def _put(emulator: Emulator, body: bytes) -> None:
    assert emulator.handle(ServerRequest("PUT", f"{OBJ}/k"), body)[0].status == 200


def test_an_open_download_keeps_its_bytes_while_the_object_is_overwritten() -> None:
    storage = MemoryStorage()
    emulator = Emulator(storage)
    old = _pattern(3 * _PIECE)
    _put(emulator, old)
    exchange = emulator.begin(ServerRequest("GET", f"{OBJ}/k"))
    response = exchange.finish()
    stream = response.body
    assert not isinstance(stream, bytes)
    first = stream.read(1000)
    for fill in (b"a", b"b", b"c"):  # overwrites reuse dropped memory, never the open body
        _put(emulator, fill * (3 * _PIECE))
    rest = read_body(response)
    assert first + rest == old
    for fill in (b"d", b"e"):  # once closed, its memory may be reused
        _put(emulator, fill * (3 * _PIECE))
    assert emulator.handle(ServerRequest("GET", f"{OBJ}/k"))[1] == b"e" * (3 * _PIECE)


def test_in_place_writes_mixed_with_fed_bytes() -> None:
    emulator = Emulator(MemoryStorage())
    exchange = emulator.begin(ServerRequest("PUT", f"{OBJ}/k"))
    assert exchange.buffer(10) is None  # a small body goes through feed()
    exchange.feed(b"head-")
    expected = bytearray(b"head-")
    for size in (_PIECE, 100, 3 * _PIECE):
        remaining = size
        while remaining:
            target = exchange.buffer(remaining)
            data = _pattern(remaining)
            if target is None:
                exchange.feed(data)
                expected += data
                break
            n = min(len(target), remaining)
            target[:n] = data[:n]
            exchange.buffer_filled(n)
            expected += data[:n]
            remaining -= n
    assert exchange.finish().status == 200
    assert emulator.handle(ServerRequest("GET", f"{OBJ}/k"))[1] == expected


def test_an_aborted_in_place_upload_leaves_nothing() -> None:
    storage = MemoryStorage()
    emulator = Emulator(storage)
    exchange = emulator.begin(ServerRequest("PUT", f"{OBJ}/k"))
    target = exchange.buffer(4 * _PIECE)
    assert target is not None
    target[:5] = b"hello"
    exchange.buffer_filled(5)
    exchange.abort()
    assert storage.lookup(OID) is None
    with pytest.raises(RuntimeError):
        exchange.buffer(1)


def test_a_stall_ends_when_the_client_hangs_up() -> None:
    """A client that gave up on a stalled response does not hold a handler thread."""
    with LocalServer() as server:
        server.faults.inject(Fault.stall(60), method="HEAD")
        with connect(server.url) as sock:
            sock.sendall(f"HEAD {OBJ}/k HTTP/1.1\r\nhost: t\r\n\r\n".encode())
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1)  # stalled
        started = time.monotonic()
    # Shutdown found no busy handler: a stall still sleeping would take the
    # server's grace period (5 s) and then a cut.
    assert time.monotonic() - started < 2.0


def test_a_stall_keeps_a_pipelined_request_for_later() -> None:
    with LocalServer() as server:
        server.faults.inject(Fault.stall(0.3), method="HEAD")
        head = f"HEAD {OBJ}/k HTTP/1.1\r\nhost: t\r\n\r\n".encode()
        with connect(server.url) as sock:
            sock.sendall(head + head)  # the second arrives during the stall
            replies = b""
            while replies.count(b"HTTP/1.1 404") < 2:
                chunk = sock.recv(65536)
                assert chunk, replies
                replies += chunk
