"""One request in progress: the push-style :class:`Exchange` and its body sinks.

An exchange either knows its response from the start (the body is
discarded) or owns a *sink* that consumes the body: :class:`UploadSink`
streams it into a storage writer and commits on finish, :class:`BufferSink`
collects a small body (PATCH) for a callback. See the handler module for the
protocol a transport follows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from objectstore_core.emulator._messages import (
    BodyStream,
    BytesLike,
    ServerResponse,
    json_error,
)
from objectstore_core.emulator._object_headers import WriteMetadata
from objectstore_core.emulator._storage import ObjectWriter

__all__ = [
    "BufferSink",
    "Exchange",
    "Sink",
    "UploadSink",
    "read_body",
    "read_stream",
    "service_error",
]


def service_error(status: int, message: str) -> ServerResponse:
    """A JSON ``service error: ...`` response with its cause (PROTOCOL §1.3)."""
    return json_error(status, f"service error: {message}", [message])


class Sink(Protocol):
    """Consumes a request body for an exchange that needs it.

    A sink may also offer ``buffer(hint) -> memoryview | None`` and
    ``buffer_filled(count)``; see :meth:`Exchange.buffer`.
    """

    def feed(self, data: BytesLike) -> None: ...
    def finish(self) -> ServerResponse: ...
    def abort(self) -> None: ...


class Exchange:
    """One request in progress (the driving protocol is in :mod:`._handler`'s docstring).

    ``response`` is set from the start when the body is irrelevant, and
    after :meth:`finish` in every case. Misuse (feeding after the end)
    raises RuntimeError. ``account`` (for the ``/keda`` counters) is called
    with the size of every fed chunk and once with -1 when the exchange ends.
    """

    __slots__ = ("_account", "_sink", "_state", "response")

    def __init__(
        self,
        response: ServerResponse | None = None,
        sink: Sink | None = None,
        account: Callable[[int], None] | None = None,
    ) -> None:
        self.response = response
        self._sink = sink
        self._state = "receiving"
        self._account = account

    def feed(self, data: BytesLike) -> None:
        """Push request body bytes; discarded when the response is already known."""
        if self._state != "receiving":
            raise RuntimeError(f"feed() on an exchange that is {self._state}")
        if self._sink is not None and data:
            self._sink.feed(data)
        if self._account is not None:
            self._account(len(data))

    def buffer(self, hint: int) -> memoryview | None:
        """Writable memory to receive the next body bytes into, or None.

        An optional zero-copy alternative to :meth:`feed`, in the spirit of
        :class:`asyncio.BufferedProtocol`: a transport that gets a buffer
        writes up to ``len(buffer)`` bytes into it and reports how many with
        :meth:`buffer_filled`; with None it calls :meth:`feed` as usual.
        ``hint`` is how many body bytes are known to follow (the rest of a
        content-length body or of a chunk). The two styles may be mixed.
        """
        if self._state != "receiving":
            raise RuntimeError(f"buffer() on an exchange that is {self._state}")
        if self._sink is None:
            return None
        get = getattr(self._sink, "buffer", None)
        return None if get is None else get(hint)

    def buffer_filled(self, count: int) -> None:
        """``count`` bytes were written at the start of the last :meth:`buffer`."""
        if self._state != "receiving":
            raise RuntimeError(f"buffer_filled() on an exchange that is {self._state}")
        assert self._sink is not None
        self._sink.buffer_filled(count)  # type: ignore[attr-defined]
        if self._account is not None:
            self._account(count)

    def finish(self) -> ServerResponse:
        """Signal the end of the request body and get the response."""
        if self._state != "receiving":
            raise RuntimeError(f"finish() on an exchange that is {self._state}")
        self._state = "finished"
        if self._sink is not None:
            self.response = self._sink.finish()
        self._done()
        assert self.response is not None
        return self.response

    def abort(self) -> None:
        """The client went away: drop the partial body; nothing becomes visible."""
        if self._state != "receiving":
            return
        self._state = "aborted"
        if self._sink is not None:
            self._sink.abort()
        self._done()

    def _done(self) -> None:
        if self._account is not None:
            self._account(-1)
            self._account = None


class UploadSink:
    """Streams an object body into a storage writer; commits on finish."""

    __slots__ = ("_failure", "_metadata", "_oid", "_size", "_stamped", "_success", "_writer")

    def __init__(
        self,
        writer: ObjectWriter,
        metadata: WriteMetadata,
        stamped: datetime,
        success: ServerResponse,
    ) -> None:
        self._writer = writer
        self._metadata = metadata
        self._stamped = stamped
        self._success = success
        self._size = 0
        self._failure: Exception | None = None

    def feed(self, data: BytesLike) -> None:
        if self._failure is not None:
            return
        try:
            self._writer.write(data)
        except Exception as exc:  # storage failure: answer 500 at the end (§1.4 step 7)
            self._failure = exc
            self._writer.abort()
        self._size += len(data)

    def buffer(self, hint: int) -> memoryview | None:
        """The writer's own memory for the next bytes, if it offers any (see Exchange)."""
        get = getattr(self._writer, "buffer", None)
        if self._failure is not None or get is None:
            return None
        return get(hint)  # type: ignore[no-any-return]

    def buffer_filled(self, count: int) -> None:
        self._size += count
        if self._failure is None:
            self._writer.buffer_filled(count)  # type: ignore[attr-defined]

    def finish(self) -> ServerResponse:
        if self._failure is None:
            try:
                self._writer.commit(self._metadata.record(self._size, self._stamped))
            except Exception as exc:
                self._failure = exc
                self._writer.abort()
        if self._failure is not None:
            return service_error(500, f"storage backend error: {self._failure}")
        return self._success

    def abort(self) -> None:
        self._writer.abort()


class BufferSink:
    """Buffers a small body (at most ``limit`` bytes) and hands it to ``complete``."""

    __slots__ = ("_chunks", "_complete", "_limit", "_size")

    def __init__(self, complete: Callable[[bytes], ServerResponse], limit: int) -> None:
        self._complete = complete
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, data: BytesLike) -> None:
        self._size += len(data)
        if self._size <= self._limit:
            self._chunks.append(bytes(data))

    def finish(self) -> ServerResponse:
        if self._size > self._limit:
            return json_error(413, f"client error: request body exceeds {self._limit} bytes")
        return self._complete(b"".join(self._chunks))

    def abort(self) -> None:
        self._chunks.clear()


def read_body(response: ServerResponse, chunk_size: int = 1 << 20) -> bytes:
    """Read a response body fully (closing a stream); for tests and in-process transports."""
    body = response.body
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    return read_stream(body, chunk_size)


def read_stream(stream: BodyStream, chunk_size: int = 1 << 20) -> bytes:
    """Read a body stream fully and close it."""
    try:
        chunks = []
        while chunk := stream.read(chunk_size):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        stream.close()
