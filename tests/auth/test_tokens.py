"""Client-side auth without I/O: keys, tokens, caching, canonical forms, URLs (§10.7, §11).

No sockets: sessions use the in-process transport or build URLs only.
"""

from __future__ import annotations

import math
import pathlib
import pickle
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import objectstore_core._auth as core_auth
from objectstore_async import AsyncClient
from objectstore_core import (
    MAX_PRESIGN_DURATION,
    SUPPORTED_METHODS,
    KeyCredentials,
    build_canonical_form,
    client_config,
    session_target,
)
from objectstore_sync import (
    Client,
    Permission,
    Scope,
    SecretKey,
    TokenGenerator,
    Usecase,
)
from objectstore_sync.testing import InProcessTransport
from tests.auth.conftest import KID, PRIVATE_PEM, PUBLIC_PEM, SECRET_FRAGMENTS

VECTOR_TIME = datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp()
VECTOR1_SIG = (
    "7iXhFCBd0rW3MeCTqnto4N5El_xCt0jfYfmwgBmUbS7jh46K6p_SDR8nJIIfEGDZeF2lyp3PPPB2lUrpLIkmBg"
)
VECTOR2_SIG = (
    "Rx0BmiRBe0uprJbH-Pv6VrySDDRg8AfJ2ERLiF-AB4XImjRA04f4nUyYtbKHPm7pgMWAMoc2eGbYDaiNfHhPDA"
)


def _key(**kwargs: Any) -> SecretKey:
    return SecretKey(KID, PRIVATE_PEM, **kwargs)


def _decode(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token, PUBLIC_PEM, algorithms=["EdDSA"], options={"verify_exp": False}
    )
    return decoded


# -- PROTOCOL §11.4 test vectors ------------------------------------------------------------


def test_vector_1_canonical_form_and_signature() -> None:
    canonical = build_canonical_form(
        "GET",
        "/v1/objects/test/org=1/presign-key",
        "os_kid=test_kid&os_timestamp=2026-07-01T12:00:00Z&os_duration=3600",
    )
    assert canonical == (
        "GET\n/v1/objects/test/org=1/presign-key\n"
        "os_duration=3600&os_kid=test_kid&os_timestamp=2026-07-01T12:00:00Z"
    )
    assert _key().signature_for_canonical_form(canonical) == VECTOR1_SIG


def test_vector_2_canonical_form_and_signature() -> None:
    canonical = build_canonical_form(
        "GET",
        "/v1/objects/test/org=1;project=2/reports/Q1%20summary.pdf",
        "os_kid=test_kid&os_timestamp=2026-07-01T12:00:00Z&os_duration=600",
    )
    assert canonical == (
        "GET\n/v1/objects/test/org=1;project=2/reports/Q1%20summary.pdf\n"
        "os_duration=600&os_kid=test_kid&os_timestamp=2026-07-01T12:00:00Z"
    )
    assert _key().signature_for_canonical_form(canonical) == VECTOR2_SIG


def test_presigned_urls_reproduce_both_vectors() -> None:
    client = Client("http://objectstore:8888", token=_key())
    url = client.session(Usecase("test"), org=1).presigned_object_url(
        "GET", "presign-key", timedelta(hours=1), now=VECTOR_TIME
    )
    assert url == (
        "http://objectstore:8888/v1/objects/test/org=1/presign-key?os_kid=test_kid"
        f"&os_timestamp=2026-07-01T12:00:00Z&os_duration=3600&os_sig={VECTOR1_SIG}"
    )
    second = client.session(Usecase("test"), org=1, project=2).presigned_object_url(
        "HEAD", "reports/Q1 summary.pdf", timedelta(seconds=600), now=VECTOR_TIME + 0.9
    )
    assert second.endswith(f"os_duration=600&os_sig={VECTOR2_SIG}")
    assert "/v1/objects/test/org=1;project=2/reports/Q1%20summary.pdf?" in second


@pytest.mark.parametrize(
    ("method", "query", "expected"),
    [
        ("HEAD", "b=2&a=1", "a=1&b=2"),  # HEAD is signed as GET; pieces sorted
        ("get", "B=2&a=1", "a=1&b=2"),  # names lower-cased, method upper-cased
        ("GET", "x=%2B&&a", "a&x=%2B"),  # empty pieces dropped, values kept raw, bare names
        ("GET", "os_sig=x&OS_SIG=y&k=v", "k=v"),  # os_sig dropped in any case
        ("GET", "a=2&a=1&a=1", "a=1&a=1&a=2"),  # duplicates kept
        ("GET", "A%5F=B", "a%5f=B"),  # only ASCII letters of names change
        ("GET", "", ""),
    ],
)
def test_canonical_query_rules(method: str, query: str, expected: str) -> None:
    assert build_canonical_form(method, "/p", query) == f"GET\n/p\n{expected}"


