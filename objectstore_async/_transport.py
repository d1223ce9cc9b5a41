"""The network transport of the async twin: httpcore's sockets for the core's HTTP/1.1 exchange.

httpcore's network backend (the layer beneath httpx) establishes the
connections: TCP through anyio under asyncio or natively under trio, then
TLS. Everything about HTTP/1.1 on them (framing, early answers, the resend
verdict, reuse, timeouts' meaning, error messages) is the core's
:class:`Exchange`, and the pool's books are the core's :class:`PoolPolicy`
(:mod:`objectstore_async._connections` holds the waiting and the closing).
This module connects, writes what the exchange hands out, receives, waits,
and says which failures of httpcore, anyio, ssl and the OS were timeouts.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import httpcore

from objectstore_async import _tls
from objectstore_async._connections import Pool, _close, _Idle
from objectstore_async._sources import aiter_upload
from objectstore_async._streams import _AsyncioStream, _FastStream
from objectstore_core import ClientConfig, ObjectstoreError, Request, Response, Upload
from objectstore_core._certnames import server_hostname
from objectstore_core._connection import RESEND, Exchange, Failure, SmallBody
from objectstore_core._download import PIECE_SIZE, prime_heap
from objectstore_core._h1 import host_header
from objectstore_core._pool import Lease

__all__ = ["AsyncRawBody", "AsyncRawStream", "AsyncSocketTransport", "AsyncTransport"]

# Body reads ask for at most this much (the transport primes the heap: see
# PIECE_SIZE). One read of compressed data can decode into many MiB; the
# payload gives other tasks a turn meanwhile (see _response._TURN_SECONDS).
_READ_CHUNK = PIECE_SIZE
_HEAD_CHUNK = 64 * 1024

_NETWORK_ERRORS = (
    httpcore.NetworkError,
    httpcore.TimeoutException,
    OSError,  # includes ssl.SSLError and TimeoutError
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


def _failure(exc: BaseException) -> Failure:
    if isinstance(exc, httpcore.TimeoutException | TimeoutError):
        return Failure.TIMEOUT
    return Failure.BROKEN


class AsyncRawBody(Protocol):
    """A response body left open for the caller: raw bytes, then ``b""`` at the end."""

    async def read(self, amount: int = ...) -> bytes | memoryview: ...

    def read_now(self, amount: int) -> bytes | memoryview | None:
        """What :meth:`read` would return when that needs no wait; None: await :meth:`read`."""

    @property
    def done(self) -> bool: ...

    async def aclose(self) -> None: ...


class AsyncTransport(Protocol):
    """What the async driver needs: send a request, close. (In-process and network.)"""

    async def send(self, request: Request) -> tuple[Response, AsyncRawBody | None]: ...

    async def aclose(self) -> None: ...


class AsyncRawStream:
    """An open response body: raw bytes out, connection released at the end or on close."""

    __slots__ = ("_done", "_exchange", "_held", "_lease", "_now", "_pool", "_stream")

    def __init__(self, pool: Pool, lease: Lease[_Idle], exchange: Exchange) -> None:
        self._pool = pool
        self._lease = lease
        stream = self._stream = lease.connection[0] if lease.connection is not None else None
        # Receives that need no wait, from our asyncio protocol (httpcore's streams: none).
        self._now = stream.read_now if isinstance(stream, _AsyncioStream) else None
        self._held: bytes | memoryview | None = None  # the last bytes, found by read_now
        self._exchange = exchange
        self._done = False

    def read_now(self, amount: int) -> bytes | memoryview | None:
        """The next raw body bytes when they are at hand without waiting; else None.

        None also for the last bytes (kept for :meth:`read`, which releases the
        connection with them), for the end and for failures: ``await read()``
        then. A body streaming in is read through this with no coroutine per
        piece. A malformed body raises here as in :meth:`read`; the caller then
        closes the stream.
        """
        now = self._now
        if now is None or self._done or self._held is not None:
            return None
        exchange = self._exchange
        while (data := exchange.next_data()) is None:
            received = now(amount)
            if received is None:
                return None
            exchange.receive_data(received)
        if exchange.complete or not data:
            self._held = data
            return None
        return data

    async def read(self, amount: int = _READ_CHUNK) -> bytes | memoryview:
        """The next raw body bytes; ``b""`` at the end (the connection is then released).

        ``amount`` caps each read from the connection.
        """
        if self._done:
            return b""
        exchange = self._exchange
        if (held := self._held) is not None:
            self._held = None
            if exchange.complete:
                await self._finish(exchange.reusable)
            return held
        try:
            while (data := exchange.next_data()) is None:
                stream = self._stream
                if stream is None:
                    raise RuntimeError("AsyncRawStream has no connection")  # pragma: no cover
                try:
                    received = await stream.read(amount, exchange.read_timeout())
                except _NETWORK_ERRORS as exc:
                    exchange.receive_failed(_failure(exc), exc)  # raises while reading a body
                    raise  # pragma: no cover
                exchange.receive_data(received)
        except BaseException:
            await self.aclose()
            raise
        if exchange.complete:  # the last bytes: release the connection with them
            await self._finish(exchange.reusable)
        return data

    @property
    def done(self) -> bool:
        """True once the body is complete and the connection released: reads give ``b""``."""
        return self._done

    async def read_all(self) -> bytes:
        """The whole (small, error-sized) body, then the connection released."""
        body = SmallBody()
        try:
            while data := await self.read():
                body.add(data)
        finally:
            await self.aclose()
        return body.result()

    async def aclose(self) -> None:
        """Release the connection (closed if the body is unfinished); safe when cancelled."""
        if not self._done:
            with anyio.CancelScope(shield=True):
                await self._finish(reusable=False)

    async def _finish(self, reusable: bool) -> None:
        if not self._done:
            self._done = True
            self._stream = None
            closing = self._pool.give_back(self._lease, reusable)
            if closing is not None:
                await _close(closing)


class _SourceFailure(Exception):
    """Carries an exception raised by the caller's own payload past the socket handling."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


