"""Tests for objectstore_core._operations: the flows, driven by hand.

Each test builds a flow, takes the request it yields, checks it, sends a
scripted :class:`Response` and checks the result. PROTOCOL §3 (endpoints),
§5 (compression), §6 (ranges), §14.2 (extend expiry), API §2.
"""

from __future__ import annotations

import inspect
import io
import json
import pathlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar, cast

import pytest
import zstandard

from objectstore_core import (
    Compress,
    Download,
    ExpiryExtensionRejected,
    Forbidden,
    GetOutcome,
    Measure,
    Metadata,
    ObjectNotFound,
    ObjectstoreError,
    PayloadKind,
    ProtocolError,
    RateLimited,
    Request,
    RequestError,
    Response,
    Scope,
    SendRequest,
    ServerError,
    Target,
    Timeout,
    TimeToIdle,
    TimeToLive,
    Unauthorized,
    Upload,
    Usecase,
    delete_flow,
    extend_expiry_flow,
    get_flow,
    head_flow,
    parse_accept_encoding,
    put_flow,
)
from objectstore_core._http import Flow

T = TypeVar("T")

MIB = 1024 * 1024
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
USECASE = Usecase("attachments")
SCOPE = USECASE.for_project(42, 1337)
TARGET = Target("", USECASE, SCOPE)
RAW_TARGET = Target("", Usecase("raw_things", compression="none"), Scope(org=1))
COLLECTION = "/v1/objects/attachments/org=42;project=1337/"
GENERATED = "6b0f4f0e-2f0a-4b8f-a1d3-7f6e1c2d9a10"


# ---------------------------------------------------------------------- helpers


def start(flow: Flow[T]) -> Request:
    """Run the flow to its first request, compressing as a driver would on the way."""
    assert inspect.getgeneratorstate(flow) == inspect.GEN_CREATED
    step = next(flow)
    if isinstance(step, Compress):
        step = flow.send(step.run(cpus=1))
    assert isinstance(step, SendRequest), step
    return step.request


def finish(flow: Flow[T], response: Response) -> T:
    """Answer the pending request; the flow must then return."""
    try:
        step = flow.send(response)
    except StopIteration as stop:
        return cast(T, stop.value)
    raise AssertionError(f"flow asked for another step: {step!r}")


def run(flow: Flow[T], response: Response) -> tuple[Request, T]:
    request = start(flow)
    return request, finish(flow, response)


def key_body(key: str) -> bytes:
    return json.dumps({"key": key}).encode()


def unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def header(request: Request, name: str) -> str | None:
    values = [value for n, value in request.headers if n == name]
    assert len(values) <= 1, request.headers
    return values[0] if values else None


def check_context(error: ObjectstoreError, operation: str, key: str | None) -> None:
    assert error.operation == operation
    assert error.usecase == "attachments"
    assert error.scope == "org=42;project=1337"
    assert error.key == key


# -------------------------------------------------------------------------- put


@pytest.mark.parametrize("key", [None, ""])
def test_put_without_key_posts_to_the_collection(key: str | None) -> None:
    flow = put_flow(TARGET, b"hello", key=key, compress="none")
    request = start(flow)
    assert request.method == "POST"
    assert request.target == COLLECTION
    assert request.body == b"hello"
    assert request.stream is False
    response = Response(201, {"content-type": "application/json"}, key_body(GENERATED))
    assert finish(flow, response) == GENERATED


@pytest.mark.parametrize(
    ("key", "wire"),
    [("k", "k"), ("a b/c", "a%20b/c"), ("100%", "100%25"), ("café", "caf%C3%A9")],
)
def test_put_with_key_puts_to_the_object(key: str, wire: str) -> None:
    flow = put_flow(TARGET, b"hello", key=key, compress="none")
    request = start(flow)
    assert request.method == "PUT"
    assert request.target == COLLECTION + wire
    assert finish(flow, Response(200, {}, key_body(key))) == key


def test_put_returns_the_key_the_server_reports() -> None:
    flow = put_flow(TARGET, b"x")
    start(flow)
    assert finish(flow, Response(201, {}, b'  {"key": "k2", "extra": 1}  ')) == "k2"


