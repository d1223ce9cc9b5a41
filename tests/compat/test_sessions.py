"""Drop-in compatibility: sessions behave like the official client's against the same emulator.

Each case runs once with an official ``Client``/``Session`` and once with
ours, on one emulator, and must have the same outcome (the value, or the
name of the exception raised). ``DIFFERENT`` lists, with the reason, where
this client behaves otherwise on purpose; both outcomes are asserted.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from objectstore_sync.testing import LocalServer
from tests.compat.official import OFFICIAL, OURS, PACKAGE, load, outcome

if OFFICIAL is None:  # pragma: no cover
    pytest.skip(
        "the official client (dependency group peer) is not installed", allow_module_level=True
    )

HOUR = timedelta(hours=1)


@dataclass
class Side:
    """One client's top-level module, a client on the emulator and a session of it."""

    m: ModuleType
    client: Any
    s: Any
    client_url: str


def _read(response: Any) -> tuple[Any, ...]:
    metadata, payload = response  # the tuple form works for both
    return (metadata.compression, metadata.content_type, payload.read())


def _stored(side: Side, **options: Any) -> tuple[Any, ...]:
    metadata = side.s.head(side.s.put(b"payload", **options))
    return (
        metadata.content_type,
        metadata.compression,
        repr(metadata.expiration_policy),
        metadata.origin,
        metadata.filename,
        metadata.custom,
    )


def _usecase_default(side: Side) -> str:
    usecase = side.m.Usecase("attachments", expiration_policy=side.m.TimeToIdle(HOUR))
    session = side.client.session(usecase, org=42)
    return repr(session.head(session.put(b"a")).expiration_policy)


CASES: dict[str, Callable[[Side], Any]] = {
    "put and get": lambda x: _read(x.s.get(x.s.put(b"hello", key="greeting"))),
    "put returns the key": lambda x: x.s.put(b"a", key="given/key"),
    "generated key is text": lambda x: type(x.s.put(b"a")).__name__,
    "empty key is generated": lambda x: len(x.s.put(b"a", key="")) > 0,
    "get missing": lambda x: x.s.get("missing-object"),
    "head missing": lambda x: x.s.head("missing-object"),
    "delete missing": lambda x: x.s.delete("missing-object"),
    "delete then get": lambda x: (x.s.delete(x.s.put(b"a", key="gone")), x.s.get("gone")),
    "keys needing escapes": lambda x: [
        x.s.get(x.s.put(k.encode(), key=k)).payload.read() for k in ("a b", "ç/日本", "100%", "q?#")
    ],
    "compressed by default": lambda x: x.s.head(x.s.put(b"z" * 1000)).compression,
    "stored raw": lambda x: x.s.head(x.s.put(b"z" * 1000, compress="none")).compression,
    "precompressed": lambda x: (
        x.s.head(x.s.put(b"\x28\xb5\x2f\xfd\x00\x00\x01\x00\x00", precompressed="zstd")).compression
    ),
    "deprecated compression": lambda x: x.s.head(x.s.put(b"z", compression="none")).compression,
    "get without decompressing": lambda x: (
        x.s.get(x.s.put(b"z" * 100, key="raw"), decompress=False).metadata.compression
    ),
    "get accepting zstd": lambda x: (
        x.s.get(x.s.put(b"z" * 100, key="raw2"), accept_encoding=["zstd"]).metadata.compression
    ),
    "metadata round trip": lambda x: _stored(
        x,
        content_type="application/json",
        metadata={"source": "svc", "note": "café"},
        origin="203.0.113.42",
        filename="ç.json",
        expiration_policy=x.m.TimeToLive(HOUR),
    ),
    "usecase expiry default": lambda x: _usecase_default(x),
    "extend expiry": lambda x: x.s.extend_expiry(
        x.s.put(b"a", expiration_policy=x.m.TimeToLive(HOUR)), from_now=timedelta(days=2)
    ),
    "extend expiry of a manual object": lambda x: x.s.extend_expiry(x.s.put(b"a"), from_now=HOUR),
    "extend expiry of a missing object": lambda x: x.s.extend_expiry("missing", from_now=HOUR),
    "extend expiry without a target": lambda x: x.s.extend_expiry("k"),
    "extend expiry with two targets": lambda x: x.s.extend_expiry(
        "k", from_now=HOUR, from_creation=HOUR
    ),
    "unknown compression": lambda x: x.s.put(b"a", compress="gzip"),
    "compress and precompressed": lambda x: x.s.put(b"a", compress="zstd", precompressed="zstd"),
    "session scope value None": lambda x: x.client.session(x.m.Usecase("attachments"), org=None),
    "session scope order": lambda x: [
        x.client.session(x.m.Usecase("attachments"), **scopes).object_url("k")
        for scopes in ({"org": 1, "project": 2}, {"project": 2, "org": 1})
    ],
    "object url": lambda x: x.s.object_url("a b/c").removeprefix(x.client_url),
    "mint token without a key": lambda x: x.s.mint_token(),
    "presign without a key": lambda x: x.s.presigned_object_url("GET", "k"),
    "put a str": lambda x: x.s.get(x.s.put("héllo", key="text")).payload.read(),
    "put an int": lambda x: x.s.put(5),
    "invalid metadata name": lambda x: x.s.put(b"a", metadata={"a b": "c"}),
    "invalid content type": lambda x: x.s.put(b"a", content_type="not a type"),
    "usecase given as a str": lambda x: x.client.session("attachments", org=1).put(b"a"),
    "server not there": lambda x: (
        x.m.Client("http://127.0.0.1:9").session(x.m.Usecase("attachments"), org=1).get("k")
    ),
}

