"""The async twin's network streams: asyncio's callback-driven stream and its fallbacks.

Under asyncio a plain TCP connection made by httpcore is taken over by
:class:`objectstore_async._streams._AsyncioStream`; these tests check what
it must keep from anyio's stream (ordering, end of stream, errors, large
bodies with flow control) and what it adds (stale idle connections are
noticed without a system call). The transport's behaviour under both event
loops is covered by test_transport_h1.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any, cast

import anyio
import httpcore
import pytest

from objectstore_async._streams import _AsyncioStream, _FastStream
from objectstore_async._transport import AsyncSocketTransport
from objectstore_core import ReadError, Request, client_config
from tests.reliability.conftest import RawServer, answer, numbered, read_head

BIG = 3 * 1024 * 1024  # more than the stream buffers before it stops reading the socket


def _transport(url: str, **kwargs: Any) -> AsyncSocketTransport:
    return AsyncSocketTransport(client_config(url, **kwargs))


def _idle_streams(transport: AsyncSocketTransport) -> list[Any]:
    return [stream for stream, _ in transport._pool._policy.idle()]


@pytest.mark.parametrize(
    ("backend", "expected"), [("asyncio", _AsyncioStream), ("trio", _FastStream)]
)
def test_plain_tcp_under_asyncio_is_taken_over(backend: str, expected: type) -> None:
    with RawServer(numbered()) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            response, _ = await transport.send(Request("GET", "/a"))
            assert response.body == b"1"
            (stream,) = _idle_streams(transport)
            assert type(stream) is expected
            assert _idle_streams(transport)[0].get_extra_info("socket") is not None
            response, _ = await transport.send(Request("GET", "/b"))
            assert response.body == b"1"  # the same connection again
            await transport.aclose()

        anyio.run(main, backend=backend)


def test_a_large_streamed_body_arrives_whole_and_in_order() -> None:
    """More than the stream buffers: reading the socket pauses and resumes."""
    body = bytes(range(256)) * (BIG // 256)

    def handle(sock: socket.socket) -> None:
        while read_head(sock):
            sock.sendall(answer(body))

    with RawServer(handle) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            for _ in range(2):  # the connection is reusable afterwards
                _, stream = await transport.send(Request("GET", "/big", stream=True))
                assert stream is not None
                await anyio.sleep(0.2)  # let the server fill the buffers while nobody reads
                received = bytearray()
                while chunk := await stream.read():
                    received += chunk
                assert received == body
            assert transport.pool_stats() == {"idle": 1, "in_use": 0}
            await transport.aclose()

        anyio.run(main, backend="asyncio")


def _stray_answer(sock: socket.socket) -> None:
    time.sleep(0.05)  # after the client took its response and pooled the connection
    sock.sendall(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")


def _close_idle(sock: socket.socket) -> None:
    sock.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("misbehave", [_stray_answer, _close_idle], ids=["stray-bytes", "closed"])
def test_a_stale_idle_connection_is_noticed_and_replaced(
    misbehave: Callable[[socket.socket], None],
) -> None:
    """Bytes nobody asked for (say, a stray 408 before a close) or the server
    closing make an idle connection stale; a keyless POST is never resent, so
    the stale connection must not even be tried."""
    with RawServer(numbered(misbehave)) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            response, _ = await transport.send(Request("GET", "/a"))
            assert response.body == b"1"
            await anyio.sleep(0.2)
            (stream,) = _idle_streams(transport)
            assert isinstance(stream, _AsyncioStream) and stream.stale
            response, _ = await transport.send(Request("POST", "/b", body=b"x"))
            assert response.status == 200 and response.body == b"2"
            await transport.aclose()

        anyio.run(main, backend="asyncio")


def test_a_connection_reset_while_waiting_is_a_read_error() -> None:
    def handle(sock: socket.socket) -> None:
        read_head(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    with RawServer(handle) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            with pytest.raises(ReadError):
                await transport.send(Request("POST", "/a", body=b"x"))
            assert transport.pool_stats() == {"idle": 0, "in_use": 0}
            await transport.aclose()

        anyio.run(main, backend="asyncio")


def test_reads_after_close_fail_and_writes_after_close_fail() -> None:
    with RawServer(numbered()) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            await transport.send(Request("GET", "/a"))
            (stream,) = _idle_streams(transport)
            assert isinstance(stream, _AsyncioStream)
            await stream.aclose()
            assert stream.stale
            with pytest.raises(Exception, match="closed"):
                await stream.read(10)
            with pytest.raises(Exception, match="closed"):
                await stream.write(b"x")
            await stream.write(b"")  # nothing to write: no error, as httpcore
            await transport.aclose()

        anyio.run(main, backend="asyncio")


def _big_body_server(body: bytes, reset_after: int | None = None) -> RawServer:
    def handle(sock: socket.socket) -> None:
        while read_head(sock):
            if reset_after is None:
                sock.sendall(answer(body))
                continue
            sock.sendall(answer(body)[:reset_after])
            time.sleep(0.1)  # the client is reading the body by now
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" + bytes(4))
            return

    return RawServer(handle)


def test_a_fast_body_is_received_directly_yet_other_tasks_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reads that find the buffer empty receive from the socket themselves,
    but only for a short while after each trip through the event loop."""
    body = bytes(range(256)) * (4 * BIG // 256)
    direct = 0
    original = _AsyncioStream._recv_now

    def counted(self: _AsyncioStream, sock: socket.socket, max_bytes: int) -> bytes | None:
        nonlocal direct
        data = original(self, sock, max_bytes)
        direct += data is not None
        return data

    monkeypatch.setattr(_AsyncioStream, "_recv_now", counted)
    with _big_body_server(body) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            ticks = 0
            longest = 0.0  # the longest wait of the other task for its turn
            done = False

            async def ticker() -> None:
                nonlocal ticks, longest
                while not done:
                    ticks += 1
                    started = time.perf_counter()
                    await anyio.sleep(0)
                    longest = max(longest, time.perf_counter() - started)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ticker)
                for _ in range(2):
                    _, stream = await transport.send(Request("GET", "/big", stream=True))
                    assert stream is not None
                    received = bytearray()
                    pieces = 0
                    while chunk := await stream.read():
                        received += chunk
                        pieces += 1
                    assert received == body  # whole and in order
                done = True
            assert direct > 0
            assert ticks > 0
            assert longest < 0.05
            assert transport.pool_stats() == {"idle": 1, "in_use": 0}
            await transport.aclose()

        anyio.run(main, backend="asyncio")