def test_a_keyed_put_answered_with_another_key_is_a_protocol_error() -> None:
    # PROTOCOL §3.2: the body names the key written; another one is not trusted.
    flow = put_flow(TARGET, b"x", key="k")
    start(flow)
    with pytest.raises(ProtocolError, match="answered with key 'k2' for a write to key 'k'"):
        finish(flow, Response(200, {}, b'{"key": "k2"}'))


def test_put_compresses_with_zstd_by_default() -> None:
    payload = b"hello world " * 1000
    request = start(put_flow(TARGET, payload))
    assert header(request, "content-encoding") == "zstd"
    assert isinstance(request.body, bytes)
    assert request.body.startswith(ZSTD_MAGIC)
    assert len(request.body) < len(payload)
    assert unzstd(request.body) == payload
    assert zstandard.get_frame_parameters(request.body).has_checksum


def test_put_leaves_compression_to_the_driver() -> None:
    """Building the flow compresses nothing; its first step hands the work to the driver."""
    payload = bytearray(b"hello world " * 1000)
    flow = put_flow(TARGET, payload)
    step = next(flow)
    assert isinstance(step, Compress)
    assert step.data is payload and step.size == len(payload)
    step = flow.send(b"frame from the driver")
    assert isinstance(step, SendRequest)
    assert step.request.body == b"frame from the driver"  # sent as the driver made it
    assert header(step.request, "content-encoding") == "zstd"


def test_put_without_compression_has_no_compress_step() -> None:
    flow = put_flow(TARGET, b"raw", compress="none")
    assert isinstance(next(flow), SendRequest)


def test_put_compresses_an_empty_payload() -> None:
    request = start(put_flow(TARGET, b""))
    assert isinstance(request.body, bytes)
    assert header(request, "content-encoding") == "zstd"
    assert unzstd(request.body) == b""


@pytest.mark.parametrize(
    ("target", "compress", "zstd"),
    [
        (TARGET, None, True),
        (TARGET, "zstd", True),
        (TARGET, "none", False),
        (RAW_TARGET, None, False),
        (RAW_TARGET, "zstd", True),
        (RAW_TARGET, "none", False),
    ],
)
def test_put_compress_choice(target: Target, compress: Any, zstd: bool) -> None:
    payload = b"payload bytes"
    request = start(put_flow(target, payload, compress=compress))
    assert isinstance(request.body, bytes)
    if zstd:
        assert header(request, "content-encoding") == "zstd"
        assert unzstd(request.body) == payload
    else:
        assert header(request, "content-encoding") is None
        assert request.body == payload


@pytest.mark.parametrize("compress", [None, "none"])
def test_put_precompressed_sends_bytes_unchanged(compress: Any) -> None:
    frame = zstandard.ZstdCompressor().compress(b"already compressed")
    request = start(put_flow(RAW_TARGET, frame, precompressed="zstd", compress=compress))
    assert request.body == frame
    assert header(request, "content-encoding") == "zstd"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"precompressed": "zstd", "compress": "zstd"},
        {"precompressed": "gzip"},
        {"precompressed": "none"},
        {"compress": "gzip"},
        {"compress": "ZSTD"},
    ],
)
def test_put_rejects_bad_compression_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        put_flow(TARGET, b"x", **kwargs)


def test_put_compression_is_deprecated_but_works() -> None:
    with pytest.warns(DeprecationWarning, match="compress"):
        flow = put_flow(TARGET, b"raw", compression="none")
    request = start(flow)
    assert request.body == b"raw"
    assert header(request, "content-encoding") is None
    with pytest.warns(DeprecationWarning):
        flow = put_flow(RAW_TARGET, b"raw", compression="zstd")
    request = start(flow)
    assert isinstance(request.body, bytes)
    assert unzstd(request.body) == b"raw"


def test_put_compression_and_compress_must_agree() -> None:
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError):
        put_flow(TARGET, b"x", compress="none", compression="zstd")
    with pytest.warns(DeprecationWarning):
        flow = put_flow(TARGET, b"x", compress="none", compression="none")
    assert start(flow).body == b"x"


