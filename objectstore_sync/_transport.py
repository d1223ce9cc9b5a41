"""The urllib3 transport: the only module of the sync twin that touches urllib3.

urllib3 makes the connections (TCP, TLS, socket options); HTTP/1.1 framing
on them is done with the core's sans-IO codec, because ``http.client``'s
request and response machinery costs more CPU per small request than all
the rest of the client together.

It owns a small connection pool over ``urllib3.connection.HTTPConnection``
rather than ``HTTPConnectionPool`` because it needs three things the pool
does not give:

* the connect timeout bounds only the connect; body writes get the write
  timeout (urllib3's pool writes the body under the connect timeout, which
  breaks large uploads to a server that pauses reading);
* fork safety: a pool used in a process other than the one that filled it
  starts afresh instead of sharing sockets with the parent;
* exact accounting: every acquired connection is returned or discarded, and
  the slot is freed, even when a caller abandons a streamed body.

Every urllib3 and socket exception is translated here into the project's
error tree, keeping the original as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from typing import Any, Protocol

import urllib3.exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection

from objectstore_core import (
    ClientConfig,
    ConnectError,
    ConnectTimeout,
    ObjectstoreError,
    PayloadKind,
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
from objectstore_sync._sources import iter_upload

__all__ = ["RawBody", "RawStream", "SyncTransport", "Urllib3Transport"]

_ERROR_BODY_LIMIT = 1024 * 1024
_READ_CHUNK = PIECE_SIZE  # largest socket read (the heap is primed: see PIECE_SIZE)
_HEAD_CHUNK = 64 * 1024
_FIRST_READ = 64 * 1024


class RawBody(Protocol):
    """A response body left open for the caller: raw bytes, then ``b""`` at the end."""

    def read(self, amount: int = ...) -> bytes | memoryview: ...

    @property
    def done(self) -> bool: ...

    def close(self) -> None: ...


class SyncTransport(Protocol):
    """What the sync driver needs: send a request, close. (In-process and urllib3.)

    ``send`` returns the response and, for a streaming request answered 2xx,
    the open body; otherwise the body is read and the connection released.
    """

    def send(self, request: Request) -> tuple[Response, RawBody | None]: ...

    def close(self) -> None: ...


# Guards the rebuild of pools after fork(). A lock another thread held at fork
# time stays locked forever in the child, so the child gets a fresh one.
_fork_lock = threading.Lock()


def _new_fork_lock() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_fork_lock)


class _Pool:
    """A bounded set of keep-alive connections to one origin.

    Fork safety (API §6): the pool remembers the process that filled it.
    The first use in a forked child rebuilds it (new lock, no idle
    connections, no slots taken), so the child never shares a socket with
    its parent nor waits on a lock or slot a parent thread held at fork
    time. Every lease carries the pool generation it came from; a connection
    returned to a newer generation (acquired before the fork, or before a
    rebuild) is closed, never pooled, and frees no slot it did not take.

    Slots are a counter under the pool's lock rather than a semaphore: a
    free slot then costs one lock round trip, and the condition variable is
    only touched when a caller has to wait for a slot.
    """

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._max = config.max_connections
        self._cls: type[HTTPConnection] = (
            HTTPSConnection if config.scheme == "https" else HTTPConnection
        )
        self._idle: list[HTTPConnection] = []
        self._reset()

    def _reset(self) -> None:
        inherited, self._idle = self._idle, []
        self._pid = os.getpid()
        self._generation = object()
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._waiting = 0
        self._in_use = 0
        self._closed = False
        for conn in inherited:
            # close() only drops this process's descriptor (no shutdown, no TLS
            # close_notify), so the parent's connection is unaffected.
            _drop(conn)

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            with _fork_lock:
                if self._pid != os.getpid():
                    self._reset()

    def acquire(self, wait: float | None) -> tuple[HTTPConnection, bool, object]:
        """A connection, whether it was reused, and its lease generation.

        ``wait`` is Timeout.pool: None blocks until a connection is free;
        PoolTimeout when none frees up in time (nothing was sent).
        """
        self._check_fork()
        if self._closed:
            raise ConnectError("the client is closed")
        generation = self._generation
        with self._lock:
            if self._in_use >= self._max and not self._wait_for_slot(wait):
                raise PoolTimeout(
                    f"no connection became free within {wait} s "
                    f"(max_connections={self._config.max_connections})"
                )
            self._in_use += 1
            while self._idle:
                conn = self._idle.pop()
                if _alive(conn):
                    return conn, True, generation
                conn.close()
        conn = self._cls(
            self._config.host,
            self._config.port,
            timeout=self._config.timeout.connect,
            **dict(self._config.connection_kwargs),
        )
        return conn, False, generation

    def _wait_for_slot(self, wait: float | None) -> bool:
        """Wait (holding the lock) until a slot is free; False after ``wait`` seconds."""
        deadline = None if wait is None else time.monotonic() + wait
        self._waiting += 1
        try:
            while self._in_use >= self._max:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._slot_freed.wait(left)
            return True
        finally:
            self._waiting -= 1

    def release(self, conn: HTTPConnection, reusable: bool, generation: object) -> None:
        """Give a connection back (kept only if reusable) and free its slot."""
        self._check_fork()
        if generation is not self._generation:
            _drop(conn)  # leased before a fork: never pooled here, no slot to free
            return
        keep = reusable and not self._closed and not conn.is_closed
        if not keep:
            conn.close()
        with self._lock:
            if keep:
                self._idle.append(conn)
            self._in_use -= 1
            if self._waiting:
                self._slot_freed.notify()

    def stats(self) -> dict[str, int]:
        """``{"idle": n, "in_use": m}`` for this process (leak checks, load tests)."""
        self._check_fork()
        with self._lock:
            return {"idle": len(self._idle), "in_use": self._in_use}

    def close(self) -> None:
        self._check_fork()
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _alive(conn: HTTPConnection) -> bool:
    """True when an idle connection still looks usable: connected, nothing to read.

    Readable while idle means the server closed it (EOF) or sent garbage.
    One poll() instead of urllib3's ``is_connected``, which costs twice as much.
    """
    sock = conn.sock
    if sock is None:
        return False
    if _poll is None:  # pragma: no cover - Windows
        return not select.select([sock], [], [], 0)[0]
    poller = _poll()
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)


_poll = getattr(select, "poll", None)


def _drop(conn: HTTPConnection) -> None:
    """Close this process's descriptor of a connection without talking to the peer."""
    sock = conn.sock
    conn.sock = None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


