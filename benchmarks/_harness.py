"""Shared helpers of the benchmark scripts: the emulator process, payloads, statistics.

Nothing here imports the clients under test, so importing it costs nothing
and it can be used by every script and by the worker processes of ``run.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "BENCH_DIR",
    "CHUNK",
    "GIB",
    "KIB",
    "MIB",
    "Emulator",
    "cpu_model",
    "free_port",
    "iter_payload",
    "json_like",
    "median",
    "package_version",
    "peak_rss_kib",
    "scratch_dir",
    "wait_until_up",
    "write_payload",
]

BENCH_DIR = Path(__file__).resolve().parent
KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB
CHUNK = MIB
"""Chunk size used everywhere: client reads, zstd baselines, payload generation."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``url``/health until it answers 200; exit if the process dies or 30 s pass."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"emulator exited early with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("emulator did not come up within 30 s")


class Emulator:
    """``python -m objectstore_sync serve`` in a separate process on 127.0.0.1.

    Objects are kept in memory unless ``data_dir`` is given. The process is
    terminated (then killed, if it lingers) when the context exits.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "objectstore_sync",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if data_dir is not None:
            command += ["--data-dir", os.fspath(data_dir)]
        self._command = command
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> Emulator:
        self._process = subprocess.Popen(self._command, stderr=subprocess.DEVNULL)
        try:
            wait_until_up(self.url, self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


# ------------------------------------------------------------------ payloads

_WORDS = (
    "request served",
    "cache miss",
    "user signed in",
    "upload complete",
    "retrying after backoff",
    "slow query",
    "event processed",
    "rate limited",
)
_LEVELS = ("debug", "info", "info", "info", "warning", "error")


def json_like(size: int, seed: int = 6) -> bytes:
    """``size`` bytes of newline-delimited JSON log events (compresses about 5-10x)."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    total = 0
    i = 0
    while total < size:
        line = (
            f'{{"id": {1_000_000 + i}, "ts": "2025-11-{1 + i % 28:02d}T{i % 24:02d}:'
            f'{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z", '
            f'"level": "{rng.choice(_LEVELS)}", "user": "u{rng.randrange(5000)}", '
            f'"org": {rng.randrange(1, 400)}, "message": "{rng.choice(_WORDS)}", '
            f'"duration_ms": {rng.randrange(2000)}, "trace": "{rng.getrandbits(64):016x}"}}\n'
        ).encode()
        lines.append(line)
        total += len(line)
        i += 1
    return b"".join(lines)[:size]


# JSON-like payloads of any size cycle through this many distinct bytes: more
# than zstd level 3's 2 MiB window, so repetition cannot inflate the ratio.
_JSON_PERIOD = 8 * MIB


def iter_payload(size: int, kind: str) -> Iterator[bytes]:
    """The payload of ``size`` bytes of ``kind`` ("json" or "random") in 1 MiB chunks."""
    if kind not in ("json", "random"):
        raise ValueError(f"unknown payload kind {kind!r}")
    base = json_like(min(size, _JSON_PERIOD)) if kind == "json" else b""
    rng = random.Random(size)
    written = 0
    while written < size:
        n = min(CHUNK, size - written)
        if kind == "json":
            start = written % len(base)
            block = base[start : start + n]
            if len(block) < n:
                block += base[: n - len(block)]
        else:
            block = rng.randbytes(n)
        yield block
        written += n


def write_payload(path: Path, size: int, kind: str) -> str:
    """Write the payload to ``path`` (if not there yet) and return its SHA-256."""
    digest = hashlib.sha256()
    if path.exists() and path.stat().st_size == size:
        with path.open("rb") as source:
            while block := source.read(CHUNK):
                digest.update(block)
        return digest.hexdigest()
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        for block in iter_payload(size, kind):
            out.write(block)
            digest.update(block)
    partial.replace(path)
    return digest.hexdigest()


