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
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from objectstore_core.emulator._exchange import Exchange, service_error
from objectstore_core.emulator._messages import (
    BytesLike,
    ServerRequest,
    ServerResponse,
    empty_response,
    json_error,
    json_response,
)
from objectstore_core.emulator._object_headers import WriteMetadata
from objectstore_core.emulator._storage import ObjectId, Storage

__all__ = ["DEFAULT_GRANULARITY", "ResumableSessions"]

DEFAULT_GRANULARITY = 256 * 1024
"""Bytes per durable unit unless the emulator is told otherwise."""

_DIGITS = re.compile(r"[0-9]+")


@dataclass(slots=True)
class _Session:
    oid: ObjectId
    metadata: WriteMetadata
    stamped: datetime
    total: int
    data: bytearray


def _offset_response(status: int, offset: int) -> ServerResponse:
    return empty_response(status, [("upload-offset", str(offset))])


class ResumableSessions:
    """The resumable upload sessions of one emulator (in memory)."""

    def __init__(self, storage: Storage, clock: Callable[[], datetime]) -> None:
        self.storage = storage
        self.clock = clock
        self.enabled = True
        self.granularity = DEFAULT_GRANULARITY
        self.received = 0
        """Append body bytes received over all sessions (tests count what a resume sends)."""
        self._open: dict[str, _Session] = {}
        self._completed: dict[str, ObjectId] = {}

    def __len__(self) -> int:
        """How many sessions are open."""
        return len(self._open)

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
        total = int(length)
        self._open[token] = _Session(oid, metadata, self.clock(), total, bytearray())
        body = {"key": oid.key, "session": token, "granularity": self.granularity}
        return json_response(201, body)

    def _find(self, token: str, oid: ObjectId) -> _Session | None:
        session = self._open.get(token)
        return session if session is not None and session.oid == oid else None

    def append(self, request: ServerRequest, token: str, oid: ObjectId) -> Exchange:
        """An append or a probe (``PUT ?session=``)."""
        session = self._find(token, oid)
        if session is None:
            if self._completed.get(token) == oid and request.header("upload-offset") == "*":
                return Exchange(empty_response(201))  # already complete
            return Exchange(json_error(404, "client error: upload session not found"))
        offset_text = (request.header("upload-offset") or "").strip()
        stored = len(session.data)
        if offset_text == "*":
            return Exchange(_offset_response(204, stored))
        if not _DIGITS.fullmatch(offset_text):
            return Exchange(json_error(400, "client error: invalid Upload-Offset header"))
        offset = int(offset_text)
        if offset > stored:
            return Exchange(_offset_response(409, stored))  # UploadOffsetMismatch
        return Exchange(sink=_AppendSink(self, token, session, stored - offset))

    def cancel(self, token: str, oid: ObjectId) -> ServerResponse:
        """``DELETE ?session=``: drop the session and its bytes."""
        if self._find(token, oid) is None:
            return json_error(404, "client error: upload session not found")
        del self._open[token]
        return empty_response(204)

    def _durable(self, session: _Session) -> None:
        """Keep whole units only, unless the upload is complete."""
        size = len(session.data)
        if size >= session.total or self.granularity <= 0:
            return
        del session.data[size - size % self.granularity :]

    def _finish(self, token: str, session: _Session) -> ServerResponse:
        if len(session.data) > session.total:
            del session.data[session.total :]
            self._durable(session)
            return json_error(400, "client error: the upload is longer than its Upload-Length")
        if len(session.data) < session.total:
            self._durable(session)
            return _offset_response(204, len(session.data))
        writer = self.storage.writer(session.oid)
        try:
            writer.write(session.data)
            writer.commit(session.metadata.record(session.total, session.stamped))
        except Exception as exc:
            writer.abort()
            return service_error(500, f"storage backend error: {exc}")
        self._open.pop(token, None)
        self._completed[token] = session.oid
        return json_response(201, {"key": session.oid.key})


class _AppendSink:
    """Appends body bytes to a session, skipping the ``skip`` bytes it already holds."""

    __slots__ = ("_session", "_sessions", "_skip", "_token")

    def __init__(
        self, sessions: ResumableSessions, token: str, session: _Session, skip: int
    ) -> None:
        self._sessions = sessions
        self._token = token
        self._session = session
        self._skip = skip

    def feed(self, data: BytesLike) -> None:
        view = memoryview(data).cast("B")
        self._sessions.received += len(view)
        if self._skip:
            dropped = min(self._skip, len(view))
            self._skip -= dropped
            view = view[dropped:]
        self._session.data += view

    def finish(self) -> ServerResponse:
        return self._sessions._finish(self._token, self._session)

    def abort(self) -> None:
        self._sessions._durable(self._session)  # the client went away mid-append
