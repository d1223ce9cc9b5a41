"""Managed transfers against plain put/get of the same file, both twins, in one run.

Starts ``objectstore serve`` with a data directory in a separate process,
writes a compressible (JSON-like) source file, and for each twin, in a
worker process of its own (so peak RSS is that twin's): a plain ``put`` of
the path and a streamed ``get``, then ``session.upload(path, concurrency=4)``
and ``session.download(key, dest)``, each checked by SHA-256. Also measures
single-core zstd compression (level 3) of the same data in the same run.

Targets (issue 14): managed upload at least as fast as the plain put and at
least twice the single-core zstd speed; client peak RSS under 200 MiB.

    python benchmarks/large_transfers.py [--size-mib 2048] [--random]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import zstandard
from _harness import MIB, Emulator, peak_rss_kib, scratch_dir, write_payload

__all__ = ["main"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def _single_core_zstd(source: Path, sample: int = 256 * MIB) -> float:
    """MiB/s of zstd level 3 on one core, over the first ``sample`` bytes."""
    with source.open("rb") as file:
        data = file.read(sample)
    compressor = zstandard.ZstdCompressor(level=3, threads=0)
    start = time.perf_counter()
    compressor.compress(data)
    return len(data) / MIB / (time.perf_counter() - start)


def _worker(twin: str, url: str, source: Path, work: Path) -> dict[str, float | bool]:
    size = source.stat().st_size
    expected = _sha256(source)
    times: dict[str, float] = {}
    if twin == "sync":
        from objectstore_sync import Client, Usecase

        with Client(url, timeout=120) as client:
            session = client.session(Usecase("benchmark"), org=1)
            start = time.perf_counter()
            plain = session.put(source, key="plain")
            times["put"] = time.perf_counter() - start
            digest = hashlib.sha256()
            start = time.perf_counter()
            with session.get(plain) as response:  # type: ignore[union-attr]
                for chunk in response.iter_bytes():
                    digest.update(chunk)
            times["get"] = time.perf_counter() - start
            start = time.perf_counter()
            managed = session.upload(source, key="managed", concurrency=4)
            times["upload"] = time.perf_counter() - start
            start = time.perf_counter()
            session.download(managed, work / f"{twin}.out")
            times["download"] = time.perf_counter() - start
    else:
        import anyio

        from objectstore_async import AsyncClient, Usecase

        async def run() -> str:
            async with AsyncClient(url, timeout=120) as client:
                session = client.session(Usecase("benchmark"), org=1)
                start = time.perf_counter()
                plain = await session.put(source, key="plain")
                times["put"] = time.perf_counter() - start
                start = time.perf_counter()
                response = await session.get(plain)
                assert response is not None
                async with response:
                    async for chunk in response.aiter_bytes():
                        digest.update(chunk)
                times["get"] = time.perf_counter() - start
                start = time.perf_counter()
                managed = await session.upload(source, key="managed", concurrency=4)
                times["upload"] = time.perf_counter() - start
                start = time.perf_counter()
                await session.download(managed, work / f"{twin}.out")
                times["download"] = time.perf_counter() - start
                return managed

        digest = hashlib.sha256()
        anyio.run(run)
    ok = digest.hexdigest() == expected and _sha256(work / f"{twin}.out") == expected
    result: dict[str, float | bool] = {k: size / MIB / v for k, v in times.items()}
    result["ok"] = ok
    result["rss_mib"] = peak_rss_kib() / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--random", action="store_true", help="incompressible data")
    parser.add_argument("--worker", nargs=4, metavar=("TWIN", "URL", "SOURCE", "WORK"))
    args = parser.parse_args()
    if args.worker:
        twin, url, source, work = args.worker
        print(json.dumps(_worker(twin, url, Path(source), Path(work))))
        return 0
    kind = "random" if args.random else "json"
    with scratch_dir() as work:
        source = work / "source.bin"
        print(f"writing a {args.size_mib} MiB {kind} source ...", flush=True)
        write_payload(source, args.size_mib * MIB, kind)
        zstd_speed = _single_core_zstd(source)
        results = {}
        with Emulator(data_dir=work / "data") as emulator:
            for twin in ("sync", "asyncio"):
                command = [sys.executable, __file__, "--worker", twin, emulator.url]
                out = subprocess.run(
                    [*command, str(source), str(work)], check=True, capture_output=True, text=True
                ).stdout
                results[twin] = json.loads(out.strip().splitlines()[-1])
    print(f"data: {args.size_mib} MiB {kind}; zstd level 3 on one core: {zstd_speed:.0f} MiB/s")
    print(f"{'twin':8} {'put':>8} {'get':>8} {'upload':>8} {'download':>9} {'RSS MiB':>8}  sha256")
    failed = False
    for twin, row in results.items():
        print(
            f"{twin:8} {row['put']:8.0f} {row['get']:8.0f} {row['upload']:8.0f} "
            f"{row['download']:9.0f} {row['rss_mib']:8.0f}  {'match' if row['ok'] else 'MISMATCH'}"
        )
        failed = failed or not row["ok"]
        upload = float(row["upload"])
        as_fast = "met" if upload >= float(row["put"]) else "NOT met"
        print(
            f"         targets: upload >= put {as_fast}; "
            f"upload >= 2x one-core zstd {'met' if upload >= 2 * zstd_speed else 'NOT met'}; "
            f"RSS < 200 MiB {'met' if float(row['rss_mib']) < 200 else 'NOT met'}"
        )
    print("(MiB/s of source bytes; each twin in a process of its own)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
