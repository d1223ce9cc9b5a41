"""One benchmark case in a fresh process, driven by ``run.py``.

    python benchmarks/_worker.py '<json spec>'

Runs the case named by ``spec["case"]`` and prints one JSON object on the
last line of stdout. Each case runs in its own process so that client CPU
time (``time.process_time``) and peak RSS (``ru_maxrss``) belong to exactly
one client and one case; the emulator always runs in yet another process.

Cases: ``small`` (1 KiB put/get/head/delete), ``transfer`` (one large
upload or download, repeated), ``concurrency`` (async gets in flight),
``zstd`` (single-core compression/decompression of a payload),
``loopback`` (TCP throughput between two processes) and its helper
``loopback-send``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

from _harness import CHUNK, KIB, MIB, json_like, median, peak_rss_kib

Spec = dict[str, Any]
SyncOp = Callable[[str], object]
AsyncOp = Callable[[str], Awaitable[object]]

USECASE = "bench"
OPS = ("put", "get", "head", "delete")
WARMUP_OPS = 25


def load_token(client: str, auth: Spec | None) -> Any:
    """The client's own SecretKey for ``auth`` (kid, pem path), or None without auth.

    Raises LookupError when the client has no SecretKey yet.
    """
    if auth is None:
        return None
    pem = Path(auth["pem"]).read_text()
    if client == "official":
        import objectstore_client

        return objectstore_client.SecretKey(auth["kid"], pem)
    import objectstore_sync

    secret_key = getattr(objectstore_sync, "SecretKey", None)
    if secret_key is None:
        raise LookupError("objectstore_sync.SecretKey is not importable yet")
    return secret_key(auth["kid"], pem)


# ------------------------------------------------------------------ sessions


def sync_session(client: str, url: str, token: Any = None) -> Any:
    """A session of the sync client ``client`` ("sync" or "official")."""
    if client == "official":
        import objectstore_client

        official = objectstore_client.Client(url, token=token)
        return official.session(objectstore_client.Usecase(USECASE), org=1)
    import objectstore_sync

    ours = objectstore_sync.Client(url, token=token)
    return ours.session(objectstore_sync.Usecase(USECASE), org=1)


def sync_ops(client: str, session: Any, payload: bytes) -> dict[str, SyncOp]:
    if client == "official":

        def get(key: str) -> object:
            return session.get(key).payload.read()
    else:

        def get(key: str) -> object:
            with session.get(key) as response:
                return response.read()

    return {
        "put": lambda key: session.put(payload, key=key),
        "get": get,
        "head": session.head,
        "delete": session.delete,
    }


def async_ops(session: Any, payload: bytes) -> dict[str, AsyncOp]:
    """The four operations of an AsyncSession (typed Any: the signature is in flux)."""

    async def get(key: str) -> object:
        async with await session.get(key) as response:
            return await response.aread()

    async def put(key: str) -> object:
        return await session.put(payload, key=key)

    return {"put": put, "get": get, "head": session.head, "delete": session.delete}


# ---------------------------------------------------------- small operations


def _timed(
    samples: dict[str, dict[str, list[float]]], op: str, n: int, wall: float, cpu: float
) -> None:
    samples[op]["ops_per_s"].append(n / wall)
    samples[op]["cpu_us"].append(cpu / n * 1e6)


def small(spec: Spec) -> Spec:
    """1 KiB put/get/head/delete, one at a time: ops/s and client CPU µs per op."""
    client, url, n, repeats = spec["client"], spec["url"], spec["n"], spec["repeats"]
    try:
        token = load_token(client, spec.get("auth"))
    except LookupError as exc:
        return {"unavailable": str(exc)}
    payload = json_like(KIB)
    prefix = f"small-{client}-{'auth' if token is not None else 'anon'}-"
    keys = [f"{prefix}{i}" for i in range(n)]
    samples: dict[str, dict[str, list[float]]] = {op: {"ops_per_s": [], "cpu_us": []} for op in OPS}

    if client == "async":
        asyncio.run(_small_async(url, token, payload, keys, repeats, samples))
    else:
        session = sync_session(client, url, token)
        ops = sync_ops(client, session, payload)
        for i in range(WARMUP_OPS):  # connections, caches, lazy imports
            for op in OPS:
                result = ops[op](f"{prefix}warm{i}")
                if op == "get" and result != payload:
                    raise SystemExit(f"{client}: get returned wrong bytes")
        for _ in range(repeats):
            for op in OPS:
                fn = ops[op]
                cpu = time.process_time()
                wall = time.perf_counter()
                for key in keys:
                    fn(key)
                wall = time.perf_counter() - wall
                cpu = time.process_time() - cpu
                _timed(samples, op, n, wall, cpu)
    return {
        op: {metric: median(values) for metric, values in by_metric.items()}
        | {"runs": len(by_metric["cpu_us"]), "samples": by_metric}
        for op, by_metric in samples.items()
    }


async def _small_async(
    url: str,
    token: Any,
    payload: bytes,
    keys: list[str],
    repeats: int,
    samples: dict[str, dict[str, list[float]]],
) -> None:
    import objectstore_async

    async with objectstore_async.AsyncClient(url, token=token) as client:
        session = client.session(objectstore_async.Usecase(USECASE), org=1)
        ops = async_ops(session, payload)
        for i in range(WARMUP_OPS):
            for op in OPS:
                result = await ops[op](f"small-async-warm{i}")
                if op == "get" and result != payload:
                    raise SystemExit("async: get returned wrong bytes")
        for _ in range(repeats):
            for op in OPS:
                fn = ops[op]
                cpu = time.process_time()
                wall = time.perf_counter()
                for key in keys:
                    await fn(key)
                wall = time.perf_counter() - wall
                cpu = time.process_time() - cpu
                _timed(samples, op, len(keys), wall, cpu)


# ------------------------------------------------------------------ transfers


def transfer(spec: Spec) -> Spec:
    """Upload or download one large object: seconds per run, client CPU, peak RSS.

    Uploads send ``spec["path"]`` as bytes held in memory (``mode="bytes"``) or
    as an open binary file streamed by the client (``mode="file"``).
    Downloads stream the body in 1 MiB pieces and count them; with
    ``verify`` a first, untimed download is checked against the SHA-256.
    ``warmup`` untimed runs precede the ``repeats`` timed ones.
    """
    if spec["client"] == "async":
        return asyncio.run(_transfer_async(spec))
    client, url, key, size = spec["client"], spec["url"], spec["key"], spec["size"]
    session = sync_session(client, url)
    ops = sync_ops(client, session, b"warm-up")
    for op in OPS:  # opens and keeps the connection
        ops[op](f"{key}-warm")
    payload = Path(spec["path"]).read_bytes() if spec["mode"] == "bytes" else None
    baseline = peak_rss_kib()
    if spec["direction"] == "download" and spec.get("verify"):
        _check(_download_sync(client, session, key, hashlib.sha256()), spec)

    def once() -> None:
        if spec["direction"] == "upload":
            if payload is not None:
                session.put(payload, key=key)
            else:
                with open(spec["path"], "rb") as source:
                    session.put(source, key=key)
        elif (received := _download_sync(client, session, key, None)[0]) != size:
            raise SystemExit(f"{client}: downloaded {received} of {size} bytes")

    for _ in range(spec.get("warmup", 0)):
        once()
    seconds, cpu = [], []
    for _ in range(spec["repeats"]):
        # process_time() can take a while on some VMs: keep it outside the wall clock.
        started = time.process_time()
        wall = time.perf_counter()
        once()
        seconds.append(time.perf_counter() - wall)
        cpu.append(time.process_time() - started)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_kib": peak_rss_kib(),
        "baseline_rss_kib": baseline,
    }


def _download_sync(client: str, session: Any, key: str, digest: Any) -> tuple[int, str]:
    received = 0
    if client == "official":
        payload = session.get(key).payload
        while chunk := payload.read(CHUNK):
            received += len(chunk)
            if digest is not None:
                digest.update(chunk)
        payload.close()
    else:
        with session.get(key) as response:
            for chunk in response.iter_bytes():
                received += len(chunk)
                if digest is not None:
                    digest.update(chunk)
    return received, digest.hexdigest() if digest is not None else ""


def _check(result: tuple[int, str], spec: Spec) -> None:
    received, digest = result
    if received != spec["size"] or digest != spec["sha256"]:
        raise SystemExit(
            f"{spec['client']}: downloaded {received} bytes with SHA-256 {digest}, "
            f"expected {spec['size']} bytes with {spec['sha256']}"
        )


async def _transfer_async(spec: Spec) -> Spec:
    import objectstore_async

    key, size = spec["key"], spec["size"]
    async with objectstore_async.AsyncClient(spec["url"]) as client:
        session = client.session(objectstore_async.Usecase(USECASE), org=1)
        ops = async_ops(session, b"warm-up")
        for op in OPS:
            await ops[op](f"{key}-warm")
        payload = Path(spec["path"]).read_bytes() if spec["mode"] == "bytes" else None
        baseline = peak_rss_kib()

        async def download(digest: Any) -> tuple[int, str]:
            received = 0
            response = await session.get(key)
            assert response is not None
            async with response:
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if digest is not None:
                        digest.update(chunk)
            return received, digest.hexdigest() if digest is not None else ""

        if spec["direction"] == "download" and spec.get("verify"):
            _check(await download(hashlib.sha256()), spec)

        async def once() -> None:
            if spec["direction"] == "upload":
                if payload is not None:
                    await session.put(payload, key=key)
                else:
                    with open(spec["path"], "rb") as source:
                        await session.put(source, key=key)
            elif (received := (await download(None))[0]) != size:
                raise SystemExit(f"async: downloaded {received} of {size} bytes")

        for _ in range(spec.get("warmup", 0)):
            await once()
        seconds, cpu = [], []
        for _ in range(spec["repeats"]):
            started = time.process_time()
            wall = time.perf_counter()
            await once()
            seconds.append(time.perf_counter() - wall)
            cpu.append(time.process_time() - started)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_kib": peak_rss_kib(),
        "baseline_rss_kib": baseline,
    }


# ------------------------------------------------------------ async in flight


def concurrency(spec: Spec) -> Spec:
    """1 KiB gets with one AsyncClient at each level of requests in flight."""
    return asyncio.run(_concurrency(spec))


async def _concurrency(spec: Spec) -> Spec:
    import objectstore_async

    payload = json_like(KIB)
    keys = [f"inflight-{i}" for i in range(100)]
    results: Spec = {}
    async with objectstore_async.AsyncClient(spec["url"]) as client:
        session = client.session(objectstore_async.Usecase(USECASE), org=1)
        for key in keys:
            await session.put(payload, key=key)

        async def run(level: int, total: int) -> tuple[float, float]:
            issued = 0

            async def worker() -> None:
                nonlocal issued
                while issued < total:
                    key = keys[issued % len(keys)]
                    issued += 1
                    response = await session.get(key)
                    assert response is not None
                    async with response:
                        if len(await response.aread()) != KIB:
                            raise SystemExit("async: get returned wrong bytes")

            cpu = time.process_time()
            wall = time.perf_counter()
            async with asyncio.TaskGroup() as group:
                for _ in range(level):
                    group.create_task(worker())
            wall = time.perf_counter() - wall
            return wall, time.process_time() - cpu

        for level in spec["levels"]:
            total = max(spec["ops"], level)  # every task issues at least one get
            await run(level, level)  # warm-up: one get per task fills the pool
            rates, cpus = [], []
            for _ in range(spec["repeats"]):
                wall, cpu = await run(level, total)
                rates.append(total / wall)
                cpus.append(cpu / total * 1e6)
            results[str(level)] = {
                "ops_per_s": median(rates),
                "cpu_us": median(cpus),
                "ops": total,
                "runs": len(rates),
            }
        results["max_connections"] = client.config.max_connections
    return results


# -------------------------------------------------------------- machine limits


def zstd_speed(spec: Spec) -> Spec:
    """Single-core zstd level 3 speed on the payload, chunked as the clients chunk it.

    Compression: the payload (in memory, or read from the file in 1 MiB
    pieces for ``mode="file"``) through one streaming compressor, 1 MiB per
    call. Decompression: the resulting stream read back 1 MiB at a time
    through a stream reader; also for frames with a content checksum, as
    this client writes them. Speeds count payload bytes.
    """
    path, size, mode = Path(spec["path"]), spec["size"], spec["mode"]
    payload = path.read_bytes() if mode == "bytes" else None
    compress, decompress = [], []
    compressed = b""
    for _ in range(spec["repeats"]):
        started = time.perf_counter()
        parts = _compress(path, payload, checksum=False)
        compress.append(size / (time.perf_counter() - started))
        compressed = b"".join(parts)
        del parts
        decompress.append(_decode_speed(io.BytesIO(compressed), size))
    # The same data as this client uploads it, with a content checksum to verify.
    checked = b"".join(_compress(path, payload, checksum=True))
    decompress_checked = [_decode_speed(io.BytesIO(checked), size) for _ in range(spec["repeats"])]
    del checked
    return {
        "compress_bytes_per_s": compress,
        "decompress_bytes_per_s": decompress,
        "decompress_checksum_bytes_per_s": decompress_checked,
        "received_bytes_per_s": _received_and_decompressed(
            compressed, size, spec["repeats"], path.parent
        ),
        "ratio": size / max(1, len(compressed)),
        "runs": len(compress),
    }


def _decode_speed(source: IO[bytes], size: int) -> float:
    """Payload bytes per second decoding ``source`` with the fastest single-core decode
    python-zstandard offers: libzstd writes straight into each 1 MiB result (a
    decompressobj adds a copy per call)."""
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(
        source, read_size=CHUNK, read_across_frames=True
    )
    produced = 0
    started = time.perf_counter()
    while block := reader.read(CHUNK):
        produced += len(block)
    elapsed = time.perf_counter() - started
    if produced != size:
        raise SystemExit(f"zstd decoded {produced} of {size} bytes")
    return size / elapsed


def _compress(path: Path, payload: bytes | None, *, checksum: bool) -> list[bytes]:
    """The payload (in memory, or read from ``path`` in 1 MiB pieces) through one
    streaming level-3 compressor, 1 MiB per call: the compressed parts."""
    import zstandard

    compressor = zstandard.ZstdCompressor(level=3, write_checksum=checksum).compressobj()
    parts = []
    if payload is not None:
        view = memoryview(payload)
        for start in range(0, len(view), CHUNK):
            parts.append(compressor.compress(view[start : start + CHUNK]))
    else:
        with path.open("rb") as source:
            while block := source.read(CHUNK):
                parts.append(compressor.compress(block))
    parts.append(compressor.flush())
    return parts


class _SocketSource:
    """A socket as the stream reader's source: each read is one recv (no extra copy)."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn

    def read(self, size: int) -> bytes:
        return self._conn.recv(size)


