"""The multipart flows of objectstore_core._multipart, driven by hand (PROTOCOL §9, API §4).

Each test takes the requests a flow yields, checks them, and answers with
scripted responses; bad input must fail when the flow is built.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import pytest

from objectstore_core import (
    CompletePart,
    MultipartCompleteError,
    MultipartFlows,
    PartInfo,
    ProtocolError,
    Request,
    Response,
    SendRequest,
    ServerError,
    Target,
    Upload,
    Usecase,
    initiate_multipart_flow,
)
from objectstore_core._h1 import encode_request_head
from objectstore_core._http import Flow

T = TypeVar("T")

TARGET = Target("", Usecase("attachments"), Usecase("attachments").for_organization(42))
UPLOAD = MultipartFlows(TARGET, "db.tar", "0197c1a2-5e3f")
PARTS = "/v1/objects:multipart:parts/attachments/org=42/db.tar"


def _request(step: object) -> Request:
    assert isinstance(step, SendRequest), step
    return step.request


def run(flow: Flow[T], *responses: Response) -> tuple[T, list[Request]]:
    """Drive ``flow`` with ``responses`` in order; its value and every request it sent."""
    sent = [_request(next(flow))]
    try:
        for response in responses:
            sent.append(_request(flow.send(response)))
    except StopIteration as done:
        return done.value, sent
    raise AssertionError(f"the flow sent more requests than scripted: {sent[-1]}")


def ok(value: object, status: int = 200, prefix: bytes = b"") -> Response:
    return Response(
        status, {"content-type": "application/json"}, prefix + json.dumps(value).encode()
    )


# ------------------------------------------------------------------ initiate


def test_initiate_with_a_key_puts_the_metadata_of_the_final_object() -> None:
    flow = initiate_multipart_flow(
        TARGET, key="db.tar", content_type="application/x-tar", metadata={"Build": "7"}
    )
    upload, (request,) = run(flow, ok({"key": "db.tar", "upload_id": "u-1"}))
    assert (request.method, request.target) == (
        "PUT",
        "/v1/objects:multipart/attachments/org=42/db.tar",
    )
    headers = dict(request.headers)
    # The usecase's compression is recorded by default, as the official clients do (§9.6).
    assert headers["content-encoding"] == "zstd"
    assert headers["content-type"] == "application/x-tar"
    assert headers["x-snme-build"] == "7"
    assert request.body is None
    assert (upload.key, upload.upload_id) == ("db.tar", "u-1")


def test_initiate_without_a_key_posts_without_the_trailing_slash() -> None:
    upload, (request,) = run(
        initiate_multipart_flow(TARGET, compression="none"),
        ok({"key": "generated", "upload_id": "u-2"}),
    )
    assert (request.method, request.target) == ("POST", "/v1/objects:multipart/attachments/org=42")
    assert "content-encoding" not in dict(request.headers)
    assert upload.key == "generated"


@pytest.mark.parametrize(
    "response",
    [
        Response(200, {}, b"not json"),
        ok({"key": "k"}),
        ok({"upload_id": "u"}),
        ok([1, 2]),
    ],
)
def test_initiate_rejects_malformed_answers(response: Response) -> None:
    with pytest.raises(ProtocolError):
        run(initiate_multipart_flow(TARGET, key="k"), response)


def test_initiate_on_a_server_without_multipart_raises_its_status() -> None:
    with pytest.raises(ServerError) as info:
        run(initiate_multipart_flow(TARGET, key="k"), ok({"detail": "not implemented"}, 501))
    assert info.value.status == 501


# ------------------------------------------------------------------ put_part


def test_put_part_sends_an_exact_length_and_the_md5_in_base64() -> None:
    data = b"part one"
    digest = hashlib.md5(data).digest()
    part, (request,) = run(
        UPLOAD.put_part(data, part_number=1, content_length=len(data), content_md5=digest),
        ok({"etag": '"etag-1-8"'}),
    )
    assert part == CompletePart(1, '"etag-1-8"')
    assert request.method == "PUT"
    assert request.target == f"{PARTS}?upload_id=0197c1a2-5e3f&part_number=1"
    assert dict(request.headers)["content-md5"] == base64.b64encode(digest).decode()
    assert request.body == data
    assert b"content-length: 8\r\n" in encode_request_head(request, "h")


def test_put_part_streams_a_file_framed_by_its_content_length() -> None:
    flow = UPLOAD.put_part(io.BytesIO(b"x" * 10), part_number=2, content_length=10)
    request = _request(next(flow))
    assert isinstance(request.body, Upload) and request.body.length == 10
    assert not request.body.compress
    head = encode_request_head(request, "h")
    assert b"content-length: 10\r\n" in head and b"chunked" not in head


def test_the_upload_id_is_escaped_whole_in_the_query() -> None:
    upload = MultipartFlows(TARGET, "k", "a&b=c d")
    request = _request(next(upload.abort()))
    assert request.target.endswith("?upload_id=a%26b%3Dc%20d")


@pytest.mark.parametrize("number", [0, -1, 10_001, True, 1.0, "1", None])
def test_bad_part_numbers_are_refused_before_any_request(number: Any) -> None:
    with pytest.raises(ValueError, match=f"part_number={number!r}"):
        UPLOAD.put_part(b"x", part_number=number, content_length=1)


def test_a_content_length_that_does_not_match_the_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="content_length=5 does not match the part: it holds 3"):
        UPLOAD.put_part(b"abc", part_number=1, content_length=5)
    with pytest.raises(ValueError, match="content_length=-1"):
        UPLOAD.put_part(io.BytesIO(b""), part_number=1, content_length=-1)
    with pytest.raises(TypeError, match="content_length"):
        UPLOAD.put_part(b"abc", part_number=1, content_length="3")  # type: ignore[arg-type]


@pytest.mark.parametrize("md5", [b"short", "not base64!", base64.b64encode(b"x" * 15).decode()])
def test_a_bad_content_md5_is_refused(md5: Any) -> None:
    with pytest.raises(ValueError, match="content_md5"):
        UPLOAD.put_part(b"abc", part_number=1, content_length=3, content_md5=md5)


@pytest.mark.parametrize("upload_id", ["", "..", "../x", "/abs", "./x", "a/../b"])
def test_bad_upload_ids_are_refused(upload_id: str) -> None:
    with pytest.raises(ValueError, match="upload_id"):
        MultipartFlows(TARGET, "k", upload_id)


def test_put_part_without_an_etag_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="etag"):
        run(UPLOAD.put_part(b"a", part_number=1, content_length=1), ok({"tag": "x"}))


# ------------------------------------------------------------------ list_parts


def _entry(number: int, when: str = "2026-07-01T12:00:00.123456789Z") -> dict[str, object]:
    return {"part_number": number, "etag": f'"e{number}"', "last_modified": when, "size": 5}


def test_list_parts_follows_pagination() -> None:
    parts, sent = run(
        UPLOAD.list_parts(),
        ok({"parts": [_entry(1), _entry(2)], "is_truncated": True, "next_part_number_marker": 2}),
        ok({"parts": [_entry(3, "2026-07-01T12:00:01Z")], "is_truncated": False}),
    )
    assert [request.target for request in sent] == [
        f"{PARTS}?upload_id=0197c1a2-5e3f",
        f"{PARTS}?upload_id=0197c1a2-5e3f&part_number_marker=2",
    ]
    assert [p.part_number for p in parts] == [1, 2, 3]
    assert parts[0] == PartInfo(1, '"e1"', datetime(2026, 7, 1, 12, 0, 0, 123456, UTC), 5)
    assert parts[2].last_modified == datetime(2026, 7, 1, 12, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize("marker", [None, 0, "2", True])
def test_a_truncated_page_needs_a_marker_that_moves_forward(marker: object) -> None:
    page: dict[str, object] = {"parts": [_entry(1)], "is_truncated": True}
    if marker is not None:
        page["next_part_number_marker"] = marker
    with pytest.raises(ProtocolError, match="next_part_number_marker"):
        run(UPLOAD.list_parts(), ok(page))


def test_a_marker_going_backwards_stops_the_paging() -> None:
    first = {"parts": [_entry(3)], "is_truncated": True, "next_part_number_marker": 3}
    again = {"parts": [_entry(3)], "is_truncated": True, "next_part_number_marker": 3}
    with pytest.raises(ProtocolError, match="after marker 3"):
        run(UPLOAD.list_parts(), ok(first), ok(again))


@pytest.mark.parametrize(
    "entry",
    [
        {"part_number": 1},
        {**_entry(1), "last_modified": "yesterday"},
        {**_entry(1), "size": "5"},
        "part",
    ],
)
def test_malformed_parts_are_protocol_errors(entry: object) -> None:
    with pytest.raises(ProtocolError, match="part"):
        run(UPLOAD.list_parts(), ok({"parts": [entry], "is_truncated": False}))


# ------------------------------------------------------------------ complete


def test_complete_sends_the_parts_sorted_and_trims_leading_whitespace() -> None:
    parts: list[CompletePart | PartInfo] = [
        CompletePart(2, '"b"'),
        PartInfo(1, '"a"', datetime.now(UTC), 5),
    ]
    key, (request,) = run(UPLOAD.complete(parts), ok({"key": "db.tar"}, prefix=b"   "))
    assert key == "db.tar"
    assert request.method == "POST"
    assert request.target == (
        "/v1/objects:multipart:complete/attachments/org=42/db.tar?upload_id=0197c1a2-5e3f"
    )
    assert dict(request.headers)["content-type"] == "application/json"
    assert isinstance(request.body, bytes)
    assert json.loads(request.body) == {
        "parts": [{"part_number": 1, "etag": '"a"'}, {"part_number": 2, "etag": '"b"'}]
    }


def test_an_error_in_a_200_body_raises_multipart_complete_error() -> None:
    body = {"error": {"code": "InvalidPart", "message": "part number 2 was not uploaded"}}
    with pytest.raises(MultipartCompleteError) as info:
        run(UPLOAD.complete([CompletePart(1, "e")]), ok(body, prefix=b"  "))
    error = info.value
    assert (error.code, error.status) == ("InvalidPart", 200)
    assert error.response == "part number 2 was not uploaded"
    assert str(error).startswith(
        "Multipart upload completion failed (InvalidPart): part number 2 was not uploaded"
    )
    assert error.key == "db.tar" and error.operation == "complete"


def test_complete_refuses_bad_parts_before_any_request() -> None:
    with pytest.raises(ValueError, match="part number 1 is listed twice"):
        UPLOAD.complete([CompletePart(1, "a"), CompletePart(1, "b")])
    with pytest.raises(ValueError, match="part_number=0"):
        UPLOAD.complete([CompletePart(0, "a")])
    with pytest.raises(TypeError, match="list of CompletePart"):
        UPLOAD.complete(CompletePart(1, "a"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CompletePart values"):
        UPLOAD.complete(cast(Any, [(1, "a")]))


def test_complete_without_a_key_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        run(UPLOAD.complete([CompletePart(1, "a")]), ok({"done": True}))


# ------------------------------------------------------------------ abort


@pytest.mark.parametrize("status", [204, 200, 404])
def test_abort_accepts_success_and_unknown_uploads(status: int) -> None:
    value, (request,) = run(UPLOAD.abort(), Response(status))
    assert value is None
    assert (request.method, request.target) == (
        "DELETE",
        "/v1/objects:multipart/attachments/org=42/db.tar?upload_id=0197c1a2-5e3f",
    )
