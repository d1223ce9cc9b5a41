"""Resumable upload sessions (PROTOCOL §14.1), as a newer server serves them.

A session is created by a write with ``?upload_type=resumable`` and an
``Upload-Length``; it is bound to its usecase, scope and key and keeps the
metadata and creation time of that request. Appends (``?session=``) carry an
``Upload-Offset``: one at or below the stored offset is accepted (the overlap
is skipped), one beyond it is refused with 409. Bytes become durable in
whole units of :attr:`ResumableSessions.granularity`: an append that is cut
off, or that ends off a unit, keeps only its whole units. The append that
reaches the length commits the object (201). A probe (``Upload-Offset: *``)
reports the stored offset; ``DELETE ?session=`` cancels.

``enabled = False`` answers creations with 501, as a server without
resumable uploads does (the official client then falls back to a plain put).

Sessions live in the emulator's :class:`Storage`, as objects of a usecase
no request can name: ``state`` (the final object's record, and a JSON body
with the target, the length and the stored chunks) and one object per
durable chunk. With a directory store they therefore survive a restart
of the emulator, like the objects themselves.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from objectstore_core.emulator._exchange import Exchange, read_body, service_error
from objectstore_core.emulator._messages import (
    BytesLike,
    ServerRequest,
    ServerResponse,
    empty_response,
    json_error,
    json_response,
)
from objectstore_core.emulator._object_headers import WriteMetadata
from objectstore_core.emulator._storage import ObjectId, ObjectRecord, Storage

__all__ = ["DEFAULT_GRANULARITY", "ResumableSessions"]

DEFAULT_GRANULARITY = 256 * 1024
"""Bytes per durable unit unless the emulator is told otherwise."""

_DIGITS = re.compile(r"[0-9]+")
_HIDDEN = "\0resumable-sessions"  # a usecase no request can name (§2.1)


@dataclass(slots=True)
class _Session:
    """A session as stored: the final object's record and where its bytes are."""

    token: str
    oid: ObjectId
    record: ObjectRecord  # size is the final length
    chunks: list[tuple[int, int]]  # (offset, size) of each stored chunk, in order
    done: bool = False

    @property
    def stored(self) -> int:
        return sum(size for _, size in self.chunks)


def _offset_response(status: int, offset: int) -> ServerResponse:
    return empty_response(status, [("upload-offset", str(offset))])