def test_presign_constants() -> None:
    assert timedelta(days=7) == MAX_PRESIGN_DURATION
    assert SUPPORTED_METHODS == ("GET", "HEAD")


# -- tokens -------------------------------------------------------------------------------


def test_token_round_trip_with_pyjwt() -> None:
    token = _key().token_for_scope("attachments", Scope(org=42, project=True), now=1_000.7)
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": KID, "typ": "JWT"}
    assert _decode(token) == {
        "res": {"os:usecase": "attachments", "org": "42", "project": "True"},
        "permissions": ["object.read", "object.write", "object.delete"],
        "exp": 1_060,
    }


def test_token_permissions_and_expiry_override_the_key_defaults() -> None:
    key = _key(expiry_seconds=30, permissions=[Permission.OBJECT_READ, Permission.OBJECT_WRITE])
    assert _decode(key.token_for_scope("u-case", Scope(), now=0)) == {
        "res": {"os:usecase": "u-case"},
        "permissions": ["object.read", "object.write"],
        "exp": 30,
    }
    other = key.token_for_scope(Usecase("u-case"), Scope(), [Permission.OBJECT_WRITE], 5, now=0)
    assert _decode(other)["permissions"] == ["object.write"]
    assert _decode(other)["exp"] == 5
    assert _decode(key.token_for_scope("u-case", Scope(), [], now=0))["permissions"] == []


def test_token_accepts_mappings_with_wildcards_and_the_official_scope() -> None:
    claims = _decode(_key().token_for_scope("u-case", {"org": 1, "project": "*"}, now=0))
    assert claims["res"] == {"os:usecase": "u-case", "org": "1", "project": "*"}
    official = pytest.importorskip("objectstore_client")
    theirs = official.scope.Scope(org=5)
    assert _decode(_key().token_for_scope("u-case", theirs, now=0))["res"]["org"] == "5"
    with pytest.raises(ValueError, match="not allowed"):
        _key().token_for_scope("u-case", {"org": "a b"})


def test_tokens_are_byte_identical_to_the_official_client() -> None:
    official = pytest.importorskip("objectstore_client")
    theirs = official.SecretKey(KID, PRIVATE_PEM).token_for_scope(
        "attachments", official.scope.Scope(org=42, project=7)
    )
    exp = jwt.decode(theirs, options={"verify_signature": False})["exp"]
    ours = _key().token_for_scope("attachments", Scope(org=42, project=7), now=exp - 60)
    assert ours == theirs


def test_deprecated_spellings_warn_and_work() -> None:
    with pytest.warns(DeprecationWarning, match="token_for_scope"):
        token = _key().sign_for_scope("u-case", Scope(org=1))
    assert _decode(token)["res"]["org"] == "1"
    with pytest.warns(DeprecationWarning, match="SecretKey"):
        generator = TokenGenerator(KID, PRIVATE_PEM)
    assert isinstance(generator, SecretKey)
    assert generator.signature_for_canonical_form("GET\n/\n")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kid": ""}, "kid=''"),
        ({"expiry_seconds": 0}, "expiry_seconds=0"),
        ({"expiry_seconds": True}, "expiry_seconds=True"),
        ({"expiry_seconds": 1.5}, "expiry_seconds=1.5"),
        ({"permissions": ["object.admin"]}, "'object.admin'"),
        ({"permissions": "object.read"}, "permissions='object.read'"),
    ],
)
def test_secret_key_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"kid": KID, "secret_key": PRIVATE_PEM, **kwargs}
    with pytest.raises(ValueError, match=message):
        SecretKey(**arguments)


def _pem_of(key: Any, password: bytes | None = None) -> str:
    encryption: Any = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return str(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ).decode()
    )


