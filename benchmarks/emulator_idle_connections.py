"""The emulator under 300 idle connections: threads and memory, and another client served.

Starts the emulator (an ``EmulatorServer`` with short idle and head
timeouts) in a separate process on 127.0.0.1, then opens 300 connections
that never complete a request: half send nothing, half send half a request
head. While they are held, another client keeps putting and getting
objects. Prints the server process's thread count and RSS (from /proc,
so Linux only) before, while the connections are held, and after the idle
and head timeouts have closed them, plus what the held sockets were
answered and how the other client fared. Every wait is bounded.

    python benchmarks/emulator_idle_connections.py [--connections 300] [--timeout 3]
        [--requests 200] [--max-connections 1024]

With ``--max-connections`` below ``--connections``, the connections past
the cap are answered 503 at once.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import free_port, wait_until_up

from objectstore_sync import Client, Usecase

SERVER = """
import sys
from objectstore_sync.emulator import EmulatorServer

port, timeout, cap = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
server = EmulatorServer(
    "127.0.0.1", port, idle_timeout=timeout, head_timeout=timeout, max_connections=cap
)
try:
    server.serve_forever()
finally:
    server.shutdown()
"""
HALF_HEAD = b"GET /v1/objects/bench/org=1/k HTTP/1.1\r\nhost: 127.0.0.1\r\nx-pad: "


def process_status(pid: int) -> tuple[int, float]:
    """The process's (thread count, RSS in MiB), from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


def until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll ``condition`` for at most ``seconds``; whether it came true."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def show(label: str, pid: int) -> tuple[int, float]:
    threads, rss = process_status(pid)
    print(f"{label:<38} threads {threads:>4}   RSS {rss:7.1f} MiB")
    return threads, rss


def open_held(url_port: int, count: int) -> list[socket.socket]:
    held = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", url_port), timeout=30)
        if i % 2:
            sock.sendall(HALF_HEAD)  # a head that never ends
        held.append(sock)
    return held


def answers(held: list[socket.socket]) -> Counter[str]:
    """What each held socket got before the server closed it (bounded reads)."""
    seen: Counter[str] = Counter()
    for sock in held:
        sock.settimeout(5)
        try:
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            seen[data[:12].decode("latin-1").strip() or "closed, no answer"] += 1
        except TimeoutError:
            seen["still open"] += 1
        except OSError as exc:
            seen[type(exc).__name__] += 1
        finally:
            sock.close()
    return seen


def serve_other_client(url: str, requests: int) -> tuple[int, int, list[float]]:
    """(succeeded, failed, seconds per put+get) for a client working meanwhile."""
    ok = failed = 0
    took = []
    with Client(url, timeout=30) as client:
        session = client.session(Usecase("bench"), org=1)
        for i in range(requests):
            start = time.perf_counter()
            try:
                key = session.put(b"x" * 1024, key=f"other-{i}")
                got = session.get(key)
                if got is None or got.read() != b"x" * 1024:
                    raise RuntimeError(f"{key} did not read back")
                ok += 1
            except Exception:  # counted, not hidden: the summary shows failures
                failed += 1
            took.append(time.perf_counter() - start)
    return ok, failed, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=3.0, help="idle and head timeout (s)")
    parser.add_argument("--requests", type=int, default=200, help="put+get of the other client")
    parser.add_argument("--max-connections", type=int, default=1024)
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        raise SystemExit("this benchmark reads /proc/<pid>/status: Linux only")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", SERVER, str(port), str(args.timeout)]
    command.append(str(args.max_connections))
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(url, process)
        pid = process.pid
        print(
            f"{args.connections} held connections (half silent, half with half a head), "
            f"idle/head timeout {args.timeout:g} s, cap {args.max_connections}"
        )
        base_threads, _ = show("before", pid)
        held = open_held(port, args.connections)
        expected = base_threads + min(args.connections, args.max_connections)
        until(lambda: process_status(pid)[0] >= expected, 10)
        show(f"holding {args.connections} connections", pid)
        started = time.monotonic()
        ok, failed, took = serve_other_client(url, args.requests)
        show("after the other client's requests", pid)
        median_ms = statistics.median(took) * 1000
        print(
            f"other client: {ok} put+get ok, {failed} failed, median {median_ms:.2f} ms, "
            f"worst {max(took) * 1000:.2f} ms (in {time.monotonic() - started:.1f} s)"
        )
        back = until(lambda: process_status(pid)[0] <= base_threads, args.timeout + 15)
        show("after the timeouts" + ("" if back else " (NOT back down)"), pid)
        summary = ", ".join(f"{n} {what}" for what, n in answers(held).most_common())
        print(f"held sockets: {summary}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
