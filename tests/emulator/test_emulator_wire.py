"""The emulator's own reading and writing of wire values (PROTOCOL §4.3, §4.4, §10.3, §11.2).

They are written apart from the client's helpers, so these tests pin them
to PROTOCOL.md, and some of them pin a place where the two readings of the
wire once agreed on a bug (a lenient base64url decoder).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from objectstore_core import TimeToIdle, TimeToLive
from objectstore_core.emulator import Authenticator, AuthKey, Emulator, MemoryStorage, ServerRequest
from objectstore_core.emulator._wire import (
    b64url_decode,
    canonical_form,
    format_duration,
    format_expiration,
    format_timestamp,
    is_media_type,
    parse_duration,
    parse_expiration,
)
from tests.auth.conftest import KID, PUBLIC_PEM


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("30s", timedelta(seconds=30)),
        ("1h 30m", timedelta(minutes=90)),
        ("1 days 3600 seconds", timedelta(days=1, hours=1)),
        ("2h37min", timedelta(hours=2, minutes=37)),
        ("1.5h", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("1 0s", timedelta(seconds=10)),  # §4.3: whitespace inside a digit run
        ("1month", timedelta(seconds=2_630_016)),
        ("1year", timedelta(seconds=31_557_600)),
        ("2wks", timedelta(days=14)),
        ("250ms 3us 7ns", timedelta(milliseconds=250, microseconds=3)),
        ("5µs", timedelta(microseconds=5)),
        ("400d 1m 30s", timedelta(days=400, seconds=90)),
        ("  12 h  ", timedelta(hours=12)),
        ("999999999d", timedelta(days=999_999_999)),
        ("1000000000d", timedelta.max),  # past a timedelta: saturates
    ],
)
def test_durations_parse_with_the_humantime_grammar(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "  ", "30", "h", "5 parsecs", "1H", "-1s", "1.s", "1,5h", "1s 2", f"{2**64}s"],
)
def test_invalid_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m 30s"),
        (timedelta(days=1), "1d"),
        (timedelta(days=31), "31d"),
        (timedelta(days=400, seconds=90, microseconds=999), "400d 1m 30s"),
        (timedelta(hours=25), "1d 1h"),
    ],
)
def test_durations_are_written_in_the_compact_form(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
    assert parse_duration(text) == delta - timedelta(microseconds=delta.microseconds)


def test_expiration_policies() -> None:
    assert parse_expiration("manual") is None
    assert parse_expiration("ttl:30d") == TimeToLive(timedelta(days=30))
    assert parse_expiration("tti:1h") == TimeToIdle(timedelta(hours=1))
    for bad in ("TTL:1d", "ttl:", "ttl", "forever", "ttl :1d", " manual"):
        with pytest.raises(ValueError):
            parse_expiration(bad)
    assert format_expiration(TimeToLive(timedelta(days=1, seconds=1))) == "ttl:1d 1s"
    assert format_expiration(TimeToIdle(timedelta(0))) == "tti:0s"


def test_timestamps_have_six_fractional_digits_in_utc() -> None:
    assert format_timestamp(datetime(2026, 7, 1, 12, tzinfo=UTC)) == "2026-07-01T12:00:00.000000Z"
    east = timezone(timedelta(hours=2))
    moment = datetime(2026, 7, 1, 14, 0, 0, 123456, tzinfo=east)
    assert format_timestamp(moment) == "2026-07-01T12:00:00.123456Z"
    assert format_timestamp(datetime(999, 1, 2, tzinfo=UTC)) == "0999-01-02T00:00:00.000000Z"


@pytest.mark.parametrize(
    "value",
    [
        "text/plain",
        "application/json",
        "text/plain; charset=utf-8",
        "text/plain;charset=utf-8;format=flowed",
        'multipart/mixed; boundary="a b;c"',
        'text/plain; name="quoted \\" pair"',
        "application/vnd.api+json",
    ],
)
def test_media_types_are_accepted(value: str) -> None:
    assert is_media_type(value)


@pytest.mark.parametrize(
    "value",
    ["", "json", "text/", "/plain", "text/plain;", "text/plain; charset", 'a/b; c="x', "a b/c"],
)
def test_non_media_types_are_refused(value: str) -> None:
    assert not is_media_type(value)


def test_base64url_is_decoded_strictly() -> None:
    assert b64url_decode("") == b""
    assert b64url_decode("-_8") == b"\xfb\xff"
    assert b64url_decode("YQ") == b"a"
    for bad in ("YQ==", "Y", "+/8", "Y Q", "YR", "YWJ", "é"):
        # "YR" and "YWJ" differ from "YQ" and "YWI" only in unused trailing bits.
        with pytest.raises(ValueError):
            b64url_decode(bad)


def test_canonical_form_follows_section_11_2() -> None:
    query = "os_kid=test_kid&os_timestamp=2026-07-01T12:00:00Z&os_duration=3600"
    assert canonical_form("GET", "/v1/objects/test/org=1/presign-key", query) == (
        "GET\n/v1/objects/test/org=1/presign-key\n"
        "os_duration=3600&os_kid=test_kid&os_timestamp=2026-07-01T12:00:00Z"
    )
    # HEAD signs as GET; names (ASCII) lower-cased, values verbatim; os_sig and empty
    # pieces dropped in any case; duplicates kept; pieces without '=' stay bare.
    assert canonical_form("HEAD", "/p%2F", "B=X%41&&OS_SIG=s&a&b=1&b=0&É=1") == (
        "GET\n/p%2F\na&b=0&b=1&b=X%41&É=1"
    )


VECTOR1_QUERY = "os_kid=test_kid&os_timestamp=2026-07-01T12:00:00Z&os_duration=3600"
VECTOR1_SIG = (
    "7iXhFCBd0rW3MeCTqnto4N5El_xCt0jfYfmwgBmUbS7jh46K6p_SDR8nJIIfEGDZeF2lyp3PPPB2lUrpLIkmBg"
)


def test_a_signature_spelled_with_nonzero_trailing_bits_is_refused() -> None:
    """§10.3: ``...Bh`` decodes to the same 64 bytes as ``...Bg`` when read leniently."""
    path = "/v1/objects/test/org=1/presign-key"
    emulator = Emulator(
        MemoryStorage(),
        clock=lambda: datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
        authorize=Authenticator({KID: AuthKey.from_pem(PUBLIC_PEM)}),
    )

    def status(signature: str) -> int:
        request = ServerRequest("GET", f"{path}?{VECTOR1_QUERY}&os_sig={signature}")
        return emulator.handle(request)[0].status

    assert status(VECTOR1_SIG) == 404  # verified; the object just does not exist
    assert VECTOR1_SIG.endswith("g")
    assert status(VECTOR1_SIG[:-1] + "h") == 401
