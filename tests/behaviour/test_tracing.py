"""Sentry spans of operations in both twins, recorded with the real Sentry SDK.

Each test initialises the SDK with a transport that keeps every envelope,
runs operations against the emulator over loopback inside a root span, and
reads the spans back from the envelopes. Both of the SDK's tracing modes
are covered: transactions (the default) and span streaming
(``trace_lifecycle="stream"``, the only one the official client 0.2.10
records spans in). One test runs the official client through the same
operations and compares its spans with ours; another shows that without
the SDK nothing changes and nothing imports it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

sentry_sdk = pytest.importorskip("sentry_sdk")

from sentry_sdk.envelope import Envelope  # noqa: E402
from sentry_sdk.transport import Transport  # noqa: E402

from objectstore_core import session_target  # noqa: E402
from objectstore_core._metrics import meter_for  # noqa: E402
from objectstore_sync import (  # noqa: E402
    Client,
    ExpiryExtensionRejected,
    ObjectNotFound,
    RetryPolicy,
    TimeToLive,
    Usecase,
)
from objectstore_sync.testing import Fault, InProcessTransport, LocalServer  # noqa: E402
from tests.behaviour.twins import Twin  # noqa: E402

DSN = "http://public@127.0.0.1:9/1"  # never contacted: the recording transport keeps everything
KINDS = ["sync", "asyncio", "trio"]
MODES = ["transaction", "stream"]
ORIGIN = "auto.objectstore.client"
_scopes = itertools.count()


class RecordingTransport(Transport):
    """Keeps every envelope the SDK would send."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


@dataclass(frozen=True)
class Span:
    """A recorded span, the same for both tracing modes."""

    name: str
    op: str
    origin: str
    status: str
    attributes: dict[str, Any]
    start: float
    end: float
    span_id: str
    parent_id: str | None
    trace_id: str


def _seconds(value: float | str) -> float:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def _spans(envelopes: list[Envelope]) -> list[Span]:
    found = []
    for envelope in envelopes:
        for item in envelope.items:
            payload = item.payload.json or {}
            if item.type == "span":  # span streaming: attributes are {value, type}
                for raw in payload["items"]:
                    attributes = {k: v["value"] for k, v in raw["attributes"].items()}
                    found.append(
                        Span(
                            raw["name"],
                            attributes.pop("sentry.op", ""),
                            attributes.pop("sentry.origin", ""),
                            raw["status"],
                            attributes,
                            _seconds(raw["start_timestamp"]),
                            _seconds(raw["end_timestamp"]),
                            raw["span_id"],
                            raw.get("parent_span_id"),
                            raw["trace_id"],
                        )
                    )
            elif item.type == "transaction":
                for raw in payload.get("spans", []):
                    found.append(
                        Span(
                            raw.get("description") or "",
                            raw.get("op") or "",
                            raw.get("origin") or "",
                            raw.get("status") or "",
                            dict(raw.get("data") or {}),
                            _seconds(raw["start_timestamp"]),
                            _seconds(raw["timestamp"]),
                            raw["span_id"],
                            raw.get("parent_span_id"),
                            raw["trace_id"],
                        )
                    )
    return found


class Tracer:
    """An initialised SDK in one mode, with its recording transport."""

    def __init__(self, mode: str, transport: RecordingTransport) -> None:
        self.mode = mode
        self.transport = transport
        self.error = "error" if mode == "stream" else "internal_error"

    @contextmanager
    def root(self) -> Iterator[Any]:
        """A root span (a transaction, or a streamed segment) around the block."""
        opened: AbstractContextManager[Any] = (
            sentry_sdk.traces.start_span(name="test")
            if self.mode == "stream"
            else sentry_sdk.start_transaction(name="test", op="test")
        )
        with opened as span:
            yield span

    def spans(self) -> list[Span]:
        """The objectstore spans recorded so far, in the order the SDK sent them."""
        sentry_sdk.flush()
        spans = _spans(self.transport.envelopes)
        self.transport.envelopes.clear()
        return [span for span in spans if span.op.startswith("objectstore.")]


