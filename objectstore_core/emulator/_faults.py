"""Programmatic fault injection for the emulator: what goes wrong, and for which request.

A :class:`FaultPlan` lives on every emulator as ``emulator.faults`` (and so on
``EmulatorServer.faults`` and ``LocalServer.faults``)::

    server.faults.inject(Fault.status(503, retry_after=1), count=2, method="GET")
    server.faults.inject(Fault.reset(), method="PUT")             # no response at all
    server.faults.inject(Fault.reset(after=100), method="GET")    # cut mid-body
    server.faults.inject(Fault.stall(0.5), path="/slow")          # wait before answering
    server.faults.inject(Fault.stall(0.5, after=10))              # wait mid-body
    server.faults.inject(Fault.truncate(after=5))                 # body ends early
    server.faults.inject(Fault.corrupt(at=20))                    # one body byte flipped
    server.faults.randomly(0.05, seed=7)                          # 5 % of requests, reproducibly

This module only *decides* (pure, like the rest of the emulator): the handler
asks :meth:`FaultPlan.take` once per request. A status fault replaces the
response before anything is processed (nothing is stored or deleted). Any
other fault lets the request be processed as usual and wraps the response
body in a :class:`FaultedBody`, which tells the transport what to do and
when (:meth:`FaultedBody.due`):

* the socket server (``objectstore_sync.emulator``) acts on the wire: a reset
  closes the socket with ``SO_LINGER`` 0 (an RST), a stall sleeps, a
  truncation closes the connection after the bytes sent so far;
* the in-process transports (via ``_bridge``) have no wire: a reset raises
  :class:`ReadError` and a truncation :class:`IntegrityError` where a real
  client would have raised them, and stalls are skipped (there is no socket
  to time out). Truncation and corruption are applied to the bytes alike.

A reset before the response therefore models a server that did the work and
lost the connection before answering: the case where a blind retry of a
keyless ``POST`` would store a duplicate.

Thread safety: the plan guards its state with the lock given to
:meth:`FaultPlan.use_lock` (the socket server passes a ``threading.Lock``;
the core imports no threading module).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import Enum
from typing import Any

from objectstore_core import IntegrityError, ReadError
from objectstore_core.emulator._exchange import Exchange, Sink
from objectstore_core.emulator._messages import (
    BodyStream,
    BytesLike,
    ServerRequest,
    ServerResponse,
    json_error,
)

__all__ = ["Fault", "FaultKind", "FaultPlan", "FaultedBody", "attach_fault"]


class FaultKind(Enum):
    """What goes wrong."""

    STATUS = "status"  # answer with an error status (and maybe Retry-After)
    RESET = "reset"  # reset the connection, before the response or mid-body
    STALL = "stall"  # stop sending for a while, before the response or mid-body
    TRUNCATE = "truncate"  # end the connection after part of the body
    CORRUPT = "corrupt"  # flip one byte of the body


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault. Build it with the class methods (:meth:`status`, :meth:`reset`, ...).

    ``after`` is a response body offset in bytes; None (resets and stalls
    only) means before the response head is sent.
    """

    kind: FaultKind
    status_code: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    after: int | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status_code <= 599:
            raise ValueError(f"status {self.status_code} is invalid: inject an error status")
        if self.after is not None and self.after < 0:
            raise ValueError(f"after={self.after} is invalid: use a byte offset >= 0")
        if self.seconds < 0 or (self.retry_after is not None and self.retry_after < 0):
            raise ValueError("durations must be >= 0")
        if self.kind in (FaultKind.TRUNCATE, FaultKind.CORRUPT) and self.after is None:
            raise ValueError(f"a {self.kind.value} fault needs a body offset")

    @classmethod
    def status(cls, status: int = 503, retry_after: float | None = None) -> Fault:
        """Answer ``status`` (with ``retry-after: <seconds>`` if given) without processing."""
        return cls(FaultKind.STATUS, status_code=status, retry_after=retry_after)

    @classmethod
    def reset(cls, after: int | None = None) -> Fault:
        """Reset the connection before the response (None) or after ``after`` body bytes."""
        return cls(FaultKind.RESET, after=after)

    @classmethod
    def stall(cls, seconds: float, after: int | None = None) -> Fault:
        """Send nothing for ``seconds``, before the response (None) or after ``after`` bytes.

        The socket server ends a stall, and the connection, as soon as the
        client closes its end (as a client does after a read timeout).
        """
        return cls(FaultKind.STALL, seconds=seconds, after=after)

    @classmethod
    def truncate(cls, after: int) -> Fault:
        """Close the connection once ``after`` body bytes were sent."""
        return cls(FaultKind.TRUNCATE, after=after)

    @classmethod
    def corrupt(cls, at: int = 0) -> Fault:
        """Flip the bits of body byte ``at`` (nothing happens if the body is shorter)."""
        return cls(FaultKind.CORRUPT, after=at)

    def response(self) -> ServerResponse:
        """The response of a status fault: the JSON error shape of PROTOCOL §1.3."""
        error = json_error(self.status_code, "service error: injected fault", ["injected fault"])
        if self.retry_after is None:
            return error
        value = f"{self.retry_after:g}"
        return ServerResponse(
            error.status, (*error.headers, ("retry-after", value)), error.body, error.content_length
        )


