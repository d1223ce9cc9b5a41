"""Fuzzing every parser of the core with arbitrary input.

Direct parsers may only raise ValueError or TypeError; flows fed arbitrary
responses may only raise ObjectstoreError subclasses. Anything else (KeyError,
OverflowError, RecursionError, UnicodeError outside ValueError, ...) is a bug.
A per-example deadline makes a pathological slowdown fail the test.

The regression tests at the end pin the bugs this fuzzing found (all since
fixed) with their exact triggers.
"""

from __future__ import annotations

import contextlib
import json
import string
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from objectstore_core import (
    Compress,
    GetOutcome,
    Metadata,
    ObjectstoreError,
    ProtocolError,
    RequestError,
    Response,
    SendRequest,
    Target,
    Usecase,
    decode_header_value,
    delete_flow,
    error_for_response,
    extend_expiry_flow,
    get_flow,
    head_flow,
    parse_duration,
    parse_expiration,
    parse_timestamp,
    put_flow,
)
from objectstore_core._http import Flow

T = TypeVar("T")

fuzz = settings(
    max_examples=100,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
)

TARGET = Target("", Usecase("attachments"), Usecase("attachments").for_project(1, 2).push("a", 3))

# ------------------------------------------------------------------- strategies

UNITS = ["ns", "us", "µs", "ms", "s", "m", "min", "h", "hr", "d", "day", "days", "w", "M"]
UNITS += ["month", "months", "y", "year", "years", "S", "H", "x", "", " "]

span = st.tuples(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.sampled_from(["", ".5", ".000000001", ".", "..1"]),
    st.sampled_from(["", " "]),
    st.sampled_from(UNITS),
).map("".join)
duration_text = st.one_of(
    st.text(max_size=40),
    st.lists(span, max_size=6).map(" ".join),
    st.lists(span, max_size=6).map("".join),
    st.text(alphabet="0123456789 .smhdMywµnu", max_size=30),
)

# Any year, including 0001 and 9999 where a UTC offset leaves datetime's range.
timestamp_text = st.from_regex(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,12})?"
    r"(Z|z|[+-][0-9]{2}:[0-9]{2})?",
    fullmatch=True,
)
valid_timestamps = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

KNOWN_HEADERS = [
    "content-type",
    "content-encoding",
    "content-length",
    "content-range",
    "x-sn-size",
    "x-sn-expiration",
    "x-sn-time-created",
    "x-sn-time-expires",
    "x-sn-origin",
    "x-sn-filename",
    "x-snme-build_id",
    "x-snme-",
    "retry-after",
]
# Transports decode header bytes as Latin-1, so values are code points <= U+00FF.
latin1 = st.text(st.characters(max_codepoint=0xFF), max_size=30)
header_values = st.one_of(
    latin1,
    st.text(max_size=10),
    st.integers(min_value=-5, max_value=10**15).map(str),
    st.sampled_from(["zstd", "", "gzip", "manual", "caf%C3%A9", "%", "%FF", "inf", "1e3"]),
    st.sampled_from(["\xb2", "1\xb9", "\u0661", " 12 ", "+1", "0x1"]),
    st.sampled_from(["ttl:1day", "tti:2months 29days 2h 52m 48s", "ttl:400d 1m 30s", "ttl:"]),
    valid_timestamps,
    timestamp_text,
    duration_text.map(lambda d: "ttl:" + d),
)
header_names = st.one_of(
    st.sampled_from(KNOWN_HEADERS),
    st.text(alphabet=string.ascii_lowercase + "-_", max_size=12),
    st.text(max_size=8).map(lambda n: "x-snme-" + n),
)
headers_strategy = st.dictionaries(header_names, header_values, max_size=10)

bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=50).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b'{"key":"k"}', b'{"key":""}', b'{"detail":"x"}', b"[]", b"null", b"{"]),
    st.text(max_size=20).map(lambda k: json.dumps({"key": k}).encode()),
    st.text(max_size=20).map(lambda d: json.dumps({"detail": d, "causes": [d]}).encode()),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()),
)
# Half the statuses are the ones flows treat specially, so success paths get fuzzed too.
statuses = st.one_of(
    st.sampled_from([200, 201, 204, 206, 404, 409, 429, 500]),
    st.integers(min_value=100, max_value=599),
)
responses = st.builds(Response, statuses, headers_strategy, bodies)


