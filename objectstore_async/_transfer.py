"""``AsyncSession.download``: a managed download to a path or file (API §4), awaited.

What to fetch, in which ranges and in what order is the core's
(:func:`objectstore_core.download_flow`); this module opens, writes, renames
or removes the destination through anyio's async files (a sync file's
calls run in worker threads; an async file is awaited), and the driver runs
the flow's range requests as tasks.
"""

from __future__ import annotations

import inspect
import os
from typing import IO, TYPE_CHECKING, Any, Protocol

import anyio

from objectstore_async._driver import adrive
from objectstore_async._sources import maybe_await, start_position
from objectstore_core import Metadata, download_flow, validate_download
from objectstore_core._paths import validate_key
from objectstore_core._transfer import DownloadTarget, Progress

if TYPE_CHECKING:
    from objectstore_async._client import AsyncSession

__all__ = ["AsyncBinaryWriter", "download"]


class AsyncBinaryWriter(Protocol):
    """An async binary file (aiofiles', anyio's): ``write`` is a coroutine function."""

    async def write(self, data: bytes, /) -> object: ...


class _Destination:
    """The file work of a :class:`DownloadTarget`, awaited.

    A path's temp file and a sync file are anyio async files (each call in a
    worker thread); an async file (whose ``write`` is a coroutine function,
    as aiofiles' and anyio's are) is awaited as it is.
    """

    __slots__ = ("file", "seekable", "target")

    def __init__(self, target: DownloadTarget, file: Any, start: int | None) -> None:
        self.target = target
        self.file = file
        self.seekable = start is not None
        target.start = start or 0

    @classmethod
    async def open(cls, dest: Any) -> _Destination:
        target = DownloadTarget(dest)
        if target.temp is not None:
            if not await anyio.Path(target.temp.parent).is_dir():
                raise target.missing_directory()
            # "xb" opens with DownloadTarget.TEMP_FLAGS and TEMP_MODE.
            temp = await anyio.open_file(target.temp, "xb")
            return cls(target, temp, 0)
        file = dest if inspect.iscoroutinefunction(dest.write) else anyio.wrap_file(dest)
        return cls(target, file, await start_position(file))

    async def write_at(self, offset: int | None, data: bytes) -> None:
        if (position := self.target.position(offset)) is not None:
            await maybe_await(self.file.seek(position))
        await self.file.write(data)

    async def finish(self, complete: bool) -> None:
        """Rename a complete temp file into place (or flush the caller's); remove a failed one."""
        temp, final = self.target.temp, self.target.final
        if temp is None or final is None:
            if complete:
                await maybe_await(self.file.flush())
            return
        await self.file.aclose()
        if complete:
            await anyio.Path(temp).replace(final)
        else:
            await anyio.Path(temp).unlink(missing_ok=True)


async def download(
    self: AsyncSession,
    key: str,
    dest: str | os.PathLike[str] | IO[bytes] | AsyncBinaryWriter,
    *,
    concurrency: int = 1,
    progress: Progress | None = None,
) -> Metadata:
    """Stream object ``key`` into ``dest`` (a path, a binary file or an async one); returns
    its metadata.

    A path is written to a temp file beside it and renamed when complete.
    With ``concurrency > 1``, an object stored raw is fetched in byte ranges
    side by side, each checked to come from the same version of the object
    (else IntegrityError). ``progress(done_bytes, total_bytes_or_None)`` is
    called on the event loop as bytes arrive. A missing object raises
    ObjectNotFound.
    """
    validate_key(key)
    validate_download(dest, concurrency, progress)
    client = self._client
    target = await _Destination.open(dest)
    flow = download_flow(
        self._flows.target, key, concurrency=concurrency, seekable=target.seekable,
        progress=progress,
    )  # fmt: skip
    try:
        metadata, _ = await adrive(flow, client._transport, client._zstd, sink=target.write_at)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await target.finish(complete=False)
        raise
    await target.finish(complete=True)
    return metadata