class AsyncSocketTransport:
    """Sends :class:`Request` descriptions over pooled HTTP/1.1 connections.

    httpcore's network backend (anyio under asyncio, trio under trio)
    establishes the connections; the core's :class:`Exchange` frames
    requests and responses on them. One transport per event loop (API §6).
    After ``fork()`` the child starts with an empty pool and never uses an
    inherited socket.

    ``connection_kwargs`` mean what they mean in the sync twin (urllib3's
    names, checked once by :class:`ConnectionOptions`): the TLS context is
    made once per client by :mod:`objectstore_async._tls`, the socket
    options and the local address go to every new connection.
    """

    def __init__(self, config: ClientConfig) -> None:
        prime_heap()  # socket reads of up to PIECE_SIZE come from the heap
        options = config.connection_options
        self._config = config
        self._options = options
        self._pool = Pool(config)
        self._ssl_context = _tls.ssl_context(options)
        self._server_hostname = server_hostname(options, config.host)
        self._socket_options: list[Any] = list(options.socket_options)
        self._local_address = options.local_address
        self._host_header = host_header(config.scheme, config.host, config.port)
        self._where = f"{config.host}:{config.port}"

    async def aclose(self) -> None:
        """Close idle connections; connections still streaming close when released."""
        await self._pool.aclose()

    def pool_stats(self) -> dict[str, int]:
        """Connections of this process: ``{"idle": n, "in_use": m}`` (for leak checks)."""
        return self._pool.stats()

    async def send(self, request: Request) -> tuple[Response, AsyncRawBody | None]:
        """Perform one request; see :class:`objectstore_core.Request` for the streaming rule."""
        limits = request.timeout or self._config.timeout
        exchange = Exchange(request, self._host_header, limits, clock=time.monotonic)
        pool = self._pool
        while True:
            lease = await pool.acquire(limits.pool, fresh=exchange.resent)
            try:
                verdict = await self._exchange(lease, exchange)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await pool.release(lease, False)
                raise
            if verdict is None:
                break
            await pool.release(lease, False)  # RESEND: on a fresh connection
        if exchange.complete:  # no body (HEAD, 204, 304, an empty one)
            await pool.release(lease, exchange.reusable)
            return exchange.response(), None
        stream = AsyncRawStream(pool, lease, exchange)
        if exchange.hand_over():
            return exchange.response(), stream
        return exchange.response(await stream.read_all()), None

    async def _connect(self, exchange: Exchange) -> httpcore.AsyncNetworkStream:
        config = self._config
        stream: httpcore.AsyncNetworkStream | None = None
        # Let the tasks already scheduled run first: the connect timeout then
        # measures the connect, not a burst of other tasks starting up (1000
        # requests started at once would otherwise eat the default 0.1 s).
        await anyio.lowlevel.checkpoint()
        try:
            # The TCP connect and the TLS handshake share the connect timeout.
            stream = await self._pool.backend.connect_tcp(
                config.host,
                config.port,
                timeout=exchange.connect_timeout(),
                local_address=self._local_address,
                socket_options=self._socket_options,
            )
            if self._ssl_context is None:
                return _AsyncioStream.take_over(stream)
            stream = _FastStream(stream)
            stream = await stream.start_tls(
                self._ssl_context,
                server_hostname=self._server_hostname,
                timeout=exchange.connect_timeout(),
            )
            # The name check urllib3 makes itself where OpenSSL does not.
            _tls.check_hostname(self._options, config.host, stream.get_extra_info("ssl_object"))
            return stream
        except BaseException as exc:
            if stream is not None:
                await _close(stream)
            if not isinstance(exc, Exception) or isinstance(exc, ObjectstoreError):
                raise
            if isinstance(exc, _NETWORK_ERRORS):
                raise exchange.connect_failed(_failure(exc), exc, self._where) from exc
            raise

    async def _exchange(self, lease: Lease[_Idle], exchange: Exchange) -> object:
        """Send the request and receive the response head on the lease's connection.

        None when the head arrived; RESEND when the request must go again on a
        fresh connection.
        """
        exchange.start(reused=lease.reused)
        if lease.connection is None:
            connected = await self._connect(exchange)
            lease.connection = (connected, connected.get_extra_info("socket"))
        stream = lease.connection[0]
        body = exchange.request.body
        source_failure: BaseException | None = None
        try:
            for data in exchange.writes():
                await stream.write(data, exchange.write_timeout())  # type: ignore[arg-type]
            if isinstance(body, Upload):
                await self._send_upload(stream, body, exchange)
            exchange.sent()
        except _SourceFailure as failure:
            source_failure = failure.error
        except _NETWORK_ERRORS as exc:
            if exchange.send_failed(_failure(exc), exc) is RESEND:
                return RESEND
        if source_failure is not None:
            # Raised outside the handler, so it reaches the caller unchanged
            # (no context or cause added).
            raise source_failure
        while True:  # nothing of an answer can be there before a receive
            try:
                data = await stream.read(_HEAD_CHUNK, exchange.read_timeout())
            except _NETWORK_ERRORS as exc:
                return exchange.receive_failed(_failure(exc), exc)
            if (head := exchange.receive_head(data)) is not None:
                return None if head is not RESEND else RESEND

    @staticmethod
    async def _send_upload(
        stream: httpcore.AsyncNetworkStream, upload: Upload, exchange: Exchange
    ) -> None:
        """Stream an upload, reading the caller's payload lazily; the exchange frames it."""
        chunks = aiter_upload(upload)
        try:
            while True:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    # The caller's own file or generator failed: they get their exception.
                    raise _SourceFailure(exc) from exc
                for data in exchange.upload_writes(chunk):
                    await stream.write(data, exchange.write_timeout())  # type: ignore[arg-type]
            for data in exchange.upload_end():
                await stream.write(data, exchange.write_timeout())  # type: ignore[arg-type]
        finally:
            # Finish the payload's generators now (they may hold an open file),
            # even when cancelled: trio reports async generators left to the GC.
            close = getattr(chunks, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await close()
