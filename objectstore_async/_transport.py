"""The network transport of the async twin: httpcore's sockets, the core's HTTP/1.1 codec.

httpcore's network backend (the layer beneath httpx) establishes the
connections: TCP through anyio under asyncio or natively under trio, then
TLS. HTTP/1.1 framing on them is done with the core's sans-IO codec
(:mod:`objectstore_core._h1`), as in the sync twin: httpx's client machinery
and h11 cost about three times more CPU per small request than all the rest
of the client together.

It owns a small connection pool for one event loop, mirroring the sync
twin's (``objectstore_sync._transport``):

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
import os
import select
import socket
import ssl
import sys
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol, cast

import anyio
import anyio.abc
import anyio.lowlevel
import httpcore

from objectstore_async._sources import aiter_upload
from objectstore_core import (
    ClientConfig,
    ConnectError,
    ConnectTimeout,
    ObjectstoreError,
    PoolTimeout,
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
# Body reads ask for at most this much. asyncio never returns more than 256 KiB
# per read, trio returns what is asked: a bigger read would let one compressed
# read decode into many MiB between two awaits, stalling the event loop.
_READ_CHUNK = 256 * 1024
_HEAD_CHUNK = 64 * 1024
_SMALL_BODY = 64 * 1024  # bodies up to this size go out in one write with the head
_WRITE_SLICE = 1024 * 1024  # larger bytes bodies are written in slices of this size
_CLOSE_GRACE = 1.0  # seconds a (TLS) close may take before the socket is dropped
_SOCKET_OPTIONS = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)

# Errors of the network layer (httpcore wraps most of anyio's, trio's and the OS's).
_RAW_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)
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

    async def read(self) -> bytes: ...

    async def aclose(self) -> None: ...


class AsyncTransport(Protocol):
    """What the async driver needs: send a request, close. (In-process and network.)"""

    async def send(self, request: Request) -> tuple[Response, AsyncRawBody | None]: ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------------- the pool


class _Slots:
    """A counting semaphore that works under asyncio and trio (anyio events).

    Taking a free slot does not yield to the event loop: the request's first
    socket operation does. A released slot is handed straight to the oldest
    waiter, so waiting requests are served in order.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiters: deque[anyio.Event] = deque()

    async def acquire(self, wait: float | None) -> bool:
        """Take a slot; False when none came free within ``wait`` seconds (None: no limit)."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        event = anyio.Event()
        self._waiters.append(event)
        try:
            with anyio.move_on_after(wait):
                await event.wait()
        except BaseException:
            self._abandon(event)
            raise
        if event.is_set():
            return True
        self._abandon(event)
        return False

    def _abandon(self, event: anyio.Event) -> None:
        if event.is_set():
            self.release()  # handed a slot while giving up: pass it on
        else:
            self._waiters.remove(event)

    def release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._free += 1


# An idle connection: the stream, and its socket (for the liveness check).
_Idle = tuple[httpcore.AsyncNetworkStream, Any]


class _Lease:
    """One slot of the pool and the connection on it (None until connected)."""

    __slots__ = ("broken", "generation", "reused", "sock", "stream")

    def __init__(self, idle: _Idle | None, generation: object) -> None:
        self.stream: httpcore.AsyncNetworkStream | None = None
        self.sock: Any = None
        if idle is not None:
            self.stream, self.sock = idle
        self.reused = idle is not None
        self.generation = generation
        self.broken = False  # the request was not fully sent: never reuse the connection


# Sockets inherited over fork() that were detached from this process (see _forget).
_forgotten: list[httpcore.AsyncNetworkStream] = []


class _Pool:
    """A bounded set of keep-alive connections to one origin, for one event loop.

    Fork safety (API §6): the pool remembers the process that filled it. The
    first use in a forked child rebuilds it (new slots, no idle connections)
    so the child never shares a socket with its parent; the inherited sockets
    are detached without a word to the peer. Every lease carries the pool
    generation it came from; a connection released to a newer generation
    (leased before the fork) is detached too, and frees no slot it did not take.
    """

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._idle: list[_Idle] = []
        self._reset()

    def _reset(self) -> None:
        inherited, self._idle = self._idle, []
        self._pid = os.getpid()
        self._generation = object()
        self._slots = _Slots(self._config.max_connections)
        self._in_use = 0
        self._closed = False
        self._backend: httpcore.AsyncNetworkBackend | None = None
        for stream, _ in inherited:
            _forget(stream)

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            self._reset()

    @property
    def backend(self) -> httpcore.AsyncNetworkBackend:
        """httpcore's network backend for the running event loop (chosen on first connect)."""
        if self._backend is None:
            self._backend = _network_backend()
        return self._backend

    async def acquire(self, wait: float | None, *, fresh: bool = False) -> _Lease:
        """A slot with an idle connection on it, or with none to be connected.

        ``wait`` is Timeout.pool: None waits until a slot is free;
        PoolTimeout when none frees up in time (nothing was sent). ``fresh``:
        never an idle connection (one is closed instead, so that at most
        ``max_connections`` stay open).
        """
        self._check_fork()
        if self._closed:
            raise ConnectError("the client is closed")
        generation = self._generation
        if not await self._slots.acquire(wait):
            raise PoolTimeout(
                f"no connection became free within {wait} s "
                f"(max_connections={self._config.max_connections})"
            )
        self._in_use += 1
        if fresh and self._idle:
            await _close(self._idle.pop(0)[0])
            return _Lease(None, generation)
        while self._idle:
            idle = self._idle.pop()
            # Readable while idle: the server closed it (EOF) or sent garbage.
            if not _readable(idle[1]):
                return _Lease(idle, generation)
            await _close(idle[0])
        return _Lease(None, generation)

    async def release(self, lease: _Lease, reusable: bool) -> None:
        """Give a lease back: its connection kept only if reusable, its slot freed."""
        self._check_fork()
        stream, lease.stream = lease.stream, None
        if lease.generation is not self._generation:
            if stream is not None:
                _forget(stream)  # leased before a fork: never pooled here, no slot to free
            return
        self._in_use -= 1
        if reusable and stream is not None and not self._closed and not lease.broken:
            self._idle.append((stream, lease.sock))
            self._slots.release()
            return
        try:
            if stream is not None:
                await _close(stream)
        finally:
            self._slots.release()

    def stats(self) -> dict[str, int]:
        """``{"idle": n, "in_use": m}`` for this process (leak checks, load tests)."""
        self._check_fork()
        return {"idle": len(self._idle), "in_use": self._in_use}

    async def aclose(self) -> None:
        self._check_fork()
        self._closed = True
        idle, self._idle = self._idle, []
        for stream, _ in idle:
            await _close(stream)


