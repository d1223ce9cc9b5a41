"""A one-line progress bar for the CLI's transfers: bytes, rate and time left."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressBar", "progress_for"]

_MIB = 1024 * 1024


def _size(count: int) -> str:
    return f"{count / _MIB:.1f} MiB"


def _duration(seconds: float) -> str:
    whole = int(seconds + 0.5)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Draws ``done / total  rate  ETA`` on one line of ``stream``, redrawn in place.

    Called as ``bar(done, total)``; redraws at most every ``interval`` seconds
    (and always when done) and ends the line with :meth:`close`.
    """

    def __init__(
        self,
        stream: TextIO,
        label: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.1,
    ) -> None:
        self._stream = stream
        self._label = label
        self._clock = clock
        self._interval = interval
        self._start = clock()
        self._drawn_at: float | None = None
        self._width = 0
        self._used = False

    def __call__(self, done: int, total: int | None) -> None:
        now = self._clock()
        finished = total is not None and done >= total
        if not finished and self._drawn_at is not None and now - self._drawn_at < self._interval:
            return
        self._drawn_at = now
        elapsed = max(now - self._start, 1e-9)
        rate = done / elapsed
        parts = [self._label, _size(done) if total is None else f"{_size(done)} / {_size(total)}"]
        parts.append(f"{rate / _MIB:.1f} MiB/s")
        if total is not None and rate > 0 and not finished:
            parts.append(f"ETA {_duration((total - done) / rate)}")
        line = "  ".join(parts)
        padding = " " * max(0, self._width - len(line))
        self._width = len(line)
        self._stream.write(f"\r{line}{padding}")
        self._stream.flush()
        self._used = True

    def close(self) -> None:
        """End the line, if anything was drawn."""
        if self._used:
            self._stream.write("\n")
            self._stream.flush()


def progress_for(stream: TextIO, label: str, quiet: bool) -> ProgressBar | None:
    """A bar on ``stream`` when it is a terminal and not ``quiet``; else None."""
    isatty = getattr(stream, "isatty", None)
    if quiet or not (callable(isatty) and isatty()):
        return None
    return ProgressBar(stream, label)
