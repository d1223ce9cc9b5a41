"""What the sync client puts on the wire: User-Agent, identity encoding, no header injection."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from objectstore_sync import Client, ObjectstoreError, Usecase


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that records each request head and answers 204."""
    heads: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    heads.append(data.split(b"\r\n\r\n", 1)[0])
                    conn.sendall(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", heads
    stop.set()
    thread.join()
    listener.close()


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
