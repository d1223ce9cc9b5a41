"""Batches against single requests: 1 KiB puts, then gets, then deletes, both twins, one run.

    python benchmarks/batch.py [--count 10000]

Starts one emulator (``python -m objectstore_sync serve`` on 127.0.0.1) and,
for each twin in a fresh process (so peak RSS is the client's own), runs
``--count`` puts of 1 KiB, then as many gets, then as many deletes, once
through ``session.many()`` (one ``send()`` per phase, default concurrency)
and once as single requests one after another. Prints operations per
second of each phase, the batch/single ratio, the client's CPU per
operation (what is left of the wall time is the emulator's and the
network's), and the client's peak RSS.
Target of the batch issue: a ratio of at least 10 in every phase, peak RSS
under 100 MiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from _harness import BENCH_DIR, Emulator, peak_rss_kib

PHASES = ("put", "get", "delete")
TWINS = ("sync", "async")
TARGET_RATIO = 10.0
TARGET_RSS_MIB = 100.0


def _payload(i: int) -> bytes:
    return (f"{i:08d}" * 128).encode()  # 1 KiB, distinct per object


def _sync_worker(url: str, count: int) -> dict[str, Any]:
    from objectstore_sync import Client, Usecase

    out: dict[str, Any] = {}
    with Client(url) as client:
        for mode in ("single", "batch"):
            session = client.session(Usecase("bench"), org=1, run=mode)
            for phase in PHASES:
                start, cpu = time.perf_counter(), time.process_time()
                if mode == "batch":
                    batch = session.many()
                    for i in range(count):
                        _add(batch, phase, i)
                    results = batch.send()
                    results.raise_for_failures()
                    if phase == "get":
                        for result in results:
                            result.value.read()
                else:
                    for i in range(count):
                        _single(session, phase, i)
                out[f"{mode}-{phase}"] = count / (time.perf_counter() - start)
                out[f"{mode}-{phase}-cpu"] = (time.process_time() - cpu) / count * 1e6
    return out


def _add(batch: Any, phase: str, i: int) -> None:
    if phase == "put":
        batch.put(_payload(i), key=f"o{i}")
    elif phase == "get":
        batch.get(f"o{i}")
    else:
        batch.delete(f"o{i}")


def _single(session: Any, phase: str, i: int) -> None:
    if phase == "put":
        session.put(_payload(i), key=f"o{i}")
    elif phase == "get":
        session.get(f"o{i}").read()
    else:
        session.delete(f"o{i}")


def _async_worker(url: str, count: int) -> dict[str, Any]:
    import anyio

    from objectstore_async import AsyncClient, Usecase

    out: dict[str, Any] = {}

    async def main() -> None:
        async with AsyncClient(url) as client:
            for mode in ("single", "batch"):
                session = client.session(Usecase("bench"), org=1, run=mode)
                for phase in PHASES:
                    start, cpu = time.perf_counter(), time.process_time()
                    if mode == "batch":
                        batch = session.many()
                        for i in range(count):
                            _add(batch, phase, i)
                        results = await batch.send()
                        results.raise_for_failures()
                        if phase == "get":
                            for result in results:
                                await result.value.aread()
                    else:
                        for i in range(count):
                            if phase == "put":
                                await session.put(_payload(i), key=f"o{i}")
                            elif phase == "get":
                                response = await session.get(f"o{i}")
                                assert response is not None
                                await response.aread()
                            else:
                                await session.delete(f"o{i}")
                    out[f"{mode}-{phase}"] = count / (time.perf_counter() - start)
                    out[f"{mode}-{phase}-cpu"] = (time.process_time() - cpu) / count * 1e6

    anyio.run(main)
    return out


def _worker(twin: str, url: str, count: int) -> None:
    figures = _sync_worker(url, count) if twin == "sync" else _async_worker(url, count)
    figures["peak_rss_mib"] = peak_rss_kib() / 1024
    print(json.dumps(figures))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--worker", nargs=2, metavar=("TWIN", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], args.worker[1], args.count)
        return 0
    failed = False
    with Emulator() as server:
        print(f"{args.count} operations of 1 KiB per phase, emulator on {server.url}")
        print(
            f"{'twin':6} {'phase':7} {'batch ops/s':>12} {'single ops/s':>13} {'ratio':>7} "
            f"{'client CPU µs/op batch':>23} {'single':>7}"
        )
        for twin in TWINS:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--count",
                    str(args.count),
                    "--worker",
                    twin,
                    server.url,
                ],
                capture_output=True,
                text=True,
                cwd=BENCH_DIR,
                timeout=1800,
                check=False,
            )
            if done.returncode != 0:
                print(f"{twin}: worker failed: {done.stderr.strip()[-500:]}")
                failed = True
                continue
            figures = json.loads(done.stdout)
            for phase in PHASES:
                batch, single = figures[f"batch-{phase}"], figures[f"single-{phase}"]
                ratio = batch / single
                failed |= ratio < TARGET_RATIO
                cpu_batch, cpu_single = (
                    figures[f"batch-{phase}-cpu"],
                    figures[f"single-{phase}-cpu"],
                )
                print(
                    f"{twin:6} {phase:7} {batch:12.0f} {single:13.0f} {ratio:7.1f} "
                    f"{cpu_batch:23.1f} {cpu_single:7.1f}"
                )
            rss = figures["peak_rss_mib"]
            failed |= rss >= TARGET_RSS_MIB
            print(f"{twin:6} peak RSS {rss:.1f} MiB")
    print(
        f"targets (ratio >= {TARGET_RATIO:g} in every phase, RSS < {TARGET_RSS_MIB:g} MiB): "
        + ("missed" if failed else "met")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
