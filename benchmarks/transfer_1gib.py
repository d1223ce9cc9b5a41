"""Upload and download 1 GiB through the sync client against ``objectstore serve``.

Starts the emulator as a separate process on loopback with a data directory,
streams a 1 GiB file up (zstd-compressed on the fly) and back down (decoded
on the fly) while hashing, verifies the SHA-256, and prints throughput and
the client process's peak RSS. Target: peak RSS under 100 MiB.

    python benchmarks/transfer_1gib.py [--size-mib 1024] [--compressible]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

from _harness import Emulator, peak_rss_kib

from objectstore_sync import Client, Usecase

__all__ = ["main", "make_source", "peak_rss_mib"]

CHUNK = 1024 * 1024


def make_source(path: Path, size: int, compressible: bool) -> str:
    """Write ``size`` bytes to ``path`` and return their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        written = 0
        counter = 0
        while written < size:
            n = min(CHUNK, size - written)
            if compressible:
                line = f'{{"event": {counter}, "level": "info", "message": "request served"}}\n'
                block = (line.encode() * (n // len(line) + 1))[:n]
                counter += 1
            else:
                block = os.urandom(n)
            out.write(block)
            digest.update(block)
            written += n
    return digest.hexdigest()


def peak_rss_mib() -> float:
    return peak_rss_kib() / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--compressible", action="store_true", help="JSON-like data")
    args = parser.parse_args()
    size = args.size_mib * CHUNK

    with tempfile.TemporaryDirectory(prefix="objectstore-bench-") as work:
        source = Path(work) / "source.bin"
        print(f"writing {args.size_mib} MiB source file ...", flush=True)
        expected = make_source(source, size, args.compressible)
        rss_before = peak_rss_mib()

        with (
            Emulator(data_dir=Path(work) / "data") as emulator,
            Client(emulator.url, timeout=60) as client,
        ):
            session = client.session(Usecase("benchmark"), org=1)
            start = time.perf_counter()
            key = session.put(source, key="one-gib")
            upload = time.perf_counter() - start

            digest = hashlib.sha256()
            received = 0
            start = time.perf_counter()
            response = session.get(key)
            assert response is not None
            with response:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    received += len(chunk)
            download = time.perf_counter() - start

    ok = digest.hexdigest() == expected and received == size
    mib = size / CHUNK
    peak = peak_rss_mib()
    print(f"data:        {args.size_mib} MiB, {'compressible' if args.compressible else 'random'}")
    print(f"upload:      {upload:.2f} s  ({mib / upload:.0f} MiB/s)")
    print(f"download:    {download:.2f} s  ({mib / download:.0f} MiB/s)")
    print(f"sha256:      {'match' if ok else 'MISMATCH'}")
    print(f"peak RSS:    {peak:.1f} MiB (client process; {rss_before:.1f} MiB before the transfer)")
    print(f"target:      peak RSS < 100 MiB -> {'met' if peak < 100 else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
