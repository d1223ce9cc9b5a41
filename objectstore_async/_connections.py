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
import sys
from typing import Any

import anyio
import httpcore

from objectstore_async._streams import _AsyncioStream
from objectstore_core import ClientConfig
from objectstore_core._pool import Lease, PoolPolicy, Return

_CLOSE_GRACE = 1.0  # seconds a (TLS) close may take before the socket is dropped


# An idle connection: the stream, and its socket (for the liveness check).
_Idle = tuple[httpcore.AsyncNetworkStream, Any]

# Sockets inherited over fork() that were detached from this process (see _forget).
_forgotten: list[httpcore.AsyncNetworkStream] = []
# Forks this process has been through, counted in the fork hook: a pool that saw
# fewer is in a child. Checked on every lease without a getpid() system call.
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)


class Pool:
    """The core's pool policy over httpcore streams, for one event loop.

    One event loop means no lock; a waiter is an anyio event (asyncio and
    trio). Closes are shielded from cancellation and bounded, so a cancelled
    task never leaks its slot or its socket. Inherited sockets are detached
    in a forked child without a word to the peer.
    """

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._forks = _forks
        self._policy: PoolPolicy[_Idle] = PoolPolicy(config.max_connections, os.getpid())
        self._backend: httpcore.AsyncNetworkBackend | None = None

    def _check_fork(self) -> None:
        if self._forks != _forks:
            self._forks = _forks
            self._backend = None
            for stream, _ in self._policy.check_process(os.getpid()):
                _forget(stream)

    @property
    def backend(self) -> httpcore.AsyncNetworkBackend:
        """httpcore's network backend for the running event loop (chosen on first connect)."""
        if self._backend is None:
            self._backend = _network_backend()
        return self._backend

    async def acquire(self, wait: float | None, *, fresh: bool) -> Lease[_Idle]:
        """A lease with a live idle connection, or with none (to be connected).

        ``wait`` is Timeout.pool (None: until a slot frees up; then
        PoolTimeout, nothing sent); ``fresh``: never an idle connection.
        """
        self._check_fork()
        policy = self._policy
        taken = policy.lease_free(fresh=fresh)  # the usual case: a free slot, leased
        if taken is None:
            event = anyio.Event()
            policy.wait_for_slot(event)
            try:
                with anyio.move_on_after(wait):
                    await event.wait()
            except BaseException:
                if policy.stop_waiting(event, woken=event.is_set()):
                    _wake(policy.free_slot())  # handed a slot while cancelled: pass it on
                raise
            if not policy.stop_waiting(event, woken=event.is_set()):
                raise policy.timeout_error(wait)
            taken = policy.lease(fresh=fresh)
        lease, closing = taken
        while lease.connection is not None and _stale(lease.connection):
            closing.append(lease.connection)
            policy.next_idle(lease)
        for stream, _ in closing:
            await _close(stream)
        return lease

    def give_back(self, lease: Lease[_Idle], reusable: bool) -> httpcore.AsyncNetworkStream | None:
        """End a lease without I/O; returns the stream the caller must close, if any."""
        self._check_fork()
        connection = lease.connection
        verdict, waiter = self._policy.give_back(lease, reusable)
        if waiter is not None:
            _wake(waiter)
        if connection is None or verdict is Return.POOLED:
            return None
        if verdict is Return.DETACH:
            _forget(connection[0])  # leased before a fork: never pooled here
            return None
        return connection[0]

    async def release(self, lease: Lease[_Idle], reusable: bool) -> None:
        """End a lease: its connection kept only if reusable, else closed."""
        stream = self.give_back(lease, reusable)
        if stream is not None:
            await _close(stream)

    def stats(self) -> dict[str, int]:
        """``{"idle": n, "in_use": m}`` for this process (leak checks, load tests)."""
        self._check_fork()
        return self._policy.stats()

    async def aclose(self) -> None:
        self._check_fork()
        for stream, _ in self._policy.close():
            await _close(stream)


def _wake(waiter: object | None) -> None:
    if isinstance(waiter, anyio.Event):
        waiter.set()


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