class RawStream:
    """An open response body: raw bytes out, connection released at the end or on close."""

    __slots__ = ("_conn", "_done", "_generation", "_parser", "_pool", "_size", "_sock")

    def __init__(
        self, pool: _Pool, conn: HTTPConnection, generation: object, parser: ResponseParser
    ) -> None:
        self._pool = pool
        self._conn = conn
        self._generation = generation
        self._parser = parser
        self._sock = conn.sock
        self._done = False
        self._size = _FIRST_READ

    def read(self, amount: int = _READ_CHUNK) -> bytes | memoryview:
        """Raw body bytes; ``b""`` at the end (the connection is then released).

        ``amount`` caps each socket read. Reads start small and double while
        they come back full: small bodies then cost no large buffers, large
        ones move in big pieces.
        """
        if self._done:
            return b""
        try:
            while True:
                event = self._parser.next_event()
                if isinstance(event, bytes | memoryview):
                    if self._parser.at_end():  # the last bytes: release the connection now
                        self._parser.next_event()
                        self._finish(reusable=self._parser.reusable)
                    return event
                if event is END:
                    self._finish(reusable=self._parser.reusable)
                    return b""
                size = min(amount, self._size)
                data = _receive(self._sock, size)
                if len(data) == size and size < _READ_CHUNK:
                    self._size = size * 2
                self._parser.feed(data)
        except BaseException as exc:
            self._finish(reusable=False)
            raise _translate_read(exc) from exc

    @property
    def done(self) -> bool:
        """True once the body is complete and the connection released: reads give ``b""``."""
        return self._done

    def close(self) -> None:
        """Release the connection; an unfinished body makes it unusable, so it is closed."""
        if not self._done:
            self._finish(reusable=False)

    def _finish(self, reusable: bool) -> None:
        self._done = True
        self._pool.release(self._conn, reusable, self._generation)


