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
from typing import Protocol

from objectstore_core._models import ExpirationPolicy
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


@dataclass(frozen=True, slots=True)
class ObjectId:
    """The identity of an object: usecase, scope wire form (``_`` when empty), key (§2)."""

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


class _MemoryStream:
    """A :class:`BodyStream` over a slice of an immutable ``bytes`` body."""

    __slots__ = ("_end", "_pos", "_view")

    def __init__(self, body: bytes | bytearray, start: int, length: int) -> None:
        self._view = memoryview(body)
        self._pos = start
        self._end = start + length

    def read(self, n: int) -> bytes:
        stop = min(self._end, self._pos + n)
        chunk = bytes(self._view[self._pos : stop])
        self._pos = stop
        return chunk

    def close(self) -> None:
        self._view.release()
        self._pos = self._end


@dataclass(frozen=True, slots=True)
class _MemoryOpenObject:
    record: ObjectRecord
    body: bytes | bytearray

    def read_range(self, start: int, length: int) -> BodyStream:
        return _MemoryStream(self.body, start, length)

    def close(self) -> None:
        return None


class _MemoryWriter:
    # One growing bytearray (a single copy of each chunk); it is never mutated once
    # committed, so readers can share it through memoryviews.
    __slots__ = ("_body", "_done", "_oid", "_store")

    def __init__(self, store: MemoryStorage, oid: ObjectId) -> None:
        self._store = store
        self._oid = oid
        self._body = bytearray()
        self._done = False

    def write(self, data: BytesLike) -> None:
        if self._done:
            raise RuntimeError("write() after commit() or abort()")
        self._body += data

    def commit(self, record: ObjectRecord) -> None:
        if self._done:
            raise RuntimeError("commit() after commit() or abort()")
        self._done = True
        body, self._body = self._body, bytearray()
        if len(body) != record.size:
            raise ValueError(f"record size {record.size} != {len(body)} bytes written")
        self._store._put(self._oid, record, body)

    def abort(self) -> None:
        self._done = True
        self._body = bytearray()


class MemoryStorage:
    """A :class:`Storage` keeping everything in a dict (bodies as ``bytes``).

    ``lock`` guards commits, updates and deletes; pass a ``threading.Lock()``
    when several threads share the store (the socket server does).
    """

    def __init__(self, *, lock: AbstractContextManager[object] | None = None) -> None:
        self._objects: dict[ObjectId, tuple[ObjectRecord, bytes | bytearray]] = {}
        self._lock: AbstractContextManager[object] = lock or contextlib.nullcontext()

    def __len__(self) -> int:
        return len(self._objects)

    def ids(self) -> list[ObjectId]:
        """The identities currently stored (including expired objects)."""
        return list(self._objects)

    def writer(self, oid: ObjectId) -> ObjectWriter:
        return _MemoryWriter(self, oid)

    def _put(self, oid: ObjectId, record: ObjectRecord, body: bytes | bytearray) -> None:
        with self._lock:
            self._objects[oid] = (record, body)

    def lookup(self, oid: ObjectId) -> ObjectRecord | None:
        entry = self._objects.get(oid)
        return None if entry is None else entry[0]

    def open(self, oid: ObjectId) -> OpenObject | None:
        entry = self._objects.get(oid)
        return None if entry is None else _MemoryOpenObject(*entry)

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
            self._objects.pop(oid, None)
