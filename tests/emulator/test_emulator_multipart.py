"""The emulator's multipart endpoints on the wire (PROTOCOL §9), without sockets."""

from __future__ import annotations

import json

import pytest

from objectstore_core import Permission
from objectstore_core.emulator import Emulator, MemoryStorage, ObjectId, ServerResponse
from tests.emulator.emulator_helpers import Client, FakeClock

MP = "/v1/objects:multipart/test/org=1"
PARTS = "/v1/objects:multipart:parts/test/org=1"
COMPLETE = "/v1/objects:multipart:complete/test/org=1"


def initiate(client: Client, key: str = "big", **headers: str) -> str:
    result = client.put(f"{MP}/{key}", b"", content_length="0", **headers)
    assert result.status == 200
    body = result.json()
    assert isinstance(body, dict) and body["key"] == key
    upload_id: str = body["upload_id"]
    return upload_id


def put_part(client: Client, upload_id: str, number: int, data: bytes, key: str = "big") -> str:
    target = f"{PARTS}/{key}?upload_id={upload_id}&part_number={number}"
    result = client.put(target, data, content_length=str(len(data)))
    assert result.status == 200, result.body
    body = result.json()
    assert isinstance(body, dict)
    etag: str = body["etag"]
    return etag


def complete(client: Client, upload_id: str, parts: object, key: str = "big") -> object:
    result = client.post(
        f"{COMPLETE}/{key}?upload_id={upload_id}",
        json.dumps({"parts": parts}).encode(),
        content_type="application/json",
    )
    assert result.status == 200
    assert result.body.startswith(b" ")  # the server streams spaces first (§9.4)
    return json.loads(result.body)


def test_a_whole_upload_makes_one_object_with_the_metadata_of_initiate(
    client: Client, clock: FakeClock
) -> None:
    upload_id = initiate(client, content_type="text/plain", x_snme_team="storage")
    first = put_part(client, upload_id, 1, b"hello ")
    second = put_part(client, upload_id, 2, b"world")
    assert first.startswith('"') and first.endswith('"')  # etags carry quotes (§9.2)
    clock.advance(minutes=5)
    assert client.get("/v1/objects/test/org=1/big").status == 404  # not visible before
    parts = [{"part_number": 1, "etag": first}, {"part_number": 2, "etag": second}]
    assert complete(client, upload_id, parts) == {"key": "big"}
    result = client.get("/v1/objects/test/org=1/big")
    assert result.body == b"hello world"
    assert result.header("content-type") == "text/plain"
    assert result.header("x-snme-team") == "storage"
    assert result.header("x-sn-time-created") == "2026-07-01T12:00:00.123456Z"  # fixed at initiate
    # The upload is consumed; retrying the completion still reports the success.
    assert complete(client, upload_id, parts) == {"key": "big"}
    assert len(client.emulator.multipart) == 0


@pytest.mark.parametrize("target", [MP, f"{MP}/"])
def test_initiate_without_a_key_generates_one(client: Client, target: str) -> None:
    result = client.post(target)
    body = result.json()
    assert result.status == 200 and isinstance(body, dict)
    assert body["key"] and body["upload_id"]


def test_parts_are_listed_in_order_with_pagination(client: Client, clock: FakeClock) -> None:
    upload_id = initiate(client)
    for number in (3, 1, 2):
        put_part(client, upload_id, number, b"x" * number)
    clock.advance(seconds=1)
    put_part(client, upload_id, 2, b"replaced")  # a re-upload replaces the part
    page = client.get(f"{PARTS}/big?upload_id={upload_id}&max_parts=2").json()
    assert isinstance(page, dict)
    assert [p["part_number"] for p in page["parts"]] == [1, 2]
    assert page["is_truncated"] is True and page["next_part_number_marker"] == 2
    assert page["parts"][0]["last_modified"] == "2026-07-01T12:00:00.123456000Z"
    assert page["parts"][1]["size"] == len(b"replaced")
    rest = client.get(f"{PARTS}/big?upload_id={upload_id}&part_number_marker=2").json()
    assert rest == {
        "parts": [
            {
                "part_number": 3,
                "etag": rest["parts"][0]["etag"],  # type: ignore[index]
                "last_modified": "2026-07-01T12:00:00.123456000Z",
                "size": 3,
            }
        ],
        "is_truncated": False,
    }


