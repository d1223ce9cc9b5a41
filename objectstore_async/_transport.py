"""The network transport of the async twin: httpcore's sockets, the core's HTTP/1.1 codec.

httpcore's network backend (the layer beneath httpx) establishes the
connections: TCP through anyio under asyncio or natively under trio, then
TLS. HTTP/1.1 framing on them is done with the core's sans-IO codec
(:mod:`objectstore_core._h1`), as in the sync twin: httpx's client machinery
and h11 cost about three times more CPU per small request than all the rest
of the client together.

Connections come from a small pool for one event loop
(:mod:`objectstore_async._connections`), mirroring the sync twin's
(``objectstore_sync._transport``):

* at most ``max_connections`` connections; idle keep-alive connections are
  reused last-in first-out; ``Timeout.pool`` bounds the wait for a free one;
* the connect timeout bounds only the connect (and TLS handshake), the write
  timeout each write, the read timeout each read;
* a connection goes back to the pool only when its response was read to the
  end and may carry another; everything else is closed, shielded from
  cancellation, so a cancelled task never leaks its slot or its socket;
* fork safety: a pool used in a forked child starts empty and never touches
  a socket it shares with its parent.

Every httpcore, anyio, ssl and socket exception is translated here into the
project's error tree, keeping the original as ``__cause__``; malformed and
truncated responses are detected by the codec, which raises ProtocolError
and IntegrityError itself. No message ever includes a header value.
"""

from __future__ import annotations

import contextlib
from typing import Protocol, cast

import anyio
import anyio.abc
import anyio.lowlevel
import httpcore

from objectstore_async._connections import (
    _CONNECTION_KWARGS,
    _SOCKET_OPTIONS,
    _close,
    _Lease,
    _Pool,
    _ssl_context,
)
from objectstore_async._sources import aiter_upload
from objectstore_async._streams import _AsyncioStream, _describe, _FastStream
from objectstore_core import (
    ClientConfig,
    ConnectError,
    ConnectTimeout,
    ObjectstoreError,
    ProtocolError,
    ReadError,
    ReadTimeout,
    Request,
    Response,
    Timeout,
    Upload,
    WriteError,
    WriteTimeout,
)
from objectstore_core._download import PIECE_SIZE, prime_heap
from objectstore_core._h1 import (
    END,
    LAST_CHUNK,
    ResponseHead,
    ResponseParser,
    chunk_header,
    encode_request_head,
    host_header,
)
from objectstore_core._retry import IDEMPOTENT_METHODS

__all__ = ["AsyncH1Transport", "AsyncRawBody", "AsyncRawStream", "AsyncTransport"]

_ERROR_BODY_LIMIT = 1024 * 1024
# Body reads ask for at most this much (the transport primes the heap: see
# PIECE_SIZE). One read of compressed data can decode into many MiB; the
# payload gives other tasks a turn meanwhile (see _response._TURN_SECONDS).
_READ_CHUNK = PIECE_SIZE
_HEAD_CHUNK = 64 * 1024
_SMALL_BODY = 64 * 1024  # bodies up to this size go out in one write with the head
_WRITE_SLICE = 1024 * 1024  # larger bytes bodies are written in slices of this size

