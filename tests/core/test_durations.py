"""Tests for objectstore_core._durations: durations, expiration strings, timestamps.

PROTOCOL §4.3 (humantime durations, expiration strings), §4.4 (timestamps),
§14.3 (compact durations).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objectstore_core import (
    TimeToIdle,
    TimeToLive,
    format_duration,
    format_expiration,
    format_timestamp,
    parse_duration,
    parse_expiration,
    parse_timestamp,
)

fast = settings(max_examples=150, deadline=None)

MONTH = timedelta(seconds=2_630_016)  # 30.44 days (PROTOCOL §4.3)
YEAR = timedelta(seconds=31_557_600)  # 365.25 days

# --------------------------------------------------------------- humantime table

# PROTOCOL §4.3, "Emitted on read": stored duration -> emitted text.
EMITTED_TABLE = [
    (timedelta(seconds=30), "30s"),
    (timedelta(seconds=90), "1m 30s"),
    (timedelta(hours=1), "1h"),
    (timedelta(days=1), "1day"),
    (timedelta(days=1, hours=1), "1day 1h"),
    (timedelta(days=7), "7days"),
    (timedelta(days=30), "30days"),
    (timedelta(days=31), "1month 13h 26m 24s"),
    (timedelta(days=90), "2months 29days 2h 52m 48s"),
    (timedelta(days=365), "11months 30days 3h 50m 24s"),
    (timedelta(days=365.25), "1year"),
    (timedelta(0), "0s"),
]


@pytest.mark.parametrize(("expected", "text"), EMITTED_TABLE)
def test_parse_reference_server_output(expected: timedelta, text: str) -> None:
    assert parse_duration(text) == expected


# PROTOCOL §4.3: "Examples that parse".
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("1h 30m", timedelta(minutes=90)),
        ("1 days 3600 seconds", timedelta(days=1, hours=1)),
        ("2h37min", timedelta(hours=2, minutes=37)),
        ("1.5h", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("90d", timedelta(days=90)),
        ("0", timedelta(0)),
        # compact form of §14.3
        ("400d 1m 30s", timedelta(days=400, seconds=90)),
        ("1d", timedelta(days=1)),
        ("1d 2h 3m 4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        # fractions, whitespace and spans without separators
        ("0.5s", timedelta(milliseconds=500)),
        ("1.25d", timedelta(days=1, hours=6)),
        ("0.000001s", timedelta(microseconds=1)),
        ("0.0000001s", timedelta(0)),  # below timedelta precision: truncated
        ("1500ns", timedelta(microseconds=1)),
        ("1h30m", timedelta(minutes=90)),
        ("  30s  ", timedelta(seconds=30)),
        ("1s 1s", timedelta(seconds=2)),
        ("1M 1m", MONTH + timedelta(minutes=1)),
        ("2years", 2 * YEAR),
        ("10µs", timedelta(microseconds=10)),
    ],
)
def test_parse_examples(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 0s", timedelta(seconds=10)),
        ("1 000 s", timedelta(seconds=1000)),
        ("1\t5m 3 0s", timedelta(minutes=15, seconds=30)),
        ("1 0.2 5h", timedelta(hours=10, minutes=15)),
        ("2 4 hours 1 0 min", timedelta(hours=24, minutes=10)),
    ],
)
def test_whitespace_inside_digit_runs_is_read_as_humantime_does(
    text: str, expected: timedelta
) -> None:
    # PROTOCOL §4.3: whitespace is allowed inside digit runs ("1 0s" is 10 s).
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["1 .5h", "1. 5h", "1 0", "5 s 1 ", "1 0 x"])
def test_whitespace_does_not_make_other_text_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


_S = 1_000_000_000
UNITS_NS: list[tuple[str, int]] = [
    *[(u, 1) for u in ("nanos", "nsec", "ns")],
    *[(u, 1_000) for u in ("usec", "us", "µs")],
    *[(u, 1_000_000) for u in ("millis", "msec", "ms")],
    *[(u, _S) for u in ("seconds", "second", "secs", "sec", "s")],
    *[(u, 60 * _S) for u in ("minutes", "minute", "min", "mins", "m")],
    *[(u, 3600 * _S) for u in ("hours", "hour", "hr", "hrs", "h")],
    *[(u, 86_400 * _S) for u in ("days", "day", "d")],
    *[(u, 7 * 86_400 * _S) for u in ("weeks", "week", "wk", "wks", "w")],
    *[(u, 2_630_016 * _S) for u in ("months", "month", "M")],
    *[(u, 31_557_600 * _S) for u in ("years", "year", "yr", "yrs", "y")],
]


@pytest.mark.parametrize(("unit", "nanos"), UNITS_NS)
@pytest.mark.parametrize("sep", ["", " "])
def test_every_unit_spelling(unit: str, nanos: int, sep: str) -> None:
    # 3000 of each unit is a whole number of microseconds even for nanoseconds.
    assert parse_duration(f"3000{sep}{unit}") == timedelta(microseconds=3000 * nanos // 1000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1M", MONTH),
        ("1m", timedelta(minutes=1)),
        ("1month", MONTH),
        ("1min", timedelta(minutes=1)),
    ],
)
def test_units_are_case_sensitive(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "1",
        "s",
        "1x",
        "1S",
        "1H",
        "1D",
        "1Day",
        "1MONTH",
        "1Y",
        "1W",
        "1Ms",
        "-1s",
        "+1s",
        "1.s",
        ".5s",
        "1.5.5h",
        "1s2",
        "1s,2m",
        "1s;2m",
        "1 s s",
        "1e3s",
        "inf",
        "nan",
        "ttl:1d",
        "1d-1h",
        "one day",
        "1\x00s",
        "9999999999999999999999y",
        "99999999999d",
    ],
)
def test_invalid_durations_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("value", [30, 1.5, None, b"30s", timedelta(seconds=30)])
def test_parse_duration_rejects_non_str(value: object) -> None:
    with pytest.raises(TypeError):
        parse_duration(value)  # type: ignore[arg-type]


# Regression (bug found by this suite, since fixed): _durations._SPAN_RE uses \d, which matches
#   non-ASCII Unicode digits (humantime and PROTOCOL §4.3 only allow ASCII digits)
@pytest.mark.parametrize("text", ["\u0661s", "\uff13\uff10s", "\u0967d"])
def test_non_ascii_digits_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# ------------------------------------------------------------ compact formatting


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(microseconds=999_999), "0s"),
        (timedelta(seconds=1), "1s"),
        (timedelta(seconds=1.999), "1s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(seconds=60), "1m"),
        (timedelta(seconds=90), "1m 30s"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=1, seconds=1), "1h 1s"),
        (timedelta(hours=25), "1d 1h"),
        (timedelta(days=1), "1d"),
        (timedelta(days=30), "30d"),
        (timedelta(days=365), "365d"),
        (timedelta(days=400, seconds=90), "400d 1m 30s"),
        (timedelta(days=400, seconds=90, microseconds=500_000), "400d 1m 30s"),
        (timedelta(days=2, hours=3, minutes=4, seconds=5), "2d 3h 4m 5s"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
    assert parse_duration(text) == timedelta(days=delta.days, seconds=delta.seconds)


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-1))


_COMPACT_RE = re.compile(r"(?:\d+d)?(?: ?(?:[1-9]|1\d|2[0-3])h)?(?: ?[1-5]?\dm)?(?: ?[1-5]?\ds)?")

durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=36_525))


@fast
@given(durations)
def test_format_duration_round_trips_truncated_to_seconds(delta: timedelta) -> None:
    text = format_duration(delta)
    assert parse_duration(text) == timedelta(days=delta.days, seconds=delta.seconds)
    assert _COMPACT_RE.fullmatch(text), text
    assert not text.startswith(" ") and not text.endswith(" ") and "  " not in text
    # zero components are omitted (except the lone 0s)
    assert text == "0s" or not re.search(r"(?<!\d)0[dhms]", text)


# -------------------------------------------------------------------- expiration


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        (None, "manual"),
        (TimeToLive(timedelta(days=1)), "ttl:1d"),
        (TimeToLive(timedelta(0)), "ttl:0s"),
        (TimeToIdle(timedelta(seconds=90)), "tti:1m 30s"),
        (TimeToLive(timedelta(days=400, seconds=90)), "ttl:400d 1m 30s"),
        (TimeToIdle(timedelta(days=30, microseconds=1)), "tti:30d"),
    ],
)
def test_format_expiration(policy: TimeToLive | TimeToIdle | None, text: str) -> None:
    assert format_expiration(policy) == text


@pytest.mark.parametrize("policy", ["ttl:1d", timedelta(days=1), 1])
def test_format_expiration_rejects_other_types(policy: object) -> None:
    with pytest.raises(TypeError):
        format_expiration(policy)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("manual", None),
        ("ttl:30days", TimeToLive(timedelta(days=30))),
        ("ttl:1day", TimeToLive(timedelta(days=1))),
        ("tti:7days", TimeToIdle(timedelta(days=7))),
        ("ttl:1month 13h 26m 24s", TimeToLive(timedelta(days=31))),
        ("tti:2months 29days 2h 52m 48s", TimeToIdle(timedelta(days=90))),
        ("ttl:1year", TimeToLive(YEAR)),
        ("ttl:400d 1m 30s", TimeToLive(timedelta(days=400, seconds=90))),
        ("tti:0s", TimeToIdle(timedelta(0))),
        ("ttl:0", TimeToLive(timedelta(0))),
        ("ttl:1h 30m", TimeToLive(timedelta(minutes=90))),
    ],
)
def test_parse_expiration(text: str, policy: TimeToLive | TimeToIdle | None) -> None:
    assert parse_expiration(text) == policy


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Manual",
        "MANUAL",
        "manual ",
        "ttl",
        "ttl:",
        "tti:",
        "TTL:1d",
        "ttx:1d",
        "ttl=1d",
        "ttl 1d",
        " ttl:1d",
        "ttl:1x",
        "ttl:-1s",
        "ttl:1d:2h",
        "1d",
    ],
)
def test_parse_expiration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_expiration(text)


policies = st.one_of(st.none(), st.builds(TimeToLive, durations), st.builds(TimeToIdle, durations))


@fast
@given(policies)
def test_expiration_round_trip(policy: TimeToLive | TimeToIdle | None) -> None:
    parsed = parse_expiration(format_expiration(policy))
    if policy is None:
        assert parsed is None
    else:
        assert type(parsed) is type(policy)
        assert parsed is not None
        assert parsed.delta == timedelta(days=policy.delta.days, seconds=policy.delta.seconds)


# -------------------------------------------------------------------- timestamps

_EMITTED_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 7, 1, 12, 0, 0, 123456, UTC), "2026-07-01T12:00:00.123456Z"),
        (datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC), "2026-07-01T12:00:00.000000Z"),
        (datetime(2026, 7, 1, 12, 0, 0, 1, UTC), "2026-07-01T12:00:00.000001Z"),
        (
            datetime(2026, 7, 1, 14, 30, tzinfo=timezone(timedelta(hours=2, minutes=30))),
            "2026-07-01T12:00:00.000000Z",
        ),
        (
            datetime(2026, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-1))),
            "2027-01-01T00:00:00.000000Z",
        ),
    ],
)
def test_format_timestamp(moment: datetime, text: str) -> None:
    assert format_timestamp(moment) == text


def test_format_timestamp_rejects_naive() -> None:
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 7, 1, 12, 0, 0))


# Regression (bug found by this suite, since fixed): format_timestamp uses strftime('%Y'), which
#   glibc does not zero-pad: years before 1000 are not RFC 3339 and do not parse back
def test_format_timestamp_pads_years_to_four_digits() -> None:
    moment = datetime(999, 1, 2, 3, 4, 5, 6, UTC)
    text = format_timestamp(moment)
    assert text == "0999-01-02T03:04:05.000006Z"
    assert parse_timestamp(text) == moment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07-01T12:00:00.123456Z", datetime(2026, 7, 1, 12, 0, 0, 123456, UTC)),
        ("2026-07-01T12:00:01.734201933Z", datetime(2026, 7, 1, 12, 0, 1, 734201, UTC)),
        ("2026-07-01T12:00:00.999999999Z", datetime(2026, 7, 1, 12, 0, 0, 999999, UTC)),
        ("2026-07-01T12:00:00Z", datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)),
        ("2026-07-01T12:00:00.1Z", datetime(2026, 7, 1, 12, 0, 0, 100000, UTC)),
        ("2026-07-01T12:00:00.123Z", datetime(2026, 7, 1, 12, 0, 0, 123000, UTC)),
        ("2026-07-01t12:00:00z", datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)),
        ("2026-07-01 12:00:00Z", datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)),
        ("2026-07-01T12:00:00", datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)),
        ("2026-07-01T12:00:00+00:00", datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)),
        ("2026-07-01T12:00:00-00:00", datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)),
        ("2026-07-01T14:00:00+02:00", datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)),
        ("2026-07-01T06:30:00.5-05:30", datetime(2026, 7, 1, 12, 0, 0, 500000, UTC)),
        ("2026-01-01T00:30:00+01:00", datetime(2025, 12, 31, 23, 30, tzinfo=UTC)),
        (" 2026-07-01T12:00:00Z ", datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "2026-07-01",
        "12:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-07-01T25:00:00Z",
        "2026-07-01T12:60:00Z",
        "2026-07-01T12:00:60Z",
        "2026-07-01T12:00:00+0200",
        "2026-07-01T12:00:00+02",
        "2026/07/01 12:00:00",
        "2026-07-01T12:00:00ZZ",
        "2026-07-01T12:00:00.Z",
        "2026-07-01X12:00:00Z",
        "26-07-01T12:00:00Z",
        "2026-7-1T12:00:00Z",
        "2026-07-01T12:00:00 Z",
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


# Regression (bug found by this suite, since fixed): parse_timestamp applies the UTC offset with
#   datetime arithmetic that raises OverflowError (not ValueError) near datetime.min/max
@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_parse_timestamp_out_of_range_offset_is_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


# Regression (bug found by this suite, since fixed): _durations._TIMESTAMP_RE uses \d, which
#   matches non-ASCII digits
def test_parse_timestamp_rejects_non_ascii_digits() -> None:
    with pytest.raises(ValueError):
        parse_timestamp("\uff12\uff10\uff12\uff16-07-01T12:00:00Z")


offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9998, 12, 30), timezones=offsets
)


@fast
@given(aware)
def test_timestamp_round_trip(moment: datetime) -> None:
    text = format_timestamp(moment)
    assert _EMITTED_RE.fullmatch(text), text
    parsed = parse_timestamp(text)
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)


@fast
@given(aware, st.integers(min_value=0, max_value=999))
def test_timestamp_nanosecond_precision_is_truncated(moment: datetime, nanos: int) -> None:
    text = format_timestamp(moment)[:-1] + f"{nanos:03d}Z"
    assert parse_timestamp(text) == moment
