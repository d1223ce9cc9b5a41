"""The urllib3 transport: sockets for the core's HTTP/1.1 exchange.

urllib3 makes the connections (TCP, TLS, socket options); everything about
HTTP/1.1 on them (framing, early answers, the resend verdict, reuse,
timeouts' meaning, error messages) is the core's :class:`Exchange`, and the
pool's books are the core's :class:`PoolPolicy`. This module connects,
writes what the exchange hands out, receives, waits, and says which socket
failures were timeouts.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

import urllib3.exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection

from objectstore_core import ClientConfig, PayloadKind, Request, Response, Upload
from objectstore_core._connection import RESEND, Exchange, Failure, SmallBody
from objectstore_core._download import PIECE_SIZE, prime_heap
from objectstore_core._h1 import host_header
from objectstore_core._pool import Lease, PoolPolicy, Return
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


# Guards the rebuild of pools after fork(). A lock another thread held at fork
# time stays locked forever in the child, so the child gets a fresh one.
_fork_lock = threading.Lock()
# Forks this process has been through: a pool that saw fewer is in a child of the
# process that filled it. Counted in the fork hook, so checking it on every lease
# costs no getpid() system call.
_forks = 0


def _after_fork() -> None:
    global _fork_lock, _forks
    _fork_lock = threading.Lock()
    _forks += 1


os.register_at_fork(after_in_child=_after_fork)


class _Pool:
    """The core's pool policy over urllib3 connections, a thread lock and thread events."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._cls: type[HTTPConnection] = (
            HTTPSConnection if config.scheme == "https" else HTTPConnection
        )
        self._forks = _forks
        self._policy: PoolPolicy[HTTPConnection] = PoolPolicy(config.max_connections, os.getpid())
        self._lock = threading.Lock()

    def _check_fork(self) -> None:
        if self._forks != _forks:
            with _fork_lock:
                if self._forks != _forks:
                    self._lock = threading.Lock()  # another thread may have held it at fork
                    for conn in self._policy.check_process(os.getpid()):
                        _drop(conn)
                    self._forks = _forks

    def acquire(self, wait: float | None, *, fresh: bool) -> Lease[HTTPConnection]:
        """A lease with a live idle connection, or a new unconnected one."""
        self._check_fork()
        policy = self._policy
        with self._lock:
            taken = policy.lease_free(fresh=fresh)  # the usual case: a free slot, leased
            if taken is not None:
                waiter = None
                lease, closing = taken
                while lease.connection is not None and not _alive(lease.connection):
                    closing.append(lease.connection)
                    policy.next_idle(lease)
            else:
                waiter = threading.Event()
                policy.wait_for_slot(waiter)
        if waiter is not None:
            try:
                waiter.wait(wait)
            except BaseException:  # KeyboardInterrupt: a slot handed over meanwhile is passed on
                with self._lock:
                    handed = (
                        policy.free_slot()
                        if policy.stop_waiting(waiter, woken=waiter.is_set())
                        else None
                    )
                if isinstance(handed, threading.Event):
                    handed.set()
                raise
            with self._lock:
                if not policy.stop_waiting(waiter, woken=waiter.is_set()):
                    raise policy.timeout_error(wait)
                lease, closing = self._take(fresh)
        for conn in closing:
            conn.close()
        if lease.connection is None:
            lease.connection = self._cls(
                self._config.host,
                self._config.port,
                timeout=self._config.timeout.connect,
                **self._config.connection_options.urllib3_kwargs(),
            )
        return lease

    def _take(self, fresh: bool) -> tuple[Lease[HTTPConnection], list[HTTPConnection]]:
        """For a taken slot, under the lock: a lease past stale idle connections, and those."""
        lease, closing = self._policy.lease(fresh=fresh)
        while lease.connection is not None and not _alive(lease.connection):
            closing.append(lease.connection)
            self._policy.next_idle(lease)
        return lease, closing

    def release(self, lease: Lease[HTTPConnection], reusable: bool) -> None:
        """Give a lease back (its connection kept only if reusable) and free its slot."""
        self._check_fork()
        conn = lease.connection
        with self._lock:
            verdict, wake = self._policy.give_back(
                lease, reusable and conn is not None and not conn.is_closed
            )
        if isinstance(wake, threading.Event):
            wake.set()
        if conn is not None and verdict is Return.CLOSE:
            conn.close()
        elif conn is not None and verdict is Return.DETACH:
            _drop(conn)

    def stats(self) -> dict[str, int]:
        """``{"idle": n, "in_use": m}`` for this process (leak checks, load tests)."""
        self._check_fork()
        with self._lock:
            return self._policy.stats()

    def close(self) -> None:
        self._check_fork()
        with self._lock:
            idle = self._policy.close()
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
    # One poller per socket, kept on the connection: a check is then one system call.
    watched: tuple[Any, Any] | None = getattr(conn, "_objectstore_poller", None)
    if watched is None or watched[0] is not sock:
        poller = _poll()
        poller.register(sock, select.POLLIN)
        conn._objectstore_poller = watched = (sock, poller)  # type: ignore[attr-defined]
    return not watched[1].poll(0)


_poll = getattr(select, "poll", None)


def _drop(conn: HTTPConnection) -> None:
    """Close this process's descriptor of a connection without talking to the peer."""
    sock = conn.sock
    conn.sock = None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _failure(exc: OSError) -> Failure:
    return Failure.TIMEOUT if isinstance(exc, TimeoutError) else Failure.BROKEN


def _wait_at_most(sock: Any, seconds: float | None) -> None:
    if sock.gettimeout() != seconds:  # settimeout is a system call
        sock.settimeout(seconds)


class RawStream:
    """An open response body: raw bytes out, connection released at the end or on close."""

    __slots__ = ("_done", "_exchange", "_lease", "_pool", "_size", "_sock")

    def __init__(self, pool: _Pool, lease: Lease[HTTPConnection], exchange: Exchange) -> None:
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
        self._pool = _Pool(config)
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
