"""Small-operation client CPU of this tree against an earlier git revision, in one run.

    python benchmarks/small_ops_vs_revision.py REVISION [--rounds 5] [--ops 500]

Checks ``REVISION`` out into a temporary directory (``git worktree``, removed
afterwards), starts one emulator (``python -m objectstore_sync serve`` from
this tree) and runs the ``small`` case of ``_worker.py`` (1 KiB put, get,
head, delete, one at a time) for both twins, alternating the revision and
this tree round by round, each run in a fresh process whose ``PYTHONPATH``
puts the tree under test first. Prints the median client CPU per operation
(µs) of each, and after/before ratios: a ratio above 1 means this tree costs
more CPU than the revision.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _harness import BENCH_DIR, Emulator

ROOT = BENCH_DIR.parent
WORKER = BENCH_DIR / "_worker.py"
OPS = ("put", "get", "head", "delete")
TWINS = ("sync", "async")
_PROBE = (
    "import objectstore_core, objectstore_sync, objectstore_async; print(objectstore_core.__file__)"
)


def _run(tree: Path, spec: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(BENCH_DIR)]))
    done = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(spec)],
        cwd=tree,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"worker failed on {tree}: {(done.stderr or done.stdout).strip()[-400:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _loads_from(tree: Path) -> bool:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(BENCH_DIR)]))
    found = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=tree,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    return Path(found).resolve().is_relative_to(tree.resolve())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare against (the 'before')")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tree and twin")
    parser.add_argument("--ops", type=int, default=500, help="operations of each kind per run")
    args = parser.parse_args()
    if args.rounds < 1 or args.ops < 1:
        parser.error("--rounds and --ops must be at least 1")

    with tempfile.TemporaryDirectory(prefix="objectstore-bench-") as scratch:
        before = Path(scratch) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(before),
             args.revision],
            check=True,
        )  # fmt: skip
        try:
            trees = {"before": before, "after": ROOT}
            for name, tree in trees.items():
                if not _loads_from(tree):
                    raise SystemExit(f"the {name} tree's packages do not load first from {tree}")
            cpu: dict[tuple[str, str, str], list[float]] = {}
            with Emulator() as emulator:
                print(f"emulator {emulator.url}; {args.rounds} rounds of {args.ops} ops per kind")
                for round_ in range(args.rounds):
                    order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                    for twin in TWINS:
                        for name in order:
                            spec = {"case": "small", "client": twin, "url": emulator.url,
                                    "n": args.ops, "repeats": 1, "auth": None}  # fmt: skip
                            result = _run(trees[name], spec)
                            for op in OPS:
                                cpu.setdefault((twin, name, op), []).append(result[op]["cpu_us"])
                    print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False
            )

    print(f"\nclient CPU per 1 KiB operation, µs (median of {args.rounds} runs)")
    print(f"{'twin':<6} {'op':<7} {'before':>8} {'after':>8} {'after/before':>13}")
    for twin in TWINS:
        for op in OPS:
            old = statistics.median(cpu[twin, "before", op])
            new = statistics.median(cpu[twin, "after", op])
            print(f"{twin:<6} {op:<7} {old:>8.1f} {new:>8.1f} {new / old:>12.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