def test_put_large_payload_becomes_a_streamed_upload() -> None:
    payload = bytes(4 * MIB + 1)
    request = start(put_flow(TARGET, payload))
    assert isinstance(request.body, Upload)
    assert request.body.source is payload
    assert request.body.kind is PayloadKind.BYTES
    assert request.body.compress is True
    assert header(request, "content-encoding") == "zstd"


def test_put_payload_at_the_limit_is_compressed_in_one_go() -> None:
    payload = bytes(4 * MIB)
    request = start(put_flow(TARGET, payload))
    assert isinstance(request.body, bytes)
    assert unzstd(request.body) == payload


def test_put_large_raw_payload_is_not_compressed() -> None:
    payload = bytes(4 * MIB + 1)
    body = start(put_flow(TARGET, payload, compress="none")).body
    if isinstance(body, Upload):
        assert body.source is payload and body.compress is False
    else:
        assert body == payload


def test_put_str_is_utf8() -> None:
    request = start(put_flow(TARGET, "héllo ☃", compress="none"))
    assert request.body == "héllo ☃".encode()
    request = start(put_flow(TARGET, "héllo ☃"))
    assert isinstance(request.body, bytes)
    assert unzstd(request.body) == "héllo ☃".encode()


@pytest.mark.parametrize("payload", [bytearray(b"abc"), memoryview(b"abc")])
def test_put_other_bytes_like(payload: bytearray | memoryview) -> None:
    body = start(put_flow(TARGET, payload)).body
    assert isinstance(body, bytes)
    assert unzstd(body) == b"abc"
    raw = start(put_flow(TARGET, payload, compress="none")).body
    if isinstance(raw, Upload):
        assert raw.kind is PayloadKind.BYTES and raw.compress is False
        assert bytes(cast(bytes, raw.source)) == b"abc"
    else:
        assert raw == b"abc"


def test_put_file_is_not_read_by_the_flow() -> None:
    source = io.BytesIO(b"file contents")
    flow = put_flow(TARGET, source)
    step = next(flow)  # the twin measures it (a resumable upload needs the size, §14.1)
    assert isinstance(step, Measure) and step.source is source
    step = flow.send(len(b"file contents"))  # below the threshold: one plain put
    assert isinstance(step, SendRequest)
    request = step.request
    assert isinstance(request.body, Upload)
    assert request.body.source is source
    assert request.body.kind is PayloadKind.FILE
    assert request.body.compress is True
    assert source.tell() == 0


def test_put_iterable_is_not_consumed_by_the_flow() -> None:
    consumed: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for chunk in (b"a", b"b"):
            consumed.append(chunk)
            yield chunk

    request = start(put_flow(TARGET, chunks(), compress="none"))
    assert isinstance(request.body, Upload)
    assert request.body.kind is PayloadKind.ITERABLE
    assert request.body.compress is False
    assert consumed == []


def test_put_path_is_opened_lazily() -> None:
    path = pathlib.Path("/nonexistent/objectstore-test/file.bin")
    flow = put_flow(TARGET, path)
    step = next(flow)  # the twin measures it (a resumable upload needs the size, §14.1)
    assert isinstance(step, Measure) and step.source is path
    step = flow.send(None)  # a size the twin cannot tell: one plain put
    assert isinstance(step, SendRequest)
    request = step.request
    assert isinstance(request.body, Upload)
    assert request.body.kind is PayloadKind.PATH
    assert request.body.source is path


@pytest.mark.parametrize("payload", [5, None, 1.5, {"a": b"b"}, object()])
def test_put_rejects_unsupported_payloads(payload: object) -> None:
    with pytest.raises(TypeError):
        put_flow(TARGET, payload)  # type: ignore[arg-type]


def test_put_sends_metadata_headers() -> None:
    flow = put_flow(
        TARGET,
        b"{}",
        key="k",
        compress="none",
        content_type="application/json",
        metadata={"Build_Id": "1a2b", "note": "café"},
        expiration_policy=TimeToLive(timedelta(days=30)),
        origin="203.0.113.42",
        filename="résumé.json",
    )
    request = start(flow)
    headers = dict(request.headers)
    assert headers == {
        "content-type": "application/json",
        "x-sn-expiration": "ttl:30d",
        "x-sn-origin": "203.0.113.42",
        "x-sn-filename": "r%C3%A9sum%C3%A9.json",
        "x-snme-build_id": "1a2b",
        "x-snme-note": "caf%C3%A9",
    }
    for name, value in request.headers:
        assert name == name.lower()
        assert "\r" not in value and "\n" not in value


