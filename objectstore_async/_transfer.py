"""``AsyncSession.download``: a managed download to a path or file (API §4), awaited.

What to fetch, in which ranges and in what order is the core's
(:func:`objectstore_core.download_flow`); this module opens, writes, renames
or removes the destination in worker threads, and the driver runs the
flow's range requests as tasks.
"""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, cast

import anyio
import anyio.to_thread

from objectstore_async._driver import adrive
from objectstore_core import Metadata, download_flow, validate_download
from objectstore_core._paths import validate_key
from objectstore_core._transfer import DownloadTarget, Progress

if TYPE_CHECKING:
    from objectstore_async._client import AsyncSession

__all__ = ["download"]


class _Destination:
    """The file work of a :class:`DownloadTarget`: open, write, rename or remove.

    Every call blocks: the caller runs them in a worker thread.
    """

    def __init__(self, dest: str | os.PathLike[str] | IO[bytes]) -> None:
        self.target = target = DownloadTarget(dest)
        if target.temp is None:
            self.file = cast(IO[bytes], dest)
        elif not target.temp.parent.is_dir():
            raise target.missing_directory()
        else:
            fd = os.open(target.temp, target.TEMP_FLAGS, target.TEMP_MODE)
            self.file = os.fdopen(fd, "wb")
        seekable = getattr(self.file, "seekable", None)
        self.seekable = bool(callable(seekable) and seekable())
        target.start = self.file.tell() if self.seekable else 0

    def write_at(self, offset: int | None, data: bytes) -> None:
        position = self.target.position(offset)
        if position is not None:
            self.file.seek(position)
        self.file.write(data)

    def commit(self) -> None:
        temp, final = self.target.temp, self.target.final
        if temp is None or final is None:
            self.file.flush()
            return
        self.file.close()
        os.replace(temp, final)

    def discard(self) -> None:
        if self.target.temp is not None:
            self.file.close()
            self.target.temp.unlink(missing_ok=True)


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
    client = self._client
    target = await anyio.to_thread.run_sync(_Destination, dest)
    flow = download_flow(
        self._flows.target, key, concurrency=concurrency, seekable=target.seekable,
        progress=progress,
    )  # fmt: skip
    try:
        metadata, _ = await adrive(flow, client._transport, client._zstd, sink=target.write_at)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(target.discard)
        raise
    await anyio.to_thread.run_sync(target.commit)
    return metadata
