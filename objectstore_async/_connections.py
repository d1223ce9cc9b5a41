"""Connections for the async twin: httpcore's network backend and a pool for one event loop.

The transport (:mod:`objectstore_async._transport`) frames HTTP/1.1 on the
streams this module hands out. The pool mirrors the sync twin's: at most
``max_connections`` connections, idle ones reused last-in first-out,
``Timeout.pool`` bounding the wait for a slot, closes shielded from
cancellation, and a forked child starting with an empty pool that never
touches a socket it shares with its parent.
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
from typing import Any

import anyio
import httpcore

from objectstore_async._streams import _AsyncioStream
from objectstore_core import ClientConfig, ConnectError, PoolTimeout

_CLOSE_GRACE = 1.0  # seconds a (TLS) close may take before the socket is dropped
_SOCKET_OPTIONS = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


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

    def acquire_nowait(self) -> bool:
        """Take a free slot if there is one (and nobody waits for it); never waits."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self, wait: float | None) -> bool:
        """Take a slot; False when none came free within ``wait`` seconds (None: no limit)."""
        if self.acquire_nowait():
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
        if not self._slots.acquire_nowait() and not await self._slots.acquire(wait):
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
            if not _stale(idle):
                return _Lease(idle, generation)
            await _close(idle[0])
        return _Lease(None, generation)

    def release_nowait(self, lease: _Lease, reusable: bool) -> bool:
        """Give a lease back if that needs no I/O; False when its connection must be
        closed first (then call :meth:`release`, which does).

        A reusable connection is pooled and its slot freed; a lease without a
        connection frees its slot; one leased before a fork is detached.
        """
        self._check_fork()
        stream = lease.stream
        if lease.generation is not self._generation:
            lease.stream = None
            if stream is not None:
                _forget(stream)  # leased before a fork: never pooled here, no slot to free
            return True
        if stream is None:
            self._in_use -= 1
            self._slots.release()
            return True
        if reusable and not self._closed and not lease.broken:
            lease.stream = None
            self._in_use -= 1
            self._idle.append((stream, lease.sock))
            self._slots.release()
            return True
        return False

    async def release(self, lease: _Lease, reusable: bool) -> None:
        """Give a lease back: its connection kept only if reusable, its slot freed."""
        if self.release_nowait(lease, reusable):
            return
        stream, lease.stream = lease.stream, None
        self._in_use -= 1
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


def _stale(idle: _Idle) -> bool:
    """True when an idle connection was closed by the server (EOF) or sent unexpected bytes."""
    stream, sock = idle
    if isinstance(stream, _AsyncioStream):
        return stream.stale  # its callbacks saw it all: no system call
    return _readable(sock)


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


# ---------------------------------------------------------------------- TLS


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
