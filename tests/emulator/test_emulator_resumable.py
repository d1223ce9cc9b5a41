"""The emulator's resumable upload sessions on the wire (PROTOCOL §14.1), without sockets."""

from __future__ import annotations

import pytest

from objectstore_core.emulator import Emulator, ServerRequest
from tests.emulator.emulator_helpers import Client, FakeClock, Result

OBJ = "/v1/objects/test/org=1"


@pytest.fixture(autouse=True)
def small_units(emulator: Emulator) -> None:
    emulator.resumable.granularity = 4


def create(client: Client, total: int, key: str = "k", **headers: str) -> str:
    result = client.put(
        f"{OBJ}/{key}?upload_type=resumable", b"", upload_length=str(total), **headers
    )
    assert result.status == 201
    body = result.json()
    assert isinstance(body, dict)
    assert body["key"] == key and body["granularity"] == 4
    token: str = body["session"]
    return token


def append(client: Client, token: str, offset: int | str, data: bytes, key: str = "k") -> Result:
    return client.put(f"{OBJ}/{key}?session={token}", data, upload_offset=str(offset))


def test_appends_commit_the_object_with_the_metadata_of_the_creation(
    client: Client, clock: FakeClock
) -> None:
    token = create(client, 11, content_type="text/plain", x_snme_team="storage")
    first = append(client, token, 0, b"hello")
    assert first.status == 204 and first.header("upload-offset") == "4"  # whole units only
    assert client.get(f"{OBJ}/k").status == 404  # nothing visible before the end
    clock.advance(minutes=1)
    done = append(client, token, 4, b"o world")
    assert done.status == 201 and done.json() == {"key": "k"}
    result = client.get(f"{OBJ}/k")
    assert result.body == b"hello world"
    assert result.header("content-type") == "text/plain"
    assert result.header("x-snme-team") == "storage"
    assert result.header("x-sn-time-created") == "2026-07-01T12:00:00.123456Z"
    probe = client.put(f"{OBJ}/k?session={token}", b"", upload_offset="*")
    assert probe.status == 201  # already complete
    assert len(client.emulator.resumable) == 0


def test_an_overlapping_append_is_accepted_and_a_gap_is_409(client: Client) -> None:
    token = create(client, 8)
    assert append(client, token, 0, b"abcd").header("upload-offset") == "4"
    gap = append(client, token, 6, b"gh")
    assert gap.status == 409 and gap.header("upload-offset") == "4"
    overlap = append(client, token, 2, b"cdefgh")  # bytes 2..3 are skipped
    assert overlap.status == 201
    assert client.get(f"{OBJ}/k").body == b"abcdefgh"


def test_a_probe_reports_the_stored_offset(client: Client) -> None:
    token = create(client, 100)
    append(client, token, 0, b"x" * 9)
    probe = client.put(f"{OBJ}/k?session={token}", b"", upload_offset="*")
    assert probe.status == 204 and probe.header("upload-offset") == "8"


def test_an_append_cut_off_keeps_its_whole_units(emulator: Emulator) -> None:
    client = Client(emulator)
    token = create(client, 100)
    exchange = emulator.begin(
        ServerRequest("PUT", f"{OBJ}/k?session={token}", (("upload-offset", "0"),))
    )
    exchange.feed(b"y" * 11)
    exchange.abort()  # the client went away
    probe = client.put(f"{OBJ}/k?session={token}", b"", upload_offset="*")
    assert probe.header("upload-offset") == "8"


def test_cancel_and_unknown_sessions(client: Client) -> None:
    token = create(client, 10)
    assert client.delete(f"{OBJ}/k?session={token}").status == 204
    assert client.delete(f"{OBJ}/k?session={token}").status == 404
    assert append(client, token, 0, b"x").status == 404
    other = create(client, 10, key="other")
    assert append(client, other, 0, b"x", key="k").status == 404  # bound to its key


def test_creation_needs_an_upload_length(client: Client) -> None:
    result = client.put(f"{OBJ}/k?upload_type=resumable", b"")
    assert result.status == 400
    keyless = client.post(f"{OBJ}/?upload_type=resumable", upload_length="3")
    assert keyless.status == 201
    body = keyless.json()
    assert isinstance(body, dict) and body["key"]


def test_an_append_past_the_length_is_refused(client: Client) -> None:
    token = create(client, 4)
    assert append(client, token, 0, b"toolong").status == 400
    assert client.get(f"{OBJ}/k").status == 404