Match = Callable[[ServerRequest], bool]


@dataclass(slots=True)
class _Rule:
    fault: Fault
    remaining: int
    methods: frozenset[str] | None
    path: str | None
    when: Match | None

    def matches(self, request: ServerRequest) -> bool:
        if self.methods is not None and request.method.upper() not in self.methods:
            return False
        if self.path is not None and self.path not in request.target:
            return False
        return self.when is None or self.when(request)


_STATUSES = (408, 429, 500, 502, 503, 504)


@dataclass(slots=True)
class _RandomFaults:
    rate: float
    rng: random.Random
    statuses: tuple[int, ...]
    stall_seconds: float
    retry_after: float | None
    max_offset: int

    def pick(self, request: ServerRequest) -> Fault | None:
        if self.rng.random() >= self.rate:
            return None
        # Body faults only where a body is read back: a corrupted write answer
        # (``{"key": ...}``) could silently name another object.
        kinds = [FaultKind.STATUS, FaultKind.RESET, FaultKind.STALL]
        has_body = request.method == "GET"
        if has_body:
            kinds += [FaultKind.TRUNCATE, FaultKind.CORRUPT]
        kind = self.rng.choice(kinds)
        offset = self.rng.randint(0, self.max_offset) if has_body else None
        if kind is FaultKind.STATUS:
            status = self.rng.choice(self.statuses)
            retry_after = self.retry_after if status in (429, 503) else None
            return Fault.status(status, retry_after)
        if kind is FaultKind.RESET:
            return Fault.reset(self.rng.choice((None, offset)))
        if kind is FaultKind.STALL:
            return Fault.stall(self.stall_seconds, self.rng.choice((None, offset)))
        assert offset is not None
        return Fault.truncate(offset) if kind is FaultKind.TRUNCATE else Fault.corrupt(offset)


def _methods(method: str | Collection[str] | None) -> frozenset[str] | None:
    if method is None:
        return None
    if isinstance(method, str):
        return frozenset({method.upper()})
    return frozenset(m.upper() for m in method)


class FaultPlan:
    """Which requests get which fault; consulted once per request by the emulator.

    Rules are tried in the order they were added; the first match with
    requests left wins and is used up. The random mode applies to requests
    no rule matched. :attr:`injected` counts faults handed out, by kind.
    """

    def __init__(self) -> None:
        self._lock: AbstractContextManager[Any] = nullcontext()
        self._rules: list[_Rule] = []
        self._random: _RandomFaults | None = None
        self._injected: Counter[FaultKind] = Counter()

    def use_lock(self, lock: AbstractContextManager[Any]) -> None:
        """Guard the plan with ``lock`` (e.g. ``threading.Lock()``) for threaded servers."""
        self._lock = lock

    def inject(
        self,
        fault: Fault,
        *,
        count: int = 1,
        method: str | Collection[str] | None = None,
        path: str | None = None,
        when: Match | None = None,
    ) -> None:
        """Apply ``fault`` to the next ``count`` requests that match.

        ``method``: one method or several; ``path``: a substring of the raw
        request target (e.g. a key); ``when``: any predicate on the request.
        """
        if count < 1:
            raise ValueError(f"count={count} is invalid: use at least 1")
        rule = _Rule(fault, count, _methods(method), path, when)
        with self._lock:
            self._rules.append(rule)

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        *,
        retry_after: float | None = None,
        method: str | Collection[str] | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (shorthand)."""
        self.inject(Fault.status(status, retry_after), count=count, method=method, path=path)

    def randomly(
        self,
        rate: float,
        *,
        seed: int | None = None,
        statuses: Collection[int] = _STATUSES,
        stall_seconds: float = 0.05,
        retry_after: float | None = None,
        max_offset: int = 16,
    ) -> None:
        """Give a random fault to each request with probability ``rate`` (0 turns it off).

        Kinds and parameters are drawn from ``random.Random(seed)``: statuses
        from ``statuses`` (with ``retry_after`` on 429 and 503), stalls of
        ``stall_seconds``, body offsets up to ``max_offset``. Truncation,
        corruption and mid-body actions are only drawn for ``GET``.
        """
        if not 0 <= rate <= 1:
            raise ValueError(f"rate={rate} is invalid: use a probability between 0 and 1")
        chosen = None
        if rate > 0:
            chosen = _RandomFaults(
                rate, random.Random(seed), tuple(statuses), stall_seconds, retry_after, max_offset
            )
        with self._lock:
            self._random = chosen

    def clear(self) -> None:
        """Drop every rule and turn the random mode off (the counts are kept)."""
        with self._lock:
            self._rules.clear()
            self._random = None

    def take(self, request: ServerRequest) -> Fault | None:
        """The fault for ``request``, if any (used up); called once per request."""
        with self._lock:
            fault = None
            for rule in self._rules:
                if rule.matches(request):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    fault = rule.fault
                    break
            if fault is None and self._random is not None:
                fault = self._random.pick(request)
            if fault is not None:
                self._injected[fault.kind] += 1
            return fault

    @property
    def injected(self) -> int:
        """How many faults were handed out so far."""
        with self._lock:
            return sum(self._injected.values())

    def counts(self) -> dict[str, int]:
        """Faults handed out so far, by kind (``{"status": 3, "reset": 1, ...}``)."""
        with self._lock:
            return {kind.value: n for kind, n in self._injected.items()}

    @property
    def pending(self) -> int:
        """Requests the explicit rules will still fault."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)


