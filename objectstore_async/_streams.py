"""Network streams for the async twin: what the transport reads and writes.

httpcore's network backend makes the connections (TCP through anyio under
asyncio, or natively under trio, then TLS). Its streams put a cancel scope
around every read and write, and anyio's asyncio socket stream beneath
them pauses and resumes reading around every receive: on small requests
that machinery costs more CPU than the request itself. The transport
therefore reads and writes through one of these instead:

* :class:`_AsyncioStream`: plain TCP under asyncio. It takes over the
  asyncio transport that anyio connected and is driven by its callbacks.
* :class:`_FastStream`: everything else (trio, TLS). httpcore's stream,
  minus the cancel scope when no timeout is set.

Both raise httpcore's exceptions, which the transport translates.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from collections import deque
from typing import Any

import anyio
import anyio.abc
import httpcore

from objectstore_core._download import PIECE_SIZE

# Errors of the network layer (httpcore wraps most of anyio's, trio's and the OS's).
_RAW_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)


class _FastStream(httpcore.AsyncNetworkStream):
    """httpcore's stream, minus its per-call cancel scope when there is no timeout.

    httpcore wraps every read and write in ``fail_after(timeout)``, even for
    no timeout; on small requests those scopes are a large share of the CPU.
    Without a timeout this calls the underlying anyio or trio stream directly
    and maps its errors the way httpcore does. With a timeout, or for a
    stream of unknown type, it defers to httpcore.
    """

    __slots__ = ("_errors", "_receive", "_send", "_stream")

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        raw = getattr(stream, "_stream", None)
        self._receive: Any = None
        self._send: Any = None
        self._errors = _RAW_ERRORS
        if isinstance(raw, anyio.abc.ByteStream):
            self._receive, self._send = raw.receive, raw.send
        else:
            trio = sys.modules.get("trio")  # imported already when trio runs the loop
            if trio is not None and isinstance(raw, trio.abc.Stream):
                self._receive, self._send = raw.receive_some, raw.send_all
                self._errors = (*_RAW_ERRORS, trio.BrokenResourceError, trio.ClosedResourceError)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if timeout is not None or self._receive is None:
            return await self._stream.read(max_bytes, timeout)
        try:
            data: bytes = await self._receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        except self._errors as exc:
            raise httpcore.ReadError(_describe(exc)) from exc
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if timeout is not None or self._send is None:
            await self._stream.write(buffer, timeout)
            return
        if not buffer:
            return
        try:
            await self._send(buffer)
        except self._errors as exc:
            raise httpcore.WriteError(_describe(exc)) from exc

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _FastStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


_READ_HIGH = 1024 * 1024  # unread bytes at which an _AsyncioStream stops reading the socket
# How long after a trip through the event loop reads may still receive from the
# socket directly. Other tasks still get a turn at least every 5 ms while a body
# is read (the payload's own turns, see _response._TURN_SECONDS): each trip costs
# an event-loop iteration, which a download of 64 MiB at 4 GB/s would otherwise
# make every 2 ms, eight times.
_EAGER_SECONDS = 0.005
# A read at least this large means a body is streaming in: more is likely waiting.
_STREAMING_READ = 64 * 1024


class _AsyncioStream(asyncio.Protocol, httpcore.AsyncNetworkStream):
    """A plain TCP connection under asyncio, driven by the transport's callbacks directly.

    httpcore and anyio make the connection. Then this protocol takes over
    their asyncio transport, because anyio's socket stream costs more CPU
    per small request than the request itself: it pauses and resumes
    reading around every receive (two ``epoll_ctl`` system calls) and yields
    to the event loop after every send. Here the transport keeps reading
    (up to :data:`_READ_HIGH` unread bytes), a read that finds bytes returns
    them without a trip through the event loop, and a read that finds none
    waits on one future. Writes wait only when the kernel accepts no more
    bytes (the write buffer limit stays at 0, as anyio sets it), so the
    write timeout bounds each wait for progress.

    The transport receives at most what the last read asked for per system
    call (its ``max_size``, 256 KiB by default, follows the reads: the core
    asks for 128 KiB or 1 MiB, see ``Download.piece``): each read is then an
    allocation the kernel fills directly, with no copy after it. The transport primes the
    heap first (see ``prime_heap``): otherwise glibc serves every such read
    with mmap, mremap and munmap, three system calls and page faults per
    response.

    A large body arrives faster than one transport read per event-loop
    iteration: after a read of 64 KiB or more, the next read that finds
    nothing buffered first receives from the socket directly (one
    non-blocking ``recv``), and waits for the event loop only if the socket
    has nothing either, or when 5 ms passed since its last wait. Data stays
    in order: the transport reads only from the loop's own callbacks, and
    all of this runs on the loop's thread.

    Errors and timeouts are raised as httpcore's, like any network stream
    the transport reads. The callbacks also tell the pool whether an idle
    connection went stale (closed by the server, or unexpected bytes),
    without a system call.
    """

    def __init__(self, origin: httpcore.AsyncNetworkStream, transport: asyncio.Transport) -> None:
        self._origin = origin  # httpcore's stream: extra info (socket, addresses)
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._read_paused = False
        self._eof = False
        self._lost = False
        self._closed = False
        self._error: BaseException | None = None
        self._reader: asyncio.Future[None] | None = None
        self._write_paused = False
        self._writer: asyncio.Future[None] | None = None
        # The transport's socket, received from directly while a body streams in.
        # Only under a selector loop, whose transports read only when the socket
        # is ready (a proactor keeps a receive pending, which a direct one would
        # overtake); asyncio's selector transports keep the socket as ``_sock``.
        sock = getattr(transport, "_sock", None)
        self._sock: socket.socket | None = (
            sock
            if isinstance(sock, socket.socket) and isinstance(self._loop, asyncio.SelectorEventLoop)
            else None
        )
        self._max_size = 0  # the transport's max_size, when it has one (set by take_over)
        self._streaming = False  # the last read was large: more is likely waiting
        self._eager_until = 0.0  # loop time until which reads may receive directly

    @classmethod
    def take_over(cls, stream: httpcore.AsyncNetworkStream) -> httpcore.AsyncNetworkStream:
        """This protocol on ``stream``'s asyncio transport, or a :class:`_FastStream`.

        Only an anyio socket stream that is open and has nothing unread is
        taken over; anything else (trio, other backends) keeps httpcore's.
        """
        raw = getattr(stream, "_stream", None)
        transport = getattr(raw, "_transport", None)
        protocol = getattr(raw, "_protocol", None)
        if (
            not isinstance(transport, asyncio.Transport)
            or transport.is_closing()
            or transport.get_protocol() is not protocol
            or getattr(protocol, "read_queue", True)  # bytes already received, or unknown
            or getattr(protocol, "exception", True) is not None
            or getattr(protocol, "is_at_eof", True)
        ):
            return _FastStream(stream)
        ours = cls(stream, transport)
        if isinstance(getattr(transport, "max_size", None), int):  # asyncio's selector transports
            transport.max_size = ours._max_size = PIECE_SIZE  # type: ignore[attr-defined]
        transport.set_protocol(ours)
        transport.resume_reading()  # anyio reads only while receiving
        return ours

    # -- asyncio.Protocol ----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= _READ_HIGH and not self._read_paused:
            self._read_paused = True
            self._transport.pause_reading()
        self._wake(self._reader)

    def eof_received(self) -> bool:
        self._eof = True
        self._wake(self._reader)
        return True  # as anyio: the transport is closed by aclose, not by the peer's EOF

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if exc is not None and self._error is None:
            self._error = exc
        self._wake(self._reader)
        self._wake(self._writer)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake(self._writer)

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the network stream ---------------------------------------------------------

    @property
    def stale(self) -> bool:
        """True when an idle connection must not carry another request."""
        return bool(self._chunks) or self._eof or self._lost or self._closed

    def read_now(self, max_bytes: int) -> bytes | None:
        """What :meth:`read` would return, if that needs no wait; else None.

        A body streaming in is read through this without a coroutine per
        piece: buffered bytes, or one direct receive within the eager window.
        The end of the stream, errors and waits are left to :meth:`read`.
        """
        if max_bytes != self._max_size and self._max_size:
            # Later receives (the transport's and direct ones) come in pieces this size.
            self._max_size = max_bytes
            self._transport.max_size = max_bytes  # type: ignore[attr-defined]
        if self._chunks:
            return self._take(max_bytes)
        if (
            self._sock is None
            or not self._streaming  # a head: no call
            or self._closed
            or self._eof
            or self._lost
            or self._loop.time() >= self._eager_until
        ):
            return None
        return self._recv_now(self._sock, max_bytes)

    def _recv_now(self, sock: socket.socket, max_bytes: int) -> bytes | None:
        """One non-blocking receive, straight to the caller (not buffered); None if none.

        An error ends the stream here, as the transport's callbacks would; the
        end of the stream is left to the transport, which finds it too.
        """
        try:
            data = sock.recv(max_bytes)
        except (BlockingIOError, InterruptedError):
            return None  # nothing there yet: wait for the event loop
        except OSError as exc:
            self._lost = True
            if self._error is None:
                self._error = exc
            return None
        if not data:
            return None
        self._streaming = len(data) >= _STREAMING_READ
        return data

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        chunk = self.read_now(max_bytes)
        if chunk is not None:
            return chunk
        chunks = self._chunks
        if not chunks:
            if self._closed:
                raise httpcore.ReadError("the connection is closed")
            if not (self._eof or self._lost):
                self._reader = waiter = self._loop.create_future()
                try:
                    await _wait(waiter, timeout, httpcore.ReadTimeout)
                finally:
                    self._reader = None
                self._eager_until = self._loop.time() + _EAGER_SECONDS
            if not chunks:
                if self._error is not None:
                    raise httpcore.ReadError(_describe(self._error)) from self._error
                return b""  # the end of the stream
        return self._take(max_bytes)

    def _take(self, max_bytes: int) -> bytes:
        """The first buffered piece, at most ``max_bytes`` of it."""
        chunks = self._chunks
        chunk = chunks.popleft()
        if len(chunk) > max_bytes:
            chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self._buffered -= len(chunk)
        self._streaming = len(chunk) >= _STREAMING_READ
        if self._read_paused and self._buffered < _READ_HIGH // 2 and not self._lost:
            self._read_paused = False
            self._transport.resume_reading()
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._closed:
            raise httpcore.WriteError("the connection is closed")
        if self._error is not None:
            raise httpcore.WriteError(_describe(self._error)) from self._error
        self._transport.write(buffer)
        if self._write_paused and not self._lost:
            self._writer = waiter = self._loop.create_future()
            try:
                await _wait(waiter, timeout, httpcore.WriteTimeout)
            finally:
                self._writer = None
            if self._closed:
                raise httpcore.WriteError("the connection is closed")
            if self._error is not None:
                raise httpcore.WriteError(_describe(self._error)) from self._error

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport.abort()
            self._wake(self._reader)
            self._wake(self._writer)
        await asyncio.sleep(0)  # let connection_lost run and close the socket, as anyio does

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self.stale
        return self._origin.get_extra_info(info)


async def _wait(
    waiter: asyncio.Future[None], timeout: float | None, error: type[httpcore.TimeoutException]
) -> None:
    """Wait for a callback to set ``waiter``; ``error`` after ``timeout`` seconds (if any)."""
    if timeout is None:
        await waiter
        return
    expiry = asyncio.get_running_loop().call_later(timeout, _expire, waiter, error)
    try:
        await waiter
    finally:
        expiry.cancel()


def _expire(waiter: asyncio.Future[None], error: type[httpcore.TimeoutException]) -> None:
    if not waiter.done():
        waiter.set_exception(error("timed out"))


def _describe(exc: BaseException) -> str:
    """The most telling text of a network error: httpcore's wrappers are often empty."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain is short; never loop on a cycle
        if seen is None:
            break
        if text := str(seen):
            return text
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__
