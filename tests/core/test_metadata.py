"""Tests for objectstore_core._metadata: header value encoding, write headers, reading.

PROTOCOL §4.1 (header table), §4.2 (names), §4.3 (expiration), §14.4
(percent-encoded values), §14.5 (x-sn-size).
"""

from __future__ import annotations

import dataclasses
import re
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objectstore_core import (
    Metadata,
    TimeToIdle,
    TimeToLive,
    decode_header_value,
    encode_header_value,
    metadata_headers,
)
from objectstore_core._metadata import read_metadata, validate_content_type

fast = settings(max_examples=150, deadline=None)

# Text without lone surrogates (which cannot be encoded as UTF-8 at all).
text = st.text(st.characters(blacklist_categories=["Cs"]))
VISIBLE_NO_PERCENT = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
_ENCODED_RE = re.compile(r"(?:[\x20-\x24\x26-\x7e]|%[0-9A-F]{2})*")

# ------------------------------------------------------------ value encoding


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("", ""),
        ("plain", "plain"),
        ("with space", "with space"),
        ("203.0.113.42", "203.0.113.42"),
        (VISIBLE_NO_PERCENT, VISIBLE_NO_PERCENT),
        ("%", "%25"),
        ("100%", "100%25"),
        ("%41", "%2541"),
        ("café 100%", "caf%C3%A9 100%25"),
        ("é", "%C3%A9"),
        ("€", "%E2%82%AC"),
        ("😀", "%F0%9F%98%80"),
        ("\r\n", "%0D%0A"),
        ("a\r\nx-evil: 1", "a%0D%0Ax-evil: 1"),
        ("\t", "%09"),
        ("\x00", "%00"),
        ("\x7f", "%7F"),
        ("\x80", "%C2%80"),
        ("\xff", "%C3%BF"),
    ],
)
def test_encode_header_value(value: str, encoded: str) -> None:
    assert encode_header_value(value) == encoded
    assert decode_header_value(encoded) == value


def test_encode_rejects_lone_surrogates() -> None:
    with pytest.raises(ValueError):
        encode_header_value("\ud800")


@fast
@given(text)
def test_encoded_values_are_safe_header_values(value: str) -> None:
    encoded = encode_header_value(value)
    assert encoded.isascii()
    for forbidden in "\r\n\t\x00\x7f":
        assert forbidden not in encoded
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert _ENCODED_RE.fullmatch(encoded), encoded


@fast
@given(text)
def test_header_value_round_trip(value: str) -> None:
    assert decode_header_value(encode_header_value(value)) == value


@fast
@given(st.text(alphabet=VISIBLE_NO_PERCENT))
def test_plain_ascii_without_percent_is_unchanged(value: str) -> None:
    assert encode_header_value(value) == value
    assert decode_header_value(value) == value


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("caf%C3%A9", "café"),
        ("caf%c3%a9", "café"),
        ("100%25", "100%"),
        ("%0D%0A", "\r\n"),
        ("no percent", "no percent"),
    ],
)
def test_decode_header_value(value: str, decoded: str) -> None:
    assert decode_header_value(value) == decoded


@pytest.mark.parametrize(
    "raw",
    [
        "100%",
        "50% off",
        "%",
        "%%",
        "%ZZ",
        "%G0",
        "a%2",
        "%C3",  # truncated UTF-8 sequence
        "%FF",  # not UTF-8
        "%C3%28",
        "%ED%A0%80",  # encoded surrogate: not strict UTF-8
    ],
)
def test_decode_returns_malformed_values_unchanged(raw: str) -> None:
    assert decode_header_value(raw) == raw


# ----------------------------------------------------------- metadata_headers


def test_metadata_headers_empty() -> None:
    assert metadata_headers() == []
    assert metadata_headers(compression="none", custom={}) == []


def test_metadata_headers_full() -> None:
    headers = metadata_headers(
        content_type="application/json",
        compression="zstd",
        expiration_policy=TimeToLive(timedelta(days=1)),
        origin="203.0.113.42",
        filename="résumé.pdf",
        custom={"BuildId": "1a2b", "note": "100%"},
    )
    assert headers == [
        ("content-type", "application/json"),
        ("content-encoding", "zstd"),
        ("x-sn-expiration", "ttl:1d"),
        ("x-sn-origin", "203.0.113.42"),
        ("x-sn-filename", "r%C3%A9sum%C3%A9.pdf"),
        ("x-snme-buildid", "1a2b"),
        ("x-snme-note", "100%25"),
    ]