def test_a_reset_while_receiving_directly_is_a_read_error() -> None:
    body = bytes(range(256)) * (4 * BIG // 256)
    with _big_body_server(body, reset_after=len(body) // 2) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            _, stream = await transport.send(Request("GET", "/big", stream=True))
            assert stream is not None
            received = 0
            with pytest.raises(ReadError):
                while chunk := await stream.read():
                    received += len(chunk)
            assert 0 < received < len(body)
            assert transport.pool_stats() == {"idle": 0, "in_use": 0}
            await transport.aclose()

        anyio.run(main, backend="asyncio")


async def _stream_on_a_tcp_pair() -> tuple[_AsyncioStream, socket.socket]:
    """An _AsyncioStream over one end of a loopback TCP connection, and the other end."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        ours = socket.create_connection(listener.getsockname())
        peer, _ = listener.accept()
    ours.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, sock=ours)
    stream = _AsyncioStream(cast(Any, None), transport)
    transport.set_protocol(stream)
    return stream, peer


def test_a_direct_receive_takes_what_the_socket_holds_in_order() -> None:
    async def main() -> None:
        stream, peer = await _stream_on_a_tcp_pair()
        with peer:
            stream._streaming = True  # as after a read of a whole piece, just after a wait
            stream._eager_until = asyncio.get_running_loop().time() + 60
            peer.sendall(b"abc")
            await asyncio.sleep(0.05)  # in the socket; the loop did not run the transport
            assert await stream.read(10) == b"abc"
            peer.sendall(b"def")
            peer.shutdown(socket.SHUT_WR)
            await asyncio.sleep(0.05)
            assert await stream.read(10) == b"def"
            assert await stream.read(10) == b""  # the end, found by the transport
        await stream.aclose()

    asyncio.run(main())


def test_a_reset_found_by_a_direct_receive_is_a_read_error() -> None:
    async def main() -> None:
        stream, peer = await _stream_on_a_tcp_pair()
        stream._streaming = True
        stream._eager_until = asyncio.get_running_loop().time() + 60
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" + bytes(4))
        peer.close()  # an RST, which the transport has not read: no loop trip in between
        with pytest.raises(httpcore.ReadError):
            await stream.read(10)
        assert stream.stale
        await stream.aclose()

    asyncio.run(main())


def test_direct_receives_only_under_a_selector_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proactor loop keeps a receive pending; a direct one would overtake it."""

    async def main() -> tuple[bool, bool]:
        stream, peer = await _stream_on_a_tcp_pair()
        with peer:
            usable = stream._sock is not None
        await stream.aclose()
        return usable, isinstance(asyncio.get_running_loop(), asyncio.SelectorEventLoop)

    assert asyncio.run(main()) == (True, True)

    class OtherLoop:  # stands in for any loop that is not a selector loop
        pass

    monkeypatch.setattr(asyncio, "SelectorEventLoop", OtherLoop)
    assert asyncio.run(main())[0] is False
