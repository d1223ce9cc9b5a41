"""Byte-identical interchange with the official client (the protocol referee).

Objects written by either client must read back identically through the
other, with their metadata. Skipped when ``objectstore-client`` is absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from objectstore_sync import Client, TimeToIdle, TimeToLive, Usecase
from objectstore_sync.testing import LocalServer

official = pytest.importorskip("objectstore_client")

KEYS = [
    "plain",
    "with space",
    "100%literal",
    "%20",
    "q?mark",
    "hash#",
    "plus+",
    "ça/va/日本",
    "a/b/c",
    "dir/",
]


@pytest.fixture
def pair(server: LocalServer) -> Iterator[tuple[Any, Any]]:
    client = Client(server.url)
    their_client = official.Client(server.url)
    ours = client.session(Usecase("interop"), org=1, project=2)
    theirs = their_client.session(official.Usecase("interop"), org=1, project=2)
    yield ours, theirs
    client.close()
    # The official client has no close(); its urllib3 pool is closed directly.
    their_client._pool.close()


@pytest.mark.parametrize("key", KEYS)
def test_ours_to_theirs(pair: tuple[Any, Any], key: str) -> None:
    ours, theirs = pair
    data = os.urandom(5000) + key.encode()
    ours.put(data, key=key, metadata={"note": "café"}, filename="f.bin", origin="10.0.0.1")
    result = theirs.get(key)
    assert result is not None
    assert result.payload.read() == data
    assert result.metadata.custom == {"note": "café"}
    assert result.metadata.filename == "f.bin"
    assert result.metadata.origin == "10.0.0.1"


@pytest.mark.parametrize("key", KEYS)
def test_theirs_to_ours(pair: tuple[Any, Any], key: str) -> None:
    ours, theirs = pair
    data = os.urandom(5000) + key.encode()
    theirs.put(data, key=key, metadata={"note": "naïve"}, content_type="application/x-test")
    response = ours.get(key)
    assert response is not None
    with response:
        assert response.read() == data
        assert response.metadata.custom == {"note": "naïve"}
        assert response.metadata.content_type == "application/x-test"


def test_uncompressed_and_expiring_objects(pair: tuple[Any, Any]) -> None:
    ours, theirs = pair
    ours.put(b"raw", key="raw", compress="none", expiration_policy=TimeToLive(timedelta(days=3)))
    result = theirs.get("raw")
    assert result.payload.read() == b"raw"
    assert result.metadata.expiration_policy.delta == timedelta(days=3)
    theirs.put(b"idle", key="idle", expiration_policy=official.TimeToIdle(timedelta(days=30)))
    metadata = ours.head("idle")
    assert metadata.expiration_policy == TimeToIdle(timedelta(days=30))


def test_large_object_both_ways(pair: tuple[Any, Any]) -> None:
    ours, theirs = pair
    data = os.urandom(256 * 1024) * 40  # 10 MiB, partly compressible
    ours.put(data, key="big")
    assert theirs.get("big").payload.read() == data
    theirs.put(data, key="big2")
    response = ours.get("big2")
    with response:
        assert response.read() == data


def test_delete_and_head_agree(pair: tuple[Any, Any]) -> None:
    ours, theirs = pair
    key = theirs.put(b"x")
    assert ours.head(key) is not None
    ours.delete(key)
    assert theirs.head(key) is None
