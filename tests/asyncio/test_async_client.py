"""Behaviour specific to the async twin: concurrency, cancellation, trio.

The shared behaviour of both twins is in tests/behaviour; these tests cover
what only an async client can do wrong.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.lowlevel
import pytest

from objectstore_async import AsyncClient, AsyncSession, Usecase
from objectstore_async.testing import LocalServer


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def _run(test: object, *args: object, backend: str = "asyncio") -> None:
    anyio.run(test, *args, backend=backend)  # type: ignore[arg-type]


def test_thousand_concurrent_gets_with_bounded_connections(server: LocalServer) -> None:
    before = server.server.connections_accepted
    payload = os.urandom(4096)

    async def main() -> None:
        async with AsyncClient(server.url, max_connections=16, timeout=30) as client:
            session = client.session(Usecase("concurrency"), org=1)
            key = await session.put(payload)
            results: list[bytes] = []

            async def fetch() -> None:
                response = await session.get(key)
                assert response is not None
                async with response:
                    results.append(await response.aread())

            async with anyio.create_task_group() as group:
                for _ in range(1000):
                    group.start_soon(fetch)
            assert len(results) == 1000
            assert all(result == payload for result in results)

    _run(main)
    opened = server.server.connections_accepted - before
    assert 1 <= opened <= 16, f"{opened} connections for 1000 gets with max_connections=16"


async def _slow_body(started: anyio.Event) -> AsyncIterator[bytes]:
    yield os.urandom(64 * 1024)
    started.set()
    await anyio.sleep_forever()
    yield b""  # pragma: no cover - never reached


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cancelled_upload_releases_connection_and_leaves_no_object(
    server: LocalServer, backend: str
) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, max_connections=1, timeout=10) as client:
            session = client.session(Usecase("cancel"), org=1)
            started = anyio.Event()
            async with anyio.create_task_group() as group:

                async def upload() -> None:
                    await session.put(_slow_body(started), key="never")

                group.start_soon(upload)
                await started.wait()
                await anyio.sleep(0.05)
                group.cancel_scope.cancel()
            # The only connection must be free again, and nothing was stored.
            with anyio.fail_after(5):
                assert await session.head("never") is None
                assert await session.put(b"after", key="after") == "after"

    _run(main, backend=backend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cancelled_download_releases_connection(server: LocalServer, backend: str) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, max_connections=1, timeout=10) as client:
            session = client.session(Usecase("cancel"), org=2)
            data = os.urandom(8 * 1024 * 1024)
            await session.put(data, key="big", compress="none")
            got_first = anyio.Event()
            async with anyio.create_task_group() as group:

                async def download() -> None:
                    response = await session.get("big")
                    assert response is not None
                    async with response:
                        async for _chunk in response.aiter_bytes(1024):
                            got_first.set()
                            await anyio.sleep(0.01)

                group.start_soon(download)
                await got_first.wait()
                group.cancel_scope.cancel()
            with anyio.fail_after(5):
                response = await session.get("big")
                assert response is not None
                async with response:
                    assert await response.aread() == data

    _run(main, backend=backend)


def test_abandoned_response_after_aclose_keeps_client_usable(server: LocalServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, max_connections=1, timeout=10) as client:
            session: AsyncSession = client.session(Usecase("cancel"), org=3)
            await session.put(os.urandom(3 * 1024 * 1024), key="k", compress="none")
            for _ in range(3):
                response = await session.get("k")
                assert response is not None
                assert len(await response.payload.read(10)) == 10
                await response.aclose()
            with anyio.fail_after(5):
                assert await session.head("k") is not None

    _run(main)


def test_async_file_and_path_sources(server: LocalServer, tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "payload.bin"
    data = os.urandom(300_000)
    path.write_bytes(data)

    async def main() -> None:
        async with AsyncClient(server.url) as client:
            session = client.session(Usecase("sources"), org=1)
            async with await anyio.open_file(path, "rb") as file:
                key = await session.put(file, key="async-file")
            response = await session.get(key)
            assert response is not None and await response.aread() == data
            key = await session.put(path, key="path")
            response = await session.get(key)
            assert response is not None and await response.aread() == data

    _run(main)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("usecase", [Usecase("dl_zstd"), Usecase("dl_raw", compression="none")])
def test_a_download_into_an_async_file_awaits_its_methods(
    server: LocalServer, tmp_path: object, backend: str, usecase: Usecase
) -> None:
    """An async file (anyio's here) is written through its own coroutines, from
    where it stood, in parallel ranges too; the caller's file stays open."""
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "copy.bin"
    data = os.urandom(700_000)

    async def main() -> None:
        async with AsyncClient(server.url) as client:
            session = client.session(usecase, org=1)
            key = await session.put(data, key="to-async-file")
            async with await anyio.open_file(path, "wb") as file:
                await file.write(b"head:")
                await session.download(key, file, concurrency=3)
                assert not file.closed
            assert path.read_bytes() == b"head:" + data

    with pytest.MonkeyPatch.context() as patch:
        import objectstore_core._transfer as transfer

        patch.setattr(transfer, "DEFAULT_PART_SIZE", 64 * 1024)  # several ranges
        _run(main, backend=backend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_file_read_and_compressed_in_a_worker_thread(
    server: LocalServer, tmp_path: object, backend: str
) -> None:
    import io
    import pathlib
    import threading

    path = pathlib.Path(str(tmp_path)) / "big.bin"
    data = b"".join(b"line %d of a compressible payload\n" % i for i in range(100_000))
    path.write_bytes(data)  # about 3.4 MiB: several pieces
    loop_thread = threading.get_ident()
    readers: set[int] = set()

    class Watched(io.FileIO):
        def read(self, size: int | None = -1) -> bytes:
            readers.add(threading.get_ident())
            return super().read(size)

    async def main() -> None:
        async with AsyncClient(server.url) as client:
            session = client.session(Usecase("sources"), org=1)
            with Watched(path, "rb") as file:
                key = await session.put(file, key="big-file")
            response = await session.get(key)
            assert response is not None and await response.aread() == data

    _run(main, backend=backend)
    assert readers and loop_thread not in readers  # the event loop never read the disk


def test_a_path_is_read_and_compressed_off_the_loop_by_two_workers(
    server: LocalServer, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the sync twin does: a compressible path of 1 MiB or more, its size
    known from the file system, gets two zstd workers; and, as for files,
    the event loop neither reads nor compresses it."""
    import pathlib
    import threading

    from objectstore_async import _sources
    from objectstore_core import ZstdEncoder, new_encoder

    path = pathlib.Path(str(tmp_path)) / "big.txt"
    data = b"".join(b"line %d of a compressible payload\n" % i for i in range(100_000))
    path.write_bytes(data)
    loop_thread = threading.get_ident()
    encoders: list[ZstdEncoder] = []
    encoding_threads: set[int] = set()

    def watched(*args: object, **kwargs: object) -> ZstdEncoder:
        encoder = new_encoder(*args, **kwargs)  # type: ignore[arg-type]
        encode = encoder.encode

        def recorded(chunk: bytes | bytearray | memoryview) -> bytes:
            encoding_threads.add(threading.get_ident())
            return encode(chunk)

        encoder.encode = recorded  # type: ignore[method-assign,assignment]
        encoders.append(encoder)
        return encoder

    monkeypatch.setattr(_sources, "new_encoder", watched)

    async def main() -> None:
        async with AsyncClient(server.url) as client:
            session = client.session(Usecase("sources"), org=1)
            key = await session.put(path, key="big-path")
            response = await session.get(key)
            assert response is not None and await response.aread() == data

    _run(main)
    assert [encoder.threads for encoder in encoders] == [2 if (os.cpu_count() or 1) > 1 else 0]
    assert encoding_threads and loop_thread not in encoding_threads


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_decoding_buffered_input_lets_other_tasks_run(server: LocalServer, backend: str) -> None:
    """A body that compresses 100-fold arrives in one or two socket reads, so
    reading it never waits; other tasks still get turns while it is decoded."""
    lines = b"".join(b'{"id": %d, "status": "ok"}\n' % (i % 1000) for i in range(3_000_000))

    async def main() -> None:
        async with AsyncClient(server.url, timeout=30) as client:
            session = client.session(Usecase("turns"), org=1)
            key = await session.put(lines)
            turns = 0
            downloading = True

            async def other() -> None:
                nonlocal turns
                while downloading:
                    turns += 1
                    await anyio.lowlevel.checkpoint()

            async with anyio.create_task_group() as group:
                response = await session.get(key)
                assert response is not None
                group.start_soon(other)
                await anyio.lowlevel.checkpoint()
                turns_before = turns
                received = bytearray()
                started = time.perf_counter()
                async with response:
                    async for chunk in response.aiter_bytes():
                        received += chunk
                decoding = time.perf_counter() - started
                downloading = False
            assert received == lines
            # A turn every 5 ms of decoding, give or take a chunk and a loaded
            # machine (78 MB decode in tens of ms, long enough for several turns;
            # without turns the other task would get none).
            assert turns - turns_before >= max(2, int(decoding / 0.020))

    _run(main, backend=backend)
