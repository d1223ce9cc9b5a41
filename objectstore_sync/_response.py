"""Streamed downloads for the sync twin: ``GetResponse`` and its file-like payload."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import NamedTuple

from objectstore_core import Download, GetOutcome, Metadata, ObjectstoreError, check_chunk_size
from objectstore_sync._transport import RawBody

__all__ = ["GetResponse", "Payload"]


class Payload(io.BufferedIOBase):
    """The body of a fetched object as a binary file: ``read``, ``readinto``, iteration.

    Bytes are pulled from the connection only as you read, decompressed on
    the fly when the object is stored compressed. The connection goes back to
    the pool when the body is exhausted or the payload is closed (also when it
    is garbage collected). A truncated or corrupt body raises IntegrityError.
    """

    # Slots: no attribute dict until the payload is closed (IOBase keeps its
    # closed flag there), one object fewer for the garbage collector to visit
    # per payload held (a batch hands out thousands). ``_finalizing`` is set by
    # IOBase's finalizer before it calls close().
    __slots__ = ("_download", "_finalizing", "_stream")

    def __init__(self, stream: RawBody, download: Download) -> None:
        # IOBase's __init__ is object's: not called, a payload per get.
        self._stream = stream
        self._download = download
        self._finalizing = False
        # A payload dropped without close() is closed when collected (IOBase
        # finalizes by calling close), which releases the connection.

    def readable(self) -> bool:
        return True

    def _pull(self, limit: int | None, whole: bool = False) -> bytes:
        """The next piece of payload (at most ``limit`` bytes); ``b""`` at the end.

        ``whole``: for a read of the whole body (bounded by ``max_read_size``).
        """
        if self.closed:
            raise ValueError("I/O operation on a closed payload")
        try:
            while (chunk := self._download.read(limit, whole=whole)) is None:
                data = self._stream.read(self._download.piece)
                self._download.feed(data, last=self._stream.done)
        except ObjectstoreError as error:
            self._stream.close()
            raise self._download.failed(error, time.monotonic()) from error.__cause__
        except BaseException:
            self._stream.close()
            raise
        if self._download.unsettled and (not chunk or self._download.finished):
            self._download.settle(time.monotonic())
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all remaining bytes when negative or None).

        Reading all remaining bytes raises IntegrityError once the payload
        passes the ``max_read_size`` of the client or of the ``get``.
        """
        parts = []
        if size is None or size < 0:
            while chunk := self._pull(None, whole=True):
                parts.append(chunk)
                if self._download.finished:
                    break  # the next pull would give b"": an object in one piece ends here
            return parts[0] if len(parts) == 1 else b"".join(parts)
        while size > 0 and (chunk := self._pull(size)):
            parts.append(chunk)
            size -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read1(self, size: int = -1) -> bytes:
        """Read at most one decoded chunk (no more than ``size`` bytes if positive)."""
        if size == 0:
            return b""
        return self._pull(None if size is None or size < 0 else size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over chunks: up to 256 KiB decoded, or as received if raw (not lines)."""
        return self.iter_bytes()

    def __next__(self) -> bytes:
        chunk = self._pull(None)
        if not chunk:
            raise StopIteration
        return chunk

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the body in chunks of ``chunk_size`` bytes (natural chunks if None)."""
        check_chunk_size(chunk_size)
        while chunk := (self._pull(None) if chunk_size is None else self.read(chunk_size)):
            yield chunk

    def close(self) -> None:
        """Stop reading and release the connection (closing it if the body is unfinished)."""
        if self.closed:
            return
        self._stream.close()
        if self._download.unsettled:
            self._download.settle(time.monotonic())
        # IOBase's close records the closed flag, making the attribute dict for
        # it: a payload being finalized is past being looked at, and skipping
        # that makes dropping an unclosed payload cost a third as much.
        if not self._finalizing:
            super().close()


class _GetResponseFields(NamedTuple):
    metadata: Metadata
    payload: Payload


class GetResponse(_GetResponseFields):
    """A fetched object: ``metadata`` and a streamed ``payload``.

    Still the official client's named tuple (``metadata, payload = ...``
    works), and also a context manager that releases the connection::

        with session.get("key") as obj:
            data = obj.read()
    """

    __slots__ = ()

    def read(self) -> bytes:
        """The whole (decoded) payload, within ``max_read_size`` (else IntegrityError)."""
        return self.payload.read()

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The payload in chunks (see :meth:`Payload.iter_bytes`)."""
        return self.payload.iter_bytes(chunk_size)

    def close(self) -> None:
        """Release the connection without reading the rest."""
        self.payload.close()

    def __enter__(self) -> GetResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_response(outcome: GetOutcome, stream: RawBody, download: Download) -> GetResponse:
    """Wrap a found object's open body (from the core's get flow) for the caller."""
    return GetResponse(outcome.metadata, Payload(stream, download))
