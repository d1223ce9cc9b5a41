"""Timeouts: how long a client waits for each step of an exchange (API §6).

A leaf module: the request descriptions (:mod:`objectstore_core._http`) and
the client configuration (:mod:`objectstore_core._config`) both use
:class:`Timeout`, and neither needs the other to do so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Timeout", "seconds"]


def seconds(value: object, what: str) -> float | None:
    """``value`` as a positive number of seconds, or None; ValueError naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what}={value!r} is invalid: use a number of seconds or None")
    if value <= 0:
        raise ValueError(f"{what}={value!r} is invalid: it must be greater than 0")
    return float(value)


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timeouts in seconds; None waits forever.

    ``connect`` bounds establishing a connection only: it never applies to
    writing a body, so a slow server cannot break a large upload. ``read``
    bounds each wait for response bytes, ``write`` each wait to send body
    bytes, ``pool`` the wait for a free pooled connection (None: until one
    frees up; then PoolTimeout). A plain number means the same for read and write (connect stays
    at its default of 0.1 s, as in the official clients).

    ``total`` is a deadline for a whole operation: every attempt, and every
    wait between retries, must fit in it. Each socket wait of an attempt is
    cut to the time left, and no retry starts that could not finish its
    backoff in time (the last error is raised instead). It does not bound
    reading a streamed payload after ``get`` has returned it.
    """

    connect: float | None = 0.1
    read: float | None = None
    write: float | None = None
    pool: float | None = None
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "total"):
            object.__setattr__(self, name, seconds(getattr(self, name), f"Timeout.{name}"))

    @classmethod
    def coerce(
        cls, value: Timeout | float | int | None, *, what: str = "timeout"
    ) -> Timeout | None:
        """Accept a Timeout, a number of seconds (read and write), or None."""
        if value is None or isinstance(value, Timeout):
            return value
        both = seconds(value, what)
        return cls(read=both, write=both)
