"""Range requests, every row of PROTOCOL §6, without sockets."""

from __future__ import annotations

import pytest

from objectstore_core.emulator._ranges import ByteRange, RangeError, parse_range, resolve_range
from tests.emulator.emulator_helpers import Client

OBJ = "/v1/objects/test/org=1"
PAYLOAD = b"Greetings to Requests!"  # 22 bytes, the last 9 are "Requests!" as in §16.4
T = len(PAYLOAD)


@pytest.fixture
def stored(client: Client) -> Client:
    client.put(f"{OBJ}/greeting", PAYLOAD, content_type="text/plain", content_encoding="zstd")
    return client


def _get(client: Client, value: str, key: str = "greeting") -> tuple[int, dict[str, str], bytes]:
    result = client.get(f"{OBJ}/{key}", [("range", value)])
    return result.status, result.headers, result.body


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("bytes=0-4", 0, 4),
        ("bytes=7-7", 7, 7),
        ("bytes=5-1000", 5, T - 1),  # B clamped to T-1
        ("bytes=0-", 0, T - 1),
        ("bytes=13-", 13, T - 1),
        ("bytes=-9", 13, T - 1),
        ("bytes=-1000", 0, T - 1),  # start = max(0, T-N)
        ("BYTES=0-1", 0, 1),  # lower-cased first
        ("bytes=00-01", 0, 1),
    ],
)
def test_satisfiable_ranges_are_206(stored: Client, value: str, first: int, last: int) -> None:
    status, headers, body = _get(stored, value)
    assert status == 206
    assert body == PAYLOAD[first : last + 1]
    assert headers["content-range"] == f"bytes {first}-{last}/{T}"
    assert headers["accept-ranges"] == "bytes"
    assert headers["x-sn-size"] == str(T)  # the full size, also on 206 (§14.5)
    assert headers["content-encoding"] == "zstd"  # all metadata headers
    assert headers["content-type"] == "text/plain"


def test_206_announces_its_length(stored: Client) -> None:
    result = stored.get(f"{OBJ}/greeting", [("range", "bytes=-9")])
    assert result.response.content_length == 9
    assert result.body == b"Requests!"


@pytest.mark.parametrize("value", ["bytes=22-", "bytes=22-30", "bytes=100-200"])
def test_unsatisfiable_ranges_are_416(stored: Client, value: str) -> None:
    result = stored.get(f"{OBJ}/greeting", [("range", value)])
    assert result.status == 416
    assert result.body == b""
    assert result.headers == {"content-range": f"bytes */{T}", "accept-ranges": "bytes"}


@pytest.mark.parametrize("value", ["bytes=0-0", "bytes=-1", "bytes=0-"])
def test_empty_object_is_always_unsatisfiable(client: Client, value: str) -> None:
    client.put(f"{OBJ}/empty")
    status, headers, _ = _get(client, value, "empty")
    assert status == 416
    assert headers["content-range"] == "bytes */0"


@pytest.mark.parametrize("value", ["bytes=0-1,5-6", "bytes=0-1, 3-4", "bytes=a-b,"])
def test_multiple_ranges_are_ignored(stored: Client, value: str) -> None:
    result = stored.get(f"{OBJ}/greeting", [("range", value)])
    assert result.status == 200
    assert result.body == PAYLOAD
    assert result.response.content_length is None
    assert "content-range" not in result.headers


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("items=0-1", "invalid range unit: items"),
        ("bytes=a-b", "invalid byte range"),
        ("bytes=1-0", "invalid byte range"),
        ("bytes=-0", "invalid byte range"),
        ("bytes=-", "invalid byte range"),
        ("bytes=", "invalid byte range"),
        ("bytes=5", "invalid byte range"),
        ("bytes= 0-1", "invalid byte range"),
        ("bytes=0 -1", "invalid byte range"),
        ("bytes=+1-2", "invalid byte range"),
        ("bytes=0-99999999999999999999999", "invalid byte range"),
        ("bytes0-1", "invalid byte range"),
        ("bytes=0-1\xe9", "header value is not visible ASCII"),
    ],
)
def test_malformed_ranges_are_400_json(stored: Client, value: str, message: str) -> None:
    result = stored.get(f"{OBJ}/greeting", [("range", value)])
    assert result.status == 400
    assert result.json() == {"detail": f"client error: invalid Range header: {message}"}


def test_malformed_range_wins_over_missing_object(client: Client) -> None:
    assert _get(client, "bytes=x", "missing")[0] == 400  # §1.4 step 5 before the lookup
    assert _get(client, "bytes=0-1", "missing")[0] == 404
    assert _get(client, "bytes=1000-", "missing")[0] == 404


def test_head_ignores_range(stored: Client) -> None:
    result = stored.request("HEAD", f"{OBJ}/greeting", headers=[("range", "bytes=oops")])
    assert result.status == 204
    assert "content-range" not in result.headers


def test_resolve_range_units() -> None:
    assert resolve_range(ByteRange(start=0, end=0), 1) == (0, 0)
    assert resolve_range(ByteRange(suffix=5), 3) == (0, 2)
    assert resolve_range(ByteRange(start=3), 3) is None
    assert resolve_range(ByteRange(suffix=1), 0) is None
    with pytest.raises(RangeError):
        parse_range("bytes=-0")