# -------------------------------------------------------------------- memory


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB.

    ``VmHWM`` of /proc/self/status, which is ``getrusage(RUSAGE_SELF).ru_maxrss``
    without its inheritance: on Linux a process started by (v)fork+exec reports
    in ``ru_maxrss`` at least the peak RSS of its *parent* (the old memory map's
    high-water mark is folded in at exec), which would hide the client's own
    figure under the harness's. Falls back to ``ru_maxrss`` elsewhere.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ---------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    """Median of ``values`` (NaN for none)."""
    return statistics.median(values) if values else float("nan")


# ----------------------------------------------------------------- the machine


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, with the number of logical CPUs."""
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {os.cpu_count()} logical CPUs"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@contextlib.contextmanager
def scratch_dir(prefix: str = "objectstore-bench-") -> Iterator[Path]:
    """A temporary directory removed on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield Path(path)


# -------------------------------------------- small operations, one at a time, timed

SMALL_OPS = ("put", "get", "head", "delete")
SMALL_TWINS = ("sync", "async")
_WARMUP = 25


def time_small_ops(
    twin: str, url: str, keys: Sequence[str], payload: bytes, **client_options: Any
) -> dict[str, float]:
    """Client CPU µs per operation of a put, get (read whole), head and delete of each of
    ``keys``, one at a time, after a warm-up, with a client of ``twin`` made with
    ``client_options``."""
    if twin == "async":
        return asyncio.run(_atime_small_ops(url, keys, payload, client_options))
    import objectstore_sync

    with objectstore_sync.Client(url, **client_options) as client:
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
        for i in range(_WARMUP):
            for op in SMALL_OPS:
                ops[op](f"warm-{i}")
        result = {}
        for op in SMALL_OPS:
            started = time.process_time()
            for key in keys:
                ops[op](key)
            result[op] = (time.process_time() - started) / len(keys) * 1e6
        return result


async def _atime_small_ops(
    url: str, keys: Sequence[str], payload: bytes, client_options: dict[str, Any]
) -> dict[str, float]:
    import objectstore_async

    async with objectstore_async.AsyncClient(url, **client_options) as client:
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
        for i in range(_WARMUP):
            for op in SMALL_OPS:
                await ops[op](f"warm-{i}")
        result = {}
        for op in SMALL_OPS:
            started = time.process_time()
            for key in keys:
                await ops[op](key)
            result[op] = (time.process_time() - started) / len(keys) * 1e6
        return result


def run_json(args: Sequence[str], label: str, tree: Path | None = None) -> Any:
    """Run ``python ARGS`` in a fresh process with ``tree`` (default: this one) first on
    the path and as its directory; the JSON value its last line prints."""
    tree = tree or BENCH_DIR.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(BENCH_DIR)]))
    done = subprocess.run(
        [sys.executable, *args],
        cwd=tree,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{label} failed: {(done.stderr or done.stdout).strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(script: str, spec: Sequence[object], label: str) -> dict[str, float]:
    """Run ``script --child JSON(spec)``: the figures it prints (see :func:`run_json`)."""
    measured: dict[str, float] = run_json([script, "--child", json.dumps(list(spec))], label)
    return measured


def alternating_rounds(
    script: str, variants: Sequence[str], rounds: int, ops: int
) -> dict[tuple[str, str, str], list[float]]:
    """Per (twin, variant, op), the CPU figures of ``rounds`` runs of ``script``'s child
    against one emulator, the variants' order alternating round by round."""
    cpu: dict[tuple[str, str, str], list[float]] = {}
    with Emulator() as emulator:
        print(f"emulator {emulator.url}; {rounds} rounds of {ops} ops per kind")
        for round_ in range(rounds):
            order = variants if round_ % 2 == 0 else variants[::-1]
            for twin in SMALL_TWINS:
                for variant in order:
                    spec = [twin, variant, emulator.url, ops]
                    for op, value in run_child(script, spec, f"{twin}/{variant}").items():
                        cpu.setdefault((twin, variant, op), []).append(value)
            print(f"  round {round_ + 1}/{rounds} done", flush=True)
    return cpu
