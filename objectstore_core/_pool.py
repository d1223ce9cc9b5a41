"""The policy of a keep-alive connection pool, without I/O: one rule for both twins.

A :class:`PoolPolicy` keeps the books of a pool for one origin: at most
``max_connections`` leased at a time, idle connections reused last-in
first-out, a released slot handed straight to the oldest waiter (so waiting
requests are served in order), fork generations, and what becomes of a
connection given back. The twins own the connections (their sockets), the
lock (sync: a thread lock around every call; async: one event loop, so none)
and the waiting (a thread event or an anyio event per waiter, passed here as
an opaque ``waiter``). They do what the policy answers: wake a waiter, close
or detach a connection.

Fork safety (API §6): the pool remembers the process that filled it, given
as ``pid``. The first use in another process starts a new generation (no
idle connections, no slots taken, no waiters): the child never shares a
socket with its parent nor waits for a slot a parent thread held. A lease
carries its generation; a connection given back to a newer generation
(leased before the fork) is detached, never pooled, and frees no slot.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Generic, TypeVar

from objectstore_core._errors import ConnectError, PoolTimeout

__all__ = ["Lease", "PoolPolicy", "Return"]

C = TypeVar("C")


class Return(Enum):
    """What the twin does with a connection it gave back."""

    POOLED = "pooled"  # kept idle for the next request: nothing to do
    CLOSE = "close"  # close it (this process's connection)
    DETACH = "detach"  # inherited over fork(): drop this process's descriptor, no word to the peer


class Lease(Generic[C]):
    """One slot of the pool and the connection on it (None until connected)."""

    __slots__ = ("connection", "generation", "reused")

    def __init__(self, connection: C | None, generation: object) -> None:
        self.connection = connection
        self.reused = connection is not None
        self.generation = generation


class PoolPolicy(Generic[C]):
    """Bookkeeping of a bounded pool of connections of type ``C``."""

    __slots__ = ("_closed", "_free", "_generation", "_idle", "_limit", "_pid", "_waiters")

    def __init__(self, max_connections: int, pid: int) -> None:
        self._limit = max_connections
        self._idle: list[C] = []
        self._pid = pid
        self._generation = object()
        self._free = max_connections
        self._waiters: deque[object] = deque()
        self._closed = False

    # -- processes --------------------------------------------------------------

    def check_process(self, pid: int) -> list[C]:
        """Start afresh in a forked child; returns the inherited idle connections to detach."""
        if pid == self._pid:
            return []
        inherited, self._idle = self._idle, []
        self._pid = pid
        self._generation = object()
        self._free = self._limit
        self._waiters = deque()
        self._closed = False
        return inherited

    # -- slots ------------------------------------------------------------------

    def take_slot(self) -> bool:
        """Take a free slot if there is one and nobody waits for it; never waits.

        A closed pool raises ConnectError (nothing was sent).
        """
        if self._closed:
            raise ConnectError("the client is closed")
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    def lease_free(self, *, fresh: bool = False) -> tuple[Lease[C], list[C]] | None:
        """:meth:`take_slot` and :meth:`lease` in one step (the usual case: a free
        slot); None, with nothing taken, when the twin must wait for a slot."""
        if self._closed:
            raise ConnectError("the client is closed")
        if not self._free or self._waiters:
            return None
        self._free -= 1
        if fresh:
            return self.lease(fresh=True)
        idle = self._idle
        return Lease(idle.pop() if idle else None, self._generation), []

    def wait_for_slot(self, waiter: object) -> None:
        """Queue ``waiter`` for the next freed slot (it is woken by :meth:`free_slot`)."""
        self._waiters.append(waiter)

    def stop_waiting(self, waiter: object, *, woken: bool) -> bool:
        """``waiter`` gives up (timeout, cancellation) or was woken: True if it holds a slot.

        A waiter woken at the moment it gave up holds the slot it was handed;
        the twin either uses it or, giving up, calls :meth:`free_slot`.
        """
        if woken:
            return True
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return True  # handed a slot between waking and giving up
        return False

    def free_slot(self) -> object | None:
        """Give a slot back: handed to the oldest waiter (returned, to be woken) or freed."""
        if self._waiters:
            return self._waiters.popleft()
        self._free += 1
        return None

    def timeout_error(self, wait: float | None) -> PoolTimeout:
        return PoolTimeout(
            f"no connection became free within {wait} s (max_connections={self._limit})"
        )

    # -- connections ------------------------------------------------------------

    def lease(self, *, fresh: bool = False) -> tuple[Lease[C], list[C]]:
        """For a taken slot: a lease (with the newest idle connection unless
        ``fresh``) and the idle connections the twin must close first.

        The twin checks a reused connection for staleness and, if it is dead,
        closes it and asks again with :meth:`next_idle`.
        """
        generation = self._generation
        if fresh:
            # A resend: never an idle connection. One is closed so that no more
            # than max_connections stay open.
            closing = [self._idle.pop(0)] if self._idle else []
            return Lease(None, generation), closing
        return Lease(self._idle.pop() if self._idle else None, generation), []

    def next_idle(self, lease: Lease[C]) -> None:
        """The lease's idle connection was stale: put the next idle one (or none) on it."""
        lease.connection = self._idle.pop() if self._idle else None
        lease.reused = lease.connection is not None

    def give_back(self, lease: Lease[C], reusable: bool) -> tuple[Return, object | None]:
        """The lease ends: what to do with its connection, and a waiter to wake (or None)."""
        connection, lease.connection = lease.connection, None
        if lease.generation is not self._generation:
            return Return.DETACH, None  # leased before a fork: no slot of ours to free
        if connection is not None and reusable and not self._closed:
            self._idle.append(connection)
            verdict = Return.POOLED
        else:
            verdict = Return.CLOSE
        if self._waiters:  # the slot goes to the oldest waiter (free_slot, inline)
            return verdict, self._waiters.popleft()
        self._free += 1
        return verdict, None

    # -- the whole pool ---------------------------------------------------------

    def close(self) -> list[C]:
        """No new leases; returns the idle connections to close."""
        self._closed = True
        idle, self._idle = self._idle, []
        return idle

    def idle(self) -> tuple[C, ...]:
        """The idle connections, oldest first (for inspection; they stay pooled)."""
        return tuple(self._idle)

    def stats(self) -> dict[str, int]:
        """``{"idle": n, "in_use": m}`` (leak checks, load tests)."""
        return {"idle": len(self._idle), "in_use": self._limit - self._free}
