"""Safe retries: when a failed attempt may be repeated, and how long to wait first.

Everything here is pure. The flows (``_send`` in :mod:`objectstore_core._operations`)
ask :func:`retry_delay` after every failed attempt and yield a
:class:`~objectstore_core.Sleep` for the driver to perform; the core never
reads a clock and never sleeps.

A retry must never duplicate or corrupt a write (API §6):

* ``GET``, ``HEAD``, ``DELETE``, ``PATCH`` and ``PUT`` (always with a key) are
  idempotent: repeating them leaves the server in the same state. They are
  retried on the policy's transport errors and statuses, provided the body
  can be sent again from its start (bytes, a path, a seekable file) or was
  never touched.
* ``POST`` (an insert with a server-generated key, PROTOCOL §3.1) is not: a
  second attempt could store a second object. It is retried only when the
  request provably never left: the connection could not be made
  (:class:`ConnectError`, :class:`ConnectTimeout`) or none became free
  (:class:`PoolTimeout`). Those are raised before any byte is written.
* A one-shot body (an iterator) is never sent twice once its first byte was
  read; a failure before that is as good as "never left".

Statuses (PROTOCOL §12): 429 and 503 mean overload, 408/500/502/504 a
transient failure of the server or a proxy; the Python 0.2.10 resumable
uploader retries the same set (§14.1). The reference server never sends
``Retry-After`` (§12), but proxies and newer servers may: it is honoured, in
seconds, capped by :attr:`RetryPolicy.max_retry_after`.
"""

from __future__ import annotations

import math
import random as _random
from dataclasses import dataclass, field
from typing import Protocol

from objectstore_core._errors import (
    ConnectError,
    ConnectTimeout,
    ObjectstoreError,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    TransportError,
    WriteError,
    WriteTimeout,
    _retry_after,
)
from objectstore_core._http import PayloadKind, Request, Response, Upload

__all__ = [
    "DEFAULT_RETRY_ERRORS",
    "DEFAULT_RETRY_STATUSES",
    "IDEMPOTENT_METHODS",
    "NEVER_SENT_ERRORS",
    "RandomSource",
    "RetryPolicy",
    "body_replayable",
    "retry_delay",
]

DEFAULT_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses worth another attempt (PROTOCOL §12, §14.1)."""

NEVER_SENT_ERRORS: tuple[type[TransportError], ...] = (ConnectError, ConnectTimeout, PoolTimeout)
"""Failures raised before any byte of the request was written (the transports guarantee it)."""

DEFAULT_RETRY_ERRORS: tuple[type[TransportError], ...] = (
    *NEVER_SENT_ERRORS,
    ReadTimeout,
    WriteTimeout,
    ReadError,
    WriteError,
)
"""Transport failures retried by default: connect errors, timeouts, lost connections."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE", "PATCH", "PUT"})
"""Methods whose repetition cannot change the outcome (PUT always names its key here)."""


class RandomSource(Protocol):
    """Where jitter comes from: ``random.Random`` (or the ``random`` module) fits."""

    def random(self) -> float:
        """A float in ``[0, 1)``."""
        ...


