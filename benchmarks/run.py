"""Benchmarks of objectstore_sync and objectstore_async against the official client.

    python benchmarks/run.py [--quick]

One command, one run, one emulator: starts ``python -m objectstore_sync
serve`` in a separate process on 127.0.0.1, measures the machine's limits
(loopback TCP, single-core zstd on the very payloads uploaded), then every
case for objectstore_sync, objectstore_async and the official
objectstore-client 0.2.10, each case in a fresh worker process
(``_worker.py``) so that client CPU time and peak RSS belong to one client
and one case. Prints the tables, evaluates the targets of issue #6, and
writes ``benchmarks/results.md`` and ``benchmarks/results.png``.

``--quick`` (under two minutes) uses fewer repeats and 256 MiB instead of
1 GiB. Needs the ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import (
    BENCH_DIR,
    GIB,
    MIB,
    Emulator,
    cpu_model,
    package_version,
    scratch_dir,
    write_payload,
)

WORKER = BENCH_DIR / "_worker.py"
AUTH = {"kid": "test_kid", "pem": str(BENCH_DIR / "data" / "ed25519.private.pem")}

CLIENTS = ("sync", "async", "official")
OURS = ("sync", "async")
LABEL = {"sync": "objectstore_sync", "async": "objectstore_async", "official": "official 0.2.10"}
OPS = ("put", "get", "head", "delete")
KINDS = ("json", "random")
KIND_LABEL = {"json": "JSON-like", "random": "random"}
DIRECTIONS = ("upload", "download")
BATCH_NA = "n/a (not measured)"

# Targets of issue #6, as ratios measured in the same run.
CPU_RATIO = 0.7
CPU_RATIO_AUTH = 0.3
ZSTD_SHARE = 0.9
RSS_LIMIT_MIB = 100.0

Json = dict[str, Any]


@dataclass(frozen=True)
class SizeCase:
    size: int
    repeats: int  # timed uploads per round
    download_repeats: int  # timed downloads per round (cheaper than uploads: more of them)
    warmup: int  # untimed runs per round, before the timed ones
    mode: str  # "bytes": payload held in memory; "file": an open file, streamed

    @property
    def label(self) -> str:
        return f"{self.size // GIB} GiB" if self.size >= GIB else f"{self.size // MIB} MiB"


@dataclass(frozen=True)
class Plan:
    name: str
    small_ops: int
    small_repeats: int  # timed runs per round of small operations
    small_rounds: int  # small operations run this many times, interleaving the clients
    sizes: tuple[SizeCase, ...]
    rounds: int  # the transfer matrix is run this many times, interleaving the clients
    levels: tuple[int, ...]
    level_ops: int
    level_repeats: int
    loopback_bytes: int
    loopback_repeats: int


FULL = Plan(
    name="full",
    small_ops=1000,
    small_repeats=2,
    small_rounds=3,
    sizes=(
        SizeCase(MIB, 9, 18, 3, "bytes"),
        SizeCase(64 * MIB, 2, 6, 1, "bytes"),
        SizeCase(GIB, 1, 2, 0, "file"),
    ),
    rounds=3,
    levels=(1, 10, 100, 1000),
    level_ops=1000,
    level_repeats=3,
    loopback_bytes=2 * GIB,
    loopback_repeats=5,
)
QUICK = Plan(
    name="quick",
    small_ops=200,
    small_repeats=3,
    small_rounds=1,
    sizes=(
        SizeCase(MIB, 7, 14, 2, "bytes"),
        SizeCase(64 * MIB, 3, 6, 0, "bytes"),
        SizeCase(256 * MIB, 1, 2, 0, "file"),
    ),
    rounds=1,
    levels=(1, 10, 100, 1000),
    level_ops=300,
    level_repeats=3,
    loopback_bytes=512 * MIB,
    loopback_repeats=3,
)


# --------------------------------------------------------------------- running


def _turns(round_: int) -> tuple[str, ...]:
    """The clients in the order they run in round ``round_``: each round starts with the next.

    Whoever runs first after a phase change (say, the first download after the
    uploads, while the server still frees memory) would otherwise always be the same.
    """
    shift = round_ % len(CLIENTS)
    return CLIENTS[shift:] + CLIENTS[:shift]


def run_worker(spec: Json, timeout: float = 1800) -> Json:
    """Run one case in a fresh process; its result, or ``{"error": ...}``."""
    try:
        done = subprocess.run(
            [sys.executable, str(WORKER), json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {done.returncode}: {tail[0][:200]}"}
    result: Json = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def progress(message: str) -> None:
    print(f"  {message}", flush=True)


@dataclass
class Results:
    plan: Plan
    small: dict[str, dict[str, Json]] = field(default_factory=dict)  # auth -> client -> result
    transfers: dict[tuple[str, int, str], dict[str, Json]] = field(default_factory=dict)
    zstd: dict[tuple[int, str], Json] = field(default_factory=dict)
    loopback: Json = field(default_factory=dict)
    concurrency: Json = field(default_factory=dict)
    batch: dict[str, Json] = field(default_factory=dict)  # twin -> benchmarks/batch.py figures
    phases: dict[str, float] = field(default_factory=dict)
    load: list[float] = field(default_factory=list)  # 1-minute load average, start and end
    seconds: float = 0.0

    def mb_s(self, direction: str, size: int, kind: str, client: str) -> float:
        """Median MB/s (10^6 payload bytes per second), NaN when unavailable."""
        result = self.transfers.get((direction, size, kind), {}).get(client, {})
        seconds = result.get("seconds")
        return size / _median(seconds) / 1e6 if seconds else math.nan

    def rss_mib(self, direction: str, size: int, kind: str, client: str) -> float:
        result = self.transfers.get((direction, size, kind), {}).get(client, {})
        value = result.get("peak_rss_kib")
        return value / 1024 if value is not None else math.nan

    def small_value(self, auth: str, client: str, op: str, metric: str) -> float:
        value = self.small.get(auth, {}).get(client, {}).get(op, {}).get(metric)
        return float(value) if value is not None else math.nan

    def note(self, auth: str, client: str) -> str | None:
        result = self.small.get(auth, {}).get(client, {})
        return result.get("unavailable") or result.get("error")

    def zstd_mb_s(self, size: int, kind: str, which: str) -> float:
        runs = self.zstd.get((size, kind), {}).get(f"{which}_bytes_per_s")
        return _median(runs) / 1e6 if runs else math.nan


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def run_all(plan: Plan) -> Results:
    results = Results(plan)
    results.load.append(os.getloadavg()[0])
    started = time.perf_counter()
    mark = [started]

    def phase(name: str) -> None:
        now = time.perf_counter()
        results.phases[name] = now - mark[0]
        progress(f"({name}: {now - mark[0]:.0f} s)")
        mark[0] = now

    with scratch_dir() as work, Emulator() as emulator:
        print(f"emulator: {emulator.url} (pid {emulator.pid}, in-memory storage)", flush=True)

        print("machine limits", flush=True)
        results.loopback = run_worker(
            {"case": "loopback", "bytes": plan.loopback_bytes, "repeats": plan.loopback_repeats}
        )
        progress(f"loopback TCP: {results.loopback.get('bytes_per_s', math.nan) / 1e6:,.0f} MB/s")
        payloads: dict[tuple[int, str], tuple[Path, str]] = {}
        for case in plan.sizes:
            for kind in KINDS:
                path = work / f"{kind}-{case.size}.bin"
                payloads[case.size, kind] = path, write_payload(path, case.size, kind)
        progress("payloads written; zstd limits are measured beside each transfer case below")
        phase("machine limits")

        print("small operations (1 KiB)", flush=True)
        for auth in ("none", "auth"):
            results.small[auth] = {}
            # Rounds interleave the clients, as for transfers, so that a busy
            # spell of the machine weighs on all of them alike.
            for round_ in range(plan.small_rounds):
                for client in _turns(round_):
                    result = run_worker(
                        {
                            "case": "small",
                            "client": client,
                            "url": emulator.url,
                            "n": plan.small_ops,
                            "repeats": plan.small_repeats,
                            "auth": AUTH if auth == "auth" else None,
                        }
                    )
                    pooled = _merge_small(results.small[auth].get(client), result)
                    results.small[auth][client] = pooled
                    summary = results.note(auth, client) or ", ".join(
                        f"{op} {pooled[op]['cpu_us']:.0f} µs" for op in OPS
                    )
                    progress(
                        f"[{round_ + 1}/{plan.small_rounds}] {LABEL[client]}"
                        f"{' with auth' if auth == 'auth' else ''}: {summary}"
                        + (" (so far)" if round_ + 1 < plan.small_rounds else "")
                    )

        phase("small operations")

        print("batches (1 KiB, many() against single requests)", flush=True)
        count = 2000 if plan.name == "quick" else 10_000
        for twin in OURS:
            results.batch[twin] = _batch_figures(twin, emulator.url, count)
            progress(f"{LABEL[twin]}: {results.batch[twin]}")
        phase("batches")

        print("throughput", flush=True)
        for round_ in range(plan.rounds):
            for case in plan.sizes:
                for kind in KINDS:
                    path, digest = payloads[case.size, kind]
                    # The zstd limit is measured in the same time window as the
                    # clients it judges, so a noisy neighbour affects both alike.
                    _merge_zstd(
                        results.zstd.setdefault((case.size, kind), {}),
                        run_worker(
                            {
                                "case": "zstd",
                                "path": str(path),
                                "size": case.size,
                                "mode": case.mode,
                                "repeats": max(case.repeats, 3 // plan.rounds or 1),
                            }
                        ),
                    )
                    progress(
                        f"[{round_ + 1}/{plan.rounds}] zstd -3 {case.label} {KIND_LABEL[kind]}: "
                        f"{results.zstd_mb_s(case.size, kind, 'compress'):,.0f} MB/s compress, "
                        f"{results.zstd_mb_s(case.size, kind, 'decompress'):,.0f} MB/s "
                        "decompress (so far)"
                    )
                    # Every client uploads its own copy; every client then downloads
                    # the official client's copy, so all decode the very same bytes
                    # (our uploads carry content checksums, which cost more to verify on
                    # download: see the machine limits; the zstd limits use none either).
                    keys = {client: f"xfer-{client}-{kind}-{case.size}" for client in CLIENTS}
                    for direction in DIRECTIONS:
                        for client in _turns(round_):
                            result = run_worker(
                                {
                                    "case": "transfer",
                                    "client": client,
                                    "url": emulator.url,
                                    "direction": direction,
                                    "key": keys[client if direction == "upload" else "official"],
                                    "path": str(path),
                                    "size": case.size,
                                    "mode": case.mode,
                                    "repeats": case.repeats
                                    if direction == "upload"
                                    else case.download_repeats,
                                    "warmup": case.warmup,
                                    "verify": round_ == 0 and case.size <= 64 * MIB,
                                    "sha256": digest,
                                }
                            )
                            merged = _merge(
                                results.transfers.setdefault((direction, case.size, kind), {}),
                                client,
                                result,
                            )
                            progress(
                                f"[{round_ + 1}/{plan.rounds}] {direction} {case.label} "
                                f"{KIND_LABEL[kind]} {LABEL[client]}: "
                                + (
                                    merged["error"]
                                    if "error" in merged
                                    else f"{case.size / _median(result['seconds']) / 1e6:,.0f}"
                                    f" MB/s, peak RSS {result['peak_rss_kib'] / 1024:.0f} MiB"
                                )
                            )
                    for key in keys.values():
                        _delete(emulator.url, key)
        phase("throughput")

        print("async concurrency", flush=True)
        results.concurrency = run_worker(
            {
                "case": "concurrency",
                "url": emulator.url,
                "levels": list(plan.levels),
                "ops": plan.level_ops,
                "repeats": plan.level_repeats,
            }
        )
        for level in plan.levels:
            entry = results.concurrency.get(str(level), {})
            progress(f"{level} in flight: {entry.get('ops_per_s', math.nan):,.0f} ops/s")
        phase("async concurrency")
    results.seconds = time.perf_counter() - started
    results.load.append(os.getloadavg()[0])
    return results


def _merge(per_client: dict[str, Json], client: str, result: Json) -> Json:
    """Fold one round of a transfer case into the previous ones (runs pooled, peaks maxed).

    A failed round is recorded in ``round_errors`` without discarding good rounds.
    """
    previous = per_client.get(client)
    if previous is None or ("error" in previous and "error" not in result):
        per_client[client] = merged = dict(result)
    elif "error" in result:
        merged = previous
        if "error" not in previous:
            previous.setdefault("round_errors", []).append(result["error"])
    else:
        merged = {
            "seconds": previous["seconds"] + result["seconds"],
            "cpu_seconds": previous["cpu_seconds"] + result["cpu_seconds"],
            "peak_rss_kib": max(previous["peak_rss_kib"], result["peak_rss_kib"]),
            "baseline_rss_kib": max(previous["baseline_rss_kib"], result["baseline_rss_kib"]),
            "round_errors": previous.get("round_errors", []),
        }
        per_client[client] = merged
    return merged


def _merge_small(previous: Json | None, result: Json) -> Json:
    """Fold one round of small operations into the previous ones: runs pooled, medians redone.

    A failed or unavailable round keeps the good rounds before it.
    """
    if previous is None or not all(op in previous for op in OPS):
        return result
    if not all(op in result for op in OPS):
        return previous
    pooled: Json = {}
    for op in OPS:
        samples = {
            metric: previous[op]["samples"][metric] + result[op]["samples"][metric]
            for metric in previous[op]["samples"]
        }
        pooled[op] = {metric: _median(values) for metric, values in samples.items()}
        pooled[op] |= {"runs": len(samples["cpu_us"]), "samples": samples}
    return pooled


def _merge_zstd(pooled: Json, result: Json) -> None:
    """Pool the per-run speeds of one more zstd measurement."""
    if "error" in result:
        pooled["error"] = result["error"]
        return
    for name in (
        "compress_bytes_per_s",
        "decompress_bytes_per_s",
        "decompress_checksum_bytes_per_s",
        "received_bytes_per_s",
    ):
        pooled.setdefault(name, []).extend(result[name])
    pooled["ratio"] = result["ratio"]


def _delete(url: str, key: str) -> None:
    """Free the emulator's memory between cases (the key is the same for every client)."""
    import objectstore_sync

    with objectstore_sync.Client(url) as client:
        client.session(objectstore_sync.Usecase("bench"), org=1).delete(key)


