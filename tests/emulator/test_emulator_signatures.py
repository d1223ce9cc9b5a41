"""Signatures are decoded strictly, over real sockets (PROTOCOL §10.3, §11.3).

A base64url signature whose last character differs only in the unused
trailing bits decodes to the same bytes with a lenient decoder, so a
tampered token or ``os_sig`` would verify; the reference server answers 401,
and so must the emulator. ``exp`` must be a finite number. The client's own
decoder in the core is as strict.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from objectstore_core._auth import b64url_decode, encode_jwt
from objectstore_sync import Client, SecretKey, Usecase
from objectstore_sync.emulator import LocalServer
from tests.auth.conftest import KID, PRIVATE_PEM, PUBLIC_PEM_PATH

OBJ = "/v1/objects/test/org=1"
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _private_key() -> Ed25519PrivateKey:
    key = load_pem_private_key(PRIVATE_PEM.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _token(**claims: Any) -> str:
    full = {
        "exp": int(time.time()) + 300,
        "res": {"os:usecase": "test", "org": "1"},
        "permissions": ["object.read", "object.write", "object.delete"],
        **claims,
    }
    return encode_jwt(_private_key(), KID, full)


def _flip_unused_bits(text: str) -> str:
    """The same bytes to a lenient decoder: the last character's unused low bit set."""
    assert len(text) % 4 in (2, 3)  # there are unused bits (64-byte signatures: 86 chars)
    last = _ALPHABET.index(text[-1])
    return text[:-1] + _ALPHABET[last ^ 1]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(auth_keys={KID: PUBLIC_PEM_PATH}, enforce_auth=True) as running:
        yield running


def _status(server: LocalServer, method: str, target: str, token: str | None = None) -> int:
    parts = urlsplit(server.url)
    assert parts.hostname == "127.0.0.1" and parts.port is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {} if token is None else {"x-os-auth": f"Bearer {token}"}
    try:
        connection.request(method, target, body=b"v" if method == "PUT" else None, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_token_tampered_in_its_unused_bits_is_refused(server: LocalServer) -> None:
    token = _token()
    assert _status(server, "PUT", f"{OBJ}/k", token) == 200
    head, claims, signature = token.split(".")
    tampered = f"{head}.{claims}.{_flip_unused_bits(signature)}"
    assert _status(server, "GET", f"{OBJ}/k", tampered) == 401
    assert _status(server, "GET", f"{OBJ}/k", token) == 200


def test_a_presigned_url_tampered_in_its_unused_bits_is_refused(server: LocalServer) -> None:
    assert _status(server, "PUT", f"{OBJ}/signed", _token()) == 200
    with Client(server.url, token=SecretKey(KID, PRIVATE_PEM)) as client:
        url = client.session(Usecase("test"), org=1).presigned_object_url("GET", "signed")
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}"
    assert _status(server, "GET", target) == 200
    assert "os_sig=" in target
    query, _, rest = parts.query.partition("os_sig=")
    signature, sep, after = rest.partition("&")
    tampered = f"{parts.path}?{query}os_sig={_flip_unused_bits(signature)}{sep}{after}"
    assert _status(server, "GET", tampered) == 401


@pytest.mark.parametrize("exp", [float("nan"), float("inf"), 1e999])
def test_an_exp_that_is_not_a_finite_number_is_refused(server: LocalServer, exp: float) -> None:
    assert _status(server, "GET", f"{OBJ}/k", _token(exp=exp)) == 401


def test_the_clients_base64url_decoder_is_strict() -> None:
    assert b64url_decode("YQ") == b"a"
    assert b64url_decode("YWI") == b"ab"
    for tampered in ("YR", "YWJ"):  # "YQ" and "YWI" with unused trailing bits set
        with pytest.raises(ValueError, match="trailing bits"):
            b64url_decode(tampered)