def test_put_uses_the_usecase_expiration_unless_overridden() -> None:
    usecase = Usecase("ttl_case", expiration_policy=TimeToIdle(timedelta(days=7)))
    target = Target("", usecase, Scope(org=1))
    assert header(start(put_flow(target, b"x")), "x-sn-expiration") == "tti:7d"
    overridden = put_flow(target, b"x", expiration_policy=TimeToLive(timedelta(hours=1)))
    assert header(start(overridden), "x-sn-expiration") == "ttl:1h"
    assert header(start(put_flow(TARGET, b"x")), "x-sn-expiration") is None


def test_flows_prepend_the_target_headers() -> None:
    target = Target("", USECASE, SCOPE, (("user-agent", "ua/1"), ("x-os-auth", "Bearer t")))
    flows: list[Flow[Any]] = [
        put_flow(target, b"x", key="k", content_type="text/plain"),
        get_flow(target, "k"),
        head_flow(target, "k"),
        delete_flow(target, "k"),
        extend_expiry_flow(target, "k", from_now=timedelta(days=1)),
    ]
    for flow in flows:
        request = start(flow)
        assert request.headers[:2] == (("user-agent", "ua/1"), ("x-os-auth", "Bearer t"))
        assert "Bearer t" not in repr(request)


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"key": "bad\ud800key"}, ValueError),
        ({"key": 5}, TypeError),
        ({"key": b"k"}, TypeError),
        ({"content_type": "text/plain\r\nx-evil: 1"}, ValueError),
        ({"content_type": "not a media type"}, ValueError),
        ({"content_type": 5}, TypeError),
        ({"metadata": {"bad name": "v"}}, ValueError),
        ({"metadata": {"a:b": "v"}}, ValueError),
        ({"metadata": {"A": "1", "a": "2"}}, ValueError),
        ({"metadata": {"a": 1}}, TypeError),
        ({"origin": 5}, TypeError),
        ({"filename": b"f"}, TypeError),
        ({"expiration_policy": "ttl:1d"}, TypeError),
        ({"expiration_policy": timedelta(days=1)}, TypeError),
        ({"resumable_threshold_bytes": -1}, ValueError),
        ({"resumable_threshold_bytes": True}, ValueError),
        ({"resumable_threshold_bytes": 1.5}, ValueError),
    ],
)
def test_put_validates_before_any_step(kwargs: dict[str, Any], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        put_flow(TARGET, b"x", **kwargs)


@pytest.mark.parametrize("threshold", [None, "none", 0, 10, 256 * MIB])
def test_put_accepts_resumable_thresholds(threshold: Any) -> None:
    flow = put_flow(TARGET, b"x", compress="none", resumable_threshold_bytes=threshold)
    request = start(flow)
    assert request.method == "POST"


def test_invalid_usecase_or_scope_fails_before_any_flow_exists() -> None:
    with pytest.raises(ValueError, match="'x'"):
        Usecase("x")
    with pytest.raises(ValueError, match="'a b'"):
        Target("", USECASE, Scope(org="a b"))
    with pytest.raises(ValueError, match=r"'a\.b'"):
        USECASE.for_project("a.b", 1)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, RequestError),
        (401, Unauthorized),
        (403, Forbidden),
        (409, RequestError),
        (413, RequestError),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
    ],
)
@pytest.mark.parametrize("key", [None, "k"])
def test_put_error_statuses(status: int, cls: type[RequestError], key: str | None) -> None:
    flow = put_flow(TARGET, b"x", key=key)
    start(flow)
    body = b'{"detail":"client error: nope"}'
    with pytest.raises(cls) as info:
        finish(flow, Response(status, {"retry-after": "7"}, body))
    error = info.value
    assert type(error) is cls
    assert error.status == status
    assert error.response == body.decode()
    assert "client error: nope" in str(error)
    check_context(error, "put", key)
    if isinstance(error, RateLimited):
        assert error.retry_after == 7.0


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{}",
        b'{"key": ""}',
        b'{"key": 5}',
        b'{"key": null}',
        b'["k"]',
        b'"k"',
        b"\xff\xfe",
        b'{"key": "k"',
    ],
)
@pytest.mark.parametrize("status", [200, 201])
def test_put_malformed_success_body_is_a_protocol_error(body: bytes, status: int) -> None:
    flow = put_flow(TARGET, b"x", key="k")
    start(flow)
    with pytest.raises(ProtocolError) as info:
        finish(flow, Response(status, {}, body))
    check_context(info.value, "put", "k")