# --------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Check:
    target: str
    ok: bool | None  # None: not evaluated (a figure is missing)
    detail: str


def _ratio(ours: float, official: float) -> float:
    return ours / official if official and not math.isnan(official) else math.nan


def _fmt_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}×"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def _check(
    target: str,
    pairs: list[tuple[str, float, float]],
    passes: Callable[[float, float], bool],
    show: Callable[[float, float], str],
) -> Check:
    """One target over (client, value, reference) pairs: met only if every pair passes."""
    failures, shown, missing = [], [], False
    for client, value, reference in pairs:
        if math.isnan(value) or math.isnan(reference):
            missing = True
            continue
        shown.append(f"{client} {show(value, reference)}")
        if not passes(value, reference):
            failures.append(client)
    ok = False if failures else (True if shown else None)
    detail = ", ".join(shown) if shown else "figures missing"
    if missing and shown:
        detail += "; some figures missing"
    return Check(target, ok, detail)


def row_checks(results: Results) -> dict[str, list[Check]]:
    """Every target evaluated per table row (row id -> checks)."""
    checks: dict[str, list[Check]] = {}
    faster = "≥ official"

    def not_slower(row: str, pairs: list[tuple[str, float, float]]) -> None:
        checks.setdefault(row, []).append(
            _check(faster, pairs, lambda v, r: v >= r, lambda v, r: _fmt_ratio(v / r))
        )

    def zstd_share(row: str, what: str, direction: str, size: int, kind: str, limit: float) -> None:
        checks[row].append(
            _check(
                f"≥ {ZSTD_SHARE:.0%} of {what}",
                [(c, results.mb_s(direction, size, kind, c), limit) for c in OURS],
                lambda v, r: v >= ZSTD_SHARE * r,
                lambda v, r: f"{v / r:.0%}",
            )
        )

    for auth in ("none", "auth"):
        for op in OPS:
            official_rate = results.small_value(auth, "official", op, "ops_per_s")
            official_cpu = results.small_value(auth, "official", op, "cpu_us")
            not_slower(
                f"small-{auth}-{op}-rate",
                [(c, results.small_value(auth, c, op, "ops_per_s"), official_rate) for c in OURS],
            )
            limit = CPU_RATIO_AUTH if auth == "auth" else CPU_RATIO
            checks.setdefault(f"small-{auth}-{op}-cpu", []).append(
                _check(
                    f"CPU ≤ {limit}× official",
                    [(c, results.small_value(auth, c, op, "cpu_us"), official_cpu) for c in OURS],
                    lambda v, r, limit=limit: v <= limit * r,  # type: ignore[misc]
                    lambda v, r: _fmt_ratio(v / r),
                )
            )
    for case in results.plan.sizes:
        for kind in KINDS:
            for direction in DIRECTIONS:
                row = f"xfer-{direction}-{case.size}-{kind}"
                official = results.mb_s(direction, case.size, kind, "official")
                not_slower(
                    row, [(c, results.mb_s(direction, case.size, kind, c), official) for c in OURS]
                )
                if direction == "upload" and kind == "json":
                    limit = results.zstd_mb_s(case.size, kind, "compress")
                    what = "compression"
                elif direction == "download":
                    limit = results.zstd_mb_s(case.size, kind, "decompress")
                    what = "decompression"
                else:
                    limit = math.nan
                    what = ""
                if what:
                    zstd_share(row, f"zstd {what}", direction, case.size, kind, limit)
                if direction == "download":
                    # What one core can do at best: receive over loopback and decode.
                    bound = results.zstd_mb_s(case.size, kind, "received")
                    zstd_share(row, "receive + decompression", direction, case.size, kind, bound)
                if case.size >= 256 * MIB:
                    checks[row].append(
                        _check(
                            f"peak RSS < {RSS_LIMIT_MIB:.0f} MiB",
                            [
                                (c, results.rss_mib(direction, case.size, kind, c), RSS_LIMIT_MIB)
                                for c in OURS
                            ],
                            lambda v, r: v < r,
                            lambda v, r: f"{v:.0f} MiB",
                        )
                    )
    return checks