def _receive(sock: Any, amount: int) -> bytes:
    if sock is None:
        raise ReadError("the connection is closed")
    data: bytes = sock.recv(amount)
    return data


def _translate_read(exc: BaseException) -> BaseException:
    """Map an exception raised while reading a response to our tree."""
    if isinstance(exc, ObjectstoreError) or not isinstance(exc, OSError):
        return exc
    if isinstance(exc, TimeoutError):
        return ReadTimeout(f"the server sent nothing within the read timeout ({exc})")
    return ReadError(f"connection broken while reading the response: {exc}")


class _SourceFailure(Exception):
    """Carries an exception raised by the caller's own payload past the socket handling."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


def _send_upload(sock: Any, upload: Upload) -> None:
    """Stream an upload with chunked framing, reading the caller's payload lazily."""
    chunks = iter_upload(upload)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            break
        except Exception as exc:
            # The caller's own file or generator failed: they get their exception.
            raise _SourceFailure(exc) from exc
        if chunk:
            sock.sendall(chunk_header(len(chunk)))
            sock.sendall(chunk)
            sock.sendall(b"\r\n")
    sock.sendall(LAST_CHUNK)


class Urllib3Transport:
    """Sends :class:`Request` descriptions over pooled connections.

    urllib3 establishes the connections (TCP, TLS, socket options from
    ``connection_kwargs``); requests and responses are framed by the core's
    HTTP/1.1 codec (:mod:`objectstore_core._h1`) directly on the socket,
    which costs a fraction of ``http.client``'s CPU per request.
    """

    def __init__(self, config: ClientConfig) -> None:
        prime_heap()  # socket reads of up to PIECE_SIZE come from the heap
        self._config = config
        self._pool = _Pool(config)
        self._host_header = host_header(config.scheme, config.host, config.port)

    def close(self) -> None:
        """Close idle connections; connections still streaming close when released."""
        self._pool.close()

    def pool_stats(self) -> dict[str, int]:
        """Connections of this process: ``{"idle": n, "in_use": m}`` (for leak checks)."""
        return self._pool.stats()

    def send(self, request: Request) -> tuple[Response, RawStream | None]:
        """Perform one request; see :class:`objectstore_core.Request` for the streaming rule."""
        limits = request.timeout or self._config.timeout
        if isinstance(request.body, Upload) and request.body.kind is PayloadKind.ASYNC_ITERABLE:
            raise TypeError(
                "cannot upload an async iterable with the sync client: use objectstore_async, "
                "or pass bytes, a file, an iterable of bytes or a path"
            )
        head = self._head(request)
        # A request that died on a reused keep-alive connection is sent once more
        # on a fresh one: the server had most likely closed it while idle. Only
        # for idempotent methods with bytes bodies: a keyless POST may have been
        # stored before the connection broke, and must not be repeated (API §6).
        replayable = not isinstance(request.body, Upload) and request.method in IDEMPOTENT_METHODS
        attempt = 0
        while True:
            attempt += 1
            conn, reused, generation = self._pool.acquire(limits.pool)
            try:
                parser, response = self._exchange(
                    conn, request, head, limits, may_retry=reused and replayable and attempt == 1
                )
            except _Retry:
                self._pool.release(conn, False, generation)
                continue
            except BaseException:
                self._pool.release(conn, False, generation)
                raise
            break
        stream = RawStream(self._pool, conn, generation, parser)
        if request.stream and 200 <= response.status < 300:
            return Response(response.status, response.headers), stream
        try:
            body = _read_limited(stream)
        finally:
            stream.close()
        return Response(response.status, response.headers, body), None

    def _head(self, request: Request) -> bytes:
        return encode_request_head(request, self._host_header)

    def _exchange(
        self,
        conn: HTTPConnection,
        request: Request,
        head: bytes,
        limits: Timeout,
        *,
        may_retry: bool,
    ) -> tuple[ResponseParser, ResponseHead]:
        if conn.sock is None:
            conn.timeout = limits.connect
            try:
                conn.connect()
            except BaseException as exc:
                raise _translate_connect(exc, self._config, limits) from exc
        sock: Any = conn.sock
        # The connect timeout is over: body writes wait up to the write timeout.
        # (settimeout is a system call: skipped when the timeout is already set.)
        if sock.gettimeout() != limits.write:
            sock.settimeout(limits.write)
        body = request.body
        write_failure: OSError | None = None
        try:
            if isinstance(body, Upload):
                sock.sendall(head)
                _send_upload(sock, body)
            elif body and len(body) > 65536:
                sock.sendall(head)
                sock.sendall(body)
            else:
                sock.sendall(head + body if body else head)
        except _SourceFailure as failure:
            raise failure.error from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            if may_retry:
                raise _Retry from exc
            # The server may have answered early (e.g. an auth error) and
            # closed: read that answer below before calling it a failure.
            write_failure = exc
        except TimeoutError as exc:
            raise WriteTimeout(
                f"the server accepted no request bytes within the write timeout ({exc})"
            ) from exc
        except OSError as exc:
            raise WriteError(f"sending the request failed: {exc}") from exc
        if sock.gettimeout() != limits.read:
            sock.settimeout(limits.read)
        parser = ResponseParser(request.method)
        received = False
        try:
            while True:  # a fresh parser needs bytes first: read, then ask for the head
                data = sock.recv(_HEAD_CHUNK)
                if not data and not received:
                    if may_retry:
                        raise _Retry
                    if write_failure is not None:
                        raise WriteError(
                            f"connection lost while sending the request: {write_failure}"
                        ) from write_failure
                    raise ReadError("the server closed the connection without a response")
                received = True
                parser.feed(data)
                event = parser.next_event()
                if isinstance(event, ResponseHead):
                    return parser, event
        except (_Retry, ObjectstoreError):
            raise
        except TimeoutError as exc:
            raise ReadTimeout(f"no response within the read timeout ({exc})") from exc
        except OSError as exc:
            if may_retry and not received:
                raise _Retry from exc
            if write_failure is not None and not received:
                raise WriteError(
                    f"connection lost while sending the request: {write_failure}"
                ) from write_failure
            raise ReadError(f"the connection failed while waiting for the response: {exc}") from exc


class _Retry(Exception):
    """A reused connection turned out dead before the server saw the request."""


def _read_limited(stream: RawStream) -> bytes:
    chunks: list[bytes | memoryview] = []
    size = 0
    while True:
        data = stream.read(_READ_CHUNK)
        if not data:
            return b"".join(chunks)
        size += len(data)
        if size > _ERROR_BODY_LIMIT:
            raise ProtocolError(
                f"response body exceeds {_ERROR_BODY_LIMIT} bytes where a small one was expected"
            )
        chunks.append(data)


def _translate_connect(exc: BaseException, config: ClientConfig, limits: Timeout) -> BaseException:
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return exc
    where = f"{config.host}:{config.port}"
    # NewConnectionError subclasses ConnectTimeoutError in urllib3: test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return ConnectError(f"cannot connect to {where}: {exc}")
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError | TimeoutError):
        return ConnectTimeout(f"connecting to {where} took longer than {limits.connect} s")
    return ConnectError(f"cannot connect to {where}: {exc}")
