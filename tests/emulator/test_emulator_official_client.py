"""The official Python client 0.2.10 as a referee: it must work against the emulator.

Used only as a peer over the wire; skipped when it is not installed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from objectstore_core.emulator import Exchange, ServerRequest
from objectstore_sync.testing import LocalServer
from tests.emulator.emulator_helpers import FakeClock

oc: Any = pytest.importorskip("objectstore_client")

_counter = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture
def session(server: LocalServer) -> Any:
    client = oc.Client(server.url)
    return client.session(oc.Usecase("attachments"), org=42, test=next(_counter))


def _read(result: Any) -> bytes:
    data: bytes = result.payload.read()
    return data


def test_put_get_head_delete_with_metadata(session: Any) -> None:
    key = session.put(
        b"hello world",
        key="docs/readme.txt",
        content_type="text/plain",
        metadata={"build": "1a2b", "Team": "storage"},
        expiration_policy=oc.TimeToLive(timedelta(days=30)),
        origin="203.0.113.42",
        filename="readme.txt",
    )
    assert key == "docs/readme.txt"
    result = session.get(key)
    assert _read(result) == b"hello world"
    meta = result.metadata
    assert meta.content_type == "text/plain"
    assert meta.custom == {"build": "1a2b", "team": "storage"}
    assert meta.expiration_policy == oc.TimeToLive(timedelta(days=30))
    assert meta.origin == "203.0.113.42"
    assert meta.filename == "readme.txt"
    assert meta.time_expires - meta.time_created == timedelta(days=30)
    head = session.head(key)
    assert head.custom == meta.custom
    assert head.size is not None
    session.delete(key)
    assert session.get(key) is None
    assert session.head(key) is None
    session.delete(key)  # idempotent


@pytest.mark.parametrize(
    "policy",
    [
        "ttl-day",
        "tti-400d",
        "ttl-90d",
    ],
)
def test_long_expirations_read_back(session: Any, policy: str) -> None:
    # §13 item 6: the compact duration form is what 0.2.10 can parse.
    policies = {
        "ttl-day": oc.TimeToLive(timedelta(days=1)),
        "tti-400d": oc.TimeToIdle(timedelta(days=400, seconds=90)),
        "ttl-90d": oc.TimeToLive(timedelta(days=90)),
    }
    key = session.put(b"x", expiration_policy=policies[policy])
    assert session.head(key).expiration_policy == policies[policy]
    assert session.get(key).metadata.expiration_policy == policies[policy]


def test_compression_roundtrip(session: Any) -> None:
    payload = b"compress me " * 10_000
    key = session.put(payload, compress="zstd")
    result = session.get(key)
    assert _read(result) == payload
    raw = session.get(key, decompress=False)
    assert raw.metadata.compression == "zstd"
    assert _read(raw) != payload


def test_non_ascii_metadata(session: Any) -> None:
    key = session.put(
        b"x",
        metadata={"city": "Köln", "mixed": "100% ☃"},
        filename="café.txt",
        origin="naïve",
    )
    meta = session.head(key)
    assert meta.custom == {"city": "Köln", "mixed": "100% ☃"}
    assert meta.filename == "café.txt"
    assert meta.origin == "naïve"


@pytest.mark.parametrize(
    "key",
    [
        "with space",
        "100%literal",
        "a?b#c",
        "plus+sign",
        "café/ünïcödé",
        "a/b/c",
        "trailing/",
        "[x]^|",
        "sub!$'()*+,=delims",
        "colon:key",
    ],
)
def test_keys(session: Any, key: str) -> None:
    assert session.put(key.encode(), key=key) == key
    assert _read(session.get(key)) == key.encode()
    assert session.head(key) is not None
    session.delete(key)
    assert session.get(key) is None


def test_trailing_slash_is_a_different_key(session: Any) -> None:
    session.put(b"plain", key="k")
    session.put(b"slash", key="k/")
    assert _read(session.get("k")) == b"plain"
    assert _read(session.get("k/")) == b"slash"


def test_extend_expiry(session: Any) -> None:
    key = session.put(b"x", expiration_policy=oc.TimeToLive(timedelta(hours=1)))
    session.extend_expiry(key, from_now=timedelta(days=2))
    meta = session.head(key)
    assert meta.time_expires - datetime.now(UTC) > timedelta(days=1, hours=23)
    at = datetime(2030, 1, 1, 0, 0, 0, 500, tzinfo=UTC)
    session.extend_expiry(key, at=at)
    assert session.head(key).time_expires == datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)
    session.extend_expiry(key, from_creation=timedelta(days=1))  # shorter: no change
    assert session.head(key).time_expires == datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_extend_expiry_errors(session: Any) -> None:
    manual = session.put(b"x")
    with pytest.raises(oc.ExpiryExtensionRejected):
        session.extend_expiry(manual, from_now=timedelta(days=1))
    with pytest.raises(oc.RequestError) as info:
        session.extend_expiry("missing", from_now=timedelta(days=1))
    assert info.value.status == 404
    assert not isinstance(info.value, oc.ExpiryExtensionRejected)


def test_resumable_upload_falls_back_to_a_plain_upload(
    server: LocalServer, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = server.emulator
    statuses: list[tuple[str, int | None]] = []
    begin = emulator.begin

    def recording_begin(request: ServerRequest) -> Exchange:
        exchange = begin(request)
        status = exchange.response.status if exchange.response is not None else None
        statuses.append((request.target, status))
        return exchange

    monkeypatch.setattr(emulator, "begin", recording_begin)
    monkeypatch.setattr(emulator.resumable, "enabled", False)  # a server without them
    payload = b"r" * 5000
    before = len(server.storage.ids())  # type: ignore[attr-defined]
    key = session.put(payload, compress="none", resumable_threshold_bytes=1000)
    assert [s for t, s in statuses if "upload_type=resumable" in t] == [501]
    assert _read(session.get(key)) == payload
    assert len(server.storage.ids()) == before + 1  # type: ignore[attr-defined]


def test_expiry_with_a_fake_clock() -> None:
    clock = FakeClock()
    with LocalServer(clock=clock) as server:
        session = oc.Client(server.url).session(oc.Usecase("attachments"), org=1)
        key = session.put(b"x", expiration_policy=oc.TimeToIdle(timedelta(hours=1)))
        clock.advance(minutes=50)
        assert session.get(key) is not None  # bumps the deadline
        clock.advance(minutes=50)
        assert session.head(key) is not None
        clock.advance(hours=2)
        assert session.get(key) is None


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_resumable_upload_of_the_official_client(
    server: LocalServer, session: Any, compress: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # §14.1: 0.2.10 creates a session and sends the whole (compressed) payload in one append.
    emulator = server.emulator
    targets: list[str] = []
    begin = emulator.begin

    def recording_begin(request: ServerRequest) -> Exchange:
        targets.append(request.target)
        return begin(request)

    monkeypatch.setattr(emulator, "begin", recording_begin)
    payload = bytes(range(256)) * 40
    key = session.put(payload, compress=compress, resumable_threshold_bytes=1000)
    assert any("upload_type=resumable" in t for t in targets)
    assert any("session=" in t for t in targets)
    assert _read(session.get(key)) == payload
    assert len(emulator.resumable) == 0