def drive(flow: Flow[T], response: Response) -> T:
    """One request, one response; the flow must then finish."""
    step = next(flow)
    if isinstance(step, Compress):  # performed as a driver does
        step = flow.send(step.run(cpus=1))
    assert isinstance(step, SendRequest)
    try:
        extra = flow.send(response)
    except StopIteration as stop:
        return cast(T, stop.value)
    raise AssertionError(f"flow asked for another step: {extra!r}")


# ---------------------------------------------------------------- direct parsers


@fuzz
@given(duration_text)
def test_parse_duration(text: str) -> None:
    try:
        result = parse_duration(text)
    except ValueError:
        return
    assert isinstance(result, timedelta)
    assert result >= timedelta(0)


@fuzz
@given(st.one_of(st.text(max_size=40), duration_text.map(lambda d: "ttl:" + d)))
def test_parse_expiration(text: str) -> None:
    try:
        parse_expiration(text)
    except ValueError:
        return


@fuzz
@given(st.one_of(st.text(max_size=40), timestamp_text, valid_timestamps))
def test_parse_timestamp(text: str) -> None:
    try:
        result = parse_timestamp(text)
    except ValueError:
        return
    assert result.tzinfo is not None
    assert result.utcoffset() == timedelta(0)


@fuzz
@given(st.text())
def test_decode_header_value_any_text(value: str) -> None:
    try:
        result = decode_header_value(value)
    except ValueError:
        # only possible for lone surrogates, which no transport produces
        assert any("\ud800" <= c <= "\udfff" for c in value)
        return
    assert isinstance(result, str)


@fuzz
@given(st.text(st.characters(blacklist_categories=["Cs"])))
def test_decode_header_value_never_raises_without_surrogates(value: str) -> None:
    assert isinstance(decode_header_value(value), str)


@fuzz
@given(headers_strategy)
def test_metadata_from_headers(headers: dict[str, str]) -> None:
    try:
        metadata = Metadata.from_headers(headers)
    except ValueError:
        return
    assert metadata.compression in (None, "zstd")
    assert metadata.size is None or metadata.size >= 0
    assert all(isinstance(v, str) for v in metadata.custom.values())


@fuzz
@given(
    st.integers(min_value=-1000, max_value=10_000),
    headers_strategy,
    bodies,
    st.sampled_from([None, "put", "get", "head", "delete", "extend_expiry"]),
)
def test_error_for_response(
    status: int, headers: dict[str, str], body: bytes, operation: str | None
) -> None:
    error = error_for_response(status, headers, body, operation=operation, key="k")
    assert isinstance(error, RequestError)
    assert error.status == status
    assert error.response == body.decode("utf-8", errors="replace")
    assert error.operation == operation
    assert str(status) in str(error)


# ------------------------------------------------------------------------ flows


@fuzz
@given(responses, st.sampled_from([None, "k"]))
def test_put_flow_responses(response: Response, key: str | None) -> None:
    try:
        result = drive(put_flow(TARGET, b"payload", key=key), response)
    except ObjectstoreError as error:
        assert error.operation == "put"
        return
    assert response.status in (200, 201)
    assert isinstance(result, str) and result


@fuzz
@given(responses, st.booleans(), st.sampled_from([None, (0, 10), (5, None)]))
def test_get_flow_responses(response: Response, decompress: bool, byte_range: Any) -> None:
    flow = get_flow(TARGET, "k", decompress=decompress, byte_range=byte_range)
    try:
        result = drive(flow, response)
    except ObjectstoreError as error:
        assert error.operation == "get"
        assert response.status != 404
        return
    if response.status == 404:
        assert result is None
    else:
        assert response.status in (200, 206)
        assert isinstance(result, GetOutcome)
        assert result.expected_length is None or result.expected_length >= 0
        assert not (result.decode and (byte_range is not None or not decompress))