def test_a_missing_part_or_a_wrong_etag_fails_in_a_200_body_and_keeps_the_upload(
    client: Client,
) -> None:
    upload_id = initiate(client)
    etag = put_part(client, upload_id, 1, b"data")
    missing = complete(
        client, upload_id, [{"part_number": 1, "etag": etag}, {"part_number": 2, "etag": "x"}]
    )
    assert missing == {
        "error": {"code": "InvalidPart", "message": "part number 2 was not uploaded"}
    }
    wrong = complete(client, upload_id, [{"part_number": 1, "etag": '"stale"'}])
    assert isinstance(wrong, dict) and wrong["error"]["code"] == "InvalidPart"
    assert complete(client, upload_id, [{"part_number": 1, "etag": etag}]) == {"key": "big"}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("part_number=1", 400),  # no upload_id
        ("upload_id=..&part_number=1", 400),
        ("upload_id=/abs&part_number=1", 400),
        ("upload_id=&part_number=1", 400),
        ("upload_id=u&part_number=0", 400),
        ("upload_id=u&part_number=x", 400),
        ("upload_id=u&part_number=4294967296", 400),
        ("upload_id=u", 400),  # no part number
    ],
)
def test_bad_part_queries_are_400_plain_text(client: Client, query: str, status: int) -> None:
    result = client.put(f"{PARTS}/big?{query}", b"x", content_length="1")
    assert result.status == status
    assert result.body.startswith(b"Failed to deserialize query string")


def test_a_part_needs_a_content_length_and_a_known_upload(client: Client) -> None:
    upload_id = initiate(client)
    chunked = client.put(f"{PARTS}/big?upload_id={upload_id}&part_number=1", b"x")
    assert chunked.status == 400
    assert chunked.json() == {"detail": "client error: Content-Length header is required"}
    unknown = client.put(f"{PARTS}/big?upload_id=nope&part_number=1", b"x", content_length="1")
    assert unknown.status == 500
    # An upload is bound to its key (§9.1).
    elsewhere = client.put(
        f"{PARTS}/other?upload_id={upload_id}&part_number=1", b"x", content_length="1"
    )
    assert elsewhere.status == 500


def test_complete_checks_its_content_type_and_body(client: Client) -> None:
    upload_id = initiate(client)
    target = f"{COMPLETE}/big?upload_id={upload_id}"
    assert client.post(target, b'{"parts": []}').status == 415
    assert client.post(target, b"{", content_type="application/json").status == 400
    shape = client.post(
        target, b'{"parts": [{"part_number": 0, "etag": "e"}]}', content_type="application/json"
    )
    assert shape.status == 422
    unknown = client.post(
        f"{COMPLETE}/big?upload_id=nope", b'{"parts": []}', content_type="application/json"
    )
    assert unknown.status == 200
    assert json.loads(unknown.body)["error"]["code"] == "internal error"


def test_abort_drops_the_upload_and_is_idempotent(client: Client) -> None:
    upload_id = initiate(client)
    put_part(client, upload_id, 1, b"x")
    assert client.delete(f"{MP}/big?upload_id={upload_id}").status == 204
    assert client.delete(f"{MP}/big?upload_id={upload_id}").status == 204
    assert client.get(f"{PARTS}/big?upload_id={upload_id}").status == 500
    assert client.delete(f"{MP}/big").status == 400  # no upload_id
    assert len(client.emulator.multipart) == 0


def test_a_bad_metadata_header_fails_initiate(client: Client) -> None:
    result = client.put(f"{MP}/big", content_length="0", content_encoding="gzip")
    assert result.status == 400


def test_multipart_needs_object_write(clock: FakeClock) -> None:
    storage = MemoryStorage()
    writer = Emulator(storage, clock=clock)
    upload_id = initiate(Client(writer))

    class ReadOnly:
        def check(
            self, usecase: str, scope: object, permission: Permission
        ) -> ServerResponse | None:
            if permission is Permission.OBJECT_WRITE:
                return ServerResponse(403, (), b"", 0)
            return None

    reader = Emulator(storage, clock=clock, authorize=lambda *_: ReadOnly())
    reader.multipart = writer.multipart
    client = Client(reader)
    assert client.put(f"{MP}/big2", content_length="0").status == 403
    part = client.put(f"{PARTS}/big?upload_id={upload_id}&part_number=1", b"x", content_length="1")
    assert part.status == 403
    assert client.get(f"{PARTS}/big?upload_id={upload_id}").status == 403
    # complete reports a permission failure in its 200 body (§9.4).
    result = client.post(
        f"{COMPLETE}/big?upload_id={upload_id}", b'{"parts": []}', content_type="application/json"
    )
    assert result.status == 200
    assert json.loads(result.body) == {
        "error": {"code": "internal error", "message": "auth error: operation not allowed"}
    }
    assert client.delete(f"{MP}/big?upload_id={upload_id}").status == 403
    assert storage.lookup(ObjectId("test", "org=1", "big")) is None
