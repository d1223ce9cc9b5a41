"""URLs over real sockets: plain ``urllib.request`` against an enforcing LocalServer (§10.7, §11).

Also the official client as a peer: its tokens are accepted by our emulator.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest

from objectstore_core import build_canonical_form
from objectstore_sync import Client, Permission, SecretKey, Session, Usecase
from objectstore_sync.testing import LocalServer
from tests.auth.conftest import KID, PRIVATE_PEM, PUBLIC_PEM_PATH

PAYLOAD = b"plain bytes for a browser"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(auth_keys={KID: PUBLIC_PEM_PATH}, enforce_auth=True) as running:
        yield running


@pytest.fixture
def session(server: LocalServer) -> Iterator[Session]:
    with Client(server.url, token=SecretKey(KID, PRIVATE_PEM)) as client:
        made = client.session(Usecase("attachments"), org=42, project=7)
        made.put(PAYLOAD, key="files/report 1.txt", compress="none")
        yield made


def _open(url: str, method: str = "GET") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method)) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_presigned_url_works_from_urllib(session: Session) -> None:
    url = session.presigned_object_url("GET", "files/report 1.txt", timedelta(minutes=5))
    assert _open(url) == (200, PAYLOAD)
    assert _open(url, "HEAD") == (204, b"")  # a GET signature also works for HEAD
    head_url = session.presigned_object_url("HEAD", "files/report 1.txt")
    assert _open(head_url) == (200, PAYLOAD)  # and a HEAD signature for GET


def test_presigned_url_refuses_tampering_and_writes(session: Session) -> None:
    url = session.presigned_object_url("GET", "files/report 1.txt")
    flipped = url[:-2] + ("AA" if not url.endswith("AA") else "BA")
    assert _open(flipped)[0] == 401
    other_key = url.replace("report%201.txt", "report%202.txt")
    assert _open(other_key)[0] == 401
    assert _open(url, "DELETE")[0] == 403
    assert _open(url, "PUT")[0] == 403
    assert session.head("files/report 1.txt") is not None


def test_presigned_duration_cap_server_and_client(session: Session, server: LocalServer) -> None:
    with pytest.raises(ValueError, match="maximum of 7 days"):
        session.presigned_object_url("GET", "k", timedelta(days=8))
    good = session.presigned_object_url("GET", "files/report 1.txt", timedelta(days=7))
    path_and_query = good.split(server.url, 1)[1].split("&os_sig=")[0]
    path, _, query = path_and_query.partition("?")
    query = query.replace("os_duration=604800", "os_duration=691200")  # 8 days, re-signed
    signature = SecretKey(KID, PRIVATE_PEM).signature_for_canonical_form(
        build_canonical_form("GET", path, query)
    )
    status, body = _open(f"{server.url}{path}?{query}&os_sig={signature}")
    assert status == 400 and b"1 week" in body


def test_object_url_with_embedded_token_works_from_urllib(session: Session) -> None:
    url = session.object_url("files/report 1.txt", token_validity=timedelta(seconds=30))
    assert "?os_auth=" in url
    assert _open(url) == (200, PAYLOAD)
    assert _open(url, "DELETE")[0] == 403  # the embedded token is read-only
    plain = session.object_url("files/report 1.txt")
    assert _open(plain)[0] == 400  # no credential at all


def test_official_client_tokens_are_accepted(server: LocalServer) -> None:
    official = pytest.importorskip("objectstore_client")
    key = official.SecretKey(KID, PRIVATE_PEM)
    theirs = official.Client(server.url, token=key).session(
        official.Usecase("attachments"), org=42, project=8
    )
    stored = theirs.put(b"from the official client", key="k")
    assert theirs.get(stored).payload.read() == b"from the official client"
    with Client(server.url, token=SecretKey(KID, PRIVATE_PEM)) as ours:
        session = ours.session(Usecase("attachments"), org=42, project=8)
        response = session.get("k")
        assert response is not None and response.read() == b"from the official client"
        # Our tokens, handed to the official client as static tokens, work too.
        token = session.mint_token([Permission.OBJECT_READ])
    reader = official.Client(server.url, token=token).session(
        official.Usecase("attachments"), org=42, project=8
    )
    assert reader.get("k").payload.read() == b"from the official client"
    status, stored_bytes = _open(theirs.presigned_object_url("GET", "k"))
    assert status == 200 and stored_bytes.startswith(b"\x28\xb5\x2f\xfd")  # zstd, as stored