@contextmanager
def initialised(mode: str) -> Iterator[Tracer]:
    transport = RecordingTransport()
    options: dict[str, Any] = {
        "dsn": DSN,
        "traces_sample_rate": 1.0,
        "transport": transport,
        "default_integrations": False,
        "auto_enabling_integrations": False,
    }
    if mode == "stream":
        options["_experiments"] = {"trace_lifecycle": "stream"}
    sentry_sdk.init(**options)
    try:
        yield Tracer(mode, transport)
    finally:
        sentry_sdk.flush()
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)  # back to "not initialised"


@pytest.fixture(params=MODES)
def tracer(request: pytest.FixtureRequest) -> Iterator[Tracer]:
    with initialised(request.param) as made:
        yield made


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture(params=KINDS)
def twin(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Twin]:
    made = Twin(request.param, server.url, None, timeout=10)
    yield made
    made.close()


def _session(twin: Twin) -> Any:
    return twin.session(Usecase("attachments"), org=42, project=next(_scopes))


def _root_id(tracer: Tracer, root: Any) -> str:
    span_id: str = root.span_id
    return span_id


PAYLOAD = b"hello objectstore " * 100


def test_each_operation_runs_in_a_span_with_its_attributes(tracer: Tracer, twin: Twin) -> None:
    session = _session(twin)
    project = session.scope.dict()["project"]
    with tracer.root() as root:
        key = session.put(PAYLOAD, key="greeting", expiration_policy=TimeToLive(timedelta(hours=1)))
        with session.get(key) as response:
            assert response.read() == PAYLOAD
        assert session.head(key) is not None
        session.extend_expiry(key, from_now=timedelta(days=1))
        session.delete(key)
    spans = tracer.spans()
    ops = ["put", "get", "head", "extend_expiry", "delete"]
    assert [(s.name, s.op) for s in spans] == [
        (f"objectstore.{op} attachments", f"objectstore.{op}") for op in ops
    ]
    common = {
        "objectstore.usecase": "attachments",
        "objectstore.scopes.org": 42,
        "objectstore.scopes.project": project,
        "objectstore.scope": f"org=42;project={project}",
        "objectstore.key": "greeting",
        "objectstore.retries": 0,
        "objectstore.outcome": "ok",
    }
    for span in spans:
        assert span.origin == ORIGIN and span.status == "ok"
        assert span.parent_id == _root_id(tracer, root)  # the caller's span, never each other
        assert common.items() <= span.attributes.items(), span
    put, get, head, extend, delete = (s.attributes for s in spans)
    assert put["objectstore.compression"] == "zstd"
    assert put["objectstore.uncompressed_size"] == len(PAYLOAD)
    assert 0 < put["objectstore.compressed_size"] < len(PAYLOAD)
    assert get["objectstore.found"] is True and get["objectstore.decompressed"] is True
    assert get["objectstore.compression"] == "zstd"
    assert get["objectstore.uncompressed_size"] == len(PAYLOAD)
    assert get["objectstore.compressed_size"] == put["objectstore.compressed_size"]
    assert head["objectstore.found"] is True
    assert "objectstore.found" not in extend and "objectstore.found" not in delete


def test_a_put_without_a_key_names_the_generated_one(tracer: Tracer, twin: Twin) -> None:
    session = _session(twin)
    with tracer.root():
        key = session.put(b"raw", compress="none")
        assert session.get("missing") is None
        assert session.head("missing") is None
    put, get, head = (s.attributes for s in tracer.spans())
    assert put["objectstore.key"] == key
    assert put["objectstore.compression"] == "none" and put["objectstore.uncompressed_size"] == 3
    assert get["objectstore.found"] is False and get["objectstore.outcome"] == "ok"
    assert head["objectstore.found"] is False


def test_a_get_span_ends_when_its_body_is_read(tracer: Tracer, twin: Twin) -> None:
    session = _session(twin)
    payload = os.urandom(1024 * 1024)
    with tracer.root():
        key = session.put(payload, compress="none")
        response = session.get(key)
        assert response is not None
        returned = time.time()
        first = response.payload.read(1000)
        time.sleep(0.2)  # the caller takes its time with the body
        last_read = time.time()
        rest = response.payload.read()
        finished = time.time()
        assert first + rest == payload
        response.close()
        early = session.get(key)
        assert early is not None and len(early.payload.read(10)) == 10
        early.close()  # closed before its end
    _, get, closed = tracer.spans()
    slack = 0.002  # the SDK times spans with its own clocks
    assert get.end >= last_read - slack and get.end <= finished + slack
    assert get.end >= returned + 0.2 - slack
    assert get.attributes["objectstore.uncompressed_size"] == len(payload)
    assert get.attributes["objectstore.outcome"] == "ok"
    assert closed.status == "ok" and closed.attributes["objectstore.outcome"] == "closed"
    assert "objectstore.uncompressed_size" not in closed.attributes