@pytest.mark.parametrize(
    "pem",
    [
        "not a key",
        PRIVATE_PEM.replace("MC4", "XX4"),  # corrupted body
        PUBLIC_PEM,  # a public key is not a private key
        _pem_of(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        _pem_of(ed25519.Ed25519PrivateKey.generate(), password=b"pw"),  # encrypted
    ],
    ids=["garbage", "corrupt", "public", "rsa", "encrypted"],
)
def test_invalid_pem_is_a_value_error_that_never_echoes_the_key(pem: str) -> None:
    with pytest.raises(ValueError, match="Ed25519 private key") as caught:
        SecretKey(KID, pem)
    error = caught.value  # the library's own error (which may quote input) is not chained
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    body_lines = [line for line in pem.splitlines() if line and "-----" not in line]
    for line in body_lines:
        assert line not in str(caught.value)


def test_secret_key_must_be_text() -> None:
    with pytest.raises(TypeError, match="PEM text"):
        SecretKey(KID, 42)  # type: ignore[arg-type]


def test_pem_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    from cryptography.hazmat.primitives.serialization import load_pem_private_key as real

    def counting(data: bytes, password: bytes | None = None) -> Any:
        calls.append(1)
        return real(data, password)

    monkeypatch.setattr(core_auth, "load_pem_private_key", counting)
    assert core_auth.SecretKey is SecretKey
    key = _key()
    client = Client("http://objectstore.test", token=key, transport=InProcessTransport())
    for project in range(3):
        session = client.session(Usecase("u-case"), org=1, project=project)
        response = session.get(session.put(b"x"))
        assert response is not None and response.read() == b"x"
        session.mint_token()
        session.presigned_object_url("GET", "k")
        session.object_url("k", timedelta(seconds=5))
    key.token_for_scope("u-case", Scope())
    assert calls == [1]


# -- KeyCredentials: caching and re-signing ------------------------------------------------


def _token_of(headers: tuple[tuple[str, str], ...]) -> str:
    ((name, value),) = headers
    assert name == "x-os-auth" and value.startswith("Bearer ")
    return value.removeprefix("Bearer ")


def test_credentials_reuse_the_token_and_resign_before_expiry() -> None:
    credentials = _key(expiry_seconds=60).credentials("u-case", Scope(org=1))
    start = 1_000_000.0
    first = _token_of(credentials.headers(start))
    for offset in (0.5, 10, 30, 44.9):  # > 25 % of the lifetime left: cached
        assert _token_of(credentials.headers(start + offset)) == first
    renewed = _token_of(credentials.headers(start + 45))  # 15 s (25 %) left: re-sign
    assert renewed != first
    assert _decode(renewed)["exp"] == start + 45 + 60
    assert _token_of(credentials.headers(start + 46)) == renewed


def test_credentials_never_return_an_expired_token() -> None:
    key = _key(expiry_seconds=60)
    credentials = key.credentials("u-case", Scope())
    now = 5_000.0
    for step in range(400):
        moment = now + step * 0.75
        exp = _decode(_token_of(credentials.headers(moment)))["exp"]
        assert exp - moment >= 10  # at least the 10 s margin, never expired


def test_short_lived_tokens_are_signed_for_every_request() -> None:
    credentials = _key(expiry_seconds=5).credentials("u-case", Scope())
    tokens = {_token_of(credentials.headers(1_000.0 + i)) for i in range(3)}
    assert len(tokens) == 3


def test_a_clock_going_backwards_resigns() -> None:
    credentials = _key().credentials("u-case", Scope())
    first = _token_of(credentials.headers(10_000.0))
    again = _token_of(credentials.headers(9_000.0))
    assert again != first
    assert _decode(again)["exp"] == 9_060


def test_sessions_share_cached_credentials_per_usecase_scope_and_permissions() -> None:
    key = _key()
    client = Client("http://objectstore.test", token=key)
    targets = [client.session(Usecase("u-case"), org=1)._flows.target for _ in range(2)]
    assert targets[0].credentials is targets[1].credentials
    assert isinstance(targets[0].credentials, KeyCredentials)
    other = client.session(Usecase("u-case"), org=2)._flows.target.credentials
    assert other is not targets[0].credentials
    assert key.credentials("u-case", Scope(org=1), [Permission.OBJECT_READ]) is not (
        targets[0].credentials
    )
    assert key.credentials(Usecase("u-case"), Scope(org=1)) is targets[0].credentials


def test_static_tokens_are_headers_and_secret_keys_are_credentials() -> None:
    static = session_target(client_config("http://h", token="abc.def.ghi"), Usecase("u-c"), {})
    assert ("x-os-auth", "Bearer abc.def.ghi") in static.headers
    assert static.credentials is None
    keyed = session_target(client_config("http://h", token=_key()), Usecase("u-c"), {})
    assert all(name != "x-os-auth" for name, _ in keyed.headers)
    assert keyed.credentials is not None


@pytest.mark.parametrize("token", [42, b"bytes-token", object()])
def test_client_rejects_other_token_types_without_echoing(token: Any) -> None:
    with pytest.raises(TypeError, match="token must be a SecretKey") as caught:
        Client("http://h", token=token)
    assert repr(token) not in str(caught.value)


# -- nothing shows a secret ----------------------------------------------------------------


def test_reprs_never_show_keys_or_tokens() -> None:
    key = _key()
    static = key.token_for_scope("u-case", Scope(org=1))
    texts = [repr(key), str(key)]
    for token in (key, static):
        for client in (Client("http://h", token=token), AsyncClient("http://h", token=token)):
            session = client.session(Usecase("u-case"), org=1)
            target = session._flows.target
            texts += [repr(client), repr(client.config), repr(session), repr(target)]
            texts += [str(client.config), repr(target.credentials)]
            if target.credentials is not None:
                headers = target.credentials.headers(1_000.0)
                assert _token_of(headers)  # a token exists, and must not leak below
                texts.append(repr(headers[0][0]))
    joined = "\n".join(texts)
    assert "redacted" in repr(key)
    assert static not in joined
    assert static.split(".")[2] not in joined
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in joined
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)


