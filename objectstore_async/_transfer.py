"""``AsyncSession.download``: a managed download to a path or file (API §4), awaited.

What to fetch is the core's (:func:`objectstore_core.plan_ranges`,
:func:`objectstore_core.check_unchanged`); this module does the file I/O in
worker threads and runs the range requests of a parallel download as tasks.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio
import anyio.to_thread

from objectstore_core import (
    Metadata,
    check_unchanged,
    not_found,
    plan_ranges,
    validate_download,
)
from objectstore_core._metered import download_meter
from objectstore_core._paths import validate_key
from objectstore_core._transfer import Progress

if TYPE_CHECKING:
    from objectstore_async._client import AsyncSession

__all__ = ["download"]


class _Destination:
    """Where a download goes: a temp file beside ``dest`` renamed at the end, or a file.

    Created with mode 0o666 less the umask; a failed download removes it.
    Every call blocks: the caller runs them in a worker thread.
    """

    def __init__(self, dest: str | os.PathLike[str] | IO[bytes]) -> None:
        self._final: Path | None = None
        self._temp: Path | None = None
        if isinstance(dest, str | os.PathLike):
            final = Path(dest)
            if not final.parent.is_dir():
                raise FileNotFoundError(
                    errno.ENOENT, "the destination directory does not exist", str(final.parent)
                )
            temp = final.parent / f".{final.name}.{secrets.token_hex(4)}.part"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            self.file: IO[bytes] = os.fdopen(fd, "wb")
            self._final, self._temp = final, temp
        else:
            self.file = dest
        seekable = getattr(self.file, "seekable", None)
        self.seekable = bool(callable(seekable) and seekable())
        self._start = self.file.tell() if self.seekable else 0
        self.written = 0  # bytes written, for the download's metrics

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.written += len(data)

    def write_at(self, offset: int, data: bytes) -> None:
        self.file.seek(self._start + offset)
        self.file.write(data)
        self.written += len(data)

    def commit(self) -> None:
        if self._temp is not None and self._final is not None:
            self.file.close()
            os.replace(self._temp, self._final)
        else:
            self.file.flush()

    def discard(self) -> None:
        if self._temp is not None:
            self.file.close()
            self._temp.unlink(missing_ok=True)


async def download(
    self: AsyncSession,
    key: str,
    dest: str | os.PathLike[str] | IO[bytes],
    *,
    concurrency: int = 1,
    progress: Progress | None = None,
) -> Metadata:
    """Stream object ``key`` into ``dest`` (a path or a binary file); returns its metadata.

    A path is written to a temp file beside it and renamed when complete.
    With ``concurrency > 1``, an object stored raw is fetched in byte ranges
    side by side, each checked to come from the same version of the object
    (else IntegrityError). ``progress(done_bytes, total_bytes_or_None)`` is
    called on the event loop as bytes arrive. A missing object raises
    ObjectNotFound.
    """
    validate_key(key)
    validate_download(dest, concurrency, progress)
    meter = download_meter(self._flows.target)  # None unless the client's backend records
    if meter is not None:
        meter.begin(anyio.current_time())
    target = await anyio.to_thread.run_sync(_Destination, dest)
    try:
        metadata = await _fetch(self, key, target, concurrency, progress)
    except BaseException as error:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(target.discard)
        if meter is not None:
            meter.failed(anyio.current_time(), error)
        raise
    await anyio.to_thread.run_sync(target.commit)
    if meter is not None:
        meter.done(anyio.current_time(), target.written)
    return metadata


async def _fetch(
    session: AsyncSession,
    key: str,
    target: _Destination,
    concurrency: int,
    progress: Progress | None,
) -> Metadata:
    ranges = None
    expected = None
    if concurrency > 1 and target.seekable:
        expected = await session.head(key)
        if expected is None:
            raise not_found(key)
        ranges = plan_ranges(expected, concurrency)
    if ranges is None or expected is None:
        response = await session.get(key)
        if response is None:
            raise not_found(key)
        async with response:
            metadata = response.metadata
            total = metadata.size if metadata.compression is None else None
            done = 0
            async for chunk in response.aiter_bytes():
                await anyio.to_thread.run_sync(target.write, chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        return metadata
    known: Metadata = expected
    state = {"done": 0}
    limit = anyio.Semaphore(concurrency)
    # A seek and a write are two calls on one file: ranges that arrive together are
    # written one at a time, else another worker thread's seek lands in between.
    writing = anyio.Lock()

    async def fetch(first: int, last: int) -> None:
        async with limit:
            response = await session.get(key, byte_range=(first, last))
            if response is None:
                raise not_found(key)
            async with response:
                check_unchanged(known, response.metadata, key)
                data = await response.aread()
            async with writing:
                await anyio.to_thread.run_sync(target.write_at, first, data)
        state["done"] += len(data)
        if progress is not None:
            progress(state["done"], known.size)

    try:
        async with anyio.create_task_group() as group:
            for first, last in ranges:
                group.start_soon(fetch, first, last)
    except BaseExceptionGroup as group_error:  # the first failure, as the sync twin raises it
        raise group_error.exceptions[0] from None
    return known
