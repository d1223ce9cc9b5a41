"""The emulator's verification, request by request, without sockets (PROTOCOL §10, §11).

Requests go straight to ``Emulator.handle``; the emulator clock is fixed so
expiry and pre-signed windows are exact.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from objectstore_core import Permission, Scope, SecretKey, build_canonical_form
from objectstore_core._auth import b64url_encode
from objectstore_core.emulator import (
    Authenticator,
    AuthKey,
    MemoryStorage,
    ServerRequest,
    load_public_key,
    parse_permission,
)
from objectstore_sync.emulator import Emulator
from tests.auth.conftest import KID, PRIVATE_PEM, PUBLIC_PEM, READ_ONLY_KID, key_directory

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
PATH = "/v1/objects/test/org=1/presign-key"
VECTOR1_QUERY = "os_kid=test_kid&os_timestamp=2026-07-01T12:00:00Z&os_duration=3600"
VECTOR1_SIG = (
    "7iXhFCBd0rW3MeCTqnto4N5El_xCt0jfYfmwgBmUbS7jh46K6p_SDR8nJIIfEGDZeF2lyp3PPPB2lUrpLIkmBg"
)
KEY = SecretKey(KID, PRIVATE_PEM)


class Server:
    """An enforcing emulator with a settable clock and one stored object."""

    def __init__(self, keys: dict[str, AuthKey] | None = None) -> None:
        self.now = NOW
        self.emulator = Emulator(
            MemoryStorage(),
            clock=lambda: self.now,
            authorize=Authenticator(key_directory() if keys is None else keys),
        )
        assert self.emulator.handle(self.request("PUT", PATH, token=self.token()), b"hi")[0]
        self.request_count = 0

    def token(self, scope: Any = None, **kwargs: Any) -> str:
        chosen = Scope(org=1) if scope is None else scope
        return KEY.token_for_scope("test", chosen, now=self.now.timestamp(), **kwargs)

    @staticmethod
    def request(
        method: str, target: str, token: str | None = None, headers: tuple[Any, ...] = ()
    ) -> ServerRequest:
        if token is not None:
            headers = (("x-os-auth", f"Bearer {token}"), *headers)
        return ServerRequest(method, target, headers)

    def send(
        self, method: str, target: str, token: str | None = None, *headers: tuple[str, str]
    ) -> tuple[int, dict[str, Any] | bytes]:
        response, body = self.emulator.handle(self.request(method, target, token, headers), b"")
        if response.header("content-type") == "application/json" and response.status >= 400:
            return response.status, json.loads(body)
        return response.status, body


@pytest.fixture
def server() -> Server:
    return Server()


def _craft(header: dict[str, Any], claims: dict[str, Any], key: Any = None) -> str:
    """A JWT with any header and claims, signed with ``key`` (default: the test key)."""
    signer = key if key is not None else KEY._private_key
    head = b64url_encode(json.dumps(header).encode())
    body = b64url_encode(json.dumps(claims).encode())
    signature = signer.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64url_encode(signature)}"


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "res": {"os:usecase": "test", "org": "1"},
        "permissions": ["object.read", "object.write", "object.delete"],
        "exp": int(NOW.timestamp()) + 60,
    }
    claims.update(overrides)
    return claims


HEADER = {"alg": "EdDSA", "kid": KID, "typ": "JWT"}


# -- §10.1 modes and §10.5 shapes ----------------------------------------------------------


def test_error_bodies_have_the_documented_shape(server: Server) -> None:
    assert server.send("GET", PATH) == (
        400,
        {
            "detail": "auth error: bad request: No authorization token provided",
            "causes": ["bad request: No authorization token provided"],
        },
    )
    assert server.send("GET", "/v1/objects/test/org=2/k", server.token()) == (
        403,
        {"detail": "auth error: operation not allowed", "causes": ["operation not allowed"]},
    )


def test_without_enforcement_nothing_is_checked() -> None:
    emulator = Emulator(MemoryStorage())
    response, _ = emulator.handle(ServerRequest("PUT", PATH, (("x-os-auth", "Bearer junk"),)))
    assert response.status == 200


def test_enforcing_without_keys_refuses_everything() -> None:
    server = Server.__new__(Server)
    server.now = NOW
    server.emulator = Emulator(MemoryStorage(), clock=lambda: NOW, authorize=Authenticator({}))
    assert server.send("GET", PATH)[0] == 400
    status, body = server.send("GET", PATH, KEY.token_for_scope("test", Scope(org=1)))
    assert (status, body) == (401, {"detail": "auth error: unknown key", "causes": ["unknown key"]})


def test_internal_endpoints_need_no_auth(server: Server) -> None:
    for path in ("/health", "/ready", "/keda"):
        assert server.send("GET", path)[0] == 200


# -- §10.2 carrying the credential ---------------------------------------------------------


def test_token_sources_in_order(server: Server) -> None:
    good, bad = server.token(), "bad.token.value"
    assert server.send("GET", PATH, None, ("authorization", f"Bearer {good}"))[0] == 200
    assert server.send("GET", PATH, None, ("x-os-auth", f"bEaReR {good}"))[0] == 200
    # x-os-auth wins over Authorization, even when unusable (no Bearer prefix).
    both = (("x-os-auth", f"Bearer {bad}"), ("authorization", f"Bearer {good}"))
    assert server.send("GET", PATH, None, *both)[0] == 401
    unusable = (("x-os-auth", good), ("authorization", f"Bearer {good}"))
    assert server.send("GET", PATH, None, *unusable)[0] == 400
    for value in (good, f"Bearer{good}", f"Token {good}", f"Bearer\t{good}"):
        assert server.send("GET", PATH, None, ("x-os-auth", value))[0] == 400, value
    assert server.send("GET", PATH, None, ("x-os-auth", f"Bearer  {good}"))[0] == 401
    # os_auth in the query, used only without a usable header token.
    assert server.send("GET", f"{PATH}?os_auth={good}")[0] == 200
    assert server.send("GET", f"{PATH}?os_auth={bad}", good)[0] == 200
    assert server.send("GET", f"{PATH}?x=1&os_auth={bad}")[0] == 401


def test_duplicate_auth_query_parameters_are_400(server: Server) -> None:
    good = server.token()
    status, body = server.send("GET", f"{PATH}?os_auth={good}&os_auth={good}")
    assert status == 400
    assert isinstance(body, dict)
    assert body["detail"] == "auth error: bad request: invalid query string"
    assert server.send("GET", f"{PATH}?os_kid=a&os_kid=b", good)[0] == 400
    assert server.send("GET", f"{PATH}?other=1&other=2", good)[0] == 200  # unknown: ignored


def test_os_sig_switches_to_presigned_mode_and_ignores_tokens(server: Server) -> None:
    status, _ = server.send("GET", f"{PATH}?os_sig=x", server.token())
    assert status == 400  # presigned parameters missing; the valid token does not count
    # Only the exact, case-sensitive name `os_sig` selects pre-signed mode.
    assert server.send("GET", f"{PATH}?OS_SIG=x", server.token())[0] == 200


# -- §10.3 the JWT -------------------------------------------------------------------------


def test_token_checks(server: Server) -> None:
    def status(token: str) -> int:
        return server.send("GET", PATH, token)[0]

    assert status(_craft(HEADER, _claims())) == 200
    assert status(_craft({"alg": "EdDSA"}, _claims())) == 400  # no kid
    assert status(_craft({**HEADER, "kid": "nobody"}, _claims())) == 401
    assert status(_craft({**HEADER, "alg": "HS256"}, _claims())) == 401
    assert status(_craft({**HEADER, "typ": "whatever"}, _claims())) == 200  # typ unchecked
    other_key = Ed25519PrivateKey.generate()
    assert status(_craft(HEADER, _claims(), other_key)) == 401
    for broken in ("", "a.b", "a.b.c.d", "!!!.x.y", server.token()[:-2]):
        assert status(broken) == 401, broken
    exp = int(NOW.timestamp())
    assert status(_craft(HEADER, _claims(exp=exp - 60))) == 200  # within the 60 s leeway
    assert status(_craft(HEADER, _claims(exp=exp - 61))) == 401
    assert status(_craft(HEADER, _claims(exp=exp + 0.5))) == 200  # fractional tolerated
    for bad_exp in (None, "later", True):
        assert status(_craft(HEADER, _claims(exp=bad_exp))) == 401
    assert status(_craft(HEADER, {k: v for k, v in _claims().items() if k != "exp"})) == 401


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"aud": "objectstore"}, 200),
        ({"aud": ["x", "objectstore"]}, 200),
        ({"aud": "other"}, 401),
        ({"iss": "relay"}, 200),
        ({"iss": "sentry"}, 200),
        ({"iss": "someone"}, 401),
        ({"nbf": 9_999_999_999, "iat": 9_999_999_999, "sub": 1, "jti": []}, 200),
        ({"permissions": ["object.read", "object.admin"]}, 401),
        ({"permissions": "object.read"}, 401),
        ({"permissions": None}, 401),
        ({"res": {"os:usecase": "test", "org": 1}}, 401),
        ({"res": {"org": "1"}}, 401),
        ({"res": None}, 401),
        ({"res": {"os:usecase": "test", "org": "*"}}, 200),
        ({"res": {"os:usecase": "*", "org": "1"}}, 403),  # no usecase wildcard
        ({"permissions": ["object.write"]}, 403),
        ({"permissions": []}, 403),
    ],
)
def test_claim_rules(server: Server, overrides: dict[str, Any], expected: int) -> None:
    assert server.send("GET", PATH, _craft(HEADER, _claims(**overrides)))[0] == expected


def test_key_rotation_and_permission_intersection() -> None:
    rotated = AuthKey((load_public_key(_public_pem_of_new_key()), load_public_key(PUBLIC_PEM)))
    server = Server({KID: rotated, READ_ONLY_KID: key_directory()[READ_ONLY_KID]})
    assert server.send("GET", PATH, server.token())[0] == 200  # second version verifies
    reader = SecretKey(READ_ONLY_KID, PRIVATE_PEM).token_for_scope(
        "test", Scope(org=1), now=NOW.timestamp()
    )
    assert server.send("GET", PATH, reader)[0] == 200
    assert server.send("DELETE", PATH, reader)[0] == 403
    nothing = Server({KID: AuthKey.from_pem(PUBLIC_PEM, [])})
    assert nothing.send("GET", PATH, nothing.token())[0] == 403


def _public_pem_of_new_key() -> str:
    from cryptography.hazmat.primitives import serialization

    return (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# -- §10.4 permissions per operation and §1.4 order -----------------------------------------


@pytest.mark.parametrize(
    ("method", "needs"),
    [
        ("GET", Permission.OBJECT_READ),
        ("HEAD", Permission.OBJECT_READ),
        ("PUT", Permission.OBJECT_WRITE),
        ("DELETE", Permission.OBJECT_DELETE),
    ],
)
def test_permission_per_operation(server: Server, method: str, needs: Permission) -> None:
    others = [p for p in Permission.max() if p is not needs]
    assert server.send(method, PATH, server.token(permissions=others))[0] == 403
    assert server.send(method, PATH, server.token(permissions=[needs]))[0] in (200, 204)


def test_post_and_patch_need_write(server: Server) -> None:
    read_delete = server.token(permissions=[Permission.OBJECT_READ, Permission.OBJECT_DELETE])
    assert server.send("POST", "/v1/objects/test/org=1/", read_delete)[0] == 403
    body = b'{"extend_expiry": {"after": "1d", "from": "now"}}'
    request = Server.request("PATCH", PATH, read_delete)
    assert server.emulator.handle(request, body)[0].status == 403
    writer = Server.request("PATCH", PATH, server.token(permissions=[Permission.OBJECT_WRITE]))
    assert server.emulator.handle(writer, body)[0].status == 409  # allowed; manual object


def test_order_of_checks(server: Server) -> None:
    """§1.4: auth before path parsing; endpoint extraction and metadata before permissions."""
    assert server.send("GET", "/v1/objects/test/bad scope/k") == (
        400,
        {
            "detail": "auth error: bad request: No authorization token provided",
            "causes": ["bad request: No authorization token provided"],
        },
    )
    status, body = server.send("GET", "/v1/objects/test/bad scope/k", server.token())
    assert status == 400 and isinstance(body, bytes) and body.startswith(b"Invalid URL")
    read_only = server.token(permissions=[Permission.OBJECT_READ])
    status, body = server.send("PUT", PATH, read_only, ("content-encoding", "gzip"))
    assert status == 400  # bad metadata beats the missing write permission
    assert isinstance(body, dict) and "metadata" in body["detail"]
    write_only = server.token(permissions=[Permission.OBJECT_WRITE])
    assert server.send("GET", PATH, write_only, ("range", "bytes=x"))[0] == 400
    assert server.send("DELETE", f"{PATH}?session=1&session=2", read_only)[0] == 400


# -- §11 pre-signed requests ---------------------------------------------------------------


def test_vector_1_is_accepted_for_get_and_head_only(server: Server) -> None:
    target = f"{PATH}?{VECTOR1_QUERY}&os_sig={VECTOR1_SIG}"
    assert server.send("GET", target) == (200, b"hi")
    assert server.send("HEAD", target)[0] == 204
    for method in ("PUT", "DELETE", "PATCH"):
        status, body = server.send(method, target)
        assert status == 403, method
        assert isinstance(body, dict) and "not supported for this method" in body["detail"]


def test_presigned_time_window(server: Server) -> None:
    target = f"{PATH}?{VECTOR1_QUERY}&os_sig={VECTOR1_SIG}"
    for offset, expected in [(-61, 401), (-60, 200), (0, 200), (3600, 200), (3601, 401)]:
        server.now = NOW + timedelta(seconds=offset)
        assert server.send("GET", target)[0] == expected, offset


def test_presigned_signature_and_parameters(server: Server) -> None:
    def signed(query: str, path: str = PATH, method: str = "GET") -> str:
        signature = KEY.signature_for_canonical_form(build_canonical_form(method, path, query))
        return f"{path}?{query}&os_sig={signature}"

    tampered = VECTOR1_SIG[:-3] + ("AAg" if not VECTOR1_SIG.endswith("AAg") else "BBg")
    assert server.send("GET", f"{PATH}?{VECTOR1_QUERY}&os_sig={tampered}")[0] == 401
    assert server.send("GET", f"{PATH}?{VECTOR1_QUERY}&os_sig=short")[0] == 401
    assert server.send("GET", f"{PATH}?{VECTOR1_QUERY}&os_sig={VECTOR1_SIG}=")[0] == 401
    # The signature covers the raw path and every query parameter.
    assert server.send("GET", f"{PATH}?{VECTOR1_QUERY}&x=1&os_sig={VECTOR1_SIG}")[0] == 401
    assert server.send("GET", signed(VECTOR1_QUERY + "&x=1")) == (200, b"hi")
    other_path = "/v1/objects/test/org=%31/presign-key"  # same object, other bytes
    assert server.send("GET", f"{other_path}?{VECTOR1_QUERY}&os_sig={VECTOR1_SIG}")[0] == 401
    stamp = "os_timestamp=2026-07-01T12:00:00Z"
    week = signed(f"os_kid=test_kid&{stamp}&os_duration=604800")
    assert server.send("GET", week)[0] == 200
    too_long = signed(f"os_kid=test_kid&{stamp}&os_duration=604801")
    status, body = server.send("GET", too_long)
    assert status == 400 and isinstance(body, dict) and "1 week" in body["detail"]
    assert server.send("GET", signed(f"os_kid=nobody&{stamp}&os_duration=60"))[0] == 401
    for query in (
        f"os_kid=test_kid&{stamp}",  # no duration
        f"os_kid=test_kid&{stamp}&os_duration=-1",
        f"os_kid=test_kid&{stamp}&os_duration=1h",
        "os_kid=test_kid&os_timestamp=yesterday&os_duration=60",
        "os_kid=test_kid&os_timestamp=2026-07-01T12:00:00+00:00&os_duration=60",  # + is space
        f"os_kid=test_kid&os_kid=test_kid&{stamp}&os_duration=60",
    ):
        assert server.send("GET", signed(query))[0] == 400, query
    for stamp_form in (
        "2026-07-01T12:00:00%2B00:00",
        "2026-07-01%2012:00:00",
        "2026-07-01T12:00:00.250Z",
        "2026-07-01T12:00:00",
    ):
        query = f"os_kid=test_kid&os_timestamp={stamp_form}&os_duration=60"
        assert server.send("GET", signed(query))[0] == 200, stamp_form


def test_presigned_needs_read_in_the_key_max_permissions() -> None:
    server = Server(
        {
            KID: AuthKey.from_pem(PUBLIC_PEM, ["write", "delete"]),
            READ_ONLY_KID: key_directory()[KID],
        }
    )
    assert server.send("GET", f"{PATH}?{VECTOR1_QUERY}&os_sig={VECTOR1_SIG}")[0] == 403


# -- configuration helpers ------------------------------------------------------------------


def test_permission_names() -> None:
    assert parse_permission("read") is Permission.OBJECT_READ
    assert parse_permission(" object.delete ") is Permission.OBJECT_DELETE
    with pytest.raises(ValueError, match="'admin' is invalid"):
        parse_permission("admin")


def test_bad_public_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="Ed25519 public key"):
        load_public_key("nope")
    with pytest.raises(ValueError, match="Ed25519 public key"):
        load_public_key(PRIVATE_PEM)
    with pytest.raises(ValueError, match="at least one"):
        AuthKey(())
    with pytest.raises(TypeError, match="AuthKey"):
        Authenticator({KID: PUBLIC_PEM})  # type: ignore[dict-item]