# Regression (bug found by this suite, since fixed): _operations.parse_key_response catches only
#   ValueError around json.loads; a deeply nested body raises RecursionError out of the put flow
def test_put_deeply_nested_body_is_a_protocol_error() -> None:
    flow = put_flow(TARGET, b"x", key="k")
    start(flow)
    with pytest.raises(ProtocolError):
        finish(flow, Response(200, {}, b"[" * 100_000))


# -------------------------------------------------------------------------- get


def test_get_request() -> None:
    request = start(get_flow(TARGET, "events/abc.json"))
    assert request.method == "GET"
    assert request.target == COLLECTION + "events/abc.json"
    assert request.body is None
    assert request.stream is True
    assert header(request, "range") is None


def test_get_404_is_none() -> None:
    _, outcome = run(get_flow(TARGET, "k"), Response(404))
    assert outcome is None


ZSTD_HEADERS = {
    "content-type": "application/json",
    "content-encoding": "zstd",
    "x-sn-expiration": "ttl:30days",
    "x-sn-time-created": "2026-07-01T12:00:00.123456Z",
    "x-snme-build_id": "1a2b3c",
}


def get_outcome(flow: Flow[GetOutcome | None], response: Response) -> GetOutcome:
    _, outcome = run(flow, response)
    assert isinstance(outcome, GetOutcome)
    return outcome


def test_get_zstd_object_is_decoded_and_compression_cleared() -> None:
    outcome = get_outcome(get_flow(TARGET, "k"), Response(200, ZSTD_HEADERS))
    assert outcome.decode is True
    assert outcome.status == 200
    assert outcome.metadata.compression is None
    assert outcome.metadata.content_type == "application/json"
    assert outcome.metadata.expiration_policy == TimeToLive(timedelta(days=30))
    assert outcome.metadata.time_created == datetime(2026, 7, 1, 12, 0, 0, 123456, UTC)
    assert outcome.metadata.custom == {"build_id": "1a2b3c"}


def test_get_raw_object_is_not_decoded() -> None:
    outcome = get_outcome(get_flow(TARGET, "k"), Response(200, {"content-type": "text/plain"}))
    assert outcome.decode is False
    assert outcome.metadata.compression is None


def test_get_decompress_false_keeps_compression() -> None:
    outcome = get_outcome(get_flow(TARGET, "k", decompress=False), Response(200, ZSTD_HEADERS))
    assert outcome.decode is False
    assert outcome.metadata.compression == "zstd"


@pytest.mark.parametrize(
    ("accept", "decode"),
    [
        (["zstd"], False),
        (["*"], False),
        (["gzip", "zstd"], False),
        (["ZSTD"], False),
        ("zstd, gzip;q=0.5", False),
        (["gzip"], True),
        (["identity"], True),
        ([], True),
        (None, True),
    ],
)
def test_get_accept_encoding(accept: Any, decode: bool) -> None:
    outcome = get_outcome(
        get_flow(TARGET, "k", accept_encoding=accept), Response(200, ZSTD_HEADERS)
    )
    assert outcome.decode is decode
    assert outcome.metadata.compression == (None if decode else "zstd")


