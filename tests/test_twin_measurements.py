"""What the core leaves to the twins: measuring, counting, the clock, and compressing.

The core takes a file's size, the CPU count, the time and the environment as
arguments and yields a :class:`Compress` step instead of compressing (see
tests/core/test_purity.py). These tests check that each twin measures and
performs them, and where (which thread).
"""

from __future__ import annotations

import io
import os
import pathlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from objectstore_async import AsyncClient
from objectstore_async import _driver as async_driver
from objectstore_async import _sources as async_sources
from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core import (
    Compress,
    PayloadKind,
    Upload,
    ZstdContexts,
    ZstdEncoder,
    decompress,
    new_encoder,
)
from objectstore_sync import Client, SecretKey, Usecase
from objectstore_sync import _sources as sync_sources
from objectstore_sync.testing import InProcessTransport

DATA = pathlib.Path(__file__).parent / "data"
TEXT = b"".join(b"event %d: user=u%d status=ok\n" % (i, i % 97) for i in range(40_000))


@pytest.fixture
def sizes(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The payload sizes both twins' source readers hand to the core's encoder."""
    seen: list[int | None] = []

    def recording(original: Callable[..., ZstdEncoder]) -> Callable[..., ZstdEncoder]:
        def new_encoder(size: int | None = None, *args: Any, **kwargs: Any) -> ZstdEncoder:
            seen.append(size)
            return original(size, *args, **kwargs)

        return new_encoder

    monkeypatch.setattr(sync_sources, "new_encoder", recording(new_encoder))
    monkeypatch.setattr(async_sources, "new_encoder", recording(new_encoder))
    return seen


def _sync_body(upload: Upload) -> bytes:
    return b"".join(bytes(chunk) for chunk in sync_sources.iter_upload(upload))


def _async_body(upload: Upload) -> bytes:
    async def read() -> bytes:
        return b"".join([chunk async for chunk in async_sources.aiter_upload(upload)])

    return anyio.run(read)


@pytest.mark.parametrize("read", [_sync_body, _async_body], ids=["sync", "async"])
def test_source_readers_measure_files_for_the_encoder(
    read: Callable[[Upload], bytes], sizes: list[int | None], tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "payload.txt"
    path.write_bytes(TEXT[:5000])
    assert decompress(read(Upload(path, PayloadKind.PATH, compress=True))) == TEXT[:5000]
    with path.open("rb") as file:
        file.seek(1000)  # reading starts here: the rest is what is uploaded
        assert decompress(read(Upload(file, PayloadKind.FILE, compress=True))) == TEXT[1000:5000]
    in_memory = io.BytesIO(TEXT[:300])  # no descriptor: nothing to measure
    assert decompress(read(Upload(in_memory, PayloadKind.FILE, compress=True))) == TEXT[:300]
    assert sizes == [5000, 4000, None]


def test_the_twins_count_the_cpus_once() -> None:
    assert sync_sources.CPUS == async_sources.CPUS == (os.cpu_count() or 1)


@pytest.fixture
def compressing_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """``(payload size, thread)`` of every Compress step performed."""
    seen: list[tuple[int, int]] = []
    run = Compress.run

    def recorded(step: Compress, cpus: int, contexts: ZstdContexts | None = None) -> bytes:
        seen.append((step.size, threading.get_ident()))
        return run(step, cpus, contexts)

    monkeypatch.setattr(Compress, "run", recorded)
    yield seen


def test_sync_twin_compresses_in_the_calling_thread(
    compressing_threads: list[tuple[int, int]],
) -> None:
    session = Client("http://objectstore.test", transport=InProcessTransport()).session(
        Usecase("measure"), org=1
    )
    for size in (1024, 1 << 20):
        key = session.put(TEXT[:size])
        response = session.get(key)
        assert response is not None and response.read() == TEXT[:size]
    assert compressing_threads == [(1024, threading.get_ident()), (1 << 20, threading.get_ident())]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_twin_compresses_large_payloads_off_the_loop(
    compressing_threads: list[tuple[int, int]], backend: str
) -> None:
    small, large = async_driver.THREAD_MIN - 1, async_driver.THREAD_MIN

    async def main() -> None:
        client = AsyncClient("http://objectstore.test", transport=AsyncInProcessTransport())
        session = client.session(Usecase("measure"), org=1)
        for size in (small, large):
            key = await session.put(TEXT[:size])
            response = await session.get(key)
            assert response is not None and await response.aread() == TEXT[:size]

    anyio.run(main, backend=backend)
    loop = threading.get_ident()  # anyio.run runs the loop in this thread
    assert [size for size, _ in compressing_threads] == [small, large]
    assert compressing_threads[0][1] == loop
    assert compressing_threads[1][1] != loop


def test_async_twin_compresses_incompressible_payloads_up_to_a_piece_on_the_loop(
    compressing_threads: list[tuple[int, int]],
) -> None:
    """zstd stores incompressible bytes nearly as is, faster than the thread hop."""
    noise = os.urandom(async_driver.QUICK_MAX + 1)
    payloads = [noise[: async_driver.QUICK_MAX], noise, TEXT[: async_driver.QUICK_MAX]]

    async def main() -> None:
        client = AsyncClient("http://objectstore.test", transport=AsyncInProcessTransport())
        session = client.session(Usecase("measure"), org=1)
        for payload in payloads:
            key = await session.put(payload)
            response = await session.get(key)
            assert response is not None and await response.aread() == payload

    anyio.run(main, backend="asyncio")
    loop = threading.get_ident()
    assert [size for size, _ in compressing_threads] == [len(p) for p in payloads]
    on_loop = [thread == loop for _, thread in compressing_threads]
    assert on_loop == [True, False, False]  # noise up to a piece; more, or text: a thread


@pytest.mark.parametrize("twin", [Client, AsyncClient])
def test_tokens_without_now_use_the_twins_wall_clock(
    twin: type[Client] | type[AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SecretKey("test_kid", (DATA / "ed25519.private.pem").read_text())
    client = twin("http://objectstore.test", token=key)
    session = client.session(Usecase("measure"), org=1)
    monkeypatch.setattr(twin, "_wall_clock", staticmethod(lambda: 1_000_000.0))
    assert session.mint_token() == session.mint_token(now=1_000_000.0)
    url = session.presigned_object_url("GET", "k")
    assert url == session.presigned_object_url("GET", "k", now=1_000_000.0)


@pytest.mark.parametrize("twin", [Client, AsyncClient])
def test_from_env_reads_the_environment_through_the_twin(
    twin: type[Client] | type[AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        twin, "_environment", staticmethod(lambda: {"OBJECTSTORE_URL": "http://from.env:1"})
    )
    assert twin.from_env().config.base_url == "http://from.env:1"
    given = twin.from_env({"OBJECTSTORE_URL": "http://given:2"})
    assert given.config.base_url == "http://given:2"


def test_each_client_keeps_its_own_zstd_contexts() -> None:
    transport = InProcessTransport()
    first = Client("http://objectstore.test", transport=transport)
    second = Client("http://objectstore.test", transport=transport)
    session = first.session(Usecase("measure"), org=1)
    for _ in range(3):
        key = session.put(TEXT[:5000])
        response = session.get(key)
        assert response is not None and response.read() == TEXT[:5000]
    assert first._zstd.idle() == (1, 1)  # one of each kind, reused by every put and get
    assert second._zstd.idle() == (0, 0)
