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

With ``--calls``, prints instead the client's function calls per operation
(counted by ``cProfile`` against the in-process emulator, whose own calls
are left out): a deterministic figure, for a machine too noisy to show a
difference of a few percent in CPU time.
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

from _harness import BENCH_DIR, Emulator, run_json

ROOT = BENCH_DIR.parent
WORKER = BENCH_DIR / "_worker.py"
OPS = ("put", "get", "head", "delete")
TWINS = ("sync", "async")
_CALLS = """
import asyncio, cProfile, json, pstats, sys
from objectstore_async import AsyncClient
from objectstore_async.testing import AsyncInProcessTransport
from objectstore_sync import Client, Usecase
from objectstore_sync.testing import InProcessTransport

N = 200
DATA = b"x" * 1024


def client_calls(profile):
    stats = pstats.Stats(profile).stats
    mine = ("objectstore_core", "objectstore_sync", "objectstore_async")
    return sum(
        calls for (path, _, _), (_, calls, *_) in stats.items()
        if not any(f"{name}/emulator" in path for name in mine) and "_inprocess" not in path
    )


def counted(run):
    run()  # warm: caches, pools, compressors
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(N):
        run()
    profile.disable()
    return client_calls(profile) / N


session = Client("http://objectstore.test", transport=InProcessTransport()).session(
    Usecase("attachments"), org=1
)
key = session.put(DATA, key="k")
result = {"sync": {
    "put": counted(lambda: session.put(DATA, key="p")),
    "get": counted(lambda: session.get(key).payload.read()),
    "head": counted(lambda: session.head(key)),
    "delete": counted(lambda: session.delete("p")),
}}


async def main():
    client = AsyncClient("http://objectstore.test", transport=AsyncInProcessTransport())
    asession = client.session(Usecase("attachments"), org=1)
    await asession.put(DATA, key="k")
    loop = asyncio.get_running_loop()

    async def get():
        response = await asession.get("k")
        await response.payload.read()

    ops = {
        "put": lambda: asession.put(DATA, key="p"),
        "get": get,
        "head": lambda: asession.head("k"),
        "delete": lambda: asession.delete("p"),
    }
    figures = {}
    for name, op in ops.items():
        await op()
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(N):
            await op()
        profile.disable()
        figures[name] = client_calls(profile) / N
    await client.aclose()
    return figures


result["async"] = asyncio.run(main())
print(json.dumps(result))
"""

_PROBE = (
    "import objectstore_core, objectstore_sync, objectstore_async; print(objectstore_core.__file__)"
)


def _run(tree: Path, spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = run_json([str(WORKER), json.dumps(spec)], f"worker on {tree}", tree)
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


def _calls(tree: Path) -> dict[str, dict[str, float]]:
    result: dict[str, dict[str, float]] = run_json(["-c", _CALLS], f"counting on {tree}", tree)
    return result


def _print_calls(calls: dict[str, dict[str, dict[str, float]]]) -> int:
    print("client function calls per 1 KiB operation (in-process emulator's own left out)")
    print(f"{'twin':<6} {'op':<7} {'before':>8} {'after':>8} {'after/before':>13}")
    for twin in TWINS:
        for op in OPS:
            old, new = calls["before"][twin][op], calls["after"][twin][op]
            print(f"{twin:<6} {op:<7} {old:>8.1f} {new:>8.1f} {new / old:>12.3f}x")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare against (the 'before')")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tree and twin")
    parser.add_argument("--ops", type=int, default=500, help="operations of each kind per run")
    parser.add_argument(
        "--calls", action="store_true", help="count function calls per operation instead"
    )
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
            if args.calls:
                return _print_calls({name: _calls(tree) for name, tree in trees.items()})
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