# -- mint_token, object_url, presigned_object_url ------------------------------------------


def _session(token: Any, base_url: str = "http://objectstore:8888") -> Any:
    return Client(base_url, token=token).session(Usecase("u-case"), org=1)


def test_mint_token() -> None:
    session = _session(_key())
    claims = _decode(session.mint_token(now=100.0))
    assert claims == {
        "res": {"os:usecase": "u-case", "org": "1"},
        "permissions": ["object.read", "object.write", "object.delete"],
        "exp": 160,
    }
    narrow = _decode(session.mint_token([Permission.OBJECT_READ], 5, now=100.0))
    assert (narrow["permissions"], narrow["exp"]) == (["object.read"], 105)
    for token in (None, "static"):
        with pytest.raises(ValueError, match="mint_token needs a SecretKey"):
            _session(token).mint_token()


def test_object_url_without_validity_is_the_plain_url() -> None:
    for token in (None, "static.token.value", _key()):
        session = _session(token)
        assert session.object_url("a b/c") == (
            "http://objectstore:8888/v1/objects/u-case/org=1/a%20b/c"
        )


def test_object_url_with_validity_embeds_a_read_only_token() -> None:
    url = _session(_key()).object_url("k", token_validity=timedelta(seconds=1.5), now=99.9)
    base, _, token = url.partition("?os_auth=")
    assert base == "http://objectstore:8888/v1/objects/u-case/org=1/k"
    claims = _decode(token)
    assert claims["permissions"] == ["object.read"]
    assert claims["exp"] == 99 + math.ceil(1.5)
    for token_value in (None, "static"):
        with pytest.raises(ValueError, match="needs a SecretKey"):
            _session(token_value).object_url("k", token_validity=timedelta(seconds=5))
    with pytest.raises(ValueError, match="longer than zero"):
        _session(_key()).object_url("k", token_validity=timedelta(0))
    with pytest.raises(TypeError, match="timedelta"):
        _session(_key()).object_url("k", token_validity=5)
    with pytest.raises(ValueError, match="key '' is invalid"):
        _session(_key()).object_url("")