def test_a_failed_operation_records_its_outcome(tracer: Tracer, twin: Twin) -> None:
    session = _session(twin)
    with tracer.root():
        key = session.put(b"no expiry", compress="none")
        with pytest.raises(ExpiryExtensionRejected):
            session.extend_expiry(key, from_now=timedelta(days=1))
        with pytest.raises(ObjectNotFound):
            session.extend_expiry("missing", from_now=timedelta(days=1))
    _, rejected, missing = tracer.spans()
    assert rejected.status == tracer.error
    assert rejected.attributes["objectstore.outcome"] == "ExpiryExtensionRejected"
    assert missing.status == tracer.error
    assert missing.attributes["objectstore.outcome"] == "ObjectNotFound"
    assert missing.attributes["objectstore.key"] == "missing"


@pytest.mark.parametrize("kind", KINDS)
def test_retries_are_counted_and_trace_headers_go_out_on_every_attempt(
    tracer: Tracer, kind: str
) -> None:
    seen: list[tuple[str, dict[str, str]]] = []
    with LocalServer() as server:
        begin = server.emulator.begin

        def recording(request: Any) -> Any:
            headers = {n.lower(): v for n, v in request.headers}
            seen.append((request.method, headers))
            return begin(request)

        server.emulator.begin = recording  # type: ignore[method-assign]
        with pytest.warns(DeprecationWarning, match="propagate_traces is deprecated"):
            twin = Twin(kind, server.url, None, propagate_traces=True, retry=RetryPolicy(backoff=0))
        plain = Twin(kind, server.url, None, retry=RetryPolicy(backoff=0))
        try:
            with tracer.root() as root:
                server.faults.inject(Fault.status(503), count=2, method="HEAD")
                assert _session(twin).head("missing") is None  # after two retried 503s
                _session(plain).head("missing")
        finally:
            twin.close()
            plain.close()
    traced, untraced = tracer.spans()
    assert traced.attributes["objectstore.retries"] == 2
    assert untraced.attributes["objectstore.retries"] == 0
    heads = [headers for method, headers in seen if method == "HEAD"]
    assert len(heads) == 4
    for headers in heads[:3]:  # each attempt of the traced head names its span as parent
        assert headers["sentry-trace"] == f"{root.trace_id}-{traced.span_id}-1"
        assert f"sentry-trace_id={root.trace_id}" in headers["baggage"]
    assert "sentry-trace" not in heads[3] and "baggage" not in heads[3]


def test_batches_multipart_calls_and_managed_transfers_run_in_spans(
    tracer: Tracer, twin: Twin, tmp_path: Path
) -> None:
    session = _session(twin)
    with tracer.root() as root:
        batch = session.many()
        batch.put(b"one", key="b1")
        batch.get("b1")
        assert all(result.ok for result in batch.send())
        upload = session.initiate_multipart_upload(key="parts")
        part = upload.put_part(PAYLOAD, part_number=1, content_length=len(PAYLOAD))
        upload.complete([part])
        key = session.upload(PAYLOAD, key="managed")
        session.download(key, tmp_path / "copy")
    spans = tracer.spans()
    ops = [span.op for span in spans]
    for op in ("batch", "multipart.initiate", "multipart.put_part", "multipart.complete"):
        assert f"objectstore.{op}" in ops, ops
    assert "objectstore.upload" in ops and "objectstore.download" in ops, ops
    batch_span = spans[ops.index("objectstore.batch")]
    assert batch_span.attributes["objectstore.operations"] == 2
    assert batch_span.attributes["objectstore.outcome"] == "ok"
    upload_span = spans[ops.index("objectstore.upload")]
    assert upload_span.attributes["objectstore.uncompressed_size"] == len(PAYLOAD)
    for span in spans:
        assert span.origin == ORIGIN and span.status == "ok", span
        assert span.parent_id == _root_id(tracer, root)
        assert span.start <= span.end