class FaultedBody:
    """A response body carrying a fault; a :class:`BodyStream` for any transport.

    A transport that can act on a connection asks :meth:`due` before sending
    the head and before every read: a kind it returns must be performed now
    (reset, stall, truncate), then :meth:`acknowledge`. Reads never run past
    a pending action and flip the corrupted byte. A transport that reads
    without asking (in-process) gets the client-side outcome instead: a due
    reset raises :class:`ReadError`, a due truncation :class:`IntegrityError`,
    and a due stall is skipped.
    """

    __slots__ = ("_body", "_fired", "_offset", "fault")

    def __init__(self, body: bytes | bytearray | memoryview | BodyStream, fault: Fault) -> None:
        self._body = body
        self.fault = fault
        self._offset = 0
        self._fired = fault.kind in (FaultKind.STATUS, FaultKind.CORRUPT)

    @property
    def before_head(self) -> bool:
        """The fault acts before the response head is sent."""
        return self.fault.after is None

    def due(self) -> FaultKind | None:
        """The action the transport must perform before sending anything more."""
        if self._fired:
            return None
        if self.fault.after is None or self.fault.after == self._offset:
            return self.fault.kind
        return None

    def acknowledge(self) -> None:
        """The transport performed the due action."""
        self._fired = True

    def read(self, n: int) -> bytes:
        """Up to ``n`` body bytes, never past a pending action; ``b""`` at the end."""
        kind = self.due()
        if kind is not None:
            self.acknowledge()
            if kind is FaultKind.RESET:
                raise ReadError("the connection was reset (injected fault)")
            if kind is FaultKind.TRUNCATE:
                raise IntegrityError(
                    f"response body was truncated after {self._offset} bytes (injected fault)"
                )
            # A stall: nothing to wait for without a socket.
        if not self._fired and self.fault.after is not None:
            n = min(n, self.fault.after - self._offset)
        chunk = self._read(n)
        if self.fault.kind is FaultKind.CORRUPT:
            chunk = self._corrupted(chunk)
        self._offset += len(chunk)
        return chunk

    def _read(self, n: int) -> bytes:
        if isinstance(self._body, BodyStream):
            return self._body.read(n)
        return bytes(self._body[self._offset : self._offset + n])

    def _corrupted(self, chunk: bytes) -> bytes:
        at = self.fault.after
        if at is None or not self._offset <= at < self._offset + len(chunk):
            return chunk
        mutable = bytearray(chunk)
        mutable[at - self._offset] ^= 0xFF
        return bytes(mutable)

    def close(self) -> None:
        if isinstance(self._body, BodyStream):
            self._body.close()


class _FaultSink:
    """Wraps an exchange's sink so the response it finishes with carries the fault."""

    __slots__ = ("_fault", "_sink")

    def __init__(self, sink: Sink, fault: Fault) -> None:
        self._sink = sink
        self._fault = fault

    def feed(self, data: BytesLike) -> None:
        self._sink.feed(data)

    def buffer(self, hint: int) -> memoryview | None:
        get = getattr(self._sink, "buffer", None)
        return None if get is None else get(hint)

    def buffer_filled(self, count: int) -> None:
        self._sink.buffer_filled(count)  # type: ignore[attr-defined]

    def finish(self) -> ServerResponse:
        return _faulted(self._sink.finish(), self._fault)

    def abort(self) -> None:
        self._sink.abort()


def _faulted(response: ServerResponse, fault: Fault) -> ServerResponse:
    body = FaultedBody(response.body, fault)
    return ServerResponse(response.status, response.headers, body, response.content_length)


def attach_fault(exchange: Exchange, fault: Fault) -> Exchange:
    """Make ``exchange`` answer with a faulted response; a status fault replaces it.

    For a status fault, pass a fresh exchange: the request must not have
    been processed. Other faults wrap the response the exchange has or
    will have once its body is complete.
    """
    if fault.kind is FaultKind.STATUS:
        return Exchange(fault.response())
    if exchange.response is not None:
        exchange.response = _faulted(exchange.response, fault)
    elif exchange._sink is not None:
        # The exchange's own sink produces the response at finish(); same package.
        exchange._sink = _FaultSink(exchange._sink, fault)
    return exchange