@pytest.mark.parametrize(
    ("policy", "value"),
    [
        (TimeToLive(timedelta(days=30)), "ttl:30d"),
        (TimeToIdle(timedelta(seconds=90)), "tti:1m 30s"),
        (TimeToLive(timedelta(days=400, seconds=90)), "ttl:400d 1m 30s"),
    ],
)
def test_metadata_headers_expiration(policy: TimeToLive | TimeToIdle, value: str) -> None:
    assert metadata_headers(expiration_policy=policy) == [("x-sn-expiration", value)]


@pytest.mark.parametrize("compression", ["gzip", "ZSTD", "", "identity"])
def test_metadata_headers_rejects_unknown_compression(compression: str) -> None:
    with pytest.raises(ValueError):
        metadata_headers(compression=compression)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/octet-stream",
        "text/plain; charset=utf-8",
        "text/plain;charset=utf-8",
        "application/vnd.api+json",
        'multipart/form-data; boundary="abc def"',
        "text/plain; charset=utf-8; format=flowed",
    ],
)
def test_valid_content_types(content_type: str) -> None:
    assert validate_content_type(content_type) == content_type
    assert metadata_headers(content_type=content_type) == [("content-type", content_type)]


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "json",
        "/json",
        "text/",
        "text/ plain",
        "text /plain",
        "tëxt/plain",
        "text/plain; charset",
        "text/plain; charset=",
        "text/plain\r\nx-evil: 1",
        "text/plain\nx-evil: 1",
        "text/plain\r",
        "text/plain\x00",
        "text/plain; charset=utf-8\r\n",
        "\r\ntext/plain",
        "text/plain, text/html",
    ],
)
def test_invalid_content_types_are_rejected(content_type: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_content_type(content_type)
    assert repr(content_type) in str(info.value)
    with pytest.raises(ValueError):
        metadata_headers(content_type=content_type, origin="x", custom={"a": "b"})


# Regression (bug found by this suite, since fixed): _metadata._MEDIA_TYPE_RE allowed any
#   character except '"' and '\\' inside a quoted parameter value, so CR/LF (header
#   injection), NUL and non-ASCII passed validate_content_type.
@pytest.mark.parametrize(
    "content_type",
    [
        'text/plain; charset="a\r\nx-evil: 1"',
        'text/plain; charset="\n"',
        'text/plain; charset="\x00"',
        'text/plain; charset="caf\u00e9"',
    ],
)
def test_quoted_parameters_cannot_smuggle_control_characters(content_type: str) -> None:
    with pytest.raises(ValueError):
        validate_content_type(content_type)


@pytest.mark.parametrize("content_type", [b"text/plain", 1, ["text/plain"]])
def test_content_type_must_be_str(content_type: object) -> None:
    with pytest.raises(TypeError):
        validate_content_type(content_type)  # type: ignore[arg-type]


def test_free_text_values_cannot_inject_headers() -> None:
    headers = metadata_headers(
        origin="a\r\nx-evil: 1",
        filename="b\nx-evil: 2",
        custom={"c": "c\r\n\r\nbody"},
    )
    for name, value in headers:
        assert "\r" not in value and "\n" not in value, (name, value)
    assert dict(headers)["x-sn-origin"] == "a%0D%0Ax-evil: 1"


@pytest.mark.parametrize(
    "name",
    ["build_id", "Build-ID", "x.y", "a", "0", TOKEN_CHARS],
)
def test_custom_names_that_are_tokens(name: str) -> None:
    assert metadata_headers(custom={name: "v"}) == [("x-snme-" + name.lower(), "v")]


@pytest.mark.parametrize(
    "name",
    ["", "bad name", "bad:name", "a/b", "a=b", "a;b", "naïve", "a\r\nb", "a\tb", '"q"', "(x)"],
)
def test_custom_names_must_be_tokens(name: str) -> None:
    with pytest.raises(ValueError) as info:
        metadata_headers(custom={name: "v"})
    assert repr(name) in str(info.value)


def test_custom_name_must_be_str() -> None:
    with pytest.raises((ValueError, TypeError)):
        metadata_headers(custom={1: "v"})  # type: ignore[dict-item]


def test_custom_names_are_lower_cased() -> None:
    assert metadata_headers(custom={"BuildId": "1"}) == [("x-snme-buildid", "1")]


@pytest.mark.parametrize(
    "custom", [{"Foo": "1", "foo": "2"}, {"a": "1", "BB": "2", "bb": "3"}, {"X-Y": "1", "x-y": "1"}]
)
def test_custom_names_colliding_after_lower_casing_are_rejected(custom: dict[str, str]) -> None:
    with pytest.raises(ValueError) as info:
        metadata_headers(custom=custom)
    duplicates = [n for n in custom if [m.lower() for m in custom].count(n.lower()) > 1]
    for name in duplicates:
        assert repr(name) in str(info.value)


@pytest.mark.parametrize("value", [1, None, b"v", ["v"], 1.5])
def test_custom_values_must_be_str(value: object) -> None:
    with pytest.raises(TypeError):
        metadata_headers(custom={"a": value})  # type: ignore[dict-item]


@pytest.mark.parametrize("field", ["origin", "filename"])
@pytest.mark.parametrize("value", [1, b"v", ["v"]])
def test_origin_and_filename_must_be_str(field: str, value: object) -> None:
    with pytest.raises(TypeError):
        metadata_headers(**{field: value})  # type: ignore[arg-type]


def test_expiration_policy_type_is_checked() -> None:
    with pytest.raises(TypeError):
        metadata_headers(expiration_policy="ttl:1d")  # type: ignore[arg-type]


# ------------------------------------------------------------ Metadata reading


def test_from_headers_empty() -> None:
    assert Metadata.from_headers({}) == Metadata()
    assert Metadata().custom == {}


def test_from_headers_reference_example() -> None:
    # PROTOCOL §16.3
    metadata = Metadata.from_headers(
        {
            "content-type": "application/json",
            "content-encoding": "zstd",
            "x-sn-expiration": "ttl:30days",
            "x-sn-time-created": "2026-07-01T12:00:00.123456Z",
            "x-sn-time-expires": "2026-07-31T12:00:00.123456Z",
            "x-sn-origin": "203.0.113.42",
            "x-sn-filename": "abc.json",
            "x-snme-build_id": "1a2b3c",
            "content-disposition": 'attachment; filename="abc.json"',
            "accept-ranges": "bytes",
            "transfer-encoding": "chunked",
        }
    )
    assert metadata == Metadata(
        content_type="application/json",
        compression="zstd",
        expiration_policy=TimeToLive(timedelta(days=30)),
        time_created=datetime(2026, 7, 1, 12, 0, 0, 123456, UTC),
        time_expires=datetime(2026, 7, 31, 12, 0, 0, 123456, UTC),
        origin="203.0.113.42",
        filename="abc.json",
        size=None,
        custom={"build_id": "1a2b3c"},
    )


@pytest.mark.parametrize(
    ("value", "policy"),
    [
        ("manual", None),
        ("ttl:1day", TimeToLive(timedelta(days=1))),
        ("tti:7days", TimeToIdle(timedelta(days=7))),
        ("ttl:30days", TimeToLive(timedelta(days=30))),
        ("ttl:1month 13h 26m 24s", TimeToLive(timedelta(days=31))),
        ("tti:2months 29days 2h 52m 48s", TimeToIdle(timedelta(days=90))),
        ("ttl:11months 30days 3h 50m 24s", TimeToLive(timedelta(days=365))),
        ("tti:1year", TimeToIdle(timedelta(days=365.25))),
        ("ttl:400d 1m 30s", TimeToLive(timedelta(days=400, seconds=90))),
        ("ttl:1d", TimeToLive(timedelta(days=1))),
    ],
)
def test_from_headers_reads_both_duration_forms(
    value: str, policy: TimeToLive | TimeToIdle | None
) -> None:
    assert Metadata.from_headers({"x-sn-expiration": value}).expiration_policy == policy


@pytest.mark.parametrize("value", ["", "ttl:", "ttl:1x", "forever", "TTL:1d"])
def test_from_headers_rejects_bad_expiration(value: str) -> None:
    with pytest.raises(ValueError):
        Metadata.from_headers({"x-sn-expiration": value})


@pytest.mark.parametrize(("value", "size"), [("0", 0), ("1234", 1234), ("10000000000", 10**10)])
def test_from_headers_size(value: str, size: int) -> None:
    assert Metadata.from_headers({"x-sn-size": value}).size == size


@pytest.mark.parametrize(
    "value", ["", "-1", "+1", "1.5", "abc", "0x10", "1e3", "1 2", "\u0661\u0662", "\u00b2"]
)
def test_from_headers_rejects_bad_size(value: str) -> None:
    with pytest.raises(ValueError):
        Metadata.from_headers({"x-sn-size": value})


@pytest.mark.parametrize(("value", "compression"), [("zstd", "zstd"), ("", None)])
def test_from_headers_content_encoding(value: str, compression: str | None) -> None:
    assert Metadata.from_headers({"content-encoding": value}).compression == compression


@pytest.mark.parametrize("value", ["gzip", "ZSTD", "identity", "br", "zstd, gzip", " zstd"])
def test_from_headers_rejects_unknown_content_encoding(value: str) -> None:
    with pytest.raises(ValueError) as info:
        Metadata.from_headers({"content-encoding": value})
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("name", ["x-sn-time-created", "x-sn-time-expires"])
@pytest.mark.parametrize("value", ["", "yesterday", "2026-13-01T00:00:00Z"])
def test_from_headers_rejects_bad_timestamps(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        Metadata.from_headers({name: value})


def test_from_headers_decodes_free_text_values() -> None:
    metadata = Metadata.from_headers(
        {
            "x-sn-origin": "caf%C3%A9",
            "x-sn-filename": "r%C3%A9sum%C3%A9 100%25.pdf",
            "x-snme-note": "%E2%98%83",
            "x-snme-legacy": "100%",  # old data written raw
        }
    )
    assert metadata.origin == "café"
    assert metadata.filename == "résumé 100%.pdf"
    assert metadata.custom == {"note": "☃", "legacy": "100%"}


def test_from_headers_leaves_content_type_and_other_headers_alone() -> None:
    metadata = Metadata.from_headers(
        {"content-type": "text/plain; x=%41", "x-sn-unknown": "1", "x-snm-almost": "2"}
    )
    assert metadata.content_type == "text/plain; x=%41"
    assert metadata.custom == {}


def test_non_ascii_round_trip_through_headers() -> None:
    custom = {"Note": "naïve ☃ 100%\r\n", "emoji": "😀", "plain": "x"}
    headers = metadata_headers(
        content_type="text/plain; charset=utf-8",
        compression="zstd",
        expiration_policy=TimeToIdle(timedelta(days=7)),
        origin="2001:db8::1 über",
        filename="résumé 100%.pdf",
        custom=custom,
    )
    for _, value in headers:
        assert value.isascii() and "\r" not in value and "\n" not in value
    metadata = Metadata.from_headers(dict(headers))
    assert metadata.content_type == "text/plain; charset=utf-8"
    assert metadata.compression == "zstd"
    assert metadata.expiration_policy == TimeToIdle(timedelta(days=7))
    assert metadata.origin == "2001:db8::1 über"
    assert metadata.filename == "résumé 100%.pdf"
    assert metadata.custom == {name.lower(): value for name, value in custom.items()}


@fast
@given(
    origin=st.none() | text,
    filename=st.none() | text,
    custom=st.dictionaries(
        st.text(alphabet=string.ascii_lowercase + string.digits + "_-.", min_size=1), text
    ),
)
def test_metadata_round_trip_property(
    origin: str | None, filename: str | None, custom: dict[str, str]
) -> None:
    headers = metadata_headers(origin=origin, filename=filename, custom=custom)
    assert len({name for name, _ in headers}) == len(headers)
    metadata = Metadata.from_headers(dict(headers))
    assert metadata.origin == origin
    assert metadata.filename == filename
    assert metadata.custom == custom


def test_metadata_is_frozen() -> None:
    metadata = Metadata()
    with pytest.raises(dataclasses.FrozenInstanceError):
        metadata.size = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("headers", "custom"),
    [
        ({"content-type": "text/plain", "x-sn-size": "3", "date": "today"}, {}),
        ({"content-type": "text/plain", "x-other": "v"}, {}),
        ({"x-sn-batch-operation-index": "0", "x-snme-note": "100%25"}, {"note": "100%"}),
        ({"x-snme-a": "1", "x-other": "v", "x-snme-b": "2"}, {"a": "1", "b": "2"}),
    ],
)
def test_custom_metadata_is_read_whatever_else_the_headers_carry(
    headers: dict[str, str], custom: dict[str, str]
) -> None:
    assert Metadata.from_headers(headers).custom == custom
    assert read_metadata(headers, default_size=1).custom == custom


def test_from_headers_of_a_subclass_builds_the_subclass() -> None:
    class Tagged(Metadata):
        __slots__ = ()

    headers = {"content-type": "text/plain", "x-snme-a": "b", "x-sn-size": "3"}
    metadata = Tagged.from_headers(headers)
    assert type(metadata) is Tagged
    assert metadata == Tagged("text/plain", size=3, custom={"a": "b"})
    assert dataclasses.astuple(metadata) == dataclasses.astuple(Metadata.from_headers(headers))
