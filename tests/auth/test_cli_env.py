"""Credentials from the environment (both twins) and the CLI's auth commands."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import jwt
import pytest

from objectstore_async import AsyncClient
from objectstore_core import token_from_env
from objectstore_sync import Client, Permission, SecretKey, Usecase
from objectstore_sync._cli import _parser, main
from objectstore_sync.emulator import EmulatorServer, parse_auth_key_option, resolve_auth_keys
from tests.auth.conftest import KID, PRIVATE_PEM, PRIVATE_PEM_PATH, PUBLIC_PEM, PUBLIC_PEM_PATH

ENV_NAMES = ("OBJECTSTORE_URL", "OBJECTSTORE_TOKEN", "OBJECTSTORE_KEY_ID", "OBJECTSTORE_KEY_FILE")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def _env(**values: str) -> dict[str, str]:
    return {"OBJECTSTORE_URL": "http://h:1", **values}


# -- from_env ------------------------------------------------------------------------------


@pytest.mark.parametrize("client_class", [Client, AsyncClient], ids=["sync", "async"])
def test_from_env_builds_a_secret_key(client_class: Any) -> None:
    environ = _env(OBJECTSTORE_KEY_ID=KID, OBJECTSTORE_KEY_FILE=str(PRIVATE_PEM_PATH))
    client = client_class.from_env(environ)
    assert isinstance(client.config.token, SecretKey)
    assert client.config.token.kid == KID
    static = client_class.from_env(_env(OBJECTSTORE_TOKEN="abc.def.ghi"))
    assert static.config.token == "abc.def.ghi"
    assert client_class.from_env(_env()).config.token is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"OBJECTSTORE_KEY_ID": KID}, "OBJECTSTORE_KEY_FILE is not set"),
        ({"OBJECTSTORE_KEY_FILE": "k.pem"}, "OBJECTSTORE_KEY_ID is not set"),
        (
            {"OBJECTSTORE_TOKEN": "t", "OBJECTSTORE_KEY_ID": KID, "OBJECTSTORE_KEY_FILE": "k"},
            "both set",
        ),
        ({"OBJECTSTORE_KEY_ID": KID, "OBJECTSTORE_KEY_FILE": "/no/such.pem"}, "cannot be read"),
    ],
)
def test_from_env_rejects_incomplete_or_ambiguous_settings(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Client.from_env(_env(**values))


def test_from_env_with_a_bad_key_file_does_not_echo_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXN0dWZm\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="Ed25519 private key") as caught:
        Client.from_env(_env(OBJECTSTORE_KEY_ID=KID, OBJECTSTORE_KEY_FILE=str(bad)))
    assert "c2VjcmV0LXN0dWZm" not in str(caught.value)


def test_token_from_env_needs_a_reader_for_key_files() -> None:
    environ = {"OBJECTSTORE_KEY_ID": KID, "OBJECTSTORE_KEY_FILE": "k.pem"}
    with pytest.raises(ValueError, match="no file reader"):
        token_from_env(environ)
    key = token_from_env(environ, lambda path: PRIVATE_PEM)
    assert isinstance(key, SecretKey)


# -- --auth-key and key directories ---------------------------------------------------------


def test_auth_key_option_parsing() -> None:
    assert parse_auth_key_option("relay=keys/relay.pem") == ("relay", "keys/relay.pem")
    assert parse_auth_key_option("relay=k.pem:read,object.write") == (
        "relay",
        ("k.pem", [Permission.OBJECT_READ, Permission.OBJECT_WRITE]),
    )
    assert parse_auth_key_option("k=C:/keys/a.pem") == ("k", "C:/keys/a.pem")
    assert parse_auth_key_option("k=a.pem:") == ("k", ("a.pem", []))
    for bad in ("nokid", "=a.pem", "k="):
        with pytest.raises(ValueError, match="--auth-key"):
            parse_auth_key_option(bad)


def test_key_directory_sources(tmp_path: Path) -> None:
    keys = resolve_auth_keys(
        {
            "path": PUBLIC_PEM_PATH,
            "text": PUBLIC_PEM,
            "bytes": PUBLIC_PEM.encode(),
            "rotated": [PUBLIC_PEM, str(PUBLIC_PEM_PATH)],
            "limited": (PUBLIC_PEM_PATH, ["read"]),
        }
    )
    assert len(keys["rotated"].public_keys) == 2
    assert keys["limited"].max_permissions == frozenset({Permission.OBJECT_READ})
    assert keys["path"].max_permissions == frozenset(Permission)
    with pytest.raises(ValueError, match="kid 'missing'"):
        resolve_auth_keys({"missing": tmp_path / "absent.pem"})
    with pytest.raises(ValueError, match="kid 'wrong'"):
        resolve_auth_keys({"wrong": PRIVATE_PEM})
    with pytest.raises(ValueError, match="not both"):
        EmulatorServer("127.0.0.1", 0, emulator=object(), enforce_auth=True)  # type: ignore[arg-type]


def test_serve_options_build_an_enforcing_server() -> None:
    args = _parser().parse_args(
        ["serve", "--port", "0", "--auth-key", f"{KID}={PUBLIC_PEM_PATH}:read", "--enforce-auth"]
    )
    assert args.enforce_auth is True
    auth_keys = dict(parse_auth_key_option(value) for value in args.auth_key)
    with (
        EmulatorServer("127.0.0.1", 0, auth_keys=auth_keys, enforce_auth=True) as server,
        Client(server.url, token=SecretKey(KID, PRIVATE_PEM)) as writer,
    ):
        session = writer.session(Usecase("cli-test"), org=1)
        with pytest.raises(Exception, match="403"):
            session.put(b"x")  # the key is capped to read
        assert session.get("k") is None  # reads are allowed


# -- url / presign / token commands ---------------------------------------------------------


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:
        body: bytes = response.read()
    return body


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out.strip(), captured.err


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJECTSTORE_KEY_ID", KID)
    monkeypatch.setenv("OBJECTSTORE_KEY_FILE", str(PRIVATE_PEM_PATH))


@pytest.mark.usefixtures("key_env")
def test_token_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(
        capsys, "token", "--usecase", "reports", "--scope", "org=7", "--permissions", "read",
        "--expiry", "120",
    )  # fmt: skip
    assert status == 0
    claims = jwt.decode(out, PUBLIC_PEM, algorithms=["EdDSA"])
    assert claims["res"] == {"os:usecase": "reports", "org": "7"}
    assert claims["permissions"] == ["object.read"]


def test_token_command_needs_a_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBJECTSTORE_TOKEN", "static.token.value")
    status, out, err = _run(capsys, "token")
    assert status == 2 and out == ""
    assert "signs with a private key" in err and "$OBJECTSTORE_KEY_FILE" in err
    assert "static.token.value" not in err


@pytest.mark.usefixtures("key_env")
def test_url_and_presign_commands_against_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    with (
        EmulatorServer(
            "127.0.0.1", 0, auth_keys={KID: PUBLIC_PEM_PATH}, enforce_auth=True
        ) as server,
        Client(server.url, token=SecretKey(KID, PRIVATE_PEM)) as client,
    ):
        client.session(Usecase("default"), org=1).put(b"cli bytes", key="a b", compress="none")
        common = ("--url", server.url, "--scope", "org=1")
        status, url, _ = _run(capsys, "presign", "a b", *common, "--duration", "60")
        assert status == 0 and "os_sig=" in url
        assert _fetch(url) == b"cli bytes"
        status, url, _ = _run(capsys, "url", "a b", *common, "--validity", "30")
        assert status == 0 and "?os_auth=" in url
        assert _fetch(url) == b"cli bytes"
        status, url, _ = _run(capsys, "url", "a b", *common)
        assert url == f"{server.url}/v1/objects/default/org=1/a%20b"


@pytest.mark.usefixtures("key_env")
def test_url_commands_need_a_server_url(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("url", "k"), ("presign", "k")):
        status, out, err = _run(capsys, *argv)
        assert status == 2 and out == ""
        assert "needs --url or $OBJECTSTORE_URL" in err
    status, _, err = _run(capsys, "presign", "k", "--url", "http://h:1", "--duration", "700000")
    assert status == 2 and "--duration 700000" in err and "at most 604800 seconds" in err