@pytest.mark.parametrize("kind", ["asyncio", "trio"])
def test_a_cancelled_operation_ends_its_span(tracer: Tracer, kind: str) -> None:
    with LocalServer() as server:
        server.faults.inject(Fault.stall(1.0), method="HEAD")
        twin = Twin(kind, server.url, None)
        try:
            session = twin.client.session(Usecase("attachments"), org=1)

            async def head_cancelled() -> bool:
                with anyio.move_on_after(0.2) as scope:
                    await session.head("key")
                return scope.cancelled_caught

            assert twin.portal is not None
            with tracer.root():
                assert twin.portal.call(head_cancelled)
        finally:
            twin.close()
    [span] = tracer.spans()
    assert span.status == ("error" if tracer.mode == "stream" else "cancelled")
    assert span.attributes["objectstore.outcome"] == "cancelled"
    assert span.end - span.start < 0.9


def test_our_spans_match_the_official_clients(server: LocalServer) -> None:
    official = pytest.importorskip("objectstore_client")
    project = next(_scopes)

    def run(module: Any) -> list[Span]:
        client = module.Client(server.url)
        session = client.session(module.Usecase("attachments"), org=7, project=project)
        ttl = module.TimeToLive(timedelta(hours=1))
        with recording.root():
            session.put(PAYLOAD, key="doc", metadata={"a": "b"}, expiration_policy=ttl)
            session.put(b"raw", key="raw", compress="none")
            session.get("doc").payload.read()
            session.get("raw", decompress=False).payload.read()
            session.get("missing")
            session.head("doc")
            session.head("missing")
            session.extend_expiry("doc", from_now=timedelta(days=1))
            session.delete("doc")
            with pytest.raises(module.ObjectNotFound):
                session.extend_expiry("missing", from_now=timedelta(days=1))
        if module is official:
            client._pool.close()  # the official client has no close()
        else:
            client.close()
        return recording.spans()

    with initialised("stream") as recording:  # the official client records streamed spans only
        theirs = run(official)
        ours = run(sys.modules["objectstore_sync"])
    assert len(theirs) == len(ours) == 10
    for mine, reference in zip(ours, theirs, strict=True):
        assert (mine.name, mine.op, mine.origin, mine.status) == (
            reference.name,
            reference.op,
            reference.origin,
            reference.status,
        )
        missing = set(reference.attributes) - set(mine.attributes)
        assert not missing, (mine.name, missing)
        for name, value in reference.attributes.items():
            if name.startswith("objectstore.") and name != "objectstore.compressed_size":
                assert mine.attributes[name] == value, (mine.name, name)  # zstd levels differ


def test_an_sdk_imported_but_not_initialised_leaves_flows_unwrapped() -> None:
    assert not sentry_sdk.get_client().is_active()
    client = Client("http://objectstore.test", transport=InProcessTransport())
    target = session_target(client.config, Usecase("attachments"), {"org": 1})
    assert meter_for(target, "head", "key") is None  # the same bare flow as without the SDK


HIDE_SENTRY = """
import sys


class _HideSentry:
    # Makes "import sentry_sdk" fail as if the SDK were not installed.
    def find_spec(self, name, path=None, target=None):
        if name == "sentry_sdk" or name.startswith("sentry_sdk."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _HideSentry())
"""

WITHOUT_SENTRY = """
import asyncio
import sys
import warnings

try:
    import sentry_sdk  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the Sentry SDK was not hidden")

from objectstore_async import AsyncClient
from objectstore_sync import Client, Scope, Usecase
from objectstore_sync.testing import LocalServer
from objectstore_sync.tracing import storage_span

with LocalServer() as server:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = Client(server.url, propagate_traces=True)
    with client:
        session = client.session(Usecase("attachments"), org=1)
        key = session.put(b"hello")
        with session.get(key) as response:
            assert response.read() == b"hello"
        assert session.head(key) is not None
        session.delete(key)

    async def main():
        async with AsyncClient(server.url) as client:
            session = client.session(Usecase("attachments"), org=1)
            key = await session.put(b"async hello")
            response = await session.get(key)
            assert await response.aread() == b"async hello"

    asyncio.run(main())

with storage_span("put", Usecase("attachments"), Scope(org=1)) as span:
    span.set_attribute("objectstore.key", "k")
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "sentry_sdk")
assert not loaded, loaded
print("ok")
"""


def test_without_the_sdk_the_library_works_and_never_imports_it(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(HIDE_SENTRY))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path), str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SENTRY],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
