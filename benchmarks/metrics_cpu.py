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
import json
import statistics
from typing import Any

from _harness import KIB, SMALL_OPS, SMALL_TWINS, alternating_rounds, json_like, time_small_ops

BACKENDS = ("noop", "recording")


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
    keys = [f"metrics-{twin}-{backend_name}-{i}" for i in range(n)]
    result = time_small_ops(twin, url, keys, json_like(KIB), metrics_backend=backend)
    if backend is not None and not backend.events:
        raise SystemExit("the recording backend saw no events")
    return result


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
    cpu = alternating_rounds(__file__, BACKENDS, args.rounds, args.ops)
    print(f"\nclient CPU per 1 KiB operation, µs (median of {args.rounds} runs)")
    print(f"{'twin':<6} {'op':<7} {'no-op':>8} {'recording':>10} {'recording/no-op':>16}")
    for twin in SMALL_TWINS:
        for op in SMALL_OPS:
            quiet = statistics.median(cpu[twin, "noop", op])
            loud = statistics.median(cpu[twin, "recording", op])
            print(f"{twin:<6} {op:<7} {quiet:>8.1f} {loud:>10.1f} {loud / quiet:>15.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