def summary(checks: dict[str, list[Check]], results: Results) -> list[tuple[str, str, str]]:
    """(target, where it fails or holds, verdict) over all rows."""
    by_target: dict[str, list[tuple[str, Check]]] = {}
    for row, row_checks_ in checks.items():
        for check in row_checks_:
            by_target.setdefault(check.target, []).append((row, check))
    lines = []
    titles = {
        "≥ official": "Never slower than the official client (ops/s, MB/s)",
        f"CPU ≤ {CPU_RATIO}× official": f"Small ops: client CPU per op ≤ {CPU_RATIO}× official",
        f"CPU ≤ {CPU_RATIO_AUTH}× official": (
            f"Small ops with auth: client CPU per op ≤ {CPU_RATIO_AUTH}× official"
        ),
        f"≥ {ZSTD_SHARE:.0%} of zstd compression": (
            f"Compressible upload ≥ {ZSTD_SHARE:.0%} of single-core zstd compression"
        ),
        f"≥ {ZSTD_SHARE:.0%} of zstd decompression": (
            f"Downloads ≥ {ZSTD_SHARE:.0%} of single-core zstd decompression"
        ),
        f"≥ {ZSTD_SHARE:.0%} of receive + decompression": (
            f"Downloads ≥ {ZSTD_SHARE:.0%} of single-core receive + zstd decompression "
            "(the physical bound, see below)"
        ),
        f"peak RSS < {RSS_LIMIT_MIB:.0f} MiB": (
            f"Peak RSS for {results.plan.sizes[-1].label} transfers < {RSS_LIMIT_MIB:.0f} MiB"
        ),
    }
    for target, title in titles.items():
        items = by_target.get(target, [])
        failed = [row for row, check in items if check.ok is False]
        unknown = [row for row, check in items if check.ok is None]
        if not items or len(unknown) == len(items):
            verdict, where = "n/a", "not measured"
        elif failed:
            verdict, where = "NOT met", f"fails on {len(failed)} of {len(items)} rows"
        else:
            verdict = "met" if not unknown else "met where measured"
            where = f"holds on {len(items) - len(unknown)} of {len(items)} rows"
        lines.append((title, where, verdict))
    return lines