_NETWORK_ERRORS = (
    httpcore.NetworkError,
    httpcore.TimeoutException,
    OSError,  # includes ssl.SSLError and TimeoutError
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


class AsyncRawBody(Protocol):
    """A response body left open for the caller: raw bytes, then ``b""`` at the end."""

    async def read(self) -> bytes | memoryview: ...

    @property
    def done(self) -> bool: ...

    async def aclose(self) -> None: ...


class AsyncTransport(Protocol):
    """What the async driver needs: send a request, close. (In-process and network.)"""

    async def send(self, request: Request) -> tuple[Response, AsyncRawBody | None]: ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------------- the pool


class AsyncRawStream:
    """An open response body: raw bytes out, connection released at the end or on close."""

    __slots__ = ("_done", "_lease", "_parser", "_pool", "_stream", "_timeout")

    def __init__(
        self, pool: _Pool, lease: _Lease, parser: ResponseParser, timeout: float | None
    ) -> None:
        self._pool = pool
        self._lease = lease
        self._stream = lease.stream
        self._parser = parser
        self._timeout = timeout
        self._done = False

    async def read(self) -> bytes | memoryview:
        """The next raw body bytes; ``b""`` at the end (the connection is then released)."""
        if self._done:
            return b""
        parser = self._parser
        try:
            while True:
                event = parser.next_event()
                if isinstance(event, bytes | memoryview):
                    if parser.at_end():  # the last bytes: release the connection now
                        parser.next_event()
                        await self._finish(reusable=parser.reusable)
                    return event
                if event is END:
                    await self._finish(reusable=parser.reusable)
                    return b""
                if self._stream is None:
                    raise ReadError("the connection is closed")
                parser.feed(await self._stream.read(_READ_CHUNK, self._timeout))
        except BaseException as exc:
            await self._finish(reusable=False)
            if isinstance(exc, ObjectstoreError) or not isinstance(exc, _NETWORK_ERRORS):
                raise  # the codec's ProtocolError/IntegrityError, or a cancellation
            if isinstance(exc, httpcore.ReadTimeout | TimeoutError):
                raise ReadTimeout(
                    f"the server sent no body bytes within the read timeout ({self._timeout} s)"
                ) from exc
            raise _read_error(exc, "while reading the response body") from exc

    @property
    def done(self) -> bool:
        """True once the body is complete and the connection released: reads give ``b""``."""
        return self._done

    async def aclose(self) -> None:
        """Release the connection (closed if the body is unfinished); safe when cancelled."""
        if not self._done:
            with anyio.CancelScope(shield=True):
                await self._finish(reusable=False)

    async def _finish(self, reusable: bool) -> None:
        if not self._done:
            self._done = True
            self._stream = None
            if not self._pool.release_nowait(self._lease, reusable):
                await self._pool.release(self._lease, reusable)


async def _read_limited(stream: AsyncRawStream) -> bytes:
    chunks: list[bytes | memoryview] = []
    size = 0
    while data := await stream.read():
        size += len(data)
        if size > _ERROR_BODY_LIMIT:
            raise ProtocolError(
                f"response body exceeds {_ERROR_BODY_LIMIT} bytes where a small one was expected"
            )
        chunks.append(data)
    return b"".join(chunks)


# ---------------------------------------------------------------------- uploads


class _SourceFailure(Exception):
    """Carries an exception raised by the caller's own payload past the socket handling."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


async def _send_upload(
    stream: httpcore.AsyncNetworkStream, upload: Upload, timeout: float | None
) -> None:
    """Stream an upload with chunked framing, reading the caller's payload lazily.

    Each chunk's CRLF travels with the next chunk's size line, so a chunk
    costs two writes (one for a small chunk).
    """
    chunks = aiter_upload(upload)
    pending = b""  # the CRLF that ends the previous chunk
    try:
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except Exception as exc:
                # The caller's own file or generator failed: they get their exception.
                raise _SourceFailure(exc) from exc
            if not chunk:
                continue
            if len(chunk) <= _SMALL_BODY:
                await stream.write(b"".join((pending, chunk_header(len(chunk)), chunk)), timeout)
            else:
                await stream.write(pending + chunk_header(len(chunk)), timeout)
                await stream.write(chunk, timeout)
            pending = b"\r\n"
        await stream.write(pending + LAST_CHUNK, timeout)
    finally:
        # Finish the payload's generators now (they may hold an open file),
        # even when cancelled: trio reports async generators left to the GC.
        close = getattr(chunks, "aclose", None)
        if close is not None:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await close()


# ---------------------------------------------------------------------- the transport


class AsyncH1Transport:
    """Sends :class:`Request` descriptions over pooled HTTP/1.1 connections.

    httpcore's network backend (anyio under asyncio, trio under trio) establishes the
    connections; requests and responses are framed by the core's HTTP/1.1
    codec (:mod:`objectstore_core._h1`), at a fraction of httpx's CPU per
    request. One transport per event loop (API §6). After ``fork()`` the
    child starts with an empty pool and never uses an inherited socket.

    ``connection_kwargs`` may hold ``ssl_context`` (an :class:`ssl.SSLContext`
    for https), ``verify`` (False, a CA bundle path, or an SSLContext, as in
    httpx), ``cert`` (a client certificate file, or a ``(certfile, keyfile[,
    password])`` tuple), ``socket_options`` (``setsockopt`` triples, added
    to TCP_NODELAY) and ``local_address`` (the address to connect from).
    Without them an https connection uses ``ssl.create_default_context()``.
    """

    def __init__(self, config: ClientConfig) -> None:
        prime_heap()  # socket reads of up to PIECE_SIZE come from the heap
        options = dict(config.connection_kwargs)
        unknown = set(options) - _CONNECTION_KWARGS
        if unknown:
            raise TypeError(
                f"unsupported connection_kwargs {sorted(unknown)} for the async client: "
                f"use {sorted(_CONNECTION_KWARGS)}"
            )
        self._config = config
        self._pool = _Pool(config)
        self._ssl_context = _ssl_context(config, options)
        self._socket_options: list[tuple[int, int, int]] = [
            *_SOCKET_OPTIONS,
            *options.get("socket_options", ()),
        ]
        self._local_address: str | None = options.get("local_address")
        self._host_header = host_header(config.scheme, config.host, config.port)

    async def aclose(self) -> None:
        """Close idle connections; connections still streaming close when released."""
        await self._pool.aclose()

    def pool_stats(self) -> dict[str, int]:
        """Connections of this process: ``{"idle": n, "in_use": m}`` (for leak checks)."""
        return self._pool.stats()

    async def send(self, request: Request) -> tuple[Response, AsyncRawBody | None]:
        """Perform one request; see :class:`objectstore_core.Request` for the streaming rule."""
        limits = request.timeout or self._config.timeout
        head = self._head(request)
        pool = self._pool
        # A request that died on a reused keep-alive connection is sent once more
        # on a fresh one: the server had most likely closed it while idle. Only
        # for idempotent methods with bytes bodies: a keyless POST may have been
        # stored before the connection broke, and must not be repeated (API §6).
        replayable = not isinstance(request.body, Upload) and request.method in IDEMPOTENT_METHODS
        retried = False
        while True:
            lease = await pool.acquire(limits.pool, fresh=retried)
            try:
                parser, response = await self._exchange(
                    lease, request, head, limits, may_retry=lease.reused and replayable
                )
            except _Retry:
                await pool.release(lease, False)
                retried = True  # once, on a fresh connection
                replayable = False
                continue
            except BaseException:
                await pool.release(lease, False)
                raise
            break
        stream = AsyncRawStream(pool, lease, parser, limits.read)
        if request.stream and 200 <= response.status < 300:
            return Response(response.status, response.headers), stream
        try:
            body = await _read_limited(stream)
        finally:
            await stream.aclose()
        return Response(response.status, response.headers, body), None

    def _head(self, request: Request) -> bytes:
        return encode_request_head(request, self._host_header)

    async def _connect(self, limits: Timeout) -> httpcore.AsyncNetworkStream:
        config = self._config
        where = f"{config.host}:{config.port}"
        stream: httpcore.AsyncNetworkStream | None = None
        # Let the tasks already scheduled run first: the connect timeout then
        # measures the connect, not a burst of other tasks starting up (1000
        # requests started at once would otherwise eat the default 0.1 s).
        await anyio.lowlevel.checkpoint()
        try:
            # The TCP connect and the TLS handshake share the connect timeout.
            deadline = None if limits.connect is None else anyio.current_time() + limits.connect
            stream = await self._pool.backend.connect_tcp(
                config.host,
                config.port,
                timeout=limits.connect,
                local_address=self._local_address,
                socket_options=self._socket_options,
            )
            if self._ssl_context is None:
                stream = _AsyncioStream.take_over(stream)
            else:
                stream = _FastStream(stream)
                left = None if deadline is None else max(0.0, deadline - anyio.current_time())
                stream = await stream.start_tls(
                    self._ssl_context, server_hostname=config.host, timeout=left
                )
            return stream
        except BaseException as exc:
            if stream is not None:
                await _close(stream)
            if not isinstance(exc, Exception) or isinstance(exc, ObjectstoreError):
                raise
            if isinstance(exc, httpcore.ConnectTimeout | TimeoutError):
                raise ConnectTimeout(
                    f"connecting to {where} took longer than {limits.connect} s"
                ) from exc
            if isinstance(exc, _NETWORK_ERRORS):
                raise ConnectError(f"cannot connect to {where}: {_describe(exc)}") from exc
            raise

    async def _exchange(
        self,
        lease: _Lease,
        request: Request,
        head: bytes,
        limits: Timeout,
        *,
        may_retry: bool,
    ) -> tuple[ResponseParser, ResponseHead]:
        stream = lease.stream
        if stream is None:
            stream = lease.stream = await self._connect(limits)
            lease.sock = stream.get_extra_info("socket")
        body = request.body
        write_failure: Exception | None = None
        source_failure: BaseException | None = None
        try:
            if isinstance(body, Upload):
                await stream.write(head, limits.write)
                await _send_upload(stream, body, limits.write)
            elif body and len(body) > _SMALL_BODY:
                await stream.write(head, limits.write)
                # In slices: the write timeout bounds each wait for progress,
                # not the transfer of a large body as a whole.
                view = memoryview(body)
                for start in range(0, len(view), _WRITE_SLICE):
                    piece = view[start : start + _WRITE_SLICE]
                    await stream.write(cast(bytes, piece), limits.write)
            else:
                await stream.write(head + body if body else head, limits.write)
        except _SourceFailure as failure:
            source_failure = failure.error
        except (httpcore.WriteTimeout, TimeoutError) as exc:
            raise WriteTimeout(
                f"the server accepted no request bytes within the write timeout ({limits.write} s)"
            ) from exc
        except _NETWORK_ERRORS as exc:
            if may_retry:
                raise _Retry from exc
            # The server may have answered early (e.g. an auth error) and
            # closed: read that answer below before calling it a failure.
            write_failure = exc
            lease.broken = True
        if source_failure is not None:
            # Raised outside the handler, so it reaches the caller unchanged
            # (no context or cause added).
            raise source_failure
        parser = ResponseParser(request.method)
        received = False
        try:
            while True:  # a fresh parser needs bytes first: read, then ask for the head
                data = await stream.read(_HEAD_CHUNK, limits.read)
                if not data and not received:
                    if may_retry:
                        raise _Retry
                    if write_failure is not None:
                        raise _write_error(write_failure) from write_failure
                    raise ReadError("the server closed the connection without a response")
                received = True
                parser.feed(data)
                event = parser.next_event()
                if isinstance(event, ResponseHead):
                    return parser, event
        except (_Retry, ObjectstoreError):
            raise
        except (httpcore.ReadTimeout, TimeoutError) as exc:
            if write_failure is not None:
                raise _write_error(write_failure) from write_failure
            raise ReadTimeout(f"no response within the read timeout ({limits.read} s)") from exc
        except _NETWORK_ERRORS as exc:
            if may_retry and not received:
                raise _Retry from exc
            if write_failure is not None and not received:
                raise _write_error(write_failure) from write_failure
            raise _read_error(exc, "while waiting for the response") from exc


class _Retry(Exception):
    """A reused connection turned out dead before the server saw the request."""


def _write_error(exc: BaseException) -> WriteError:
    return WriteError(f"sending the request failed: {_describe(exc)}")


def _read_error(exc: BaseException, where: str) -> ReadError:
    return ReadError(f"the connection failed {where}: {_describe(exc)}")
