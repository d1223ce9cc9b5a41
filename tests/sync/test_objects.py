"""Behaviour specific to the sync twin: the file-like payload, pool accounting."""

from __future__ import annotations

import gc
import os

from objectstore_sync import (
    Client,
    GetResponse,
    Session,
    Usecase,
)
from objectstore_sync.testing import LocalServer

PAYLOAD = b"hello objectstore " * 1000


def _read(session: Session, key: str, **kwargs: object) -> bytes:
    response = session.get(key, **kwargs)  # type: ignore[arg-type]
    assert response is not None
    with response:
        return response.read()


# ------------------------------------------------------------------ payloads


def test_get_response_is_a_tuple_and_a_context_manager(session: Session) -> None:
    key = session.put(PAYLOAD, content_type="text/plain")
    response = session.get(key)
    assert isinstance(response, GetResponse)
    metadata, payload = response
    assert metadata.content_type == "text/plain"
    assert payload.read(5) == PAYLOAD[:5]
    buffer = bytearray(10)
    assert payload.readinto(buffer) == 10
    assert bytes(buffer) == PAYLOAD[5:15]
    assert payload.read() == PAYLOAD[15:]
    payload.close()


def test_abandoned_payloads_release_their_connections(server: LocalServer) -> None:
    with Client(server.url, max_connections=2) as client:
        session = client.session(Usecase("attachments"), org=7)
        key = session.put(os.urandom(3 * 1024 * 1024), compress="none")
        for _ in range(10):
            response = session.get(key)
            assert response is not None
            assert len(response.payload.read(10)) == 10
            del response
            gc.collect()
        # Two connections at most: anything leaked above would block here.
        for _ in range(5):
            assert len(_read(session, key)) == 3 * 1024 * 1024


def test_closing_a_response_early_keeps_the_client_usable(server: LocalServer) -> None:
    with Client(server.url, max_connections=1, timeout=5) as client:
        session = client.session(Usecase("attachments"), org=8)
        key = session.put(os.urandom(2 * 1024 * 1024))
        for _ in range(3):
            with session.get(key) as response:  # type: ignore[union-attr]
                response.payload.read(1)
        assert session.head(key) is not None