@pytest.mark.parametrize(
    ("header_value", "encodings"),
    [
        ("zstd, gzip;q=0.5, *", ["zstd", "gzip", "*"]),
        ("ZSTD", ["zstd"]),
        (" zstd ;q=1 ,, identity", ["zstd", "identity"]),
        ("", []),
    ],
)
def test_parse_accept_encoding(header_value: str, encodings: list[str]) -> None:
    assert parse_accept_encoding(header_value) == encodings


# Regression (bug found by this suite, since fixed): parse_accept_encoding drops q-values, so
#   'zstd;q=0' (RFC 9110 §12.4.2: not acceptable) is read as accepting zstd; the official client
#   excludes q=0 entries
def test_accept_encoding_q_zero_means_not_acceptable() -> None:
    assert parse_accept_encoding("zstd;q=0, gzip") == ["gzip"]
    flow = get_flow(TARGET, "k", accept_encoding="zstd;q=0")
    assert get_outcome(flow, Response(200, ZSTD_HEADERS)).decode is True


@pytest.mark.parametrize("accept", [[1], 5, [b"zstd"], [None]])
def test_get_rejects_bad_accept_encoding(accept: Any) -> None:
    with pytest.raises(ValueError):
        get_flow(TARGET, "k", accept_encoding=accept)


@pytest.mark.parametrize(
    ("byte_range", "value"),
    [
        ((0, 1023), "bytes=0-1023"),
        ((5, None), "bytes=5-"),
        ((7, 7), "bytes=7-7"),
        ([1, 2], "bytes=1-2"),
    ],
)
def test_get_byte_range_header(byte_range: Any, value: str) -> None:
    request = start(get_flow(TARGET, "k", byte_range=byte_range))
    assert header(request, "range") == value


def test_get_range_is_never_decoded() -> None:
    headers = {**ZSTD_HEADERS, "content-length": "9", "content-range": "bytes 13-21/22"}
    flow = get_flow(TARGET, "k", byte_range=(13, 21))
    outcome = get_outcome(flow, Response(206, headers))
    assert outcome.decode is False
    assert outcome.status == 206
    assert outcome.metadata.compression == "zstd"
    assert outcome.expected_length == 9
    assert outcome.metadata.size is None  # the object size is unknown from a 206


def test_get_range_with_size_header() -> None:
    headers = {"content-length": "9", "x-sn-size": "22"}
    outcome = get_outcome(get_flow(TARGET, "k", byte_range=(13, None)), Response(206, headers))
    assert outcome.expected_length == 9
    assert outcome.metadata.size == 22


@pytest.mark.parametrize(
    "byte_range",
    [
        (-1, 5),
        (5, 4),
        (0, -1),
        (1,),
        (1, 2, 3),
        (),
        "0-5",
        (True, 5),
        (0, False),
        (1.0, 2),
        (0, "5"),
        ("0", None),
        5,
    ],
)
def test_get_rejects_invalid_ranges(byte_range: Any) -> None:
    with pytest.raises(ValueError):
        get_flow(TARGET, "k", byte_range=byte_range)


@pytest.mark.parametrize(
    ("headers", "expected", "size"),
    [
        ({}, None, None),
        ({"x-sn-size": "10"}, 10, 10),
        ({"content-length": "12"}, 12, 12),
        ({"content-length": "12", "x-sn-size": "10"}, 12, 10),
    ],
)
def test_get_expected_length(
    headers: dict[str, str], expected: int | None, size: int | None
) -> None:
    outcome = get_outcome(get_flow(TARGET, "k"), Response(200, headers))
    assert outcome.expected_length == expected
    assert outcome.metadata.size == size


@pytest.mark.parametrize(
    "headers",
    [
        {"content-encoding": "gzip"},
        {"content-encoding": "ZSTD"},
        {"x-sn-expiration": "ttl:forever"},
        {"x-sn-time-created": "yesterday"},
        {"x-sn-size": "-1"},
        {"content-length": "abc"},
        {"content-length": "-5"},
        {"content-length": ""},
    ],
)
def test_get_malformed_headers_are_protocol_errors(headers: dict[str, str]) -> None:
    flow = get_flow(TARGET, "k")
    start(flow)
    with pytest.raises(ProtocolError) as info:
        finish(flow, Response(200, headers))
    check_context(info.value, "get", "k")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, RequestError),
        (401, Unauthorized),
        (403, Forbidden),
        (416, RequestError),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_get_error_statuses(status: int, cls: type[RequestError]) -> None:
    flow = get_flow(TARGET, "k")
    start(flow)
    with pytest.raises(cls) as info:
        finish(flow, Response(status, {}, b"nope"))
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.response == "nope"
    check_context(info.value, "get", "k")


