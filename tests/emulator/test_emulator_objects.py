"""Object endpoints and metadata (PROTOCOL §3, §4, §13, §14.4, §14.5) without sockets."""

from __future__ import annotations

import re
import uuid

import pytest

from objectstore_core.emulator import (
    BodyStream,
    MemoryStorage,
    ServerRequest,
)
from objectstore_sync.emulator import Emulator
from tests.emulator.emulator_helpers import Client, FakeClock

OBJ = "/v1/objects/test/org=1;project=2"
READ_ORDER = [
    "content-type",
    "content-encoding",
    "x-sn-expiration",
    "x-sn-time-created",
    "x-sn-time-expires",
    "x-sn-origin",
    "x-sn-filename",
    "x-snme-alpha",
    "x-snme-zeta",
    "content-disposition",
    "accept-ranges",
    "x-sn-size",
]


def test_post_generates_a_uuid4_key_and_answers_201(client: Client) -> None:
    for target in (OBJ, f"{OBJ}/"):
        result = client.post(target, b"hello")
        assert result.status == 201
        key = result.json()["key"]  # type: ignore[index]
        assert str(uuid.UUID(key)) == key and uuid.UUID(key).version == 4
        assert client.get(f"{OBJ}/{key}").body == b"hello"


def test_put_answers_200_with_the_decoded_key(client: Client) -> None:
    result = client.put(f"{OBJ}/events/caf%C3%A9.json", b"{}")
    assert result.status == 200
    assert result.body == '{"key":"events/café.json"}'.encode()
    assert result.header("content-type") == "application/json"


def test_get_returns_the_stored_bytes_chunked(client: Client) -> None:
    payload = bytes(range(256)) * 100
    client.put(f"{OBJ}/k", payload)
    result = client.get(f"{OBJ}/k")
    assert result.status == 200
    assert result.body == payload
    assert result.response.content_length is None  # chunked (§1.1)
    assert isinstance(result.response.body, BodyStream)


def test_empty_object(client: Client) -> None:
    client.put(f"{OBJ}/empty")
    result = client.get(f"{OBJ}/empty")
    assert (result.status, result.body, result.header("x-sn-size")) == (200, b"", "0")


def test_missing_object_is_an_empty_404(client: Client) -> None:
    for result in (client.get(f"{OBJ}/nope"), client.head(f"{OBJ}/nope")):
        assert result.status == 404
        assert result.body == b""
        assert result.response.headers == ()


def test_head_is_204_without_body_or_length_and_with_the_get_headers(client: Client) -> None:
    client.put(f"{OBJ}/k", b"12345", content_type="text/plain", x_sn_filename="a.txt")
    head = client.head(f"{OBJ}/k")
    get = client.get(f"{OBJ}/k")
    assert head.status == 204
    assert head.body == b""
    assert head.response.content_length is None
    assert head.response.headers == get.response.headers


def test_delete_is_204_even_when_absent(client: Client) -> None:
    client.put(f"{OBJ}/k", b"x")
    assert client.delete(f"{OBJ}/k").status == 204
    assert client.get(f"{OBJ}/k").status == 404
    result = client.delete(f"{OBJ}/k")
    assert (result.status, result.body, result.response.content_length) == (204, b"", None)


def test_read_headers_follow_the_reference_order(client: Client, clock: FakeClock) -> None:
    client.put(
        f"{OBJ}/k",
        b"data",
        content_type="application/json",
        content_encoding="zstd",
        x_sn_expiration="ttl:30d",
        x_sn_origin="203.0.113.42",
        x_sn_filename="abc.json",
        x_snme_zeta="z",
        x_snme_alpha="a",
    )
    result = client.get(f"{OBJ}/k")
    assert result.names == READ_ORDER
    assert result.headers == {
        "content-type": "application/json",
        "content-encoding": "zstd",
        "x-sn-expiration": "ttl:30d",
        "x-sn-time-created": "2026-07-01T12:00:00.123456Z",
        "x-sn-time-expires": "2026-07-31T12:00:00.123456Z",
        "x-sn-origin": "203.0.113.42",
        "x-sn-filename": "abc.json",
        "x-snme-alpha": "a",
        "x-snme-zeta": "z",
        "content-disposition": 'attachment; filename="abc.json"',
        "accept-ranges": "bytes",
        "x-sn-size": "4",
    }


def test_minimal_read_headers(client: Client) -> None:
    client.put(f"{OBJ}/k", b"data")
    result = client.get(f"{OBJ}/k")
    assert result.names == ["content-type", "x-sn-time-created", "accept-ranges", "x-sn-size"]
    assert result.header("content-type") == "application/octet-stream"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", result.headers["x-sn-time-created"]
    )