def _batch_figures(twin: str, url: str, count: int) -> Json:
    """``benchmarks/batch.py``'s figures for one twin, in a fresh process."""
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / "batch.py"), "--count", str(count), "--worker", twin, url],
        capture_output=True,
        text=True,
        cwd=BENCH_DIR,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip()[-200:]}
    figures: Json = json.loads(done.stdout)
    figures["count"] = count
    return figures


def dump_raw(results: Results) -> str:
    """Everything measured, as JSON (tuple keys flattened to strings)."""
    return json.dumps(
        {
            "plan": results.plan.name,
            "small": results.small,
            "transfers": {"|".join(map(str, k)): v for k, v in results.transfers.items()},
            "zstd": {"|".join(map(str, k)): v for k, v in results.zstd.items()},
            "loopback": results.loopback,
            "concurrency": results.concurrency,
            "batch": results.batch,
            "phases": results.phases,
            "load": results.load,
            "seconds": results.seconds,
        },
        indent=1,
    )


def load_raw(path: Path) -> Results:
    raw = json.loads(path.read_text())
    results = Results(QUICK if raw["plan"] == "quick" else FULL)
    results.small = raw["small"]
    for key, value in raw["transfers"].items():
        direction, size, kind = key.split("|")
        results.transfers[direction, int(size), kind] = value
    for key, value in raw["zstd"].items():
        size, kind = key.split("|")
        results.zstd[int(size), kind] = value
    results.loopback = raw["loopback"]
    results.concurrency = raw["concurrency"]
    results.batch = raw.get("batch", {})
    results.phases = raw["phases"]
    results.load = raw["load"]
    results.seconds = raw["seconds"]
    return results