@pytest.mark.parametrize(("key", "exc"), [("", ValueError), (5, TypeError), ("\ud800", ValueError)])
def test_key_validation_for_keyed_flows(key: Any, exc: type[Exception]) -> None:
    for build in (get_flow, head_flow, delete_flow):
        with pytest.raises(exc):
            build(TARGET, key)
    with pytest.raises(exc):
        extend_expiry_flow(TARGET, key, from_now=timedelta(days=1))


def test_get_outcome_drives_a_download() -> None:
    payload = b"hello objectstore " * 100
    stored = zstandard.ZstdCompressor().compress(payload)
    headers = {"content-encoding": "zstd", "content-length": str(len(stored))}
    outcome = get_outcome(get_flow(TARGET, "k"), Response(200, headers))
    download = Download(decode=outcome.decode, expected_length=outcome.expected_length)
    download.feed(stored)
    download.feed(b"")
    out = b""
    while chunk := download.read():
        out += chunk
    assert out == payload


# ------------------------------------------------------------------------- head


def test_head_request_and_204() -> None:
    headers = {
        "content-type": "application/json",
        "content-encoding": "zstd",
        "x-sn-expiration": "tti:7days",
        "x-sn-filename": "abc.json",
        "x-sn-size": "99",
    }
    request, metadata = run(head_flow(TARGET, "events/abc.json"), Response(204, headers))
    assert request.method == "HEAD"
    assert request.target == COLLECTION + "events/abc.json"
    assert request.body is None
    assert metadata == Metadata.from_headers(headers)
    assert isinstance(metadata, Metadata)
    assert metadata.compression == "zstd"  # head never decodes: the stored encoding stays
    assert metadata.expiration_policy == TimeToIdle(timedelta(days=7))
    assert metadata.size == 99


@pytest.mark.parametrize(("status", "found"), [(200, True), (204, True), (404, False)])
def test_head_statuses(status: int, found: bool) -> None:
    _, metadata = run(head_flow(TARGET, "k"), Response(status, {"content-type": "text/plain"}))
    if found:
        assert metadata == Metadata(content_type="text/plain")
    else:
        assert metadata is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, RequestError), (401, Unauthorized), (403, Forbidden), (500, ServerError)],
)
def test_head_error_statuses(status: int, cls: type[RequestError]) -> None:
    flow = head_flow(TARGET, "k")
    start(flow)
    with pytest.raises(cls) as info:
        finish(flow, Response(status))
    check_context(info.value, "head", "k")


def test_head_malformed_metadata_is_a_protocol_error() -> None:
    flow = head_flow(TARGET, "k")
    start(flow)
    with pytest.raises(ProtocolError) as info:
        finish(flow, Response(204, {"content-encoding": "br"}))
    check_context(info.value, "head", "k")
    assert isinstance(info.value.__cause__, ValueError)


# ----------------------------------------------------------------------- delete


@pytest.mark.parametrize("status", [200, 202, 204, 404])
def test_delete_success(status: int) -> None:
    request, result = run(delete_flow(TARGET, "a b"), Response(status))
    assert request.method == "DELETE"
    assert request.target == COLLECTION + "a%20b"
    assert request.body is None
    assert result is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (500, ServerError),
        (503, ServerError),
        (401, Unauthorized),
        (403, Forbidden),
        (429, RateLimited),
        (400, RequestError),
    ],
)
def test_delete_errors(status: int, cls: type[RequestError]) -> None:
    flow = delete_flow(TARGET, "k")
    start(flow)
    with pytest.raises(cls) as info:
        finish(flow, Response(status))
    assert type(info.value) is cls
    check_context(info.value, "delete", "k")


