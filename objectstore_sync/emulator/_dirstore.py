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
lose a concurrent TTI bump.

Durability: with ``fsync=True`` (``objectstore serve --data-dir`` turns it
on) every commit is write, fsync the file, rename, fsync the directory, for
bodies and sidecars alike, so a committed object survives a power failure.
Without it objects survive a process restart, not a crash of the machine.

Damage: a sidecar that cannot be read (truncated or otherwise torn JSON, a
missing body file) is treated as an absent object, so the key can be written
or deleted again instead of answering 500 for ever. Temp files left by a
killed process are removed when a store is opened on the root: a writer
holds a lock on its temp file (``flock``, where there is one), so only the
files nobody holds and nobody touched for a few seconds go.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
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

try:
    import fcntl
except ImportError:  # pragma: no cover - no flock on this platform
    fcntl = None  # type: ignore[assignment]

__all__ = ["DirectoryStorage"]

_log = logging.getLogger(__name__)

_SIDECAR_VERSION = 1
_WRITE_BUFFER = 1 << 20
_TEMP_PREFIX = ".tmp-"
# A temp file nobody holds is stale once this old; the margin covers the moment between
# a writer creating its file and locking it. Without flock, only day-old files go.
_STALE_AFTER = 5.0 if fcntl is not None else 86400.0


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


def _hold(file: IO[Any]) -> None:
    """Mark a temp file as in use (a shared root's sweep leaves it alone)."""
    if fcntl is not None:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _fsync_directory(path: Path) -> None:
    """Make renames and unlinks in ``path`` durable (POSIX; elsewhere nothing to do)."""
    if os.name != "posix":  # pragma: no cover - directories cannot be opened there
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sweep_if_stale(path: Path, now: float) -> bool:
    """Remove a temp file left by a dead writer; False when it is (or may be) in use."""
    try:
        if now - path.stat().st_mtime < _STALE_AFTER:
            return False
        with open(path, "rb") as file:
            if fcntl is not None:
                try:
                    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False  # a live writer (maybe another process) holds it
            path.unlink()
    except FileNotFoundError:
        return False
    return True


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
        _hold(self._file)
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
            if self._store.fsync:
                self._file.flush()
                os.fsync(self._file.fileno())
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

    ``fsync=True`` makes every commit durable (see the module docstring).
    Opening a store sweeps the temp files of writers that died.

    >>> import tempfile
    >>> from objectstore_core.emulator import ServerRequest
    >>> from objectstore_sync.emulator import Emulator
    >>> with tempfile.TemporaryDirectory() as root:
    ...     emulator = Emulator(DirectoryStorage(root))
    ...     emulator.handle(ServerRequest("PUT", "/v1/objects/demo/_/k"), b"v")[0].status
    200
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.root = Path(root)
        self.fsync = fsync
        """Whether commits are flushed to the disk (write, fsync, rename, fsync the directory)."""
        self._objects = self.root / "objects"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.swept = self._sweep()
        """How many stale temp files opening the store removed."""

    def _sweep(self) -> int:
        now = time.time()
        swept = 0
        for shard in self._objects.iterdir():
            if shard.is_dir():
                swept += sum(_sweep_if_stale(p, now) for p in shard.glob(f"{_TEMP_PREFIX}*"))
        return swept

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
        return shard / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"

    # -- sidecars ---------------------------------------------------------------------------

    def _read_sidecar(self, path: Path) -> tuple[dict[str, Any], ObjectRecord] | None:
        """The sidecar's data and record; None when absent or unreadable (see the docstring)."""
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
            record = _record_from_json(data["record"])
            if not isinstance(data["body"], str):
                raise TypeError("body generation is not a string")
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Torn JSON (UnicodeDecodeError and JSONDecodeError are ValueErrors) or a
            # shape this version cannot read: the object is lost, its key must not be.
            _log.warning("objectstore emulator: unreadable sidecar %s (absent): %s", path, exc)
            return None
        return data, record

    def _write_sidecar(self, path: Path, data: dict[str, Any]) -> None:
        temp = path.parent / f"{_TEMP_PREFIX}{uuid.uuid4().hex}.json"
        try:
            with open(temp, "w", encoding="utf-8") as file:
                _hold(file)
                json.dump(data, file, ensure_ascii=True, separators=(",", ":"))
                if self.fsync:
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(temp, path)
        finally:
            _unlink_quietly(temp)
        if self.fsync:
            _fsync_directory(path.parent)  # the renames of the body (if any) and the sidecar

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
            _unlink_quietly(self._body_path(sidecar, digest, previous[0]["body"]))

    def lookup(self, oid: ObjectId) -> ObjectRecord | None:
        """The current record; None when absent, unreadable, or its body is missing.

        Under the lock, as in :meth:`open`: an overwrite unlinks the previous
        body only after the sidecar names the new one, so a body missing here
        is really missing, not replaced in the meantime.
        """
        sidecar, digest = self._sidecar_path(oid)
        with self._lock:
            loaded = self._read_sidecar(sidecar)
            if loaded is None:
                return None
            if not self._body_path(sidecar, digest, loaded[0]["body"]).exists():
                return None  # as in open(): a sidecar without its body is an absent object
        return loaded[1]

    def open(self, oid: ObjectId) -> OpenObject | None:
        """Open the current version; its record and bytes stay consistent while read."""
        sidecar, digest = self._sidecar_path(oid)
        with self._lock:
            loaded = self._read_sidecar(sidecar)
            if loaded is None:
                return None
            data, record = loaded
            path = self._body_path(sidecar, digest, data["body"])
            try:
                file = open(path, "rb", buffering=0)  # noqa: SIM115
            except FileNotFoundError:  # a sidecar without its body: absent as well
                _log.warning("objectstore emulator: body %s is missing; object absent", path)
                return None
        return _FileOpenObject(record, file)

    def update(self, oid: ObjectId, change: RecordChange) -> ObjectRecord | None:
        """Rewrite the sidecar with ``change(record)`` under the lock."""
        sidecar, _ = self._sidecar_path(oid)
        with self._lock:
            loaded = self._read_sidecar(sidecar)
            if loaded is None:
                return None
            data, record = loaded
            replacement = change(record)
            if replacement is not None:
                self._write_sidecar(sidecar, {**data, "record": _record_to_json(replacement)})
            return record

    def delete(self, oid: ObjectId) -> None:
        """Remove sidecar and body; absent objects are fine, and so are unreadable ones."""
        sidecar, digest = self._sidecar_path(oid)
        with self._lock:
            loaded = self._read_sidecar(sidecar)
            if loaded is None and not sidecar.exists():
                return
            _unlink_quietly(sidecar)  # an unreadable one too, so the key is free again
            if self.fsync:
                _fsync_directory(sidecar.parent)
        if loaded is not None:
            _unlink_quietly(self._body_path(sidecar, digest, loaded[0]["body"]))
