"""Wire values as the emulator reads and writes them, implemented from PROTOCOL.md.

The client has parsers and formatters for the same values in
``objectstore_core``; the emulator does not borrow them. A server that read
the wire through the client's own helpers would agree with every bug in
them, and a test pitting the client against it would prove nothing. So
each value is written here again from its PROTOCOL section, and only plain
public value types (:class:`~objectstore_core.TimeToLive`, ...) cross over.

* durations and ``x-sn-expiration`` (§4.3 read, §14.3 written),
* timestamps (§4.4),
* media types for ``content-type`` (§4.1),
* strict base64url (§10.3, §11.1),
* the canonical form a pre-signed URL's signature covers (§11.2).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from objectstore_core import ExpirationPolicy, TimeToIdle, TimeToLive

__all__ = [
    "b64url_decode",
    "canonical_form",
    "format_duration",
    "format_expiration",
    "format_timestamp",
    "is_media_type",
    "parse_duration",
    "parse_expiration",
]

_SECOND = 1_000_000_000  # durations are summed in nanoseconds, as humantime does

# §4.3: the humantime units, case-sensitive (M is a month, m a minute).
_UNIT_NS: dict[str, int] = {
    **dict.fromkeys(("nanos", "nsec", "ns"), 1),
    **dict.fromkeys(("usec", "us", "µs"), 1_000),
    **dict.fromkeys(("millis", "msec", "ms"), 1_000_000),
    **dict.fromkeys(("seconds", "second", "secs", "sec", "s"), _SECOND),
    **dict.fromkeys(("minutes", "minute", "min", "mins", "m"), 60 * _SECOND),
    **dict.fromkeys(("hours", "hour", "hr", "hrs", "h"), 3_600 * _SECOND),
    **dict.fromkeys(("days", "day", "d"), 86_400 * _SECOND),
    **dict.fromkeys(("weeks", "week", "wk", "wks", "w"), 604_800 * _SECOND),
    **dict.fromkeys(("months", "month", "M"), 2_630_016 * _SECOND),  # 30.44 days
    **dict.fromkeys(("years", "year", "yr", "yrs", "y"), 31_557_600 * _SECOND),  # 365.25 days
}
_MAX_SECONDS = 2**64 - 1  # the reference server holds durations in a u64 of seconds
_LONGEST = timedelta.max  # what a timedelta can hold; longer durations saturate here


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _is_unit_char(char: str) -> bool:
    return "a" <= char <= "z" or "A" <= char <= "Z" or char == "µ"


def parse_duration(text: str) -> timedelta:
    """A duration as the reference server reads it (§4.3); ValueError when it would refuse it.

    The literal ``0``, or spans ``<integer>[.<fraction>]<unit>``, optionally
    separated by whitespace. Whitespace may also stand between number and
    unit and inside a run of digits (``1 0s`` is ten seconds). The compact
    form of §14.3 (``400d 1m 30s``) is a case of this grammar. Durations past
    what a :class:`~datetime.timedelta` holds saturate at its maximum (no
    deadline could come later); below a microsecond they are truncated.

    >>> parse_duration("1 days 3600 seconds")
    datetime.timedelta(days=1, seconds=3600)
    >>> parse_duration("2h37min")
    datetime.timedelta(seconds=9420)
    """
    if text.strip() == "0":
        return timedelta(0)
    total = Fraction(0)
    pos, end, spans = 0, len(text), 0
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos == end:
            break
        number, pos = _number(text, pos)
        start = pos
        while pos < end and _is_unit_char(text[pos]):
            pos += 1
        unit = text[start:pos]
        if unit not in _UNIT_NS:
            raise ValueError(f"duration {text!r}: unknown or missing unit {unit!r}")
        total += number * _UNIT_NS[unit]
        spans += 1
    if not spans:
        raise ValueError("duration is empty")
    if total >= (_MAX_SECONDS + 1) * _SECOND:
        raise ValueError(f"duration {text!r} overflows")
    micros = int(total // 1_000)
    if micros > _LONGEST // timedelta(microseconds=1):
        return _LONGEST
    return timedelta(microseconds=micros)


def _number(text: str, pos: int) -> tuple[Fraction, int]:
    """``<digits>[.<digits>]`` at ``pos`` (spaces allowed among the integer digits)."""
    end = len(text)
    if pos == end or not _is_digit(text[pos]):
        raise ValueError(f"duration {text!r}: a number is expected at {text[pos:]!r}")
    digits = ""
    while pos < end and (_is_digit(text[pos]) or text[pos].isspace()):
        if _is_digit(text[pos]):
            digits += text[pos]
        pos += 1
    value = Fraction(int(digits))
    if pos < end and text[pos] == ".":
        start = pos + 1
        pos = start
        while pos < end and _is_digit(text[pos]):
            pos += 1
        if pos == start:
            raise ValueError(f"duration {text!r}: digits are expected after '.'")
        value += Fraction(int(text[start:pos]), 10 ** (pos - start))
        while pos < end and text[pos].isspace():
            pos += 1
    return value, pos


def format_duration(delta: timedelta) -> str:
    """The compact form newer servers emit (§14.3, §13 item 6): ``400d 1m 30s``.

    Days are the largest unit, zero parts are left out, sub-seconds are
    dropped and zero is ``0s``.

    >>> format_duration(timedelta(days=31))
    '31d'
    """
    seconds = delta.days * 86_400 + delta.seconds
    parts = []
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def parse_expiration(text: str) -> ExpirationPolicy | None:
    """An ``x-sn-expiration`` value (§4.3): ``manual`` (None), ``ttl:<d>`` or ``tti:<d>``.

    Exact and case-sensitive; ValueError otherwise.
    """
    if text == "manual":
        return None
    if text.startswith("ttl:"):
        return TimeToLive(parse_duration(text[4:]))
    if text.startswith("tti:"):
        return TimeToIdle(parse_duration(text[4:]))
    raise ValueError(f"expiration policy {text!r} is not manual, ttl:<d> or tti:<d>")


def format_expiration(policy: ExpirationPolicy) -> str:
    """``ttl:<d>`` or ``tti:<d>`` in the compact duration form (§4.3, §14.3)."""
    kind = "ttl" if isinstance(policy, TimeToLive) else "tti"
    return f"{kind}:{format_duration(policy.delta)}"


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits and ``Z`` (§4.4, §13 item 5).

    >>> format_timestamp(datetime(2026, 7, 1, 12, tzinfo=UTC))
    '2026-07-01T12:00:00.000000Z'
    """
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    text = utc.isoformat()  # YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00, the fast spelling
    return f"{text[:-6]}Z" if utc.microsecond else f"{text[:-6]}.000000Z"


