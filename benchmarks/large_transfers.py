"""Managed transfers against plain put/get of the same file, both twins, in one run.

Starts ``objectstore serve`` with a data directory in a separate process
(durable, as ``--data-dir`` is by default; ``--no-fsync`` to skip the
flushes), writes a compressible (JSON-like) source file, and for each twin,
in a worker process of its own (so peak RSS is that twin's): a plain
``put`` of the path and ``session.upload(path, concurrency=4)``, taken in
turns ``--repeat`` times (medians printed, with the client's and the
emulator's CPU seconds per transfer), then a streamed ``get`` and
``session.download(key, dest)``, each checked by SHA-256. Also measures, in
the same run, zstd level 3 on one core and on all cores at once (16 MiB
parts side by side, one per thread: what the cores give to compression
alone, with nothing else to do).

Targets (issue 14): managed upload at least as fast as the plain put and at
least twice the single-core zstd speed; client peak RSS under 200 MiB.

    python benchmarks/large_transfers.py [--size-mib 2048] [--random] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
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


def _zstd_speeds(source: Path, sample: int = 256 * MIB) -> tuple[float, float]:
    """MiB/s of zstd level 3 over the first ``sample`` bytes: on one core, and in 16 MiB
    parts compressed side by side by one thread per core."""
    with source.open("rb") as file:
        data = file.read(sample)
    start = time.perf_counter()
    zstandard.ZstdCompressor(level=3, threads=0).compress(data)
    one = len(data) / MIB / (time.perf_counter() - start)
    view = memoryview(data)
    parts = [view[first : first + 16 * MIB] for first in range(0, len(data), 16 * MIB)]
    start = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(lambda part: zstandard.ZstdCompressor(level=3).compress(part), parts))
    every = len(data) / MIB / (time.perf_counter() - start)
    return one, every


def _cpu_seconds(pid: int | None = None) -> float:
    """User and system CPU seconds of this process (all its threads), or of ``pid``."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Timer:
    """Wall time and client/server CPU seconds of each run of an operation."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.runs: dict[str, list[tuple[float, float, float]]] = {}

    def start(self) -> tuple[float, float, float]:
        return time.perf_counter(), _cpu_seconds(), _cpu_seconds(self.server_pid)

    def stop(self, name: str, began: tuple[float, float, float]) -> None:
        wall, client, server = (b - a for a, b in zip(began, self.start(), strict=True))
        self.runs.setdefault(name, []).append((wall, client, server))

    def medians(self, size: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, runs in self.runs.items():
            out[name] = size / MIB / statistics.median(run[0] for run in runs)
            out[f"{name}_cpu"] = statistics.median(run[1] for run in runs)
            out[f"{name}_server_cpu"] = statistics.median(run[2] for run in runs)
        return out


class _Emulator(Emulator):
    """The harness's emulator, optionally started with ``--no-fsync``."""

    def __init__(self, data_dir: Path, *, fsync: bool) -> None:
        super().__init__(data_dir=data_dir)
        if not fsync:
            self._command.append("--no-fsync")


