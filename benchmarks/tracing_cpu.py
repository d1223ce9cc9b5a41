"""Small-operation client CPU without the Sentry SDK, with it idle, and with it tracing.

    python benchmarks/tracing_cpu.py [--rounds 5] [--ops 500]

Starts one emulator (``python -m objectstore_sync serve``) and runs 1 KiB
put, get (read whole), head and delete, one at a time, for both twins, each
run in a fresh process, in four modes:

- ``absent``: ``import sentry_sdk`` fails (a meta-path blocker), as when
  the SDK is not installed;
- ``loaded``: the SDK is imported, never initialised, and the library's
  check for it is switched off (it sees no ``sentry_sdk`` module): what
  loading the SDK costs the process by itself (more objects for the garbage
  collector to scan), whatever client it uses;
- ``idle``: the SDK is imported but ``sentry_sdk.init`` was never called;
  ``idle`` minus ``loaded`` is the library's check;
- ``tracing``: the SDK is initialised with span streaming and
  ``traces_sample_rate=1.0`` and a transport that drops what it is given,
  so every operation records a span (the cost of the spans, not of sending
  them).

Modes alternate round by round. Prints the median client CPU per operation
(µs) of each mode, and ``idle`` minus ``loaded``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from _harness import KIB, SMALL_OPS, SMALL_TWINS, alternating_rounds, json_like, time_small_ops

MODES = ("absent", "loaded", "idle", "tracing")


class _HideSentry:
    """Makes ``import sentry_sdk`` fail as if the SDK were not installed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] == "sentry_sdk":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _set_up(mode: str) -> None:
    if mode == "absent":
        sys.meta_path.insert(0, _HideSentry())
        return
    import sentry_sdk
    from sentry_sdk.transport import Transport

    if mode == "loaded":
        import objectstore_core._metrics

        objectstore_core._metrics._modules = {}
    if mode == "tracing":

        class Dropping(Transport):
            def capture_envelope(self, envelope: Any) -> None:
                return None

        sentry_sdk.init(
            dsn="http://public@127.0.0.1:9/1",
            traces_sample_rate=1.0,
            transport=Dropping(),
            default_integrations=False,
            _experiments={"trace_lifecycle": "stream"},
        )


def _child(twin: str, mode: str, url: str, n: int) -> dict[str, float]:
    """CPU µs per operation of ``n`` operations of each kind, in this process."""
    _set_up(mode)
    keys = [f"tracing-{twin}-{mode}-{i}" for i in range(n)]
    result = time_small_ops(twin, url, keys, json_like(KIB))
    loaded = "sentry_sdk" in sys.modules
    if loaded != (mode != "absent"):
        raise SystemExit(f"mode {mode}: sentry_sdk loaded is {loaded}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs per twin and mode")
    parser.add_argument("--ops", type=int, default=500, help="operations of each kind per run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        twin, mode, url, n = json.loads(args.child)
        print(json.dumps(_child(twin, mode, url, n)))
        return 0
    if args.rounds < 1 or args.ops < 1:
        parser.error("--rounds and --ops must be at least 1")
    cpu = alternating_rounds(__file__, MODES, args.rounds, args.ops)
    print(f"\nclient CPU per 1 KiB operation, µs (median of {args.rounds} runs)")
    header = "".join(f"{mode:>9}" for mode in MODES)
    print(f"{'twin':<6} {'op':<7}{header} {'idle-loaded':>12}")
    for twin in SMALL_TWINS:
        for op in SMALL_OPS:
            medians = {mode: statistics.median(cpu[twin, mode, op]) for mode in MODES}
            row = "".join(f"{medians[mode]:>9.1f}" for mode in MODES)
            print(f"{twin:<6} {op:<7}{row} {medians['idle'] - medians['loaded']:>+12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
