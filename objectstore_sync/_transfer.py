"""``Session.download``: a managed download to a path or file (API §4), blocking.

What to fetch is the core's (:func:`objectstore_core.plan_ranges`,
:func:`objectstore_core.check_unchanged`); this module does the file I/O and
runs the range requests of a parallel download in worker threads.
"""

from __future__ import annotations

import errno
import os
import secrets
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from pathlib import Path
from typing import IO, TYPE_CHECKING

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
    from objectstore_sync._client import Session

__all__ = ["Destination", "download"]


class Destination:
    """Where a download goes: a temp file beside ``dest`` renamed at the end, or a file.

    The temp file is created with mode 0o666 less the umask, like any new
    file; a failed download removes it and leaves ``dest`` untouched.
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


def download(
    self: Session,
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
    called from this thread as bytes arrive. A missing object raises
    ObjectNotFound.
    """
    validate_key(key)
    validate_download(dest, concurrency, progress)
    meter = download_meter(self._flows.target)  # None unless the client's backend records
    if meter is not None:
        meter.begin(time.monotonic())
    target = Destination(dest)
    try:
        metadata = _fetch(self, key, target, concurrency, progress)
    except BaseException as error:
        target.discard()
        if meter is not None:
            meter.failed(time.monotonic(), error)
        raise
    target.commit()
    if meter is not None:
        meter.done(time.monotonic(), target.written)
    return metadata


def _fetch(
    session: Session, key: str, target: Destination, concurrency: int, progress: Progress | None
) -> Metadata:
    ranges = None
    expected = None
    if concurrency > 1 and target.seekable:
        expected = session.head(key)
        if expected is None:
            raise not_found(key)
        ranges = plan_ranges(expected, concurrency)
    if ranges is None or expected is None:
        response = session.get(key)
        if response is None:
            raise not_found(key)
        with response:
            metadata = response.metadata
            total = metadata.size if metadata.compression is None else None
            done = 0
            for chunk in response.iter_bytes():
                target.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        return metadata

    def fetch(first: int, last: int) -> bytes:
        response = session.get(key, byte_range=(first, last))
        if response is None:
            raise not_found(key)
        with response:
            check_unchanged(expected, response.metadata, key)
            return response.read()

    done, total = 0, expected.size
    pending = list(reversed(ranges))
    with ThreadPoolExecutor(concurrency, thread_name_prefix="objectstore-range") as pool:
        running: dict[Future[bytes], int] = {}
        try:
            while pending or running:
                while pending and len(running) < concurrency:
                    first, last = pending.pop()
                    running[pool.submit(copy_context().run, fetch, first, last)] = first
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    first = running.pop(future)
                    data = future.result()
                    target.write_at(first, data)
                    done += len(data)
                    if progress is not None:
                        progress(done, total)
        except BaseException:
            for future in running:
                future.cancel()
            raise
    return expected