@fuzz
@given(responses)
def test_head_flow_responses(response: Response) -> None:
    try:
        result = drive(head_flow(TARGET, "k"), response)
    except ObjectstoreError:
        assert response.status not in (404,)
        return
    assert result is None if response.status == 404 else isinstance(result, Metadata)


@fuzz
@given(responses)
def test_delete_flow_responses(response: Response) -> None:
    try:
        assert drive(delete_flow(TARGET, "k"), response) is None
    except ObjectstoreError:
        assert response.status != 404 and not 200 <= response.status < 300


@fuzz
@given(responses)
def test_extend_expiry_flow_responses(response: Response) -> None:
    flow = extend_expiry_flow(TARGET, "k", from_now=timedelta(days=1))
    try:
        assert drive(flow, response) is None
    except ObjectstoreError:
        assert not 200 <= response.status < 300


# ------------------------------------------------------------------------ hangs


@pytest.mark.parametrize(
    "text",
    [
        "1s " * 5000,
        "1" * 5000 + "s",
        " " * 50_000,
        "1 " * 20_000,
        "1.5" + "0" * 4000 + "h",
        "1" + "\t" * 50_000 + "x",
    ],
)
def test_long_durations_are_fast(text: str) -> None:
    started = time.perf_counter()
    with contextlib.suppress(ValueError):
        parse_duration(text)
    assert time.perf_counter() - started < 0.5


# Regression (bug found by this suite, since fixed): _durations._SPAN_RE backtracks quadratically
#   ('[\d ]*' then '\s*'): a number followed by many spaces takes O(n^2) (8000 spaces ~0.6 s, 64
#   KiB ~40 s)
def test_duration_with_many_spaces_is_linear() -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError):
        parse_expiration("ttl:1" + " " * 8000)
    assert time.perf_counter() - started < 0.05


def test_long_header_values_are_fast() -> None:
    started = time.perf_counter()
    for value in ("%" * 100_000, "%41" * 30_000, "é" * 50_000):
        decode_header_value(value)
    Metadata.from_headers({"x-snme-a": "%E2%98%83" * 10_000, "x-sn-size": "9" * 1000})
    assert time.perf_counter() - started < 1.0


# ------------------------------------------------------------------- known bugs


# Regression (bug found by this suite, since fixed): _operations._announced_length checks
#   str.isdigit(), which accepts Latin-1 superscript digits such as '\xb2'; int() then raises a
#   bare ValueError out of the get flow instead of ProtocolError
@pytest.mark.parametrize("value", ["\xb2", "1\xb9"])
def test_get_non_ascii_content_length(value: str) -> None:
    with pytest.raises(ProtocolError):
        drive(get_flow(TARGET, "k"), Response(200, {"content-length": value}))


BOUNDARY_TIMESTAMPS = ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:30"]


# Regression (bug found by this suite, since fixed): parse_timestamp raises OverflowError near
#   datetime.min/max, which Metadata.from_headers does not turn into ValueError
@pytest.mark.parametrize("value", BOUNDARY_TIMESTAMPS)
def test_parse_timestamp_overflow_in_metadata(value: str) -> None:
    with pytest.raises(ValueError):
        Metadata.from_headers({"x-sn-time-expires": value})


# Regression (bug found by this suite, since fixed): OverflowError from parse_timestamp escapes
#   get/head flows (_read_metadata only converts ValueError to ProtocolError)
@pytest.mark.parametrize("value", BOUNDARY_TIMESTAMPS)
@pytest.mark.parametrize("operation", ["get", "head"])
def test_parse_timestamp_overflow_in_flows(value: str, operation: str) -> None:
    flow: Flow[Any] = get_flow(TARGET, "k") if operation == "get" else head_flow(TARGET, "k")
    with pytest.raises(ProtocolError):
        drive(flow, Response(200, {"x-sn-time-created": value}))


# Regression (bug found by this suite, since fixed): json.loads RecursionError escapes
#   error_for_response/_detail and parse_key_response (only ValueError is caught)
@pytest.mark.parametrize("status", [200, 500])
def test_deeply_nested_json_in_put_responses(status: int) -> None:
    with pytest.raises(ObjectstoreError):
        drive(put_flow(TARGET, b"x", key="k"), Response(status, {}, b'{"a":' + b"[" * 100_000))