def _received_and_decompressed(
    compressed: bytes, size: int, repeats: int, scratch: Path
) -> list[float]:
    """The fastest single-core download: receive ``compressed`` over loopback TCP from a
    sender process and decompress it as it arrives (recv, then libzstd straight into
    each 1 MiB result). Counts payload bytes per second."""
    import tempfile

    speeds = []
    with tempfile.NamedTemporaryFile(prefix="bench-zst-", dir=scratch) as stored:
        stored.write(compressed)
        stored.flush()
        for _ in range(repeats):
            with _from_sender({"case": "file-send", "path": stored.name}) as conn:
                speeds.append(_decode_speed(cast("IO[bytes]", _SocketSource(conn)), size))
    return speeds


_LOOPBACK_BUFFER = 4 * MIB


@contextlib.contextmanager
def _from_sender(spec: Spec) -> Iterator[socket.socket]:
    """A loopback connection from a child worker running the sending case ``spec``."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        spec = spec | {"port": server.getsockname()[1]}
        sender = subprocess.Popen([sys.executable, __file__, json.dumps(spec)])
        try:
            server.settimeout(30)
            conn, _ = server.accept()
            with conn:
                yield conn
        finally:
            sender.wait(timeout=60)


def loopback(spec: Spec) -> Spec:
    """TCP throughput over 127.0.0.1 between this process and a sender child."""
    total, speeds = spec["bytes"], []
    for _ in range(spec["repeats"]):
        with _from_sender({"case": "loopback-send", "bytes": total}) as conn:
            buffer = bytearray(_LOOPBACK_BUFFER)
            received = 0
            started = time.perf_counter()
            while received < total:
                n = conn.recv_into(buffer)
                if not n:
                    raise SystemExit(f"loopback sender stopped after {received} bytes")
                received += n
            speeds.append(total / (time.perf_counter() - started))
    return {"bytes_per_s": median(speeds), "runs": len(speeds)}


def loopback_send(spec: Spec) -> Spec:
    block = memoryview(bytes(_LOOPBACK_BUFFER))
    remaining = spec["bytes"]
    with socket.create_connection(("127.0.0.1", spec["port"])) as conn:
        while remaining > 0:
            n = min(remaining, len(block))
            conn.sendall(block[:n])
            remaining -= n
    return {}


def file_send(spec: Spec) -> Spec:
    """Helper of the socket-fed decompression limit: send a file's bytes, then close."""
    data = memoryview(Path(spec["path"]).read_bytes())
    with socket.create_connection(("127.0.0.1", spec["port"])) as conn:
        for start in range(0, len(data), _LOOPBACK_BUFFER):
            conn.sendall(data[start : start + _LOOPBACK_BUFFER])
    return {}


CASES: dict[str, Callable[[Spec], Spec]] = {
    "small": small,
    "transfer": transfer,
    "concurrency": concurrency,
    "zstd": zstd_speed,
    "loopback": loopback,
    "loopback-send": loopback_send,
    "file-send": file_send,
}


def main() -> int:
    spec = json.loads(sys.argv[1])
    result = CASES[spec["case"]](spec)
    if spec["case"] not in ("loopback-send", "file-send"):
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
