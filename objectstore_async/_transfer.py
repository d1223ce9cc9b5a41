"""``AsyncSession.download``: a managed download to a path or file (API §4), awaited.

What to fetch, in which ranges and in what order is the core's
(:func:`objectstore_core.download_flow`); this module opens, writes, renames
or removes the destination in worker threads, and the driver runs the
flow's range requests as tasks.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio
import anyio.to_thread

from objectstore_async._driver import adrive
from objectstore_core import Metadata, download_flow, validate_download
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

    def write_at(self, offset: int | None, data: bytes) -> None:
        """Write ``data`` at ``offset`` from the start (None: after what was written)."""
        if offset is not None:
            self.file.seek(self._start + offset)
        self.file.write(data)

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