def _readable(sock: Any) -> bool:
    """True when a socket has bytes or EOF to read now (or is closed): an idle one is dead."""
    fd = sock.fileno() if sock is not None else -1
    if fd < 0:
        return True
    if _poll is None:  # pragma: no cover - Windows
        return bool(select.select([fd], [], [], 0)[0])
    poller = _poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


_poll = getattr(select, "poll", None)


def _network_backend() -> httpcore.AsyncNetworkBackend:
    """httpcore's trio backend under trio, its anyio backend under asyncio."""
    trio: Any = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:
            return httpcore.TrioBackend()
    return httpcore.AnyIOBackend()


async def _close(stream: httpcore.AsyncNetworkStream) -> None:
    """Close a connection; shielded from cancellation, bounded, never raising an I/O error."""
    # Errors are suppressed: the connection is being discarded anyway.
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(_CLOSE_GRACE),
        contextlib.suppress(Exception),
    ):
        await stream.aclose()


def _forget(stream: httpcore.AsyncNetworkStream) -> None:
    """Detach this process from a socket inherited over fork(), without I/O.

    The descriptor is pointed at /dev/null: the child's reference to the
    connection is gone (no shutdown, no TLS close_notify, so the parent's
    connection is unaffected), and the stream objects, which belong to the
    parent's event loop, are kept out of the garbage collector's way.
    """
    try:
        sock = stream.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
    except Exception:
        return
    if fd >= 0:
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    _forgotten.append(stream)


# ---------------------------------------------------------------------- bodies


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

    async def read(self) -> bytes:
        """The next raw body bytes; ``b""`` at the end (the connection is then released)."""
        if self._done:
            return b""
        parser = self._parser
        try:
            while True:
                event = parser.next_event()
                if isinstance(event, bytes):
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

    async def aclose(self) -> None:
        """Release the connection (closed if the body is unfinished); safe when cancelled."""
        if not self._done:
            with anyio.CancelScope(shield=True):
                await self._finish(reusable=False)

    async def _finish(self, reusable: bool) -> None:
        if not self._done:
            self._done = True
            self._stream = None
            await self._pool.release(self._lease, reusable)


async def _read_limited(stream: AsyncRawStream) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while data := await stream.read():
        size += len(data)
        if size > _ERROR_BODY_LIMIT:
            raise ProtocolError(
                f"response body exceeds {_ERROR_BODY_LIMIT} bytes where a small one was expected"
            )
        chunks.append(data)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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


def _ssl_context(config: ClientConfig, options: Mapping[str, Any]) -> ssl.SSLContext | None:
    """The TLS context for an https base URL, from ``connection_kwargs`` (see the class)."""
    context = options.get("ssl_context")
    verify = options.get("verify", True)
    cert = options.get("cert")
    if config.scheme != "https":
        return None
    if isinstance(context, ssl.SSLContext):
        return context
    if context is not None:
        raise TypeError("connection_kwargs['ssl_context'] must be an ssl.SSLContext")
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str | os.PathLike):
        path = os.fspath(verify)
        if os.path.isdir(path):
            context = ssl.create_default_context(capath=path)
        else:
            context = ssl.create_default_context(cafile=path)
    else:
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        if isinstance(cert, str | os.PathLike):
            context.load_cert_chain(cert)
        else:
            context.load_cert_chain(*cert)
    return context


_CONNECTION_KWARGS = frozenset({"ssl_context", "verify", "cert", "socket_options", "local_address"})


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
            stream = _FastStream(
                await self._pool.backend.connect_tcp(
                    config.host,
                    config.port,
                    timeout=limits.connect,
                    local_address=self._local_address,
                    socket_options=self._socket_options,
                )
            )
            if self._ssl_context is not None:
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
            while True:
                event = parser.next_event()
                if isinstance(event, ResponseHead):
                    return parser, event
                data = await stream.read(_HEAD_CHUNK, limits.read)
                if not data and not received:
                    if may_retry:
                        raise _Retry
                    if write_failure is not None:
                        raise _write_error(write_failure) from write_failure
                    raise ReadError("the server closed the connection without a response")
                received = True
                parser.feed(data)
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


def _write_error(exc: BaseException) -> WriteError:
    return WriteError(f"sending the request failed: {_describe(exc)}")


def _read_error(exc: BaseException, where: str) -> ReadError:
    return ReadError(f"the connection failed {where}: {_describe(exc)}")
