"""What the emulator needs from a store, and an in-memory store.

The handler talks to storage only through the :class:`Storage` protocol:

* identity is an :class:`ObjectId` ``(usecase, scope wire string, key)``;
* writes stream: ``writer(oid)`` → ``write(chunk)``... → ``commit(record)``
  makes body and metadata visible together (or ``abort()`` drops everything);
* reads stream: ``open(oid)`` returns an :class:`OpenObject` whose record and
  body belong to the same version even if an overwrite commits meanwhile;
* ``update(oid, change)`` is an atomic read-modify-write of the metadata
  record (TTI bump, PATCH extend_expiry); ``delete`` is idempotent.

Storage knows nothing about HTTP or expiry: expired objects are still
stored; the handler filters them (PROTOCOL §7.3).

:class:`MemoryStorage` keeps bodies in memory. The core may not import
``threading``, so it takes an optional lock (any context manager) from the
transport; the socket server passes a ``threading.Lock``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from objectstore_core import ExpirationPolicy
from objectstore_core.emulator._messages import BodyStream, BytesLike

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "MemoryStorage",
    "ObjectId",
    "ObjectRecord",
    "ObjectWriter",
    "OpenObject",
    "RecordChange",
    "Storage",
]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
"""Stored when a write carries no ``content-type`` (PROTOCOL §4.1)."""


class ObjectId(NamedTuple):
    """The identity of an object: usecase, scope wire form (``_`` when empty), key (§2).

    A named tuple, so that hashing and comparing it (a dict lookup per
    request, a thousand per batch) costs no Python call.
    """

    usecase: str
    scope: str
    key: str


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """Everything stored about an object besides its bytes (PROTOCOL §4.1).

    String values are kept verbatim as received (e.g. percent-encoded values
    of §14.4 clients). ``custom`` is sorted by name; names are lower case.
    ``time_expires`` is the current deadline (None for manual expiry).
    """

    size: int
    time_created: datetime
    content_type: str = DEFAULT_CONTENT_TYPE
    content_encoding: str | None = None
    expiration: ExpirationPolicy | None = None
    time_expires: datetime | None = None
    origin: str | None = None
    filename: str | None = None
    custom: tuple[tuple[str, str], ...] = ()


RecordChange = Callable[[ObjectRecord], ObjectRecord | None]
"""Computes a replacement record from the current one, or None to leave it alone."""


class ObjectWriter(Protocol):
    """A pending write. Exactly one of :meth:`commit` or :meth:`abort` ends it."""

    def write(self, data: BytesLike) -> None:
        """Append body bytes (streamed; never required to hold the whole body)."""
        ...

    def commit(self, record: ObjectRecord) -> None:
        """Atomically replace the object with the written bytes and ``record``."""
        ...

    def abort(self) -> None:
        """Discard everything written; nothing becomes visible. Idempotent."""
        ...


class OpenObject(Protocol):
    """A consistent snapshot of one stored version, opened for reading.

    Exactly one of :meth:`read_range` or :meth:`close` must be called.
    """

    @property
    def record(self) -> ObjectRecord:
        """The metadata of the opened version."""
        ...

    def read_range(self, start: int, length: int) -> BodyStream:
        """Stream ``length`` bytes from ``start``; the stream takes over the handle."""
        ...

    def close(self) -> None:
        """Release the snapshot without reading."""
        ...


class Storage(Protocol):
    """The store behind an :class:`~objectstore_core.emulator.Emulator`."""

    def writer(self, oid: ObjectId) -> ObjectWriter:
        """Start a streaming write of ``oid`` (last committer wins)."""
        ...

    def lookup(self, oid: ObjectId) -> ObjectRecord | None:
        """The current record, or None when absent."""
        ...

    def open(self, oid: ObjectId) -> OpenObject | None:
        """Open the current version for reading, or None when absent."""
        ...

    def update(self, oid: ObjectId, change: RecordChange) -> ObjectRecord | None:
        """Atomically apply ``change`` to the current record (the body is untouched).

        Returns the record ``change`` was given, or None (without calling it)
        when the object is absent.
        """
        ...

    def delete(self, oid: ObjectId) -> None:
        """Remove the object; absent objects are fine."""
        ...


_PIECE = 1 << 20
"""Bodies are stored in pieces of this size (a small body is one short piece)."""

_POOL_BYTES = 1 << 30
"""At most this much memory of dropped bodies is kept for reuse by later writes."""


class _Body:
    """A committed body: ``pieces[i]`` holds bytes ``i * _PIECE`` onwards; never mutated.

    Large bodies are made of full ``_PIECE`` bytearrays (the last one partly
    used), so their memory can be reused once the body is overwritten or
    deleted and no reader holds it any more: fresh memory costs a page fault
    per 4 KiB, several times the price of copying the bytes. ``readers``
    counts the open handles; ``dropped`` is set when the store let go of it.
    """

    __slots__ = ("dropped", "pieces", "readers", "size")

    def __init__(self, pieces: list[memoryview], size: int) -> None:
        self.pieces = pieces
        self.size = size
        self.readers = 0
        self.dropped = False


class _MemoryStream:
    """A :class:`BodyStream` over a range of a stored :class:`_Body`.

    Besides ``read`` (a copy, as ``bytes``) it offers ``read_view``: the same
    bytes as a read-only view of the stored memory, valid until :meth:`close`.
    The socket server sends those without copying them.
    """

    __slots__ = ("_body", "_end", "_pos", "_store")

    def __init__(self, store: MemoryStorage, body: _Body, start: int, length: int) -> None:
        self._store = store
        self._body: _Body | None = body
        self._pos = start
        self._end = start + length

    def read_view(self, n: int) -> memoryview:
        """Up to ``n`` bytes (fewer at a piece boundary); an empty view at the end."""
        if self._body is None or self._pos >= self._end:
            return memoryview(b"")
        index, offset = divmod(self._pos, _PIECE)
        piece = self._body.pieces[index]
        stop = min(len(piece), offset + n, offset + self._end - self._pos)
        self._pos += stop - offset
        return piece[offset:stop]

    def read(self, n: int) -> bytes:
        if self._pos >= self._end:
            return b""  # the end (or closed)
        first = self.read_view(n)
        if len(first) == n or not first or self._pos >= self._end:  # all there is
            return bytes(first)
        parts = [first]
        wanted = n - len(first)
        while wanted and (view := self.read_view(wanted)):
            parts.append(view)
            wanted -= len(view)
        return b"".join(parts)

    def close(self) -> None:
        body, self._body = self._body, None
        self._pos = self._end
        if body is not None:
            self._store._release(body)


class _MemoryOpenObject:
    __slots__ = ("_body", "_store", "record")

    def __init__(self, store: MemoryStorage, record: ObjectRecord, body: _Body) -> None:
        self._store = store
        self.record = record
        self._body = body

    def read_range(self, start: int, length: int) -> BodyStream:
        return _MemoryStream(self._store, self._body, start, length)

    def close(self) -> None:
        self._store._release(self._body)


class _MemoryWriter:
    # Bytes are copied into pieces: full-size pieces (reused ones when the store has
    # some) once the body is known to be large, a growing bytearray before that.
    __slots__ = ("_done", "_fill", "_oid", "_pieces", "_size", "_store")

    def __init__(self, store: MemoryStorage, oid: ObjectId) -> None:
        self._store = store
        self._oid = oid
        self._pieces: list[bytearray] = []
        self._fill = _PIECE  # bytes used in the last piece; _PIECE: a new piece is needed
        self._size = 0
        self._done = False

    def write(self, data: BytesLike) -> None:
        if self._done:
            raise RuntimeError("write() after commit() or abort()")
        view = memoryview(data)
        if view.itemsize != 1 or view.ndim != 1:
            view = view.cast("B")
        total = len(view)
        self._size += total
        if self._fill + total <= _PIECE and self._pieces:  # fits in the last piece
            piece = self._pieces[-1]
            if len(piece) == _PIECE:
                piece[self._fill : self._fill + total] = view
            else:
                piece += view
            self._fill += total
            return
        done = 0
        while done < total:
            if self._fill == _PIECE:
                if self._size <= _PIECE // 2:  # a small body so far: no full piece yet
                    self._pieces.append(bytearray(view[done:]))
                    self._fill = total - done
                    return
                self._pieces.append(self._store._piece())
                self._fill = 0
            piece = self._pieces[-1]
            n = min(total - done, _PIECE - self._fill)
            if len(piece) == _PIECE:
                piece[self._fill : self._fill + n] = view[done : done + n]
            else:
                piece += view[done : done + n]  # the growing first piece
            self._fill += n
            done += n

    def buffer(self, hint: int) -> memoryview | None:
        """The free end of a full-size piece, once the body is known to be large.

        The socket server receives into it directly (no copy); see
        :meth:`~objectstore_core.emulator.Exchange.buffer`.
        """
        if self._done:
            raise RuntimeError("buffer() after commit() or abort()")
        if self._fill == _PIECE:
            if self._size + hint <= _PIECE // 2:
                return None  # small: a short piece, through write()
            self._pieces.append(self._store._piece())
            self._fill = 0
        piece = self._pieces[-1]
        if len(piece) != _PIECE:
            return None  # the growing first piece of a body that started small
        return memoryview(piece)[self._fill :]

    def buffer_filled(self, count: int) -> None:
        """``count`` bytes were received into the last :meth:`buffer`."""
        if not 0 <= count <= _PIECE - self._fill:
            raise ValueError(f"buffer_filled({count}) exceeds the buffer")
        self._fill += count
        self._size += count

    def commit(self, record: ObjectRecord) -> None:
        if self._done:
            raise RuntimeError("commit() after commit() or abort()")
        self._done = True
        pieces, self._pieces = self._pieces, []
        if self._size != record.size:
            self._store._recycle(pieces)
            raise ValueError(f"record size {record.size} != {self._size} bytes written")
        views = [memoryview(piece) for piece in pieces]
        if views:
            views[-1] = views[-1][: self._fill]
        self._store._put(self._oid, record, _Body(views, self._size))

    def abort(self) -> None:
        if not self._done:
            self._done = True
            pieces, self._pieces = self._pieces, []
            self._store._recycle(pieces)


def _full_pieces(body: _Body) -> list[bytearray]:
    """The pieces of ``body`` worth keeping for reuse (a small body has none)."""
    pieces = body.pieces
    if len(pieces) == 1 and len(pieces[0].obj) != _PIECE:  # type: ignore[arg-type]
        return []  # a small body, in one short piece
    return [view.obj for view in body.pieces if len(view.obj) == _PIECE]  # type: ignore[misc, arg-type]


class MemoryStorage:
    """A :class:`Storage` keeping everything in a dict (bodies in memory pieces).

    ``lock`` guards commits, updates, deletes and the bookkeeping of readers;
    pass a ``threading.RLock()`` when several threads share the store (the
    socket server and the in-process transports do). Re-entrant, because a
    body stream the garbage collector finalizes releases its body, and that
    may happen in a thread that holds the lock already. The memory of
    overwritten or deleted bodies (up to 1 GiB) is reused by later writes
    once nobody reads them any more.
    """

    def __init__(self, *, lock: AbstractContextManager[object] | None = None) -> None:
        self._objects: dict[ObjectId, tuple[ObjectRecord, _Body]] = {}
        self._lock: AbstractContextManager[object] = lock or contextlib.nullcontext()
        self._pool: list[bytearray] = []

    def __len__(self) -> int:
        return len(self._objects)

    def ids(self) -> list[ObjectId]:
        """The identities currently stored (including expired objects)."""
        return list(self._objects)

    def writer(self, oid: ObjectId) -> ObjectWriter:
        return _MemoryWriter(self, oid)

    # -- memory reuse -------------------------------------------------------------------

    def _piece(self) -> bytearray:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return bytearray(_PIECE)

    def _recycle(self, pieces: list[bytearray]) -> None:
        """Keep the full-size pieces nobody can see any more for later writes."""
        with self._lock:
            room = _POOL_BYTES // _PIECE - len(self._pool)
            self._pool += [piece for piece in pieces if len(piece) == _PIECE][: max(room, 0)]

    def _drop(self, body: _Body) -> list[bytearray]:
        """Under the lock: the store lets go of ``body``; its pieces if free now."""
        body.dropped = True
        if body.readers:
            return []  # the last reader recycles it
        return _full_pieces(body)

    def _release(self, body: _Body) -> None:
        with self._lock:
            body.readers -= 1
            free = body.dropped and not body.readers
        if free and (pieces := _full_pieces(body)):
            self._recycle(pieces)

    # -- Storage ------------------------------------------------------------------------

    def _put(self, oid: ObjectId, record: ObjectRecord, body: _Body) -> None:
        with self._lock:
            previous = self._objects.get(oid)
            self._objects[oid] = (record, body)
            free = [] if previous is None else self._drop(previous[1])
        if free:
            self._recycle(free)

    def put_small(self, oid: ObjectId, record: ObjectRecord, data: bytes) -> None:
        """Store a whole body of at most half a piece in one step (a batch insert).

        The same as a writer fed ``data`` and committed with ``record``; the
        stored view is of ``data`` itself (immutable), no copy.
        """
        if record.size != len(data) or len(data) > _PIECE // 2:
            raise ValueError(f"record size {record.size} != {len(data)} bytes, or not small")
        self._put(oid, record, _Body([memoryview(data)] if data else [], len(data)))

    def get_small(self, oid: ObjectId) -> tuple[ObjectRecord, bytes | None] | None:
        """The record and whole body of an object in one step (a batch get); None if
        absent. The body is None when larger than half a piece: open it instead.

        A body stored by :meth:`put_small` is handed out as the bytes it was
        stored from (immutable, no copy); any other is copied under the lock,
        before its memory could be reused.
        """
        with self._lock:
            entry = self._objects.get(oid)
            if entry is None:
                return None
            record, body = entry
            if body.size > _PIECE // 2:
                return record, None
            if not body.pieces:
                return record, b""
            view = body.pieces[0]
            held = view.obj
            if type(held) is bytes and len(held) == body.size:
                return record, held
            return record, bytes(view[: body.size])

    def lookup(self, oid: ObjectId) -> ObjectRecord | None:
        entry = self._objects.get(oid)
        return None if entry is None else entry[0]

    def open(self, oid: ObjectId) -> OpenObject | None:
        with self._lock:
            entry = self._objects.get(oid)
            if entry is None:
                return None
            record, body = entry
            body.readers += 1
        return _MemoryOpenObject(self, record, body)

    def update(self, oid: ObjectId, change: RecordChange) -> ObjectRecord | None:
        with self._lock:
            entry = self._objects.get(oid)
            if entry is None:
                return None
            record, body = entry
            replacement = change(record)
            if replacement is not None:
                self._objects[oid] = (replacement, body)
            return record

    def delete(self, oid: ObjectId) -> None:
        with self._lock:
            entry = self._objects.pop(oid, None)
            free = [] if entry is None else self._drop(entry[1])
        if free:
            self._recycle(free)
