"""Bad input fails with ValueError/TypeError before any I/O; bad servers raise our errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from objectstore_sync import (
    Client,
    ConnectError,
    ObjectstoreError,
    ProtocolError,
    Scope,
    TimeToLive,
    Usecase,
)
from tests.reliability.conftest import RawServer, read_head


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens: any request would raise ConnectError."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_dead_url_really_is_dead(dead_url: str) -> None:
    with Client(dead_url) as client, pytest.raises(ConnectError):
        client.session(Usecase("attachments")).head("k")


@pytest.mark.parametrize("name", ["ab", "x" * 65, "has space", "dot.ted", "ünï", ""])
def test_invalid_usecase(name: str) -> None:
    with pytest.raises(ValueError, match="usecase name") as info:
        Usecase(name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("org", "a.b"),
        ("org", "a/b"),
        ("org", "a=b"),
        ("org", "a;b"),
        ("org", "a b"),
        ("org", "é"),
        ("org", ""),
        ("bad name", "1"),
    ],
)
def test_invalid_scope(dead_url: str, name: str, value: str) -> None:
    with Client(dead_url) as client, pytest.raises(ValueError, match="scope"):
        client.session(Usecase("attachments"), **{name: value})
    with pytest.raises(ValueError, match="scope"):
        Usecase("attachments").for_organization(1).push(name, value)


def test_invalid_arguments_fail_before_io(dead_url: str) -> None:
    with Client(dead_url) as client:
        session = client.session(Usecase("attachments"), org=1)
        cases: list[tuple[type[Exception], object]] = [
            (ValueError, lambda: session.get("")),
            (ValueError, lambda: session.head("")),
            (ValueError, lambda: session.delete("")),
            (ValueError, lambda: session.put(b"x", content_type="text/plain\r\nx-evil: 1")),
            (ValueError, lambda: session.put(b"x", content_type="not a type")),
            (ValueError, lambda: session.put(b"x", metadata={"bad name": "v"})),
            (ValueError, lambda: session.put(b"x", metadata={"x\r\ny": "v"})),
            (TypeError, lambda: session.put(b"x", metadata={"n": 1})),  # type: ignore[dict-item]
            (ValueError, lambda: session.put(b"x", compress="gzip")),  # type: ignore[arg-type]
            (ValueError, lambda: session.put(b"x", precompressed="gzip")),  # type: ignore[arg-type]
            (ValueError, lambda: session.put(b"x", compress="zstd", precompressed="zstd")),
            (ValueError, lambda: session.get("k", byte_range=(5, 1))),
            (ValueError, lambda: session.get("k", byte_range=(-1, 3))),
            (ValueError, lambda: session.extend_expiry("k")),
            (ValueError, lambda: session.extend_expiry("k", at=datetime(2030, 1, 1))),
            (ValueError, lambda: session.extend_expiry("k", from_now=timedelta(-1))),
            (ValueError, lambda: TimeToLive(timedelta(seconds=-1))),
            (TypeError, lambda: session.put(object())),  # type: ignore[arg-type]
        ]
        for expected, call in cases:
            with pytest.raises(expected):
                call()  # type: ignore[operator]


def test_session_needs_a_usecase(dead_url: str) -> None:
    with Client(dead_url) as client:
        with pytest.raises(ValueError, match="no usecase"):
            client.session(Scope(org=1))
        scope = Usecase("attachments").for_project(1, 2).push("app", "x")
        assert str(client.session(scope).scope) == "org=1;project=2;app=x"


@pytest.mark.parametrize("url", ["ftp://x", "localhost:8888", "http://", "http://h/?q=1"])
def test_invalid_base_url(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        Client(url)


# ----------------------------------------------------------- bad servers


def _serve_once(reply: bytes) -> Iterator[str]:
    """A loopback server answering every connection with ``reply`` then closing."""

    def answer(sock: socket.socket) -> None:
        read_head(sock)
        sock.sendall(reply)

    with RawServer(answer) as raw:
        yield raw.url


@pytest.mark.parametrize(
    "reply",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nnotjson",
        b'HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{"key":1}',
        b"HTTP/1.1 204 No Content\r\nx-sn-expiration: ttl:forever\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nx-sn-time-created: yesterday\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\ncontent-encoding: gzip\r\n\r\n",
    ],
)
def test_malformed_responses_raise_protocol_error(reply: bytes) -> None:
    for url in _serve_once(reply):
        with Client(url, timeout=2) as client:
            session = client.session(Usecase("attachments"))
            with pytest.raises(ProtocolError):
                if b"x-sn-" in reply or b"gzip" in reply:
                    session.head("k")
                else:
                    session.put(b"x", key="k")


def test_short_body_raises_integrity_error() -> None:
    reply = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly a few bytes"
    for url in _serve_once(reply):
        with Client(url, timeout=2) as client:
            response = client.session(Usecase("attachments")).get("k")
            assert response is not None
            with response, pytest.raises(ObjectstoreError) as info:
                response.read()
            assert type(info.value).__name__ == "IntegrityError"