def _positive(value: object, what: str, *, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what}={value!r} is invalid: use a finite number of seconds")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{what}={value!r} is invalid: it must be {'>=' if allow_zero else '>'} 0")
    return float(value)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failed requests are retried: exponential backoff with jitter.

    ``max_attempts`` counts every attempt, the first included (1 disables
    retries). Before retry *n* (1, 2, ...) the client waits
    ``min(max_backoff, backoff * multiplier ** (n - 1))`` seconds, of which
    the fraction ``jitter`` is randomised (``1.0``: "full jitter", uniformly
    between 0 and that ceiling; ``0.0``: exactly that). A ``Retry-After``
    header given in seconds replaces the computed wait, capped at
    ``max_retry_after``. ``statuses`` and ``errors`` say what is retried;
    whether a request *may* be retried safely is decided separately and
    cannot be overridden (see the module documentation).

    ``random`` supplies the jitter (anything with ``random() -> float``);
    pass ``random.Random(seed)`` for reproducible waits in tests. The default
    is the :mod:`random` module, which is reseeded in a forked child, so
    processes forked from one parent do not retry in lockstep.

    >>> policy = RetryPolicy(max_attempts=3, backoff=0.5, jitter=0.0)
    >>> policy.backoff_delay(1), policy.backoff_delay(2)
    (0.5, 1.0)
    """

    max_attempts: int = 4
    backoff: float = 0.05
    multiplier: float = 2.0
    max_backoff: float = 5.0
    jitter: float = 1.0
    statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    errors: tuple[type[TransportError], ...] = DEFAULT_RETRY_ERRORS
    max_retry_after: float = 30.0
    random: RandomSource = field(default=_random, repr=False, compare=False)

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(
                f"max_attempts={attempts!r} is invalid: use an integer >= 1 (1: no retries)"
            )
        for name in ("backoff", "max_backoff", "max_retry_after"):
            object.__setattr__(self, name, _positive(getattr(self, name), f"RetryPolicy.{name}"))
        multiplier = _positive(self.multiplier, "RetryPolicy.multiplier")
        if multiplier < 1:
            raise ValueError(f"multiplier={multiplier!r} is invalid: it must be >= 1")
        object.__setattr__(self, "multiplier", multiplier)
        jitter = _positive(self.jitter, "RetryPolicy.jitter")
        if jitter > 1:
            raise ValueError(f"jitter={jitter!r} is invalid: use a fraction between 0 and 1")
        object.__setattr__(self, "jitter", jitter)
        statuses = frozenset(self.statuses)
        if not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
            raise ValueError(f"statuses={sorted(statuses)!r} is invalid: use HTTP status codes")
        object.__setattr__(self, "statuses", statuses)
        errors = tuple(self.errors)
        if not all(isinstance(e, type) and issubclass(e, TransportError) for e in errors):
            raise ValueError(
                f"errors={errors!r} is invalid: use TransportError subclasses "
                "(ConnectError, ReadTimeout, ...)"
            )
        object.__setattr__(self, "errors", errors)
        if not callable(getattr(self.random, "random", None)):
            raise TypeError(f"random={self.random!r} has no random() method")

    @classmethod
    def connection_errors(cls, retries: int) -> RetryPolicy:
        """The official client's ``retries=N``: retry only failed connects, N times.

        Like ``urllib3.Retry(connect=N, read=0)``: nothing is retried once the
        request may have reached the server, and statuses are never retried.
        """
        return cls(max_attempts=retries + 1, statuses=frozenset(), errors=NEVER_SENT_ERRORS)

    @classmethod
    def transport_failures(cls, retries: int) -> RetryPolicy:
        """urllib3's pool ``retries=N`` (``connection_kwargs``): retry failed exchanges, N times.

        Like ``urllib3.Retry(total=N)``: failed connects, timeouts and lost
        connections are retried where a retry cannot duplicate a write;
        statuses are never retried (urllib3 retries none by default).
        """
        return cls(max_attempts=retries + 1, statuses=frozenset())

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff_delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the first), jitter applied."""
        exponent = max(retry - 1, 0)
        try:
            ceiling = min(self.max_backoff, self.backoff * self.multiplier**exponent)
        except OverflowError:
            ceiling = self.max_backoff
        if self.jitter == 0:
            return ceiling
        draw = min(max(float(self.random.random()), 0.0), 1.0)
        return ceiling * (1.0 - self.jitter + self.jitter * draw)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """The wait before retry ``retry``: ``Retry-After`` (capped) if given, else backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self.backoff_delay(retry)


def body_replayable(body: bytes | Upload | None) -> bool:
    """Whether ``body`` can be sent again exactly, from its first byte.

    Bytes and paths always can (a path is reopened). A file can when the
    transport found it seekable and noted its start position, or when it was
    never read. A one-shot iterable only when no chunk was taken from it.
    """
    if not isinstance(body, Upload):
        return True
    if body.kind in (PayloadKind.BYTES, PayloadKind.PATH):
        return True
    replay = body.replay
    if body.kind is PayloadKind.FILE:
        return not replay.started or replay.start is not None
    return not replay.started


def retry_delay(
    policy: RetryPolicy | None,
    request: Request,
    attempt: int,
    outcome: Response | ObjectstoreError,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when it must not happen.

    ``outcome`` is the response of attempt ``attempt`` (any status; only the
    policy's statuses are retried) or the error it failed with.
    """
    if policy is None or attempt >= policy.max_attempts:
        return None
    if isinstance(outcome, Response):
        if outcome.status not in policy.statuses or not _may_repeat(request):
            return None
        return policy.delay(attempt, _retry_after(outcome.headers))
    if not isinstance(outcome, policy.errors):
        return None
    never_sent = isinstance(outcome, NEVER_SENT_ERRORS)
    if never_sent and body_replayable(request.body):
        return policy.delay(attempt)
    if _may_repeat(request):
        return policy.delay(attempt)
    return None


def _may_repeat(request: Request) -> bool:
    """An attempt that may have reached the server can be repeated safely."""
    return request.method in IDEMPOTENT_METHODS and body_replayable(request.body)