@pytest.mark.parametrize(
    ("base_url", "origin"),
    [
        ("http://Objectstore", "http://objectstore:80"),
        ("https://objectstore/", "https://objectstore:443"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("http://h:1/prefix/", "http://h:1/prefix"),
    ],
)
def test_presigned_url_origin(base_url: str, origin: str) -> None:
    url = _session(_key(), base_url).presigned_object_url("GET", "k", now=VECTOR_TIME)
    assert url.startswith(f"{origin}/v1/objects/u-case/org=1/k?os_kid=test_kid&")
    assert "os_timestamp=2026-07-01T12:00:00Z&os_duration=3600&os_sig=" in url


def test_presigned_url_rounds_duration_up_and_encodes_like_requests() -> None:
    session = _session(_key())
    url = session.presigned_object_url("HEAD", "x?y#z/../c", timedelta(seconds=0.2), now=1.5)
    assert "/v1/objects/u-case/org=1/x%3Fy%23z/%2E%2E/c?" in url
    assert "&os_timestamp=1970-01-01T00:00:01Z&os_duration=1&" in url
    assert session._flows.target.object("x?y#z/../c") in url


@pytest.mark.parametrize(
    ("method", "duration", "error", "message"),
    [
        ("PUT", timedelta(hours=1), ValueError, "method 'PUT' is invalid"),
        ("DELETE", timedelta(hours=1), ValueError, "GET, HEAD"),
        ("GET", timedelta(days=7, seconds=1), ValueError, "exceeds the maximum of 7 days"),
        ("GET", timedelta(0), ValueError, "longer than zero"),
        ("GET", timedelta(seconds=-1), ValueError, "longer than zero"),
        ("GET", 3600, TypeError, "timedelta"),
    ],
)
def test_presigned_url_rejects_bad_input(
    method: Any, duration: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        _session(_key()).presigned_object_url(method, "k", duration)


def test_presigned_url_needs_a_secret_key_and_allows_seven_days() -> None:
    for token in (None, "static"):
        with pytest.raises(ValueError, match="presigned_object_url needs a SecretKey"):
            _session(token).presigned_object_url("GET", "k")
    url = _session(_key()).presigned_object_url("GET", "k", timedelta(days=7))
    assert "os_duration=604800&" in url


def test_presigned_urls_equal_the_official_clients() -> None:
    official = pytest.importorskip("objectstore_client")
    theirs_session = official.Client(
        "http://Objectstore.example:8888/prefix/", token=official.SecretKey(KID, PRIVATE_PEM)
    ).session(official.Usecase("u-case"), org=1, project=2)
    ours_session = Client("http://Objectstore.example:8888/prefix/", token=_key()).session(
        Usecase("u-case"), org=1, project=2
    )
    cases: list[tuple[Any, str, timedelta]] = [
        ("GET", "reports/Q1 summary.pdf", timedelta(seconds=600)),
        ("HEAD", "caf\u00e9/100%literal [x]", timedelta(hours=2, seconds=0.5)),
    ]
    for method, key, duration in cases:
        theirs = theirs_session.presigned_object_url(method, key, duration)
        stamp = theirs.split("os_timestamp=")[1].split("&")[0]
        now = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        ours = ours_session.presigned_object_url(method, key, duration, now=now)
        assert ours == theirs


def test_session_url_methods_are_shared_by_both_twins() -> None:
    from objectstore_async import AsyncSession
    from objectstore_sync import Session

    for name in ("mint_token", "object_url", "presigned_object_url"):
        assert getattr(Session, name) is getattr(AsyncSession, name)
    url = (
        AsyncClient("http://h:1", token=_key())
        .session(Usecase("u-case"), org=1)
        .presigned_object_url("GET", "k", now=VECTOR_TIME)
    )
    assert url == _session(_key(), "http://h:1").presigned_object_url("GET", "k", now=VECTOR_TIME)


def test_official_signatures_match() -> None:
    official = pytest.importorskip("objectstore_client")
    import inspect

    from objectstore_sync import Session

    def params(function: Any) -> list[tuple[str, Any, Any]]:
        found = inspect.signature(function).parameters.values()
        return [(p.name, p.kind, p.default) for p in found if p.name != "now"]

    for name in ("mint_token", "object_url", "presigned_object_url"):
        assert params(getattr(Session, name)) == params(getattr(official.Session, name))
    for name in ("__init__", "token_for_scope", "sign_for_scope", "signature_for_canonical_form"):
        assert params(getattr(SecretKey, name)) == params(getattr(official.SecretKey, name))


_STANDALONE_SIGN = """
import sys
from pathlib import Path
{twin}
from objectstore_core import Scope, SecretKey
key = SecretKey("test_kid", Path(sys.argv[1]).read_text())
try:
    key.token_for_scope("tests", Scope(org=1))
except RuntimeError as exc:
    print("refused:", exc)
else:
    print("signed")
"""


@pytest.mark.parametrize(
    ("twin", "expected"),
    [
        ("", "refused: no clock to sign with: pass now="),
        ("import objectstore_sync", "signed"),
        ("import objectstore_async", "signed"),
    ],
)
def test_a_key_alone_signs_with_the_clock_a_twin_gave(
    twin: str, expected: str, tmp_path: pathlib.Path
) -> None:
    """The core reads no clock: a key used on its own signs with the imported twin's."""
    pem = tmp_path / "key.pem"
    pem.write_text(PRIVATE_PEM)
    done = subprocess.run(
        [sys.executable, "-c", _STANDALONE_SIGN.format(twin=twin), str(pem)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith(expected), done.stdout