# §4.1: ``type/subtype`` and ``; name=value`` parameters (RFC 9110 §8.3.1), where a
# value is a token or a quoted string (with quoted pairs).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*[ \t]*", re.ASCII
)


def is_media_type(value: str) -> bool:
    """Whether a ``content-type`` is a media type (§4.1), e.g. ``text/plain; charset=utf-8``."""
    return _MEDIA_TYPE.fullmatch(value) is not None


_B64URL = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding (§10.3, §11.1); ValueError for anything else.

    Padding, ``+``/``/``, whitespace and an impossible length are refused, and
    so is text whose unused trailing bits are not zero: only the one canonical
    spelling of some bytes decodes, as with the reference server's decoder.
    """
    if len(text) % 4 == 1 or _B64URL.fullmatch(text) is None:
        raise ValueError("not base64url text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:  # pragma: no cover - excluded by the checks above
        raise ValueError("not base64url text") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != text:
        raise ValueError("base64url text is not canonical (non-zero trailing bits)")
    return data


def canonical_form(method: str, raw_path: str, raw_query: str) -> str:
    """What a pre-signed URL's ``os_sig`` signs (§11.2): ``METHOD\\nPATH\\nQUERY``.

    The path and the query values stay exactly as transmitted. Query pieces
    get their names lower-cased (ASCII only), ``os_sig`` is dropped, empty
    pieces too, and the rest are sorted bytewise; HEAD is signed as GET.

    >>> canonical_form("HEAD", "/v1/objects/u/_/k", "os_sig=x&OS_KID=a&&b")
    'GET\\n/v1/objects/u/_/k\\nb&os_kid=a'
    """
    verb = "GET" if method.upper() == "HEAD" else method.upper()
    pieces = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        name, sep, value = piece.partition("=")
        name = "".join(c.lower() if "A" <= c <= "Z" else c for c in name)
        if name != "os_sig":
            pieces.append(name + sep + value)
    # Sorting by code point is sorting by UTF-8 bytes.
    return "\n".join((verb, raw_path, "&".join(sorted(pieces))))