class ResumableSessions:
    """The resumable upload sessions of one emulator, kept in its storage."""

    def __init__(self, storage: Storage, clock: Callable[[], datetime]) -> None:
        self.storage = storage
        self.clock = clock
        self.enabled = True
        self.granularity = DEFAULT_GRANULARITY
        self.received = 0
        """Append body bytes received over all sessions (tests count what a resume sends)."""
        self._open = 0

    def __len__(self) -> int:
        """How many sessions this emulator opened that are still open."""
        return self._open

    # -- the sessions in storage ---------------------------------------------------------

    def _load(self, token: str) -> _Session | None:
        opened = self.storage.open(ObjectId(_HIDDEN, token, "state"))
        if opened is None:
            return None
        record = opened.record
        state = json.loads(read_body(ServerResponse(200, (), opened.read_range(0, record.size))))
        oid = ObjectId(state["usecase"], state["scope"], state["key"])
        final = replace(record, size=state["total"])
        chunks = [(int(offset), int(size)) for offset, size in state["chunks"]]
        return _Session(token, oid, final, chunks, bool(state["done"]))

    def _save(self, session: _Session) -> None:
        state = {
            "usecase": session.oid.usecase,
            "scope": session.oid.scope,
            "key": session.oid.key,
            "total": session.record.size,
            "chunks": session.chunks,
            "done": session.done,
        }
        body = json.dumps(state).encode()
        writer = self.storage.writer(ObjectId(_HIDDEN, session.token, "state"))
        writer.write(body)
        writer.commit(replace(session.record, size=len(body)))

    def _chunk_id(self, token: str, offset: int) -> ObjectId:
        return ObjectId(_HIDDEN, token, f"chunk-{offset:020d}")

    def _drop(self, session: _Session) -> None:
        for offset, _ in session.chunks:
            self.storage.delete(self._chunk_id(session.token, offset))
        session.chunks = []

    # -- the endpoints ---------------------------------------------------------------

    def create(
        self, request: ServerRequest, oid: ObjectId, metadata: WriteMetadata
    ) -> ServerResponse:
        """Open a session for ``oid`` (the caller validated metadata and permissions)."""
        if not self.enabled:
            return service_error(501, "not implemented")
        length = request.header("upload-length")
        if length is None or not _DIGITS.fullmatch(length.strip()):
            return json_error(400, "client error: Upload-Length header is required")
        token = uuid.uuid4().hex
        record = metadata.record(int(length), self.clock())  # created now (§14.1)
        self._save(_Session(token, oid, record, []))
        self._open += 1
        body = {"key": oid.key, "session": token, "granularity": self.granularity}
        return json_response(201, body)

    def _find(self, token: str, oid: ObjectId) -> _Session | None:
        session = self._load(token) if token else None
        return session if session is not None and session.oid == oid else None

    def append(self, request: ServerRequest, token: str, oid: ObjectId) -> Exchange:
        """An append or a probe (``PUT ?session=``)."""
        session = self._find(token, oid)
        offset_text = (request.header("upload-offset") or "").strip()
        if session is None:
            return Exchange(json_error(404, "client error: upload session not found"))
        if session.done:
            if offset_text == "*":
                return Exchange(empty_response(201))  # already complete
            return Exchange(json_error(404, "client error: upload session not found"))
        stored = session.stored
        if offset_text == "*":
            return Exchange(_offset_response(204, stored))
        if not _DIGITS.fullmatch(offset_text):
            return Exchange(json_error(400, "client error: invalid Upload-Offset header"))
        offset = int(offset_text)
        if offset > stored:
            return Exchange(_offset_response(409, stored))  # UploadOffsetMismatch
        return Exchange(sink=_AppendSink(self, session, stored - offset))

    def cancel(self, token: str, oid: ObjectId) -> ServerResponse:
        """``DELETE ?session=``: drop the session and its bytes."""
        session = self._find(token, oid)
        if session is None or session.done:
            return json_error(404, "client error: upload session not found")
        self._drop(session)
        self.storage.delete(ObjectId(_HIDDEN, token, "state"))
        self._open = max(0, self._open - 1)
        return empty_response(204)

    def _keep(self, session: _Session, data: bytearray, complete: bool) -> None:
        """Store the whole units of ``data`` (all of it when the upload completes)."""
        if not complete and self.granularity > 0:
            del data[len(data) - len(data) % self.granularity :]
        if not data:
            return
        offset = session.stored
        writer = self.storage.writer(self._chunk_id(session.token, offset))
        writer.write(data)
        writer.commit(replace(session.record, size=len(data)))
        session.chunks.append((offset, len(data)))
        self._save(session)

    def _finish(self, session: _Session, data: bytearray) -> ServerResponse:
        total = session.record.size
        if session.stored + len(data) > total:
            return json_error(400, "client error: the upload is longer than its Upload-Length")
        complete = session.stored + len(data) == total
        self._keep(session, data, complete)
        if not complete:
            return _offset_response(204, session.stored)
        writer = self.storage.writer(session.oid)
        try:
            for offset, size in session.chunks:
                opened = self.storage.open(self._chunk_id(session.token, offset))
                assert opened is not None, "a stored chunk went missing"
                writer.write(read_body(ServerResponse(200, (), opened.read_range(0, size))))
            writer.commit(session.record)
        except Exception as exc:
            writer.abort()
            return service_error(500, f"storage backend error: {exc}")
        self._drop(session)
        session.done = True
        self._save(session)
        self._open = max(0, self._open - 1)
        return json_response(201, {"key": session.oid.key})


class _AppendSink:
    """Collects an append, skipping the ``skip`` bytes the session already holds."""

    __slots__ = ("_data", "_session", "_sessions", "_skip")

    def __init__(self, sessions: ResumableSessions, session: _Session, skip: int) -> None:
        self._sessions = sessions
        self._session = session
        self._skip = skip
        self._data = bytearray()

    def feed(self, data: BytesLike) -> None:
        view = memoryview(data).cast("B")
        self._sessions.received += len(view)
        if self._skip:
            dropped = min(self._skip, len(view))
            self._skip -= dropped
            view = view[dropped:]
        self._data += view

    def finish(self) -> ServerResponse:
        return self._sessions._finish(self._session, self._data)

    def abort(self) -> None:
        # The client went away mid-append: what arrived is kept in whole units.
        self._sessions._keep(self._session, self._data, complete=False)
