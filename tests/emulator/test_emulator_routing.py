"""Routing, path decoding and scope grammar (PROTOCOL §2, §3.8) without sockets."""

from __future__ import annotations

import pytest

from objectstore_core.emulator import MemoryStorage, ObjectId
from tests.emulator.emulator_helpers import Client

OBJ = "/v1/objects/test/org=1"


@pytest.mark.parametrize(
    ("method", "target", "status", "allow"),
    [
        ("GET", f"{OBJ}", 405, "POST"),
        ("GET", f"{OBJ}/", 405, "POST"),
        ("PUT", f"{OBJ}/", 405, "POST"),
        ("DELETE", f"{OBJ}", 405, "POST"),
        ("HEAD", f"{OBJ}/", 405, "POST"),
        ("POST", f"{OBJ}/key", 405, "GET,HEAD,PUT,DELETE,PATCH"),
        ("OPTIONS", f"{OBJ}/key", 405, "GET,HEAD,PUT,DELETE,PATCH"),
        ("GET", "/v1/objects:batch/test/org=1/", 405, "POST"),
        ("POST", "/v1/objects:batch/test/org=1", 404, None),
        ("POST", "/v1/objects%3Abatch/test/org=1/", 404, None),
        ("GET", "/v1/objects/test", 404, None),
        ("GET", "/v1/objects", 404, None),
        ("GET", "/v2/objects/test/org=1/k", 404, None),
        ("GET", "/", 404, None),
        ("GET", "/v1/other/test/org=1/k", 404, None),
        ("POST", "/health", 405, "GET,HEAD"),
        ("GET", "/v1/objects:multipart:parts/test/org=1/", 404, None),
        ("DELETE", "/v1/objects:multipart:complete/test/org=1/k", 405, "POST"),
    ],
)
def test_route_misses_are_empty_404_or_405_with_allow(
    client: Client, method: str, target: str, status: int, allow: str | None
) -> None:
    result = client.request(method, target)
    assert result.status == status
    assert result.body == b""
    assert result.header("allow") == allow


def test_health_ready_keda(client: Client) -> None:
    for path in ("/health", "/ready"):
        result = client.get(path)
        assert (result.status, result.body) == (200, b"OK")
        assert result.header("content-type") == "text/plain; charset=utf-8"
    head = client.head("/health")
    assert (head.status, head.body, head.response.content_length) == (200, b"", 2)
    keda = client.get("/keda")
    assert keda.status == 200
    assert keda.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    assert b"\nobjectstore_requests_total " in keda.body


# PROTOCOL §2.5 table (Python client encoding) plus §2.3 rules.
@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("with%20space", "with space"),
        ("caf%C3%A9", "café"),
        ("100%25literal", "100%literal"),
        ("a%3Fb%23c", "a?b#c"),
        ("%5Bx%5D%5E%7C", "[x]^|"),
        ("[x]^|", "[x]^|"),
        ("sub!$'()*+,=delims", "sub!$'()*+,=delims"),
        ("nested/path", "nested/path"),
        ("a%2Fb", "a/b"),
        ("k/", "k/"),
        ("/k", "/k"),
        ("a//b", "a//b"),
        ("a/../b", "a/../b"),
        ("a+b", "a+b"),
        ("100%", "100%"),
        ("%zz", "%zz"),
        ("obj:with:colons", "obj:with:colons"),
    ],
)
def test_key_decoding(client: Client, storage: MemoryStorage, raw: str, key: str) -> None:
    result = client.put(f"{OBJ}/{raw}", b"x")
    assert result.status == 200
    assert result.json() == {"key": key}
    assert storage.ids() == [ObjectId("test", "org=1", key)]
    assert client.get(f"{OBJ}/{raw}").body == b"x"


def test_key_percent_slash_and_literal_slash_are_the_same_object(client: Client) -> None:
    client.put(f"{OBJ}/a%2Fb", b"one")
    assert client.get(f"{OBJ}/a/b").body == b"one"
    assert client.get(f"{OBJ}/a/b/").status == 404  # trailing slash is significant


def test_raw_utf8_in_target_is_decoded(client: Client, storage: MemoryStorage) -> None:
    # A transport hands over raw bytes as Latin-1 text; the handler re-encodes them.
    target = f"{OBJ}/" + "café".encode().decode("latin-1")
    assert client.put(target, b"x").json() == {"key": "café"}


