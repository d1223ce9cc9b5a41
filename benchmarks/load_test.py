"""Load test under injected faults: both twins, one loopback emulator in its own process.

32 threads share one sync ``Client`` and 200 asyncio tasks share one
``AsyncClient`` (in an event loop of its own thread), all doing mixed
operations (put with and without a key, get, head, delete, extend_expiry)
for a bounded time against an emulator that gives 5 % of requests a random
fault (error statuses, resets before or during the response, stalls longer
than the read timeout, truncated and corrupted bodies).

Checks, each reported, any failure making the exit status 1:

* every operation succeeds or raises an ``ObjectstoreError`` (anything else
  is a bug);
* every successful read of an object whose last write succeeded returns
  exactly those bytes, and once faults are off every such object, and every
  object stored by a successful keyless put, reads back byte-identical;
* no keyless put was stored twice: every keyless payload carries a unique
  marker, and after the run every object in the keyless scopes is read and
  no marker appears twice (retries of a keyless POST would duplicate);
  stored keyless objects lie between the successful keyless puts and those
  plus the failed ones (whose request may have been stored before the
  response was lost);
* no leaked connections or file descriptors: the sync pool has nothing in
  use, the async pool has no connection in use, and the process has the
  same number of open descriptors after closing both clients as before.

    python benchmarks/load_test.py [--seconds 20] [--threads 32] [--tasks 200]
                                   [--fault-rate 0.05] [--seed 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import os
import random
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from objectstore_async import AsyncClient, AsyncSession
from objectstore_core import ObjectstoreError, RetryPolicy, Timeout, TimeToLive
from objectstore_sync import Client, Session, Usecase

USECASE = Usecase("loadtest")
TTL = TimeToLive(timedelta(days=1))
MARKER = b"load-test-marker:"


# ------------------------------------------------------------------ the server process


def serve(
    conn: multiprocessing.connection.Connection, rate: float, seed: int, stall: float
) -> None:
    """Run the emulator with random faults; answer ``stats``, ``faults-off`` and ``stop``."""
    from objectstore_sync.emulator import EmulatorServer

    server = EmulatorServer("127.0.0.1", 0)
    server.faults.randomly(rate, seed=seed, stall_seconds=stall, retry_after=0)
    server.start()
    conn.send(server.url)
    while True:
        command = conn.recv()
        if command == "faults-off":
            server.faults.clear()
            conn.send(None)
        elif command == "stats":
            ids = server.storage.ids()  # type: ignore[attr-defined]
            keyless = [(oid.scope, oid.key) for oid in ids if "kind=keyless" in oid.scope]
            conn.send({"faults": server.faults.counts(), "keyless": keyless, "objects": len(ids)})
        else:
            server.shutdown()
            conn.send(None)
            return


# ----------------------------------------------------------------------- bookkeeping


@dataclass
class Tally:
    """What happened, shared by all workers (guarded by a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ops: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    bugs: list[str] = field(default_factory=list)
    retries: int = 0
    reads_checked: int = 0
    keyless_ok: dict[str, bytes] = field(default_factory=dict)  # "scope|key" -> payload
    keyless_failed: int = 0
    keyed: dict[str, tuple[Any, bytes]] = field(default_factory=dict)  # key -> (session, payload)

    def record(self, op: str, error: BaseException | None) -> None:
        with self.lock:
            self.ops[op] += 1
            if error is None:
                self.ok[op] += 1
            elif isinstance(error, ObjectstoreError):
                self.errors[f"{op}:{type(error).__name__}"] += 1
            else:
                detail = "".join(traceback.format_exception(error)[-3:])
                self.bugs.append(f"{op}: foreign exception {error!r}\n{detail}")

    def keep(self, state: WorkerState, session: Any) -> None:
        """Note a worker's keys whose content is certain, for the read-back at the end."""
        with self.lock:
            for key, payload in state.certain.items():
                self.keyed[key] = (session, payload)

    def bug(self, message: str) -> None:
        with self.lock:
            self.bugs.append(message)


class RetryCounter:
    """A metrics backend counting ``objectstore.retries``."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        if name == "objectstore.retries":
            with self.tally.lock:
                self.tally.retries += int(value)

    def gauge(self, name: str, value: float, tags: Any = None) -> None:
        return None

    def distribution(self, *args: Any, **kwargs: Any) -> None:
        return None


def payload_for(rng: random.Random) -> bytes:
    size = rng.choice((0, 10, 200, 4096, 40_000, 200_000))
    if rng.random() < 0.5:
        return rng.randbytes(size)
    return (b"compressible %d " % rng.randint(0, 9)) * (size // 15 + 1)


@dataclass
class WorkerState:
    """One worker's own objects: no two workers touch the same key."""

    name: str
    rng: random.Random
    certain: dict[str, bytes] = field(default_factory=dict)  # last write succeeded
    uncertain: set[str] = field(default_factory=set)  # last write or delete failed
    serial: int = 0

    def pick(self) -> str | None:
        keys = list(self.certain) + list(self.uncertain)
        return self.rng.choice(keys) if keys else None

    def next_key(self) -> str:
        self.serial += 1
        return f"{self.name}/obj-{self.serial % 40}"


def choose_op(rng: random.Random) -> str:
    return rng.choices(
        ["put_key", "put_keyless", "get", "head", "delete", "extend"],
        weights=[25, 15, 30, 12, 10, 8],
    )[0]


def after_put(state: WorkerState, key: str, payload: bytes, error: BaseException | None) -> None:
    if error is None:
        state.certain[key] = payload
        state.uncertain.discard(key)
    else:
        state.certain.pop(key, None)
        state.uncertain.add(key)


def check_read(tally: Tally, state: WorkerState, key: str, data: bytes | None) -> None:
    if key not in state.certain:
        return
    with tally.lock:
        tally.reads_checked += 1
    if data != state.certain[key]:
        got = "missing" if data is None else f"{len(data)} bytes"
        tally.bug(f"{key}: read back {got}, expected {len(state.certain[key])} bytes")


# ---------------------------------------------------------------------- sync workers


def sync_worker(
    index: int, keyed: Session, keyless: Session, tally: Tally, deadline: float, seed: int
) -> None:
    state = WorkerState(f"t{index}", random.Random(seed * 1000 + index))
    while time.monotonic() < deadline:
        op = choose_op(state.rng)
        error: BaseException | None = None
        try:
            if op == "put_key":
                new_key, payload = state.next_key(), payload_for(state.rng)
                try:
                    keyed.put(payload, key=new_key, expiration_policy=TTL)
                finally:
                    after_put(state, new_key, payload, sys.exc_info()[1])
            elif op == "put_keyless":
                payload = MARKER + uuid.uuid4().bytes.hex().encode() + payload_for(state.rng)
                try:
                    new = keyless.put(payload)
                except BaseException:
                    with tally.lock:
                        tally.keyless_failed += 1
                    raise
                with tally.lock:
                    tally.keyless_ok[f"{keyless.scope}|{new}"] = payload
            elif (key := state.pick()) is None:
                continue
            elif op == "get":
                response = keyed.get(key)
                if response is None:
                    check_read(tally, state, key, None)
                else:
                    with response:
                        check_read(tally, state, key, response.read())
            elif op == "head":
                metadata = keyed.head(key)
                if key in state.certain and metadata is None:
                    tally.bug(f"{key}: head found nothing after a successful put")
            elif op == "delete":
                state.certain.pop(key, None)
                state.uncertain.add(key)
                keyed.delete(key)
                state.uncertain.discard(key)
            else:
                keyed.extend_expiry(key, from_now=timedelta(days=2))
        except Exception as exc:
            error = _failure(op, exc)
        tally.record(op, error)
    tally.keep(state, keyed)


def _failure(op: str, exc: Exception) -> Exception | None:
    """What an operation's exception counts as: None when it is a correct answer."""
    if (
        op == "extend"
        and isinstance(exc, ObjectstoreError)
        and type(exc).__name__ == "ObjectNotFound"
    ):
        return None  # the key was deleted meanwhile
    return exc


# --------------------------------------------------------------------- async workers


async def async_worker(
    index: int,
    keyed: AsyncSession,
    keyless: AsyncSession,
    tally: Tally,
    deadline: float,
    seed: int,
) -> None:
    state = WorkerState(f"a{index}", random.Random(seed * 1000 + 500 + index))
    while time.monotonic() < deadline:
        op = choose_op(state.rng)
        error: BaseException | None = None
        try:
            if op == "put_key":
                new_key, payload = state.next_key(), payload_for(state.rng)
                try:
                    await keyed.put(payload, key=new_key, expiration_policy=TTL)
                finally:
                    after_put(state, new_key, payload, sys.exc_info()[1])
            elif op == "put_keyless":
                payload = MARKER + uuid.uuid4().bytes.hex().encode() + payload_for(state.rng)
                try:
                    new = await keyless.put(payload)
                except BaseException:
                    with tally.lock:
                        tally.keyless_failed += 1
                    raise
                with tally.lock:
                    tally.keyless_ok[f"{keyless.scope}|{new}"] = payload
            elif (key := state.pick()) is None:
                await asyncio.sleep(0)
                continue
            elif op == "get":
                response = await keyed.get(key)
                if response is None:
                    check_read(tally, state, key, None)
                else:
                    async with response:
                        check_read(tally, state, key, await response.aread())
            elif op == "head":
                metadata = await keyed.head(key)
                if key in state.certain and metadata is None:
                    tally.bug(f"{key}: head found nothing after a successful put")
            elif op == "delete":
                state.certain.pop(key, None)
                state.uncertain.add(key)
                await keyed.delete(key)
                state.uncertain.discard(key)
            else:
                await keyed.extend_expiry(key, from_now=timedelta(days=2))
        except Exception as exc:
            error = _failure(op, exc)
        tally.record(op, error)
    tally.keep(state, keyed)


async def async_main(
    client: AsyncClient, tasks: int, tally: Tally, deadline: float, seed: int
) -> None:
    async def one(i: int) -> None:
        keyed = client.session(USECASE, org=2, worker=f"a{i}", kind="keyed")
        keyless = client.session(USECASE, org=2, worker=f"a{i}", kind="keyless")
        await async_worker(i, keyed, keyless, tally, deadline, seed)

    await asyncio.gather(*(one(i) for i in range(tasks)))


def async_pool(client: AsyncClient) -> dict[str, int]:
    """Connections of the async client's pool: ``{"idle": n, "in_use": m}``."""
    stats: dict[str, int] = client._transport.pool_stats()  # type: ignore[attr-defined]
    return stats


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


# ------------------------------------------------------------------------------ main


def verify(tally: Tally, stats: dict[str, Any], sync_client: Client) -> None:
    """With faults off: every surviving object reads back; no keyless duplicates."""
    for key, (session, payload) in sorted(tally.keyed.items(), key=lambda kv: kv[0]):
        if isinstance(session, Session):
            response = session.get(key)
            data = None if response is None else response.read()
        else:  # read an async session's object with the sync client: same server
            scope_kwargs = dict(part.split("=", 1) for part in str(session.scope).split(";"))
            response = sync_client.session(USECASE, **scope_kwargs).get(key)
            data = None if response is None else response.read()
        if data != payload:
            tally.bug(f"final read of {key}: {None if data is None else len(data)} bytes")
    markers: Counter[bytes] = Counter()
    for scope, key in stats["keyless"]:
        scope_kwargs = dict(part.split("=", 1) for part in scope.split(";"))
        response = sync_client.session(USECASE, **scope_kwargs).get(key)
        if response is None:
            tally.bug(f"keyless object {scope}/{key} vanished")
            continue
        data = response.read()
        markers[data[len(MARKER) : len(MARKER) + 32]] += 1
        expected = tally.keyless_ok.get(f"{scope}|{key}")
        if expected is not None and data != expected:
            tally.bug(f"keyless object {scope}/{key} differs from what was put")
    duplicates = {m: n for m, n in markers.items() if n > 1}
    if duplicates:
        tally.bug(f"{len(duplicates)} keyless payloads stored more than once: {duplicates}")
    stored = len(stats["keyless"])
    low, high = len(tally.keyless_ok), len(tally.keyless_ok) + tally.keyless_failed
    if not low <= stored <= high:
        tally.bug(f"{stored} keyless objects stored; expected between {low} and {high}")
    missing = [k for k in tally.keyless_ok if tuple(k.split("|")) not in set(stats["keyless"])]
    if missing:
        tally.bug(f"{len(missing)} successful keyless puts are not stored: {missing[:3]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=serve, args=(theirs, args.fault_rate, args.seed, 0.6))
    process.start()
    url = ours.recv()

    fds_before = open_fds()
    tally = Tally()
    metrics = RetryCounter(tally)
    # Stalls (0.6 s) outlast the read timeout: they become ReadTimeouts, retried when safe.
    limits = Timeout(connect=1.0, read=0.5, write=5.0)
    policy = RetryPolicy(backoff=0.01, max_backoff=0.2)
    sync_client = Client(url, timeout=limits, retry=policy, metrics_backend=metrics)
    async_client = AsyncClient(
        url, timeout=limits, retry=policy, metrics_backend=metrics, max_connections=64
    )
    deadline = time.monotonic() + args.seconds
    started = time.monotonic()

    threads = []
    for i in range(args.threads):
        keyed = sync_client.session(USECASE, org=1, worker=f"t{i}", kind="keyed")
        keyless = sync_client.session(USECASE, org=1, worker=f"t{i}", kind="keyless")
        thread = threading.Thread(
            target=sync_worker, args=(i, keyed, keyless, tally, deadline, args.seed)
        )
        threads.append(thread)
    pools: dict[str, dict[str, int]] = {}
    loop_thread = threading.Thread(
        target=lambda: asyncio.run(
            _run_async(async_client, args.tasks, tally, deadline, args.seed, pools)
        )
    )
    for thread in [*threads, loop_thread]:
        thread.start()
    for thread in [*threads, loop_thread]:
        thread.join(args.seconds + 120)
        if thread.is_alive():
            tally.bug(f"{thread.name} did not finish: a hang")
    elapsed = time.monotonic() - started

    ours.send("faults-off")
    ours.recv()
    ours.send("stats")
    stats = ours.recv()
    pools["sync"] = sync_client._transport.pool_stats()  # type: ignore[attr-defined]
    if pools["sync"]["in_use"]:
        tally.bug(f"sync pool still has connections in use: {pools['sync']}")
    if pools.get("async", {}).get("in_use"):
        tally.bug(f"async pool still has connections in use: {pools['async']}")
    verify(tally, stats, sync_client)
    sync_client.close()
    fds_after = open_fds()
    if fds_after != fds_before:
        tally.bug(f"open file descriptors: {fds_before} before, {fds_after} after closing")
    ours.send("stop")
    ours.recv()
    process.join(10)

    total_ops = sum(tally.ops.values())
    print(f"load test: {args.threads} threads + {args.tasks} asyncio tasks, {elapsed:.1f} s")
    print(f"operations done:   {total_ops} ({total_ops / elapsed:.0f}/s)")
    for op in sorted(tally.ops):
        print(f"  {op:<12} {tally.ops[op]:>7} done, {tally.ok[op]:>7} ok")
    injected = stats["faults"]
    print(f"faults injected:   {sum(injected.values())} {dict(sorted(injected.items()))}")
    print(f"retries:           {tally.retries}")
    print(f"failures (ours):   {sum(tally.errors.values())}")
    for name, count in tally.errors.most_common():
        print(f"  {name:<32} {count:>6}")
    print(f"reads verified during the run: {tally.reads_checked}")
    print(
        f"after the run: {len(tally.keyed)} keyed objects and {len(stats['keyless'])} keyless "
        f"objects read back ({len(tally.keyless_ok)} keyless puts succeeded, "
        f"{tally.keyless_failed} failed)"
    )
    print(f"connection pools:  {pools}")
    print(f"file descriptors:  {fds_before} before, {fds_after} after")
    if tally.bugs:
        print(f"BUGS: {len(tally.bugs)}")
        for bug in tally.bugs[:20]:
            print("  " + bug)
        return 1
    print("no bugs: every operation succeeded or raised an ObjectstoreError")
    return 0


async def _run_async(
    client: AsyncClient,
    tasks: int,
    tally: Tally,
    deadline: float,
    seed: int,
    pools: dict[str, dict[str, int]],
) -> None:
    await async_main(client, tasks, tally, deadline, seed)
    pools["async"] = async_pool(client)
    await client.aclose()


if __name__ == "__main__":
    sys.exit(main())
