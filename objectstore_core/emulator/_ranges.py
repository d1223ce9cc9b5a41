"""The ``Range`` header of object GETs (PROTOCOL §6).

Parsing (:func:`parse_range`) happens before the object is looked up, so a
malformed header is a 400 even for a missing object (§1.4 step 5).
Resolution (:func:`resolve_range`) happens against the stored size.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ByteRange", "RangeError", "parse_range", "resolve_range"]

_MAX_U64 = 2**64 - 1


class RangeError(ValueError):
    """A malformed ``Range`` header; the message follows ``invalid Range header: ``."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """One requested range: ``A-B`` (end set), ``A-`` (end None) or ``-N`` (suffix set)."""

    start: int | None = None
    end: int | None = None
    suffix: int | None = None


def _number(text: str) -> int:
    # Digits only: no sign, no whitespace, and within u64 as on the reference server.
    if not text or not text.isascii() or not text.isdigit():
        raise RangeError("invalid byte range")
    value = int(text)
    if value > _MAX_U64:
        raise RangeError("invalid byte range")
    return value


def parse_range(value: str) -> ByteRange | None:
    """Parse a ``Range`` value; None means "serve the whole object".

    The value is lower-cased first and never trimmed. Several ranges (a
    ``,``) are ignored, i.e. None (§6).

    >>> parse_range("bytes=0-99")
    ByteRange(start=0, end=99, suffix=None)
    >>> parse_range("bytes=-9")
    ByteRange(start=None, end=None, suffix=9)
    >>> parse_range("bytes=0-1,5-6") is None
    True
    """
    if any(not (0x20 <= ord(c) <= 0x7E) for c in value):
        raise RangeError("header value is not visible ASCII")
    value = value.lower()
    unit, sep, spec = value.partition("=")
    if not sep:
        raise RangeError("invalid byte range")
    if unit != "bytes":
        raise RangeError(f"invalid range unit: {unit}")
    if "," in spec:
        return None
    first, sep, last = spec.partition("-")
    if not sep:
        raise RangeError("invalid byte range")
    if first == "":
        suffix = _number(last)
        if suffix == 0:
            raise RangeError("invalid byte range")
        return ByteRange(suffix=suffix)
    start = _number(first)
    if last == "":
        return ByteRange(start=start)
    end = _number(last)
    if start > end:
        raise RangeError("invalid byte range")
    return ByteRange(start=start, end=end)


def resolve_range(requested: ByteRange, total: int) -> tuple[int, int] | None:
    """Resolve against the stored size ``total``: ``(first, last)`` inclusive, or None.

    None means unsatisfiable (416 with ``content-range: bytes */T``).
    """
    if total == 0:
        return None
    if requested.suffix is not None:
        return max(0, total - requested.suffix), total - 1
    assert requested.start is not None
    if requested.start >= total:
        return None
    last = total - 1 if requested.end is None else min(requested.end, total - 1)
    return requested.start, last
