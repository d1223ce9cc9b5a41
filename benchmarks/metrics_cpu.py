"""Small-operation client CPU with the default (no-op) metrics backend and a recording one.

    python benchmarks/metrics_cpu.py [--rounds 5] [--ops 500]

Starts one emulator (``python -m objectstore_sync serve``) and runs 1 KiB
put, get (read whole), head and delete, one at a time, for both twins,
each run in a fresh process: once with no ``metrics_backend`` (the no-op
default, which measures nothing) and once with a backend that appends every
event to a list (the cheapest backend that records). Backends alternate
round by round. Prints the median client CPU per operation (µs) of each and
their ratio: what recording the official client's ``storage.*`` metrics
costs per operation. (To compare the no-op cost with an earlier revision,
use ``small_ops_vs_revision.py``.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _harness import BENCH_DIR, KIB, Emulator, json_like

OPS = ("put", "get", "head", "delete")
TWINS = ("sync", "async")
BACKENDS = ("noop", "recording")
WARMUP = 25


class ListBackend:
    """Records every event in a list: the cost of the hooks, not of a metrics library."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        self.events.append((name, value, tags))

    def gauge(self, name: str, value: float, tags: Any = None) -> None:
        self.events.append((name, value, tags))

    def distribution(
        self, name: str, value: float, tags: Any = None, unit: str | None = None
    ) -> None:
        self.events.append((name, value, tags, unit))


def _child(twin: str, backend_name: str, url: str, n: int) -> dict[str, float]:
    """CPU µs per operation of ``n`` operations of each kind, in this process."""
    backend = ListBackend() if backend_name == "recording" else None
    payload = json_like(KIB)
    keys = [f"metrics-{twin}-{backend_name}-{i}" for i in range(n)]
    result: dict[str, float] = {}
    if twin == "async":
        asyncio.run(_async_child(url, backend, payload, keys, result))
    else:
        import objectstore_sync

        with objectstore_sync.Client(url, metrics_backend=backend) as client:
            session: Any = client.session(objectstore_sync.Usecase("bench"), org=1)

            def get(key: str) -> object:
                with session.get(key) as response:
                    return response.read()

            ops: dict[str, Callable[[str], object]] = {
                "put": lambda key: session.put(payload, key=key),
                "get": get,
                "head": session.head,
                "delete": session.delete,
            }
            for i in range(WARMUP):
                for op in OPS:
                    ops[op](f"warm-{i}")
            for op in OPS:
                started = time.process_time()
                for key in keys:
                    ops[op](key)
                result[op] = (time.process_time() - started) / n * 1e6
    if backend is not None and not backend.events:
        raise SystemExit("the recording backend saw no events")
    return result


async def _async_child(
    url: str, backend: Any, payload: bytes, keys: list[str], result: dict[str, float]
) -> None:
    import objectstore_async

    async with objectstore_async.AsyncClient(url, metrics_backend=backend) as client:
        session: Any = client.session(objectstore_async.Usecase("bench"), org=1)

        async def get(key: str) -> object:
            async with await session.get(key) as response:
                return await response.aread()

        async def put(key: str) -> object:
            return await session.put(payload, key=key)

        ops: dict[str, Callable[[str], Awaitable[object]]] = {
            "put": put,
            "get": get,
            "head": session.head,
            "delete": session.delete,
        }
        for i in range(WARMUP):
            for op in OPS:
                await ops[op](f"warm-{i}")
        for op in OPS:
            started = time.process_time()
            for key in keys:
                await ops[op](key)
            result[op] = (time.process_time() - started) / len(keys) * 1e6


def _run(twin: str, backend: str, url: str, n: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(BENCH_DIR.parent), str(BENCH_DIR)]))
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps([twin, backend, url, n])],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{twin}/{backend} failed: {(done.stderr or done.stdout).strip()[-400:]}")
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs per twin and backend")
    parser.add_argument("--ops", type=int, default=500, help="operations of each kind per run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        twin, backend, url, n = json.loads(args.child)
        print(json.dumps(_child(twin, backend, url, n)))
        return 0
    if args.rounds < 1 or args.ops < 1:
        parser.error("--rounds and --ops must be at least 1")
    cpu: dict[tuple[str, str, str], list[float]] = {}
    with Emulator() as emulator:
        print(f"emulator {emulator.url}; {args.rounds} rounds of {args.ops} ops per kind")
        for round_ in range(args.rounds):
            order = BACKENDS if round_ % 2 == 0 else BACKENDS[::-1]
            for twin in TWINS:
                for backend in order:
                    for op, value in _run(twin, backend, emulator.url, args.ops).items():
                        cpu.setdefault((twin, backend, op), []).append(value)
            print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
    print(f"\nclient CPU per 1 KiB operation, µs (median of {args.rounds} runs)")
    print(f"{'twin':<6} {'op':<7} {'no-op':>8} {'recording':>10} {'recording/no-op':>16}")
    for twin in TWINS:
        for op in OPS:
            quiet = statistics.median(cpu[twin, "noop", op])
            loud = statistics.median(cpu[twin, "recording", op])
            print(f"{twin:<6} {op:<7} {quiet:>8.1f} {loud:>10.1f} {loud / quiet:>15.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