# ---------------------------------------------------------------- extend_expiry


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"from_now": timedelta(days=30)}, {"after": "30d", "from": "now"}),
        (
            {"from_creation": timedelta(days=400, seconds=90)},
            {"after": "400d 1m 30s", "from": "creation"},
        ),
        ({"from_now": timedelta(0)}, {"after": "0s", "from": "now"}),
        ({"from_now": timedelta(seconds=1.7)}, {"after": "1s", "from": "now"}),
        ({"at": datetime(2026, 12, 1, tzinfo=UTC)}, {"at": "2026-12-01T00:00:00+00:00"}),
        (
            {"at": datetime(2026, 12, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))},
            {"at": "2026-12-01T00:00:00+00:00"},
        ),
        (
            {"at": datetime(2026, 12, 1, 0, 0, 0, 500000, UTC)},
            {"at": "2026-12-01T00:00:00.500000+00:00"},
        ),
    ],
)
def test_extend_expiry_request(kwargs: dict[str, Any], expected: dict[str, str]) -> None:
    request = start(extend_expiry_flow(TARGET, "k", **kwargs))
    assert request.method == "PATCH"
    assert request.target == COLLECTION + "k"
    assert header(request, "content-type") == "application/json"
    assert isinstance(request.body, bytes)
    assert json.loads(request.body) == {"extend_expiry": expected}


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"at": datetime(2026, 12, 1, tzinfo=UTC), "from_now": timedelta(days=1)},
        {"from_creation": timedelta(days=1), "from_now": timedelta(days=1)},
        {
            "at": datetime(2026, 12, 1, tzinfo=UTC),
            "from_creation": timedelta(days=1),
            "from_now": timedelta(days=1),
        },
    ],
)
def test_extend_expiry_needs_exactly_one_target(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        extend_expiry_flow(TARGET, "k", **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"at": datetime(2026, 12, 1)},
        {"at": "2026-12-01T00:00:00Z"},
        {"from_now": timedelta(seconds=-1)},
        {"from_creation": timedelta(days=-1)},
        {"from_now": 30},
        {"from_creation": "30d"},
    ],
)
def test_extend_expiry_rejects_bad_targets(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        extend_expiry_flow(TARGET, "k", **kwargs)


@pytest.mark.parametrize("status", [200, 204])
def test_extend_expiry_success(status: int) -> None:
    _, result = run(extend_expiry_flow(TARGET, "k", from_now=timedelta(days=1)), Response(status))
    assert result is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, ObjectNotFound),
        (409, ExpiryExtensionRejected),
        (405, RequestError),
        (403, Forbidden),
        (500, ServerError),
    ],
)
def test_extend_expiry_errors(status: int, cls: type[RequestError]) -> None:
    flow = extend_expiry_flow(TARGET, "k", from_creation=timedelta(days=1))
    start(flow)
    with pytest.raises(cls) as info:
        finish(flow, Response(status))
    assert type(info.value) is cls
    check_context(info.value, "extend_expiry", "k")


# ---------------------------------------------------------------------- timeout

TIMEOUT = Timeout(read=5.0)

TIMEOUT_FLOWS: list[tuple[str, Any]] = [
    ("put", lambda: put_flow(TARGET, b"x", timeout=TIMEOUT)),
    ("get", lambda: get_flow(TARGET, "k", timeout=TIMEOUT)),
    ("head", lambda: head_flow(TARGET, "k", timeout=TIMEOUT)),
    ("delete", lambda: delete_flow(TARGET, "k", timeout=TIMEOUT)),
]


@pytest.mark.parametrize(("name", "build"), TIMEOUT_FLOWS)
def test_per_call_timeout_reaches_the_request(name: str, build: Any) -> None:
    assert start(build()).timeout == TIMEOUT


# Regression (bug found by this suite, since fixed): extend_expiry_flow accepts timeout= but never
#   puts it on the Request
def test_extend_expiry_timeout_reaches_the_request() -> None:
    flow = extend_expiry_flow(TARGET, "k", from_now=timedelta(days=1), timeout=TIMEOUT)
    assert start(flow).timeout == TIMEOUT


def test_default_timeout_is_none() -> None:
    assert start(get_flow(TARGET, "k")).timeout is None