@pytest.mark.parametrize(
    ("written", "emitted"),
    [
        ("ttl:30s", "ttl:30s"),
        ("ttl:90s", "ttl:1m 30s"),
        ("ttl:1day", "ttl:1d"),
        ("tti:30days", "tti:30d"),
        ("ttl:1month", "ttl:30d 10h 33m 36s"),
        ("ttl:400d 1m 30s", "ttl:400d 1m 30s"),
        ("tti:1.5h", "tti:1h 30m"),
        ("ttl:1 days 3600 seconds", "ttl:1d 1h"),
    ],
)
def test_expiration_is_emitted_in_the_compact_form(
    client: Client, written: str, emitted: str
) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration=written)
    assert client.head(f"{OBJ}/k").header("x-sn-expiration") == emitted


def test_manual_expiration_is_omitted(client: Client) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="manual")
    head = client.head(f"{OBJ}/k")
    assert "x-sn-expiration" not in head.headers
    assert "x-sn-time-expires" not in head.headers


def _metadata_error(message: str) -> dict[str, object]:
    return {
        "detail": f"service error: metadata error: {message}",
        "causes": [f"metadata error: {message}", message],
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("content-encoding", "gzip", "invalid compression value"),
        ("content-encoding", "ZSTD", "invalid compression value"),
        ("content-encoding", "identity", "invalid compression value"),
        ("content-encoding", "", "invalid compression value"),
        ("content-type", "json", "invalid content type"),
        ("content-type", "text/", "invalid content type"),
        ("x-sn-expiration", "ttl:", "invalid expiration policy"),
        ("x-sn-expiration", "TTL:1d", "invalid expiration policy"),
        ("x-sn-expiration", "ttl:5 parsecs", "invalid expiration policy"),
        ("x-sn-expiration", "forever", "invalid expiration policy"),
        ("x-snme-name", "caf\xe9", "error dealing with http headers"),
        ("x-sn-origin", "\xff", "error dealing with http headers"),
        ("x-sn-filename", "a\x7fb", "error dealing with http headers"),
        ("content-type", "text/plain\x01", "error dealing with http headers"),
    ],
)
def test_invalid_metadata_is_400_json_and_stores_nothing(
    client: Client, storage: MemoryStorage, name: str, value: str, message: str
) -> None:
    result = client.request("PUT", f"{OBJ}/k", b"x", [(name, value)])
    assert result.status == 400
    assert result.json() == _metadata_error(message)
    assert len(storage) == 0


def test_tab_and_visible_ascii_are_accepted(client: Client) -> None:
    value = "\t" + "".join(chr(c) for c in range(0x20, 0x7F))
    assert client.request("PUT", f"{OBJ}/k", b"", [("x-snme-all", value)]).status == 200
    assert client.head(f"{OBJ}/k").header("x-snme-all") == value


def test_time_headers_on_write_are_ignored_even_when_malformed(client: Client) -> None:
    result = client.put(
        f"{OBJ}/k", b"x", x_sn_time_created="garbage", x_sn_time_expires="\xff", x_sn_other="x"
    )
    assert result.status == 200
    head = client.head(f"{OBJ}/k")
    assert head.header("x-sn-time-created") == "2026-07-01T12:00:00.123456Z"
    assert "x-sn-time-expires" not in head.headers
    assert "x-sn-other" not in head.headers


def test_custom_metadata_names_are_lower_cased_and_the_last_occurrence_wins(
    client: Client,
) -> None:
    headers = [("X-SNME-BuildId", "1"), ("x-snme-buildid", "2"), ("x-snme-Other", "o")]
    client.request("PUT", f"{OBJ}/k", b"", headers)
    head = client.head(f"{OBJ}/k")
    assert [(n, v) for n, v in head.response.headers if n.startswith("x-snme-")] == [
        ("x-snme-buildid", "2"),
        ("x-snme-other", "o"),
    ]


def test_content_type_with_parameters_is_stored_verbatim(client: Client) -> None:
    client.put(f"{OBJ}/k", b"x", content_type="text/plain; charset=utf-8")
    assert client.get(f"{OBJ}/k").header("content-type") == "text/plain; charset=utf-8"


def test_percent_encoded_values_are_stored_as_sent(client: Client) -> None:
    # §14.4 clients percent-encode; the emulator stores and echoes the text verbatim.
    client.put(f"{OBJ}/k", b"", x_snme_city="K%C3%B6ln", x_sn_filename="caf%C3%A9 100%25.txt")
    head = client.head(f"{OBJ}/k")
    assert head.header("x-snme-city") == "K%C3%B6ln"
    assert head.header("x-sn-filename") == "caf%C3%A9 100%25.txt"
    assert head.header("content-disposition") == 'attachment; filename="caf%C3%A9 100%25.txt"'