def test_invalid_utf8_in_key_is_400_text(client: Client) -> None:
    result = client.put(f"{OBJ}/%FF", b"x")
    assert result.status == 400
    assert result.header("content-type") == "text/plain; charset=utf-8"
    assert result.body.startswith(b"Invalid URL: ")


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ("org%201", "scope must be 'key=value'"),
        ("org=1%202", "invalid character ' '"),
        ("org=1%20", "invalid character ' '"),
        ("org=1.5", "invalid character '.'"),
        ("org=a=b", "invalid character '='"),
        ("org=caf%C3%A9", "invalid character 'é'"),
        ("org", "scope must be 'key=value'"),
        ("org=1;", "scope must be 'key=value'"),
        ("=1", "scope must be 'key=value'"),
        ("org=", "scope must be 'key=value'"),
        ("", "scope must be 'key=value'"),
    ],
)
def test_scope_grammar_errors(client: Client, scopes: str, message: str) -> None:
    result = client.get(f"/v1/objects/test/{scopes}/key")
    assert result.status == 400
    assert result.body.decode() == f"Invalid URL: {message}"


@pytest.mark.parametrize("scopes", ["_", "org=1", "org=1;project=2", "a_-()$!+'=Z9"])
def test_valid_scopes(client: Client, scopes: str) -> None:
    assert client.put(f"/v1/objects/test/{scopes}/k", b"v").status == 200
    assert client.get(f"/v1/objects/test/{scopes}/k").body == b"v"


def test_percent_encoded_scopes_are_decoded_first(client: Client, storage: MemoryStorage) -> None:
    client.put("/v1/objects/test/org%3D1%3Bproject%3D2/k", b"v")
    assert storage.ids() == [ObjectId("test", "org=1;project=2", "k")]


def test_scope_order_and_usecase_are_part_of_the_identity(client: Client) -> None:
    client.put("/v1/objects/test/org=1;project=2/k", b"a")
    assert client.get("/v1/objects/test/project=2;org=1/k").status == 404
    assert client.get("/v1/objects/Test/org=1;project=2/k").status == 404
    assert client.get("/v1/objects/test/org=1/k").status == 404


def test_empty_usecase_is_accepted_by_the_router(client: Client) -> None:
    assert client.put("/v1/objects//_/k", b"x").status == 200


def test_absolute_form_target(client: Client) -> None:
    assert client.put(f"http://example.com{OBJ}/k", b"x").status == 200
    assert client.get(f"{OBJ}/k").body == b"x"


def test_unknown_query_parameters_are_ignored(client: Client) -> None:
    assert client.put(f"{OBJ}/k?foo=bar&x", b"x").status == 200
    assert client.get(f"{OBJ}/k?foo=bar&upload_type=x").body == b"x"
    assert client.delete(f"{OBJ}/k?foo=1").status == 204


def test_duplicate_known_query_parameter_is_400_text(client: Client) -> None:
    result = client.put(f"{OBJ}/k?upload_type=a&upload_type=b", b"x")
    assert result.status == 400
    assert result.body.startswith(b"Failed to deserialize query string: ")


def test_resumable_create_is_501_and_creates_nothing_when_disabled(
    client: Client, storage: MemoryStorage
) -> None:
    client.emulator.resumable.enabled = False
    for result in (
        client.post(f"{OBJ}/?upload_type=resumable", upload_length="10"),
        client.put(f"{OBJ}/k?upload_type=resumable", upload_length="10"),
    ):
        assert result.status == 501
        assert result.json() == {
            "detail": "service error: not implemented",
            "causes": ["not implemented"],
        }
    assert len(storage) == 0
    assert len(client.emulator.resumable) == 0


def test_resumable_append_to_unknown_session_is_404(client: Client) -> None:
    client.put(f"{OBJ}/k", b"original")
    assert client.put(f"{OBJ}/k?session=abc", b"chunk", upload_offset="0").status == 404
    assert client.delete(f"{OBJ}/k?session=abc").status == 404
    assert client.get(f"{OBJ}/k").body == b"original"


def test_batch_without_a_multipart_body_is_a_plain_400(client: Client) -> None:
    result = client.post("/v1/objects:batch/test/org=1/")  # PROTOCOL §8.1
    assert result.status == 400
    assert result.body == b"Invalid `boundary` for `multipart/form-data` request"


def test_authorize_hook_runs_after_routing_and_before_path_parsing(
    storage: MemoryStorage,
) -> None:
    from objectstore_core.emulator import Route, ServerRequest, ServerResponse
    from objectstore_sync.emulator import Emulator

    seen: list[Route] = []

    def deny(request: ServerRequest, route: Route, now: object) -> ServerResponse | None:
        seen.append(route)
        return ServerResponse(401, (), b"no", 2)

    client = Client(Emulator(storage, authorize=deny))
    assert client.get("/health").status == 200  # internal endpoints need no auth
    assert client.get("/nope").status == 404  # routing first
    assert client.get("/v1/objects/test/bad scope/k").status == 401  # before path parsing
    assert [route.raw_scopes for route in seen] == ["bad scope"]
