"""Batches (API §3, PROTOCOL §8) in both twins, against the emulator in process and on loopback."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from objectstore_sync import BatchResults, Usecase

MIB = 1024 * 1024


def test_2500_mixed_operations_come_back_in_submission_order(session: Any) -> None:
    seed = session.many()
    for i in range(750):
        seed.put(f"value {i}".encode(), key=f"seed/{i}", metadata={"n": str(i)})
    assert all(r.ok for r in seed.send())

    batch = session.many()
    expected: list[tuple[str, Any]] = []
    for i in range(250):
        batch.get(f"seed/{i}")
        expected.append(("get", f"value {i}".encode()))
        batch.head(f"seed/{250 + i}")
        expected.append(("head", str(250 + i)))
        batch.delete(f"seed/{500 + i}")
        expected.append(("delete", None))
        batch.get(f"missing/{i}")
        expected.append(("get", None))
        batch.head(f"missing/{i}")
        expected.append(("head", None))
        batch.put(f"keyless {i}".encode())
        expected.append(("put", None))
        for j in range(4):
            batch.put(f"new {i} {j}".encode(), key=f"new/{i}/{j}", compress="none")
            expected.append(("put", f"new/{i}/{j}"))
    assert len(batch) == 2500
    results = batch.send()
    assert isinstance(results, BatchResults) and len(results) == 2500
    assert [r.index for r in results] == list(range(2500))
    for result, (kind, want) in zip(results, expected, strict=True):
        assert result.ok, result.error
        assert result.kind == kind
        if kind == "get":
            assert (None if result.value is None else result.value.read()) == want
        elif kind == "head":
            assert (None if result.value is None else result.value.custom["n"]) == want
        elif kind == "put" and want is None:
            assert isinstance(result.key, str) and len(result.key) == 36  # a generated UUID
            assert result.value == result.key
        else:
            assert result.value == want
    assert session.get("seed/500") is None
    assert session.get("new/3/2").read() == b"new 3 2"
    keyless = [r.key for r in results if r.kind == "put" and str(r.key).count("-") == 4]
    assert session.get(keyless[7]).read() == b"keyless 7"


def test_large_and_file_puts_go_individually_and_succeed(session: Any, tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"from a path" * 1000)
    big = bytes(range(256)) * (8 * 1024)  # 2 MiB
    batch = session.many()
    batch.put(big, key="big")
    batch.put(io.BytesIO(b"from a file"), key="file")
    batch.put(path, key="path")
    batch.put(iter([b"from ", b"chunks"]), key="chunks")
    batch.put(b"small", key="small")
    results = batch.send()
    assert [r.value for r in results] == ["big", "file", "path", "chunks", "small"]
    assert session.get("big").read() == big
    assert session.get("file").read() == b"from a file"
    assert session.get("path").read() == b"from a path" * 1000
    assert session.get("chunks").read() == b"from chunks"


def test_iter_results_yields_each_operation_once(session: Any) -> None:
    batch = session.many(max_batch_concurrency=2)
    for i in range(1500):
        batch.put(b"x", key=f"k{i}", compress="none")
    batch.put(b"y" * (2 * MIB), key="large")
    seen = [r.index for r in batch.iter_results()]
    assert sorted(seen) == list(range(1501))


def test_options_and_compression_round_trip(session: Any) -> None:
    batch = session.many()
    batch.put(
        b"{}" * 100,
        key="doc.json",
        content_type="application/json",
        origin="203.0.113.42",
        filename="doc.json",
        metadata={"source": "svc"},
    )
    batch.put(b"raw", key="raw", compress="none")
    assert batch.send().ok
    batch = session.many()
    batch.get("doc.json")
    batch.get("doc.json", decompress=False)
    batch.head("doc.json")
    batch.get("raw")
    decoded, stored, head, raw = batch.send()
    assert decoded.value.read() == b"{}" * 100
    assert decoded.value.metadata.compression is None
    assert stored.value.metadata.compression == "zstd"
    assert stored.value.read()[:4] == b"\x28\xb5\x2f\xfd"  # zstd bytes, as stored
    metadata = head.value
    assert (metadata.content_type, metadata.origin, metadata.filename) == (
        "application/json",
        "203.0.113.42",
        "doc.json",
    )
    assert metadata.custom == {"source": "svc"}
    assert raw.value.read() == b"raw"


def test_invalid_operations_raise_before_anything_is_sent(session: Any) -> None:
    batch = session.many()
    with pytest.raises(ValueError, match="key ''"):
        batch.delete("")
    with pytest.raises(ValueError, match="would compress twice"):
        batch.put(b"x", key="k", compress="zstd", precompressed="zstd")
    with pytest.raises(ValueError, match="content_type 'not a media type' is invalid"):
        batch.put(b"x", key="bad", content_type="not a media type")
    with pytest.raises(ValueError, match="max_batch_concurrency=0"):
        session.many(max_batch_concurrency=0)
    assert len(session.many().send()) == 0


@pytest.mark.parametrize("kind", ["sync", "asyncio", "trio"])
def test_transient_failures_of_a_batch_request_are_retried(kind: str) -> None:
    from objectstore_sync import RetryPolicy, ServerError
    from objectstore_sync.testing import Fault, LocalServer
    from tests.behaviour.twins import Twin

    policy = RetryPolicy(max_attempts=3, backoff=0.0, jitter=0.0)
    with LocalServer() as server:
        twin = Twin(kind, server.url, None, timeout=10, retry=policy)
        try:
            session = twin.session(Usecase("attachments"), org=1)
            session.put(b"there", key="g")
            # A reset before any part arrived, then a 503: the keyed operations are
            # sent a third time and succeed; the keyless put is never replayed.
            server.faults.inject(Fault.reset(), path="objects:batch")
            batch = session.many()
            batch.put(b"keyed", key="k")
            batch.get("g")
            results = batch.send()
            assert [r.ok for r in results] == [True, True]
            server.faults.fail_next(1, 503, path="objects:batch")
            batch = session.many()
            batch.put(b"keyless")
            batch.put(b"keyed again", key="k")
            keyless, keyed = batch.send()
            assert isinstance(keyless.error, ServerError) and keyed.ok
            assert session.get("k").read() == b"keyed again"
            # Cut mid-response: the parts that arrived stand, the rest are sent again.
            server.faults.inject(Fault.reset(after=400), path="objects:batch")
            batch = session.many()
            for _ in range(20):
                batch.get("g")
            assert all(r.ok and r.value.read() == b"there" for r in batch.send())
        finally:
            twin.close()


@pytest.mark.parametrize("kind", ["sync", "asyncio", "trio"])
def test_leaving_iter_results_early_stops_cleanly(kind: str) -> None:
    import anyio

    from objectstore_async import AsyncClient
    from objectstore_sync import Client
    from objectstore_sync.testing import LocalServer

    with LocalServer() as server:
        if kind == "sync":
            with Client(server.url) as client:
                session = client.session(Usecase("attachments"), org=1)
                batch = session.many(max_batch_concurrency=1)
                for i in range(2500):
                    batch.delete(f"k{i}")
                for _ in batch.iter_results():
                    break  # the running request finishes; no further one starts
                assert session.put(b"still usable", key="after") == "after"
            return

        async def main() -> None:
            async with AsyncClient(server.url) as client:
                session = client.session(Usecase("attachments"), org=1)
                batch = session.many(max_batch_concurrency=1)
                for i in range(2500):
                    batch.delete(f"k{i}")
                results = batch.iter_results()
                async for _ in results:
                    break
                await results.aclose()  # type: ignore[attr-defined]
                assert await session.put(b"still usable", key="after") == "after"

        anyio.run(main, backend=kind)


def test_a_sync_batch_payload_keeps_file_semantics_and_is_closed_when_dropped() -> None:
    import gc

    from objectstore_sync import Client
    from objectstore_sync._response import Payload
    from objectstore_sync.testing import InProcessTransport

    with Client("http://objectstore.test", transport=InProcessTransport()) as client:
        session = client.session(Usecase("attachments"), org=1)
        session.put(b"held whole", key="k")
        batch = session.many()
        batch.get("k")
        (result,) = batch.send()
    payload = result.value.payload
    assert payload.read() == b"held whole"
    assert payload.read() == b"" and not payload.closed  # at its end, still open
    payload.flush()
    with payload:
        pass
    assert payload.closed
    for call in (payload.read, payload.flush, payload.__enter__):
        with pytest.raises(ValueError, match="closed"):
            call()

    class Stream:
        closed = 0
        done = True

        def close(self) -> None:
            Stream.closed += 1

    class Nothing:
        unsettled = False

    Payload(Stream(), Nothing())  # type: ignore[arg-type]
    gc.collect()
    assert Stream.closed == 1  # dropped unclosed: finalized by closing it
    shut = Payload(Stream(), Nothing())  # type: ignore[arg-type]
    shut.close()
    del shut
    gc.collect()
    assert Stream.closed == 2  # closed once, not again when dropped


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_whole_read_that_ends_the_payload_asks_for_nothing_more(twin: str) -> None:
    import anyio

    from objectstore_async._response import AsyncPayload
    from objectstore_sync._response import Payload

    class Held:
        """A download whose one piece is the whole payload."""

        unsettled = False
        finished = False
        reads = 0

        def read(self, limit: int | None = None, **options: bool) -> bytes:
            self.reads += 1
            if self.finished:
                return b""
            self.finished = True
            return b"all of it"

    class Stream:
        done = True

        def close(self) -> None:
            pass

        async def aclose(self) -> None:
            pass

    download = Held()
    if twin == "sync":
        payload = Payload(Stream(), download)  # type: ignore[arg-type]
        assert payload.read() == b"all of it"
        assert download.reads == 1  # the end is known: no read to learn it
        assert payload.read() == b""
    else:
        apayload = AsyncPayload(Stream(), download)  # type: ignore[arg-type]
        assert anyio.run(apayload.read) == b"all of it"
        assert download.reads == 1
        assert anyio.run(apayload.read) == b""


def test_batch_payloads_read_whole_in_pieces_or_damaged(session: Any) -> None:
    import zstandard

    from objectstore_sync import IntegrityError

    data = b"batched object " * 500
    one_frame = zstandard.ZstdCompressor().compress(data)
    two_frames = one_frame + zstandard.ZstdCompressor().compress(b" and more")
    damaged = one_frame[:12] + bytes(b ^ 0xFF for b in one_frame[12:40]) + one_frame[40:]
    for key, body in (("one", one_frame), ("two", two_frames), ("damaged", damaged)):
        session.put(body, key=key, precompressed="zstd")
    batch = session.many()
    for key in ("one", "one", "one", "two", "damaged", "one", "one"):
        batch.get(key)
    whole, pieces, chunks, several, broken, closed, natural = batch.send()
    assert whole.value.read() == data and whole.value.read() == b""
    assert pieces.value.payload.read(10) + pieces.value.read() == data
    assert b"".join(chunks.value.iter_bytes(1000)) == data
    assert b"".join(natural.value.iter_bytes()) == data  # natural chunks: the async fast path
    assert several.value.read() == data + b" and more"  # not one frame: read through a download
    for _ in range(2):  # every read fails the same way, naming the operation
        with pytest.raises(IntegrityError) as failed:
            broken.value.read()
        assert failed.value.operation == "batch get #4" and failed.value.key == "damaged"
    closed.value.close()
    with pytest.raises(ValueError, match="closed"):
        closed.value.read()