@pytest.mark.parametrize(
    ("filename", "disposition"),
    [
        ("report.pdf", 'attachment; filename="report.pdf"'),
        ("a/b\\c.txt", 'attachment; filename="a-b-c.txt"'),
        (".", 'attachment; filename="-"'),
        ("..", 'attachment; filename="--"'),
        ("...", 'attachment; filename="---"'),
        ("../x", 'attachment; filename="..-x"'),
        ('say "hi".txt', 'attachment; filename="say \\"hi\\".txt"'),
        ("", 'attachment; filename=""'),
    ],
)
def test_content_disposition_sanitizing(client: Client, filename: str, disposition: str) -> None:
    client.put(f"{OBJ}/k", b"", x_sn_filename=filename)
    head = client.head(f"{OBJ}/k")
    assert head.header("x-sn-filename") == filename
    assert head.header("content-disposition") == disposition


def test_overwrite_replaces_everything_and_restamps_time_created(
    client: Client, clock: FakeClock
) -> None:
    client.put(
        f"{OBJ}/k", b"old", content_type="text/plain", x_snme_a="1", x_sn_expiration="tti:1d"
    )
    clock.advance(hours=1)
    client.put(f"{OBJ}/k", b"newer", x_snme_b="2")
    result = client.get(f"{OBJ}/k")
    assert result.body == b"newer"
    assert result.headers == {
        "content-type": "application/octet-stream",
        "x-sn-time-created": "2026-07-01T13:00:00.123456Z",
        "x-snme-b": "2",
        "accept-ranges": "bytes",
        "x-sn-size": "5",
    }


def test_bodies_are_stored_verbatim_regardless_of_encoding(client: Client) -> None:
    client.put(f"{OBJ}/k", b"not really zstd", content_encoding="zstd")
    result = client.request("GET", f"{OBJ}/k", headers=[("accept-encoding", "identity")])
    assert result.body == b"not really zstd"
    assert result.header("content-encoding") == "zstd"


def test_time_created_is_stamped_when_the_request_starts(clock: FakeClock) -> None:
    emulator = Emulator(MemoryStorage(), clock=clock)
    exchange = emulator.begin(ServerRequest("PUT", f"{OBJ}/k", (("x-sn-expiration", "ttl:1h"),)))
    assert exchange.response is None
    exchange.feed(b"part 1 ")
    clock.advance(minutes=5)
    exchange.feed(b"part 2")
    response, _ = emulator.handle(ServerRequest("GET", f"{OBJ}/k"))
    assert response.status == 404  # not visible before finish()
    assert exchange.finish().status == 200
    response, body = emulator.handle(ServerRequest("GET", f"{OBJ}/k"))
    assert body == b"part 1 part 2"
    assert response.header("x-sn-time-created") == "2026-07-01T12:00:00.123456Z"
    assert response.header("x-sn-time-expires") == "2026-07-01T13:00:00.123456Z"


def test_abort_leaves_nothing_and_keeps_the_old_version(emulator: Emulator) -> None:
    emulator.handle(ServerRequest("PUT", f"{OBJ}/k"), b"old")
    exchange = emulator.begin(ServerRequest("PUT", f"{OBJ}/k"))
    exchange.feed(b"new partial")
    exchange.abort()
    assert emulator.handle(ServerRequest("GET", f"{OBJ}/k"))[1] == b"old"
    exchange = emulator.begin(ServerRequest("POST", f"{OBJ}/"))
    exchange.feed(b"x")
    exchange.abort()
    assert isinstance(emulator.storage, MemoryStorage) and len(emulator.storage) == 1


def test_exchange_refuses_reuse(emulator: Emulator) -> None:
    exchange = emulator.begin(ServerRequest("PUT", f"{OBJ}/k"))
    exchange.finish()
    with pytest.raises(RuntimeError):
        exchange.feed(b"x")
    with pytest.raises(RuntimeError):
        exchange.finish()
    exchange.abort()  # harmless after the end


def test_body_of_a_request_with_an_early_response_is_discarded(emulator: Emulator) -> None:
    exchange = emulator.begin(ServerRequest("PUT", f"{OBJ}/k", (("content-encoding", "br"),)))
    assert exchange.response is not None and exchange.response.status == 400
    exchange.feed(b"ignored")
    assert exchange.finish().status == 400
    get = emulator.begin(ServerRequest("GET", f"{OBJ}/k"))
    assert get.response is not None and get.response.status == 404


class _FailingStorage(MemoryStorage):
    def writer(self, oid):  # type: ignore[no-untyped-def]
        inner = super().writer(oid)

        class Writer:
            def write(self, data: bytes) -> None:
                raise OSError("disk full")

            def commit(self, record: object) -> None:
                raise AssertionError("must not commit after a failed write")

            def abort(self) -> None:
                inner.abort()

        return Writer()


def test_storage_failures_are_500_json() -> None:
    emulator = Emulator(_FailingStorage())
    response, body = emulator.handle(ServerRequest("PUT", f"{OBJ}/k"), b"data")
    assert response.status == 500
    assert body == b'{"detail":"service error: storage backend error: disk full",' + (
        b'"causes":["storage backend error: disk full"]}'
    )