DIFFERENT: dict[str, tuple[tuple[str, Any], tuple[str, Any]]] = {
    # Bad input fails before any request, naming the value (API §0.4); the official
    # client sends it and the server answers 400, or fails inside the client later.
    "invalid metadata name": (("raises", "RequestError"), ("raises", "ValueError")),
    "invalid content type": (("raises", "RequestError"), ("raises", "ValueError")),
    "usecase given as a str": (("raises", "AttributeError"), ("raises", "TypeError")),
    # A str payload is uploaded as UTF-8 (API §2).
    "put a str": (("raises", "TypeError"), ("ok", "héllo".encode())),
    # No urllib3 exception reaches the caller (API §7).
    "server not there": (
        ("raises", "urllib3.exceptions.MaxRetryError"),
        ("raises", "ConnectError"),
    ),
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def _side(package: str, url: str) -> Side:
    module = load(package, "")
    client = module.Client(url, retries=0)
    return Side(module, client, client.session(module.Usecase("attachments"), org=42), url)


def _close(client: Any) -> None:
    if hasattr(client, "close"):
        client.close()
    else:  # the official client has no close(); its urllib3 pool is closed directly
        client._pool.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_session_behaves_like_the_official_one(name: str, server: LocalServer) -> None:
    theirs_side = _side(PACKAGE, server.url)
    ours_side = _side(OURS, server.url)
    try:
        theirs = outcome(CASES[name], theirs_side)
        ours = outcome(CASES[name], ours_side)
    finally:
        _close(theirs_side.client)
        _close(ours_side.client)
    if name in DIFFERENT:
        assert (theirs, ours) == DIFFERENT[name]
    else:
        assert ours == theirs


def test_differences_are_cases() -> None:
    assert set(DIFFERENT) <= set(CASES)


# -- the metrics a client with a metrics backend reports ---------------------------------


class Recorder:
    """A metrics backend keeping (name, tags, unit): values vary with timing and checksums."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], Any]] = []

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        self.calls.append((name, dict(tags or {}), None))

    def gauge(self, name: str, value: float, tags: Any = None) -> None:
        self.calls.append((name, dict(tags or {}), None))

    def distribution(self, name: str, value: float, tags: Any = None, unit: Any = None) -> None:
        self.calls.append((name, dict(tags or {}), unit))


METRIC_CASES: dict[str, Callable[[Any], Any]] = {
    "put compressed": lambda s: s.put(b"x" * 1000, key="m"),
    "put raw": lambda s: s.put(b"x" * 1000, key="m", compress="none"),
    "put precompressed": lambda s: s.put(
        b"\x28\xb5\x2f\xfd\x00\x00\x01\x00\x00", key="m", precompressed="zstd"
    ),
    "get": lambda s: s.get(s.put(b"x", key="g")).payload.read(),
    "get missing": lambda s: s.get("missing-object"),
    "head": lambda s: s.head("missing-object"),
    "delete": lambda s: s.delete("missing-object"),
    "extend expiry rejected": lambda s: s.extend_expiry(s.put(b"x", key="e"), from_now=HOUR),
    "put a file": lambda s: s.put(io.BytesIO(b"y" * 1000), key="f"),
}
# A streamed payload is compressed by our transport as it sends it, so its put reports the
# payload's size (the twin measures a seekable stream) but not the stored size; the official
# client reads the whole file into memory first.
METRIC_DIFFERENCES = {"put a file"}
# What ours reports beyond the official client, on purpose: a get is measured over its whole
# body, so besides the latency it reports the sizes, compression ratio and throughputs the
# official client reports only for a put; a failed operation's latency carries an `outcome`
# tag (the error's class).
METRIC_ADDITIONS = {"get", "extend expiry rejected"}


def _metrics(package: str, url: str, case: Callable[[Any], Any]) -> list[Any]:
    module = load(package, "")
    backend = Recorder()
    client = module.Client(url, metrics_backend=backend)
    session = client.session(module.Usecase("attachments"), org=43)
    try:
        outcome(case, session)
        return backend.calls
    finally:
        _close(client)


@pytest.mark.parametrize("name", sorted(METRIC_CASES))
def test_operations_report_the_official_metrics(name: str, server: LocalServer) -> None:
    theirs = _metrics(PACKAGE, server.url, METRIC_CASES[name])
    ours = _metrics(OURS, server.url, METRIC_CASES[name])
    if name in METRIC_DIFFERENCES:
        assert ours == [c for c in theirs if c[1].get("compression") != "zstd"]
        stored = ("storage.put.size", {"usecase": "attachments", "compression": "zstd"}, "byte")
        assert stored in theirs
    elif name in METRIC_ADDITIONS:
        # Both cases put an object first; that put reports exactly what the official one does.
        setup = sum(1 for c in theirs if c[0].startswith("storage.put."))
        assert ours[:setup] == theirs[:setup]
        own, official = ours[setup:], theirs[setup:]
        if name == "get":
            assert all(call in own for call in official)
            assert {n.removeprefix("storage.get.") for n, _, _ in own} == {
                n.removeprefix("storage.put.") for n, _, _ in theirs[:setup]
            }
        else:
            assert own == [
                (n, {**t, "outcome": "ExpiryExtensionRejected"}, u) for n, t, u in official
            ]
    else:
        assert ours == theirs
