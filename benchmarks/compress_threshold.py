"""When the async twin should compress a one-shot payload in a worker thread.

A put of up to 4 MiB of bytes is compressed in one call, a ``Compress`` step
the driver performs. On the event loop that call stalls every other task for
as long as it takes; in a worker thread (``anyio.to_thread.run_sync``) the
loop stays free, but the put waits a thread round trip longer. This prints,
for JSON-like payloads of 16 KiB to 4 MiB, the median time of the step as the
driver runs it (zstd level 3 with a checksum, two libzstd workers from 1 MiB
on a machine with two cores or more), and the median round trip of a worker
thread call under asyncio and trio. Handing the work over pays once the
compression takes longer than the round trip: below that, inline is both the
faster put and the shorter stall.

    python benchmarks/compress_threshold.py [--repeats 41]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import anyio
import anyio.to_thread
import zstandard
from _harness import KIB, MIB, json_like

from objectstore_core import Compress, ZstdContexts, compress

SIZES = (16 * KIB, 32 * KIB, 64 * KIB, 128 * KIB, 256 * KIB, 512 * KIB, MIB, 2 * MIB, 4 * MIB)


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    call()  # warm: contexts, caches, lazy imports
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def round_trip(backend: str, repeats: int) -> float:
    """Median wall time of ``await anyio.to_thread.run_sync(noop)`` on ``backend``."""

    async def measure() -> float:
        await anyio.to_thread.run_sync(int)  # start the worker thread
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            await anyio.to_thread.run_sync(int)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    return anyio.run(measure, backend=backend)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=41, help="timed runs per figure")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    trips = {}
    for backend in ("asyncio", "trio"):
        try:
            trips[backend] = round_trip(backend, args.repeats * 10)
        except ImportError:  # trio is optional
            continue
    print(f"{cpus} CPUs; worker thread round trip (median of {args.repeats * 10}):")
    for backend, seconds in trips.items():
        print(f"  {backend:8} {seconds * 1e6:8.1f} µs")
    slowest_trip = max(trips.values())
    print(f"\ncompression of JSON-like payloads, as the driver runs it (median of {args.repeats}):")
    threshold = None
    for size in SIZES:
        data = json_like(size)
        step = Compress(data, size)
        seconds = median_seconds(lambda step=step: step.run(cpus), args.repeats)  # type: ignore[misc]
        ratio = seconds / slowest_trip
        label = f"{size // KIB} KiB" if size < MIB else f"{size // MIB} MiB"
        print(f"  {label:>8} {seconds * 1e6:9.1f} µs   {ratio:6.1f} x the round trip")
        if threshold is None and seconds > slowest_trip:
            threshold = size
    if threshold is not None:
        print(f"\nsmallest size compressing slower than a round trip: {threshold // KIB} KiB")
    small = json_like(KIB)
    frame = compress(small)
    contexts = ZstdContexts()
    decompressor = zstandard.ZstdDecompressor()
    rows = {
        "compress 1 KiB, fresh context": lambda: compress(small),
        "compress 1 KiB, reused context": lambda: compress(small, contexts=contexts),
        "decompress 1 KiB, fresh context": lambda: zstandard.ZstdDecompressor().decompress(frame),
        "decompress 1 KiB, reused context": lambda: decompressor.decompress(frame),
    }
    print(f"\nzstd contexts (median of {args.repeats * 100}):")
    for label, call in rows.items():
        print(f"  {label:34} {median_seconds(call, args.repeats * 100) * 1e6:6.1f} µs")


if __name__ == "__main__":
    main()
