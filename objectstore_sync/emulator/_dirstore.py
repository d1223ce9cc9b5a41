"""A directory-backed :class:`~objectstore_core.emulator.Storage` for the emulator.

Layout under ``root``::

    objects/<h[:2]>/<h>.json              sidecar: identity, record, body generation
    objects/<h[:2]>/<h>.<generation>.body the bytes of one committed version
    objects/<h[:2]>/.tmp-<uuid>           uploads (and sidecars) being written

``h`` is the SHA-256 of the identity ``(usecase, scope, key)``, so any key
(any Unicode, ``/``, ``..``, thousands of characters) maps to a safe, short
file name; the identity itself lives inside the sidecar.

Atomicity: a body streams into a temp file in the same directory, is renamed
to a fresh ``<generation>.body`` name, and the sidecar — the single commit
point — is then replaced atomically (``os.replace``) to point at it. The
previous body is unlinked afterwards; a reader that already opened it keeps
reading the old version (POSIX semantics). Metadata updates (TTI bump,
PATCH) rewrite only the sidecar.

Concurrency: a process-wide lock serializes sidecar changes and the
"read sidecar + open body" step of readers, so a reader never sees a
sidecar whose body was already removed. Bodies are streamed outside the
lock, in chunks (a 1 GiB object never sits in memory). Several *processes*
sharing a root still see only complete objects (renames are atomic) but may
lose a concurrent TTI bump. No fsync is done: objects survive a process
restart, not a power failure. Temp files of a killed process stay behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from objectstore_core import ExpirationPolicy, TimeToIdle, TimeToLive
from objectstore_core.emulator import (
    BodyStream,
    BytesLike,
    ObjectId,
    ObjectRecord,
    ObjectWriter,
    OpenObject,
    RecordChange,
)

__all__ = ["DirectoryStorage"]

_SIDECAR_VERSION = 1
_WRITE_BUFFER = 1 << 20


def _moment_to_json(moment: datetime) -> str:
    # ISO 8601 in UTC to the microsecond; older sidecars hold the wire form
    # (``...Z``, PROTOCOL §4.4), which fromisoformat reads as well.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _moment_from_json(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _record_to_json(record: ObjectRecord) -> dict[str, Any]:
    expiration = None
    if record.expiration is not None:
        kind = "ttl" if isinstance(record.expiration, TimeToLive) else "tti"
        micros = record.expiration.delta // timedelta(microseconds=1)
        expiration = {"kind": kind, "microseconds": micros}
    return {
        "size": record.size,
        "time_created": _moment_to_json(record.time_created),
        "content_type": record.content_type,
        "content_encoding": record.content_encoding,
        "expiration": expiration,
        "time_expires": (
            None if record.time_expires is None else _moment_to_json(record.time_expires)
        ),
        "origin": record.origin,
        "filename": record.filename,
        "custom": [list(pair) for pair in record.custom],
    }


def _record_from_json(data: dict[str, Any]) -> ObjectRecord:
    expiration: ExpirationPolicy | None = None
    if data["expiration"] is not None:
        delta = timedelta(microseconds=data["expiration"]["microseconds"])
        expiration = TimeToLive(delta) if data["expiration"]["kind"] == "ttl" else TimeToIdle(delta)
    expires = data["time_expires"]
    return ObjectRecord(
        size=data["size"],
        time_created=_moment_from_json(data["time_created"]),
        content_type=data["content_type"],
        content_encoding=data["content_encoding"],
        expiration=expiration,
        time_expires=None if expires is None else _moment_from_json(expires),
        origin=data["origin"],
        filename=data["filename"],
        custom=tuple((name, value) for name, value in data["custom"]),
    )


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class _FileStream:
    """A :class:`BodyStream` over ``length`` bytes of an open body file.

    Besides ``read`` it offers ``file_region``: the socket server then hands
    the bytes to the kernel (``sendfile``) instead of copying them through
    Python.
    """

    __slots__ = ("_file", "_remaining", "_start")

    def __init__(self, file: IO[bytes], start: int, length: int) -> None:
        self._file = file
        self._start = start
        self._remaining = length
        if start:
            file.seek(start)

    def file_region(self) -> tuple[IO[bytes], int, int]:
        """The whole body as (file, offset, length), for ``socket.sendfile``; consumes it.

        Only before any ``read``. The file may turn out shorter than recorded:
        the sender must check how many bytes went out.
        """
        region = (self._file, self._start, self._remaining)
        self._remaining = 0
        return region

    def read(self, n: int) -> bytes:
        if self._remaining <= 0:
            return b""
        chunk = self._file.read(min(n, self._remaining))
        self._remaining -= len(chunk)
        if not chunk:
            self._remaining = 0  # the file is shorter than recorded; end the body early
        return chunk

    def close(self) -> None:
        self._file.close()


class _FileOpenObject:
    __slots__ = ("_file", "record")

    def __init__(self, record: ObjectRecord, file: IO[bytes]) -> None:
        self.record = record
        self._file = file

    def read_range(self, start: int, length: int) -> BodyStream:
        return _FileStream(self._file, start, length)

    def close(self) -> None:
        self._file.close()


class _FileWriter:
    """Streams into a temp file; :meth:`commit` renames it into place."""

    __slots__ = ("_done", "_file", "_oid", "_store", "_temp")

    def __init__(self, store: DirectoryStorage, oid: ObjectId) -> None:
        self._store = store
        self._oid = oid
        self._temp = store._temp_path(oid)
        self._file: IO[bytes] = open(self._temp, "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115
        self._done = False

    def write(self, data: BytesLike) -> None:
        if self._done:
            raise RuntimeError("write() after commit() or abort()")
        self._file.write(data)

    def commit(self, record: ObjectRecord) -> None:
        if self._done:
            raise RuntimeError("commit() after commit() or abort()")
        self._done = True
        try:
            self._file.close()
            written = self._temp.stat().st_size
            if written != record.size:
                raise ValueError(f"record size {record.size} != {written} bytes written")
            self._store._commit(self._oid, self._temp, record)
        finally:
            _unlink_quietly(self._temp)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        _unlink_quietly(self._temp)


class DirectoryStorage:
    """Objects as files under ``root``; survives restarts (see the module docstring).

    >>> import tempfile
    >>> from objectstore_core.emulator import Emulator, ServerRequest
    >>> with tempfile.TemporaryDirectory() as root:
    ...     emulator = Emulator(DirectoryStorage(root))
    ...     emulator.handle(ServerRequest("PUT", "/v1/objects/demo/_/k"), b"v")[0].status
    200
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # -- paths ----------------------------------------------------------------------------

    def _digest(self, oid: ObjectId) -> str:
        identity = json.dumps([oid.usecase, oid.scope, oid.key])  # ASCII-only, unambiguous
        return hashlib.sha256(identity.encode("ascii")).hexdigest()

    def _shard(self, digest: str) -> Path:
        return self._objects / digest[:2]

    def _sidecar_path(self, oid: ObjectId) -> tuple[Path, str]:
        digest = self._digest(oid)
        return self._shard(digest) / f"{digest}.json", digest

    def _temp_path(self, oid: ObjectId) -> Path:
        shard = self._shard(self._digest(oid))
        shard.mkdir(exist_ok=True)
        return shard / f".tmp-{uuid.uuid4().hex}"

    # -- sidecars ---------------------------------------------------------------------------

    def _read_sidecar(self, path: Path) -> dict[str, Any] | None:
        try:
            with open(path, encoding="utf-8") as file:
                data: dict[str, Any] = json.load(file)
        except FileNotFoundError:
            return None
        return data

    def _write_sidecar(self, path: Path, data: dict[str, Any]) -> None:
        temp = path.parent / f".tmp-{uuid.uuid4().hex}.json"
        try:
            with open(temp, "w", encoding="utf-8") as file:
                json.dump(data, file, ensure_ascii=True, separators=(",", ":"))
            os.replace(temp, path)
        finally:
            _unlink_quietly(temp)

    def _body_path(self, sidecar: Path, digest: str, generation: str) -> Path:
        return sidecar.parent / f"{digest}.{generation}.body"

    # -- Storage --------------------------------------------------------------------------------

    def writer(self, oid: ObjectId) -> ObjectWriter:
        """Start a streaming write into a temp file next to the final location."""
        return _FileWriter(self, oid)

    def _commit(self, oid: ObjectId, temp: Path, record: ObjectRecord) -> None:
        sidecar, digest = self._sidecar_path(oid)
        generation = uuid.uuid4().hex
        body = self._body_path(sidecar, digest, generation)
        os.replace(temp, body)
        data = {
            "version": _SIDECAR_VERSION,
            "id": {"usecase": oid.usecase, "scope": oid.scope, "key": oid.key},
            "body": generation,
            "record": _record_to_json(record),
        }
        try:
            with self._lock:
                previous = self._read_sidecar(sidecar)
                self._write_sidecar(sidecar, data)  # the commit point
        except BaseException:
            _unlink_quietly(body)
            raise
        if previous is not None:
            _unlink_quietly(self._body_path(sidecar, digest, previous["body"]))

    def lookup(self, oid: ObjectId) -> ObjectRecord | None:
        """The current record (sidecars are replaced atomically, so no lock is needed)."""
        sidecar, _ = self._sidecar_path(oid)
        data = self._read_sidecar(sidecar)
        return None if data is None else _record_from_json(data["record"])

    def open(self, oid: ObjectId) -> OpenObject | None:
        """Open the current version; its record and bytes stay consistent while read."""
        sidecar, digest = self._sidecar_path(oid)
        with self._lock:
            data = self._read_sidecar(sidecar)
            if data is None:
                return None
            file = open(self._body_path(sidecar, digest, data["body"]), "rb", buffering=0)  # noqa: SIM115
        return _FileOpenObject(_record_from_json(data["record"]), file)

    def update(self, oid: ObjectId, change: RecordChange) -> ObjectRecord | None:
        """Rewrite the sidecar with ``change(record)`` under the lock."""
        sidecar, _ = self._sidecar_path(oid)
        with self._lock:
            data = self._read_sidecar(sidecar)
            if data is None:
                return None
            record = _record_from_json(data["record"])
            replacement = change(record)
            if replacement is not None:
                self._write_sidecar(sidecar, {**data, "record": _record_to_json(replacement)})
            return record

    def delete(self, oid: ObjectId) -> None:
        """Remove sidecar and body; absent objects are fine."""
        sidecar, digest = self._sidecar_path(oid)
        with self._lock:
            data = self._read_sidecar(sidecar)
            if data is None:
                return
            _unlink_quietly(sidecar)
        _unlink_quietly(self._body_path(sidecar, digest, data["body"]))
