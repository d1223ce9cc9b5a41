"""Client CPU per authenticated HEAD: cached tokens against signing on every request.

A sync client with a ``SecretKey`` sends HEAD requests to a ``LocalServer``
enforcing auth (PROTOCOL §10). Two runs differ only in the session's
credentials: the client's own ``KeyCredentials`` (a token cached until a
quarter of its lifetime is left) and a variant that signs a fresh token for
every request, as the official clients do (PROTOCOL §15.1).

The server runs in a background thread of this process, so the client's
cost is measured with ``time.thread_time`` (CPU of the calling thread only);
``time.process_time`` (client and server) is printed as well.

    python benchmarks/auth_cpu.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from objectstore_sync import Client, SecretKey, Session, Usecase
from objectstore_sync.testing import LocalServer

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
KID = "test_kid"


class SignEveryTime:
    """Credentials that mint a new token for every request (no cache)."""

    def __init__(self, key: SecretKey, usecase: str, scope: Any) -> None:
        self.key, self.usecase, self.scope = key, usecase, scope

    def headers(self, now: float) -> tuple[tuple[str, str], ...]:
        token = self.key.token_for_scope(self.usecase, self.scope, now=now)
        return (("x-os-auth", f"Bearer {token}"),)


def measure(session: Session, key: str, requests: int) -> tuple[float, float]:
    """Microseconds of (client-thread CPU, process CPU) per HEAD."""
    for _ in range(50):  # warm up connections and caches
        session.head(key)
    thread0, process0 = time.thread_time(), time.process_time()
    for _ in range(requests):
        assert session.head(key) is not None
    thread = time.thread_time() - thread0
    process = time.process_time() - process0
    return thread / requests * 1e6, process / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()

    secret = SecretKey(KID, (DATA / "ed25519.private.pem").read_text())
    keys = {KID: DATA / "ed25519.public.pem"}
    with (
        LocalServer(auth_keys=keys, enforce_auth=True) as server,
        Client(server.url, token=secret) as client,
    ):
        cached = client.session(Usecase("bench"), org=1)
        cached.put(b"x", key="k")
        uncached = client.session(Usecase("bench"), org=1)
        flows = uncached._flows
        flows.target = dataclasses.replace(
            flows.target, credentials=SignEveryTime(secret, "bench", flows.target.scope)
        )
        results = {}
        for name, session in (("cached", cached), ("sign-every-request", uncached)):
            results[name] = measure(session, "k", args.requests)
    print(f"authenticated HEAD, {args.requests} requests each (µs of CPU per request)")
    print(f"{'credentials':<22}{'client thread':>15}{'whole process':>15}")
    for name, (thread, process) in results.items():
        print(f"{name:<22}{thread:>15.1f}{process:>15.1f}")
    (cached_client, cached_all), (fresh_client, fresh_all) = results.values()
    print(
        f"signing every request costs {fresh_client / cached_client:.2f}x the client CPU "
        f"(+{fresh_client - cached_client:.1f} µs per request); "
        f"{fresh_all / cached_all:.2f}x for the whole process"
    )


if __name__ == "__main__":
    main()
