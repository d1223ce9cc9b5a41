"""Streamed downloads for the async twin: ``AsyncGetResponse`` and its payload."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import NamedTuple

import anyio
import anyio.lowlevel

from objectstore_async._transport import AsyncRawBody
from objectstore_core import Download, GetOutcome, Metadata, ObjectstoreError, check_chunk_size

__all__ = ["AsyncGetResponse", "AsyncPayload"]

_TURN_SECONDS = 0.005
"""Longest a download decodes buffered input before other tasks get a turn.

Reading what is already buffered never waits, and one received piece of
highly compressible data can decode to tens of MiB: without a turn in
between, the event loop would stall for as long.
"""


class AsyncPayload:
    """The body of a fetched object, read with ``await payload.read(n)`` or ``async for``.

    Bytes are pulled from the connection only as you read and decompressed
    on the fly. The connection goes back to the pool at the end of the body
    or on :meth:`aclose` (use ``async with`` on the response). A truncated or
    corrupt body raises IntegrityError.
    """

    __slots__ = ("_closed", "_download", "_failure", "_stream", "_turn_due")

    def __init__(self, stream: AsyncRawBody, download: Download) -> None:
        self._stream = stream
        self._download = download
        self._closed = False
        self._turn_due = 0.0  # set by the first read: the turns count from there
        self._failure: BaseException | None = None  # met by _pull_now, raised by _pull

    @property
    def closed(self) -> bool:
        return self._closed

    async def _pull(self, limit: int | None, whole: bool = False) -> bytes:
        """The next piece of payload (at most ``limit`` bytes); ``b""`` at the end.

        ``whole``: for a read of the whole body (bounded by ``max_read_size``).
        """
        if self._closed:
            raise ValueError("I/O operation on a closed payload")
        try:
            if (failure := self._failure) is not None:
                self._failure = None
                raise failure
            if (now := time.perf_counter()) >= self._turn_due:
                if self._turn_due:
                    await anyio.lowlevel.checkpoint()
                    now = time.perf_counter()
                self._turn_due = now + _TURN_SECONDS
            stream = self._stream
            while (chunk := self._download.read(limit, whole=whole)) is None:
                piece = self._download.piece
                data = stream.read_now(piece)
                if data is None:
                    data = await stream.read(piece)
                self._download.feed(data, last=stream.done)
        except ObjectstoreError as error:
            await self._stream.aclose()
            raise self._download.failed(error, time.monotonic()) from error.__cause__
        except BaseException:
            await self._stream.aclose()
            raise
        if self._download.unsettled and (not chunk or self._download.finished):
            self._download.settle(time.monotonic())
        return chunk

    def _pull_now(self) -> bytes | None:
        """The next natural piece, when it needs no wait and no turn is due; else None.

        Iterating a streaming download takes most pieces through this, with
        no coroutine of its own. Anything else (a turn, a wait, the end, an
        error) is left to :meth:`_pull`; an error met here is raised there.
        """
        if self._closed or self._failure is not None or time.perf_counter() >= self._turn_due:
            return None
        download = self._download
        stream = self._stream
        try:
            while (chunk := download.read(None)) is None:
                data = stream.read_now(download.piece)
                if data is None:
                    return None
                download.feed(data, last=stream.done)
        except BaseException as error:  # raised by _pull, which closes the stream
            self._failure = error
            return None
        if not chunk:
            return None  # the end: _pull finds it again and settles
        if download.finished and download.unsettled:
            download.settle(time.monotonic())
        return chunk

    async def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all remaining bytes when negative or None).

        Reading all remaining bytes raises IntegrityError once the payload
        passes the ``max_read_size`` of the client or of the ``get``.
        """
        parts = []
        if size is None or size < 0:
            while chunk := await self._pull(None, whole=True):
                parts.append(chunk)
                if self._download.finished:
                    break  # the next pull would give b"": an object in one piece ends here
        else:
            while size > 0 and (chunk := await self._pull(size)):
                parts.append(chunk)
                size -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate over chunks of up to 256 KiB decoded, or as received for raw objects."""
        return self.aiter_bytes()

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield the body in chunks of ``chunk_size`` bytes (natural chunks if None)."""
        check_chunk_size(chunk_size)
        return _Chunks(self, chunk_size)

    async def aclose(self) -> None:
        """Stop reading and release the connection (closing it if the body is unfinished)."""
        if not self._closed:
            self._closed = True
            if self._download.unsettled:
                self._download.settle(time.monotonic())
            if self._download.finished:
                return  # the connection went back to the pool at the end of the body
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()


class _Chunks:
    """The iterator of :meth:`AsyncPayload.aiter_bytes`.

    A plain object rather than an async generator: abandoning it (a break, a
    cancelled task) needs no finalization, which trio would otherwise report
    as a ResourceWarning. The connection is released by the payload.
    """

    __slots__ = ("_payload", "_size")

    def __init__(self, payload: AsyncPayload, size: int | None) -> None:
        self._payload = payload
        self._size = size

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self._size is None:
            chunk = self._payload._pull_now()
            if chunk is None:
                chunk = await self._payload._pull(None)
        else:
            chunk = await self._payload.read(self._size)
        if not chunk:
            raise StopAsyncIteration
        return chunk


class _AsyncGetResponseFields(NamedTuple):
    metadata: Metadata
    payload: AsyncPayload


class AsyncGetResponse(_AsyncGetResponseFields):
    """A fetched object: ``metadata`` and a streamed ``payload``.

    A named tuple (``metadata, payload = ...``) and an async context manager
    that releases the connection::

        async with await session.get("key") as obj:
            data = await obj.aread()
    """

    __slots__ = ()

    async def aread(self) -> bytes:
        """The whole (decoded) payload, within ``max_read_size`` (else IntegrityError)."""
        return await self.payload.read()

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The payload in chunks (see :meth:`AsyncPayload.aiter_bytes`)."""
        return self.payload.aiter_bytes(chunk_size)

    async def aclose(self) -> None:
        """Release the connection without reading the rest."""
        await self.payload.aclose()

    async def __aenter__(self) -> AsyncGetResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def open_async_response(
    outcome: GetOutcome, stream: AsyncRawBody, download: Download
) -> AsyncGetResponse:
    """Wrap a found object's open body (from the core's get flow) for the caller."""
    return AsyncGetResponse(outcome.metadata, AsyncPayload(stream, download))
