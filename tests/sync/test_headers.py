"""What the sync client puts on the wire: User-Agent, identity encoding, no header injection."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from objectstore_sync import Client, ObjectstoreError, Usecase
from tests.reliability.conftest import RawServer, read_head


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that records each request head and answers 204."""
    heads: list[bytes] = []

    def answer(sock: socket.socket) -> None:
        heads.append(read_head(sock).split(b"\r\n\r\n", 1)[0])
        sock.sendall(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")

    with RawServer(answer) as raw:
        yield raw.url, heads


def _header_lines(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.partition(":") for line in lines)
    return {name.lower(): value.strip() for name, _, value in pairs}


def test_default_and_custom_user_agent(recorder: tuple[str, list[bytes]]) -> None:
    url, heads = recorder
    with Client(url) as client:
        client.session(Usecase("headers")).head("k")
    with Client(url, user_agent="my-service/2.0") as client:
        client.session(Usecase("headers")).head("k")
    default, custom = (_header_lines(head) for head in heads)
    assert default["user-agent"].startswith("objectstore-client/")
    assert default["accept-encoding"] == "identity"
    assert custom["user-agent"] == "my-service/2.0"


def test_static_token_is_sent_as_bearer(recorder: tuple[str, list[bytes]]) -> None:
    url, heads = recorder
    with Client(url, token="abc.def.ghi") as client:
        client.session(Usecase("headers")).head("k")
    assert _header_lines(heads[0])["x-os-auth"] == "Bearer abc.def.ghi"


def test_metadata_values_cannot_inject_headers(recorder: tuple[str, list[bytes]]) -> None:
    url, heads = recorder
    with Client(url) as client:
        session = client.session(Usecase("headers"))
        # The recorder's 204 is not a valid put answer; only the request matters.
        with contextlib.suppress(ObjectstoreError):
            session.put(
                b"x",
                key="k",
                metadata={"note": "a\r\nx-evil: 1"},
                origin="o\r\nx-evil: 2",
                filename="f\nx-evil: 3",
            )
    headers = _header_lines(heads[0])
    assert "x-evil" not in headers
    assert headers["x-snme-note"] == "a%0D%0Ax-evil: 1"
    assert headers["x-sn-origin"] == "o%0D%0Ax-evil: 2"
    assert headers["x-sn-filename"] == "f%0Ax-evil: 3"
