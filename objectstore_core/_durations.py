"""Durations, expiration strings and timestamps as they appear on the wire.

Reading accepts both duration forms found in the wild (PROTOCOL §4.3, §14.3):

* the reference server's humantime form, e.g. ``30days``, ``1month 13h 26m 24s``,
  ``1.5h``, ``2h37min``, ``1 days 3600 seconds``;
* the compact ``d h m s`` form of newer servers, e.g. ``400d 1m 30s``.

Writing always uses the compact form (PROTOCOL §14.3), which every server
accepts and every client version reads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from objectstore_core._models import ExpirationPolicy, TimeToIdle, TimeToLive

__all__ = [
    "format_duration",
    "format_expiration",
    "format_timestamp",
    "parse_duration",
    "parse_expiration",
    "parse_timestamp",
]

_NS_PER_S = 1_000_000_000

# PROTOCOL §4.3: humantime 2.4 units, in nanoseconds. Case-sensitive (M is month, m minute).
_UNITS: dict[str, int] = {}
for _names, _ns in (
    (("nanos", "nsec", "ns"), 1),
    (("usec", "us", "µs"), 1_000),
    (("millis", "msec", "ms"), 1_000_000),
    (("seconds", "second", "secs", "sec", "s"), _NS_PER_S),
    (("minutes", "minute", "min", "mins", "m"), 60 * _NS_PER_S),
    (("hours", "hour", "hr", "hrs", "h"), 3600 * _NS_PER_S),
    (("days", "day", "d"), 86_400 * _NS_PER_S),
    (("weeks", "week", "wk", "wks", "w"), 7 * 86_400 * _NS_PER_S),
    (("months", "month", "M"), 2_630_016 * _NS_PER_S),
    (("years", "year", "yr", "yrs", "y"), 31_557_600 * _NS_PER_S),
):
    for _name in _names:
        _UNITS[_name] = _ns

# One span: ASCII digits, an optional fraction, optional whitespace, then a
# unit made of letters (or µ). PROTOCOL §4.3: whitespace is also allowed
# inside digit runs ("1 0s" is ten seconds, as humantime reads it); it is
# dropped before the digits are read. Each part ends where a different class
# of character begins, so matching stays linear.
_DIGIT_RUN = r"[0-9](?:[ \t]*[0-9])*"
_SPAN_RE = re.compile(rf"[ \t]*({_DIGIT_RUN})(?:\.({_DIGIT_RUN}))?[ \t]*([A-Za-zµ]+)[ \t]*")
_BLANKS = str.maketrans("", "", " \t")
_MAX_DURATION_NS = timedelta.max.days * 86_400 * _NS_PER_S


def parse_duration(text: str) -> timedelta:
    """Parse a duration in humantime or compact form; ``ValueError`` names the bad text.

    Sub-microsecond parts are truncated (``timedelta`` has microsecond precision).

    >>> parse_duration("1month 13h 26m 24s") == timedelta(days=31)
    True
    >>> parse_duration("400d 1m 30s")
    datetime.timedelta(days=400, seconds=90)
    """
    if not isinstance(text, str):
        raise TypeError(f"duration must be a str, got {text!r}")
    if text.strip() == "0":
        return timedelta(0)
    total = Fraction(0)
    pos = 0
    spans = 0
    while pos < len(text):
        match = _SPAN_RE.match(text, pos)
        if match is None:
            if text[pos:].strip() == "" and spans:
                break
            raise ValueError(
                f"duration {text!r} is invalid at {text[pos:]!r}: expected <number><unit> "
                "(units d, h, m, s, or humantime units such as days, months, years)"
            )
        digits, fraction, unit = match.groups()
        if unit not in _UNITS:
            raise ValueError(f"duration {text!r} has an unknown unit {unit!r}")
        digits = digits.translate(_BLANKS)
        fraction = fraction.translate(_BLANKS) if fraction else fraction
        number = Fraction(int(digits))
        if fraction:
            number += Fraction(int(fraction), 10 ** len(fraction))
        total += number * _UNITS[unit]
        pos = match.end()
        spans += 1
    if spans == 0:
        raise ValueError(f"duration {text!r} is invalid: it is empty")
    if total > _MAX_DURATION_NS:
        raise ValueError(f"duration {text!r} is too large")
    micros = int(total) // 1_000
    return timedelta(microseconds=micros)


def format_duration(delta: timedelta) -> str:
    """Format a duration in the compact form of PROTOCOL §14.3 (``400d 1m 30s``).

    Days are the largest unit, zero components are omitted, sub-seconds are
    truncated, and zero is ``0s``.
    """
    if delta < timedelta(0):
        raise ValueError(f"duration {delta!r} is invalid: it must not be negative")
    seconds = delta.days * 86_400 + delta.seconds
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{value}{unit}"
        for value, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s"))
        if value
    ]
    return " ".join(parts) or "0s"


def format_expiration(expiration_policy: ExpirationPolicy | None) -> str:
    """The ``x-sn-expiration`` value for a policy (PROTOCOL §4.3); None is ``manual``."""
    policy = expiration_policy  # the parameter is named as in the official client
    if policy is None:
        return "manual"
    if isinstance(policy, TimeToLive):
        return f"ttl:{format_duration(policy.delta)}"
    if isinstance(policy, TimeToIdle):
        return f"tti:{format_duration(policy.delta)}"
    raise TypeError(f"expiration policy {policy!r} must be TimeToLive, TimeToIdle or None")


def parse_expiration(value: str) -> ExpirationPolicy | None:
    """Parse an ``x-sn-expiration`` value: ``manual``, ``ttl:<d>`` or ``tti:<d>`` (§4.3)."""
    text = value  # the parameter is named as in the official client
    if text == "manual":
        return None
    kind, sep, rest = text.partition(":")
    if sep and kind == "ttl":
        return TimeToLive(parse_duration(rest))
    if sep and kind == "tti":
        return TimeToIdle(parse_duration(rest))
    raise ValueError(
        f"expiration {text!r} is invalid: expected 'manual', 'ttl:<duration>' or 'tti:<duration>'"
    )


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with exactly six fractional digits and ``Z`` (PROTOCOL §4.4)."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} is invalid: it must be timezone-aware")
    utc = moment.astimezone(UTC)
    # Formatted by hand: strftime("%Y") does not zero-pad years below 1000 everywhere.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond:06d}Z"
    )


_TIMESTAMP_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(Z|z|[+-][0-9]{2}:[0-9]{2})?"
)


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp of any precision; UTC is assumed without an offset.

    Digits beyond microseconds are truncated (list-parts uses nanoseconds, §9.3).
    """
    if len(text) == 27 and text[-1] == "Z" and text[10] == "T" and text[19] == ".":
        # The form servers emit (§4.4): let the C parser take it.
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # the general parser below gives the precise error
    match = _TIMESTAMP_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"timestamp {text!r} is invalid: expected RFC 3339")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, UTC
        )
    except ValueError as exc:
        raise ValueError(f"timestamp {text!r} is invalid: {exc}") from None
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        try:
            moment -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        except OverflowError:
            raise ValueError(f"timestamp {text!r} is out of range") from None
    return moment
