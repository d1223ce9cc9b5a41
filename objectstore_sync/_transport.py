"""The urllib3 transport: sockets for the core's HTTP/1.1 exchange.

urllib3 makes the connections (TCP, TLS, socket options); everything about
HTTP/1.1 on them (framing, early answers, the resend verdict, reuse,
timeouts' meaning, error messages) is the core's :class:`Exchange`, and the
pool's books are the core's :class:`PoolPolicy`. This module connects,
writes what the exchange hands out, receives, waits, and says which socket
failures were timeouts; the connections and their pool are
:mod:`objectstore_sync._connections`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Protocol

import urllib3.exceptions
from urllib3.connection import HTTPConnection

from objectstore_core import ClientConfig, PayloadKind, Request, Response, Upload
from objectstore_core._connection import RESEND, Exchange, Failure, SmallBody
from objectstore_core._download import PIECE_SIZE, prime_heap
from objectstore_core._h1 import host_header
from objectstore_core._pool import Lease
from objectstore_sync._connections import Pool
from objectstore_sync._sources import iter_upload

__all__ = ["RawBody", "RawStream", "SocketTransport", "SyncTransport"]

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


def _failure(exc: OSError) -> Failure:
    return Failure.TIMEOUT if isinstance(exc, TimeoutError) else Failure.BROKEN


def _wait_at_most(sock: Any, seconds: float | None) -> None:
    if sock.gettimeout() != seconds:  # settimeout is a system call
        sock.settimeout(seconds)


class RawStream:
    """An open response body: raw bytes out, connection released at the end or on close."""

    __slots__ = ("_done", "_exchange", "_lease", "_pool", "_size", "_sock")

    def __init__(self, pool: Pool, lease: Lease[HTTPConnection], exchange: Exchange) -> None:
        self._pool = pool
        self._lease = lease
        self._exchange = exchange
        self._sock: Any = lease.connection.sock if lease.connection is not None else None
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
        exchange = self._exchange
        try:
            while (data := exchange.next_data()) is None:
                self._receive(min(amount, self._size))
        except BaseException:
            self._finish(reusable=False)
            raise
        if exchange.complete:  # the last bytes: release the connection with them
            self._finish(reusable=exchange.reusable)
        return data

    def _receive(self, size: int) -> None:
        exchange = self._exchange
        sock = self._sock
        _wait_at_most(sock, exchange.read_timeout())
        try:
            data = sock.recv(size)
        except OSError as exc:
            exchange.receive_failed(_failure(exc), exc)  # raises while reading a body
            raise  # pragma: no cover
        if len(data) == size and size < _READ_CHUNK:
            self._size = size * 2
        exchange.receive_data(data)

    @property
    def done(self) -> bool:
        """True once the body is complete and the connection released: reads give ``b""``."""
        return self._done

    def read_all(self) -> bytes:
        """The whole (small, error-sized) body, then the connection released."""
        body = SmallBody()
        try:
            while data := self.read():
                body.add(data)
        finally:
            self.close()
        return body.result()

    def close(self) -> None:
        """Release the connection; an unfinished body makes it unusable, so it is closed."""
        if not self._done:
            self._finish(reusable=False)

    def _finish(self, reusable: bool) -> None:
        self._done = True
        self._pool.release(self._lease, reusable)


class _SourceFailure(Exception):
    """Carries an exception raised by the caller's own payload past the socket handling."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


def _guarded(
    chunks: Iterator[bytes | bytearray | memoryview],
) -> Iterator[bytes | bytearray | memoryview]:
    """The caller's payload chunks; their own failures come out as :class:`_SourceFailure`."""
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except Exception as exc:
            raise _SourceFailure(exc) from exc
        yield chunk


class SocketTransport:
    """Sends :class:`Request` descriptions over pooled connections.

    urllib3 establishes the connections (TCP, TLS, socket options from
    ``connection_kwargs``); the core's :class:`Exchange` frames requests and
    responses on the socket.
    """

    def __init__(self, config: ClientConfig) -> None:
        prime_heap()  # socket reads of up to PIECE_SIZE come from the heap
        self._config = config
        self._pool = Pool(config)
        self._host_header = host_header(config.scheme, config.host, config.port)
        self._where = f"{config.host}:{config.port}"

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
        exchange = Exchange(request, self._host_header, limits, clock=time.monotonic)
        pool = self._pool
        while True:
            lease = pool.acquire(limits.pool, fresh=exchange.resent)
            try:
                if self._exchange(lease, exchange) is None:
                    break
            except BaseException:
                pool.release(lease, False)
                raise
            pool.release(lease, False)  # RESEND: on a fresh connection
        if exchange.complete:  # no body (HEAD, 204, 304, an empty one)
            pool.release(lease, exchange.reusable)
            return exchange.response(), None
        stream = RawStream(pool, lease, exchange)
        if exchange.hand_over():
            return exchange.response(), stream
        return exchange.response(stream.read_all()), None

    def _exchange(self, lease: Lease[HTTPConnection], exchange: Exchange) -> object:
        """Send the request and receive the response head on the lease's connection.

        None when the head arrived; RESEND when the request must go again on a
        fresh connection.
        """
        exchange.start(reused=lease.reused)
        conn = lease.connection
        assert conn is not None
        if conn.sock is None:
            conn.timeout = exchange.connect_timeout()
            try:
                conn.connect()
            except Exception as exc:
                # NewConnectionError subclasses ConnectTimeoutError in urllib3: test it first.
                timed_out = not isinstance(exc, urllib3.exceptions.NewConnectionError) and (
                    isinstance(exc, urllib3.exceptions.ConnectTimeoutError | TimeoutError)
                )
                failure = Failure.TIMEOUT if timed_out else Failure.BROKEN
                raise exchange.connect_failed(failure, exc, self._where) from exc
        sock: Any = conn.sock
        body = exchange.request.body
        try:
            for data in exchange.writes():
                if sock.gettimeout() != (wait := exchange.write_timeout()):
                    sock.settimeout(wait)  # a system call: only when the wait changes
                sock.sendall(data)
            if isinstance(body, Upload):
                for chunk in _guarded(iter_upload(body)):
                    for data in exchange.upload_writes(chunk):
                        _wait_at_most(sock, exchange.write_timeout())
                        sock.sendall(data)
                for data in exchange.upload_end():
                    _wait_at_most(sock, exchange.write_timeout())
                    sock.sendall(data)
            exchange.sent()
        except _SourceFailure as failure:
            raise failure.error from None  # the caller's own file or generator failed
        except OSError as exc:
            if exchange.send_failed(_failure(exc), exc) is RESEND:
                return RESEND
        while True:  # nothing of an answer can be there before a receive
            if sock.gettimeout() != (wait := exchange.read_timeout()):
                sock.settimeout(wait)
            try:
                data = sock.recv(_HEAD_CHUNK)
            except OSError as exc:
                return exchange.receive_failed(_failure(exc), exc)
            if (head := exchange.receive_head(data)) is not None:
                return None if head is not RESEND else RESEND
