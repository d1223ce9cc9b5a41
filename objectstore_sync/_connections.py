"""Connections for the sync twin: urllib3's connections in a pool shared by threads.

The transport (:mod:`objectstore_sync._transport`) frames HTTP/1.1 on the
sockets this module hands out. The pool's books are the core's
:class:`PoolPolicy`; here are the connections, a thread lock around every
call to it, thread events for waiters, the liveness check of idle
connections, and a forked child starting with an empty pool that never
touches a socket it shares with its parent.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection

from objectstore_core import ClientConfig
from objectstore_core._pool import Lease, PoolPolicy, Return

__all__ = ["Pool"]

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


class Pool:
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
