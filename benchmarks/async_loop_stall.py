"""Longest event-loop stall while the async client moves a 64 MiB compressible object.

A ticker task asks to wake every millisecond and records how late it wakes;
meanwhile the client uploads (compressing on the fly) and downloads
(decompressing on the fly) a 64 MiB JSON-like object against the emulator
running in a separate process on loopback. Prints the longest stall per
phase. Target: under 50 ms.

    python benchmarks/async_loop_stall.py [--size-mib 64] [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import free_port, wait_until_up

from objectstore_async import AsyncClient, Usecase

CHUNK = 1024 * 1024


def json_like(size: int) -> bytes:
    lines = []
    total = 0
    i = 0
    while total < size:
        line = f'{{"id": {i}, "user": "u{i % 977}", "status": "ok", "ms": {i % 313}}}\n'.encode()
        lines.append(line)
        total += len(line)
        i += 1
    return b"".join(lines)[:size]


async def measure(work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """Run ``work`` beside a 1 ms ticker; return (seconds taken, longest stall in ms)."""
    worst = 0.0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await anyio.sleep(0.001)
            late = time.perf_counter() - before - 0.001
            worst = max(worst, late)

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        await work()
        done.set()
    return time.perf_counter() - start, worst * 1000


async def run(url: str, size: int) -> None:
    data = json_like(size)
    expected = hashlib.sha256(data).hexdigest()

    async def chunks() -> AsyncIterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            yield bytes(view[start : start + CHUNK])

    async with AsyncClient(url, timeout=60) as client:
        session = client.session(Usecase("benchmark"), org=1)
        await session.put(b"warm-up", key="warm")

        async def upload() -> None:
            await session.put(chunks(), key="stall")

        async def download() -> None:
            digest = hashlib.sha256()
            response = await session.get("stall")
            assert response is not None
            async with response:
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
            assert digest.hexdigest() == expected, "downloaded bytes differ"

        up_time, up_stall = await measure(upload)
        down_time, down_stall = await measure(download)
    mib = size / CHUNK
    print(f"object:    {mib:.0f} MiB JSON-like, zstd on the fly")
    print(
        f"upload:    {up_time:.2f} s ({mib / up_time:.0f} MiB/s), longest stall {up_stall:.1f} ms"
    )
    print(
        f"download:  {down_time:.2f} s ({mib / down_time:.0f} MiB/s), "
        f"longest stall {down_stall:.1f} ms"
    )
    worst = max(up_stall, down_stall)
    print(f"target:    longest stall < 50 ms -> {'met' if worst < 50 else 'NOT met'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "objectstore_sync", "serve", "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(url, server)
        anyio.run(run, url, args.size_mib * CHUNK, backend=args.backend)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