# -------------------------------------------------------------------- rendering


def _num(value: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _cell(value: float, official: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "n/a"
    ratio = _ratio(value, official)
    return _num(value, digits) + ("" if math.isnan(ratio) else f" ({ratio:.2f}×)")


def _status(checks: list[Check]) -> str:
    failed = [c for c in checks if c.ok is False]
    if failed:
        return "NOT met: " + "; ".join(f"{c.target} ({c.detail})" for c in failed)
    if checks and all(c.ok is None for c in checks):
        return "n/a"
    return "met" if checks else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render(results: Results, checks: dict[str, list[Check]]) -> tuple[str, str]:
    """The tables (printed) and the whole results.md."""
    plan = results.plan
    out: list[str] = []

    out += ["### Targets", ""]
    out += _table(["Target", "Rows", "Status"], [list(t) for t in summary(checks, results)])

    out += ["", "### Small operations (1 KiB, one at a time)", ""]
    rows = []
    for auth in ("none", "auth"):
        notes = {c: results.note(auth, c) for c in CLIENTS}
        for op in OPS:
            name = op + (" + auth" if auth == "auth" else "")
            for metric, unit in (("ops_per_s", "ops/s"), ("cpu_us", "CPU µs/op")):
                official = results.small_value(auth, "official", op, metric)
                cells = [
                    f"n/a ({notes[c]})"
                    if notes[c] and op == "put" and metric == "ops_per_s"
                    else (
                        "n/a"
                        if notes[c]
                        else _cell(results.small_value(auth, c, op, metric), official)
                    )
                    for c in OURS
                ]
                kind = "rate" if metric == "ops_per_s" else "cpu"
                rows.append(
                    [
                        name,
                        unit,
                        *cells,
                        _num(official),
                        _status(checks[f"small-{auth}-{op}-{kind}"]),
                    ]
                )
    out += _table(["Operation", "Metric", *(LABEL[c] for c in CLIENTS), "Targets"], rows)

    out += ["", "### Throughput (MB/s of payload; peak client RSS in MiB)", ""]
    rows = []
    for direction in DIRECTIONS:
        for kind in KINDS:
            for case in plan.sizes:
                official = results.mb_s(direction, case.size, kind, "official")
                which = "compress" if direction == "upload" else "decompress"
                cells = [_cell(results.mb_s(direction, case.size, kind, c), official) for c in OURS]
                rss = " / ".join(
                    _num(results.rss_mib(direction, case.size, kind, c)) for c in CLIENTS
                )
                errors = [
                    f"{LABEL[c]}: {error}"
                    for c, r in results.transfers.get((direction, case.size, kind), {}).items()
                    for error in ([r["error"]] if "error" in r else r.get("round_errors", []))
                ]
                status = _status(checks[f"xfer-{direction}-{case.size}-{kind}"])
                rows.append(
                    [
                        f"{direction} {case.label} {KIND_LABEL[kind]}",
                        *cells,
                        _num(official),
                        _num(results.zstd_mb_s(case.size, kind, which)),
                        _num(results.zstd_mb_s(case.size, kind, "received"))
                        if direction == "download"
                        else "",
                        rss,
                        "; ".join([status, *errors]),
                    ]
                )
    out += _table(
        [
            "Transfer",
            *(f"{LABEL[c]} MB/s" for c in CLIENTS),
            "zstd limit MB/s",
            "receive + decompress limit MB/s",
            "peak RSS MiB (sync / async / official)",
            "Targets",
        ],
        rows,
    )

    out += ["", "### Batch", ""]
    rows = []
    for op in ("put", "get", "delete"):
        cells = []
        for twin in OURS:
            figures = results.batch.get(twin, {})
            if f"batch-{op}" not in figures:
                cells.append(figures.get("error", BATCH_NA))
                continue
            ratio = figures[f"batch-{op}"] / figures[f"single-{op}"]
            rss = figures.get("peak_rss_mib", math.nan)
            cells.append(
                f"{_num(figures[f'batch-{op}'])} ops/s ({ratio:.1f}× single), "
                f"peak RSS {_num(rss)} MiB"
            )
        count = max((f.get("count", 0) for f in results.batch.values()), default=0)
        rows.append(
            [f"{count:,} 1 KiB {op}s via many() vs single requests", *cells, "n/a (no many())"]
        )
    out += _table(["Case", LABEL["sync"], LABEL["async"], LABEL["official"]], rows)
    out += ["", "Target: at least 10× single requests, peak RSS under 100 MiB."]

    pool = results.concurrency.get("max_connections", "?")
    out += ["", f"### Async concurrency (1 KiB gets, one AsyncClient, pool of {pool})", ""]
    rows = []
    for level in plan.levels:
        entry = results.concurrency.get(str(level), {})
        rows.append(
            [
                str(level),
                _num(entry.get("ops_per_s", math.nan)),
                _num(entry.get("cpu_us", math.nan)),
            ]
        )
    if "error" in results.concurrency:
        rows.append(["error", results.concurrency["error"], ""])
    out += _table(["In flight", "ops/s", "CPU µs/op"], rows)

    out += ["", "### Machine limits (same run)", ""]
    rows = [
        [
            "Loopback TCP, two processes",
            _num(results.loopback.get("bytes_per_s", math.nan) / 1e6),
            "",
        ]
    ]
    for kind in KINDS:
        for case in plan.sizes:
            ratio = results.zstd.get((case.size, kind), {}).get("ratio", math.nan)
            rows.append(
                [
                    f"zstd -3 compress, {case.label} {KIND_LABEL[kind]}",
                    _num(results.zstd_mb_s(case.size, kind, "compress")),
                    f"ratio {ratio:.2f}",
                ]
            )
            rows.append(
                [
                    f"zstd decompress, {case.label} {KIND_LABEL[kind]}",
                    _num(results.zstd_mb_s(case.size, kind, "decompress")),
                    "from memory",
                ]
            )
            rows.append(
                [
                    f"zstd decompress with content checksum, {case.label} {KIND_LABEL[kind]}",
                    _num(results.zstd_mb_s(case.size, kind, "decompress_checksum")),
                    "frames as this client writes them",
                ]
            )
            rows.append(
                [
                    f"receive + zstd decompress, {case.label} {KIND_LABEL[kind]}",
                    _num(results.zstd_mb_s(case.size, kind, "received")),
                    "over loopback TCP from another process, one core",
                ]
            )
    out += _table(["Limit", "MB/s", ""], rows)
    tables = "\n".join(out)

    today = datetime.date.today().isoformat()
    quick = " --quick" if plan.name == "quick" else ""
    sizes = ", ".join(
        f"{c.label} ×{c.repeats * plan.rounds} up and ×{c.download_repeats * plan.rounds} down"
        for c in plan.sizes
    )
    head = [
        "# Benchmark results",
        "",
        f"Generated by `python benchmarks/run.py{quick}` on {today} ({plan.name} run, "
        f"{results.seconds / 60:.1f} min). Reproduce: `pip install -e '.[bench]'` then "
        "`python benchmarks/run.py` (or `--quick`).",
        "",
        f"- Machine: {cpu_model()}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; 1-minute load average "
        + " → ".join(f"{x:.1f}" for x in results.load)
        + " (start → end; the harness itself keeps about 2 busy).",
        f"- Versions: objectstore {package_version('objectstore')}, objectstore-client "
        f"{package_version('objectstore-client')}, urllib3 {package_version('urllib3')}, "
        f"httpx {package_version('httpx')}, zstandard {package_version('zstandard')}, "
        f"h11 {package_version('h11')}, PyJWT {package_version('PyJWT')}, "
        f"cryptography {package_version('cryptography')}.",
        "- Server: the emulator (`python -m objectstore_sync serve`, in-memory storage) in its "
        "own process on 127.0.0.1; every case runs in a fresh client process, so CPU "
        "(`time.process_time`) and peak RSS (`VmHWM`, i.e. `ru_maxrss` without the "
        "parent's peak that Linux folds in at exec) are the client's alone.",
        f"- Each figure is a median: small ops {plan.small_repeats * plan.small_rounds} runs of "
        f"{plan.small_ops} ops ({plan.small_rounds} fresh process(es) per client); transfers "
        f"{sizes} runs ({plan.rounds} fresh process(es) per client and case, after untimed "
        f"warm-up runs); the clients take turns, each round starting with the next; concurrency "
        f"{plan.level_repeats} runs. "
        "`(1.23×)` is the ratio to the official client (higher is better for ops/s and MB/s, "
        "lower for CPU). MB = 10^6 bytes of payload (uncompressed).",
        "- Uploads use each client's default (zstd level 3); payloads up to 64 MiB are passed "
        "as bytes, larger ones as an open file. Every client downloads the same stored object, "
        "the official client's upload, so all decode identical bytes (this client's own uploads "
        "carry zstd content checksums, which cost more to verify: see the machine limits); the "
        "official client reads 1 MiB pieces, ours iterate their natural chunks. The zstd "
        "limits are single-core python-zstandard level 3 on the same payload in 1 MiB chunks. "
        "The receive + decompress limit is the least a download must do on one core: the "
        "compressed bytes arrive over loopback TCP from another process and are decoded as "
        "they come. No download can beat it, and where loopback TCP is slower than zstd "
        "(incompressible data) it is the real bound, so it is evaluated beside the zstd "
        "target.",
        "",
        "![benchmark chart](results.png)",
        "",
        "",
    ]
    return tables, "\n".join(head) + tables + "\n"


def chart(results: Results, path: Path) -> None:
    import matplotlib  # type: ignore[import-untyped,import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-untyped,import-not-found,unused-ignore]

    colors = {"sync": "#1f77b4", "async": "#2ca02c", "official": "#7f7f7f"}
    figure, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    width = 0.27

    def bars(ax: Any, labels: list[str], values: dict[str, list[float]]) -> None:
        for i, client in enumerate(CLIENTS):
            xs = [x + (i - 1) * width for x in range(len(labels))]
            ax.bar(
                xs,
                [0 if math.isnan(v) else v for v in values[client]],
                width,
                label=LABEL[client],
                color=colors[client],
            )
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)

    ax = axes[0][0]
    labels = [op + (" +auth" if auth == "auth" else "") for auth in ("none", "auth") for op in OPS]
    bars(
        ax,
        labels,
        {
            c: [results.small_value(a, c, op, "cpu_us") for a in ("none", "auth") for op in OPS]
            for c in CLIENTS
        },
    )
    ax.set_title("Small ops (1 KiB): client CPU µs per op (lower is better)")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    cases = [(d, c.size, c.label, k) for d in DIRECTIONS for k in KINDS for c in results.plan.sizes]
    labels = [
        f"{'up' if d == 'upload' else 'down'} {lab} {'json' if k == 'json' else 'rand'}"
        for d, _, lab, k in cases
    ]
    bars(ax, labels, {c: [results.mb_s(d, s, k, c) for d, s, _, k in cases] for c in CLIENTS})
    for x, (d, s, _, k) in enumerate(cases):
        limit = results.zstd_mb_s(s, k, "compress" if d == "upload" else "decompress")
        if not math.isnan(limit):
            ax.hlines(
                limit,
                x - 0.45,
                x + 0.45,
                colors="black",
                linewidth=1.2,
                label="zstd single core" if x == 0 else None,
            )
    ax.set_yscale("log")
    tops = [results.mb_s(d, s, k, c) for d, s, _, k in cases for c in CLIENTS] + [
        results.zstd_mb_s(s, k, "compress" if d == "upload" else "decompress")
        for d, s, _, k in cases
    ]
    finite = [v for v in tops if not math.isnan(v) and v > 0]
    if finite:
        ax.set_ylim(min(finite) / 1.5, max(finite) * 1.5)
    ax.set_title("Throughput MB/s (log scale; black line = zstd single-core limit)")
    ax.legend(fontsize=7, loc="upper left", ncol=2)

    ax = axes[1][0]
    big = results.plan.sizes[-1]
    cases_rss = [(d, k) for d in DIRECTIONS for k in KINDS]
    bars(
        ax,
        [f"{d} {big.label} {KIND_LABEL[k]}" for d, k in cases_rss],
        {c: [results.rss_mib(d, big.size, k, c) for d, k in cases_rss] for c in CLIENTS},
    )
    ax.axhline(RSS_LIMIT_MIB, color="red", linestyle="--", linewidth=1, label="target")
    ax.set_title(f"Peak client RSS MiB, {big.label} transfers")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    levels = list(results.plan.levels)
    rates = [results.concurrency.get(str(n), {}).get("ops_per_s", math.nan) for n in levels]
    ax.plot(levels, rates, marker="o", color=colors["async"], label=LABEL["async"])
    official = results.small_value("none", "official", "get", "ops_per_s")
    if not math.isnan(official):
        ax.axhline(
            official, color=colors["official"], linestyle="--", label="official, sequential get"
        )
    ax.set_xscale("log")
    ax.set_xlabel("requests in flight")
    ax.set_title("Async concurrency: 1 KiB gets/s, one AsyncClient")
    ax.legend(fontsize=8)

    figure.suptitle(
        f"objectstore benchmarks ({results.plan.name} run) — {cpu_model()}", fontsize=10
    )
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


# ------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 256 MiB not 1 GiB")
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR, help="directory for results.md and results.png"
    )
    parser.add_argument(
        "--replot",
        type=Path,
        metavar="RAW_JSON",
        help="redo the tables and chart from a previous run's results/raw.json, measuring nothing",
    )
    args = parser.parse_args(argv)
    # A terminated run still stops its emulator and workers (context managers unwind).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.replot:
        results = load_raw(args.replot)
    else:
        plan = QUICK if args.quick else FULL
        print(f"objectstore benchmarks, {plan.name} run", flush=True)
        results = run_all(plan)
        raw = args.output / "results" / "raw.json"  # git-ignored; enables --replot
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(dump_raw(results))
    checks = row_checks(results)
    tables, document = render(results, checks)
    print()
    print(tables)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.md").write_text(document)
    try:
        chart(results, args.output / "results.png")
    except ImportError as exc:
        print(f"no chart ({exc}): pip install -e '.[bench]'")
    print(
        f"\nwrote {args.output / 'results.md'} and {args.output / 'results.png'} "
        f"in {results.seconds / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