def _worker(
    twin: str, url: str, server_pid: int, source: Path, work: Path, repeat: int
) -> dict[str, float | bool]:
    size = source.stat().st_size
    expected = _sha256(source)
    timer = _Timer(server_pid)
    digest = hashlib.sha256()
    # put and upload in turns, each first in every other round
    order = [("put", "upload") if n % 2 == 0 else ("upload", "put") for n in range(repeat)]
    if twin == "sync":
        from objectstore_sync import Client, Usecase

        with Client(url, timeout=120) as client:
            session = client.session(Usecase("benchmark"), org=1)
            for names in order:
                for name in names:
                    began = timer.start()
                    if name == "put":
                        session.put(source, key="plain")
                    else:
                        session.upload(source, key="managed", concurrency=4)
                    timer.stop(name, began)
            began = timer.start()
            with session.get("plain") as response:  # type: ignore[union-attr]
                for chunk in response.iter_bytes():
                    digest.update(chunk)
            timer.stop("get", began)
            began = timer.start()
            session.download("managed", work / f"{twin}.out")
            timer.stop("download", began)
    else:
        import anyio

        from objectstore_async import AsyncClient, Usecase

        async def run() -> None:
            async with AsyncClient(url, timeout=120) as client:
                session = client.session(Usecase("benchmark"), org=1)
                for names in order:
                    for name in names:
                        began = timer.start()
                        if name == "put":
                            await session.put(source, key="plain")
                        else:
                            await session.upload(source, key="managed", concurrency=4)
                        timer.stop(name, began)
                began = timer.start()
                response = await session.get("plain")
                assert response is not None
                async with response:
                    async for chunk in response.aiter_bytes():
                        digest.update(chunk)
                timer.stop("get", began)
                began = timer.start()
                await session.download("managed", work / f"{twin}.out")
                timer.stop("download", began)

        anyio.run(run)
    ok = digest.hexdigest() == expected and _sha256(work / f"{twin}.out") == expected
    result: dict[str, float | bool] = dict(timer.medians(size))
    result["ok"] = ok
    result["rss_mib"] = peak_rss_kib() / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--random", action="store_true", help="incompressible data")
    parser.add_argument("--repeat", type=int, default=3, help="puts and uploads per twin")
    parser.add_argument("--no-fsync", action="store_true", help="the emulator skips flushes")
    parser.add_argument("--worker", nargs=6, metavar=("TWIN", "URL", "PID", "SRC", "WORK", "N"))
    args = parser.parse_args()
    if args.worker:
        twin, url, pid, source, work, repeat = args.worker
        row = _worker(twin, url, int(pid), Path(source), Path(work), int(repeat))
        print(json.dumps(row))
        return 0
    kind = "random" if args.random else "json"
    with scratch_dir() as work:
        source = work / "source.bin"
        print(f"writing a {args.size_mib} MiB {kind} source ...", flush=True)
        write_payload(source, args.size_mib * MIB, kind)
        one_core, all_cores = _zstd_speeds(source)
        results = {}
        with _Emulator(work / "data", fsync=not args.no_fsync) as emulator:
            for twin in ("sync", "asyncio"):
                command = [sys.executable, __file__, "--worker", twin, emulator.url]
                command += [str(emulator.pid), str(source), str(work), str(args.repeat)]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                results[twin] = json.loads(out.strip().splitlines()[-1])
        one_core_again, all_cores_again = _zstd_speeds(source)
    one_core = statistics.mean((one_core, one_core_again))
    all_cores = statistics.mean((all_cores, all_cores_again))
    durable = "without flushes" if args.no_fsync else "durable"
    print(
        f"data: {args.size_mib} MiB {kind}; emulator {durable}; zstd level 3: {one_core:.0f} MiB/s "
        f"on one core, {all_cores:.0f} MiB/s on all {os.cpu_count()} "
        f"({all_cores / one_core:.2f}x; before and after the transfers)"
    )
    print(f"put and upload: medians of {args.repeat} in turns")
    print(f"{'twin':8} {'put':>8} {'upload':>8} {'get':>8} {'download':>9} {'RSS MiB':>8}  sha256")
    failed = False
    for twin, row in results.items():
        print(
            f"{twin:8} {row['put']:8.0f} {row['upload']:8.0f} {row['get']:8.0f} "
            f"{row['download']:9.0f} {row['rss_mib']:8.0f}  {'match' if row['ok'] else 'MISMATCH'}"
        )
        print(
            f"         CPU s (client / emulator): put {row['put_cpu']:.2f} / "
            f"{row['put_server_cpu']:.2f}, upload {row['upload_cpu']:.2f} / "
            f"{row['upload_server_cpu']:.2f}"
        )
        failed = failed or not row["ok"]
        upload = float(row["upload"])
        as_fast = "met" if upload >= float(row["put"]) else "NOT met"
        print(
            f"         targets: upload >= put {as_fast}; "
            f"upload >= 2x one-core zstd {'met' if upload >= 2 * one_core else 'NOT met'}; "
            f"RSS < 200 MiB {'met' if float(row['rss_mib']) < 200 else 'NOT met'}"
        )
    print("(MiB/s of source bytes; each twin in a process of its own)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
