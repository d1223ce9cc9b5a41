"""The multipart upload endpoints (PROTOCOL §9), as the development backends serve them.

Open uploads live in the emulator's storage (so a directory store keeps
them across restarts): each is bound to
the exact usecase, scope and key it was initiated for, keeps the metadata
and creation time fixed at initiate (§9.1) and its parts by number (a
re-upload replaces the part, §9.2). Completion concatenates the listed parts
in the given order into one storage write, so the object appears atomically
with the metadata of initiate; a missing part or a wrong etag answers 200
with an ``InvalidPart`` error body and leaves the upload open (§9.4).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from objectstore_core import Permission
from objectstore_core.emulator._exchange import BufferSink, Exchange, read_body, service_error
from objectstore_core.emulator._messages import (
    BytesLike,
    ServerRequest,
    ServerResponse,
    empty_response,
    json_error,
    json_response,
    text_response,
)
from objectstore_core.emulator._object_headers import (
    MetadataError,
    WriteMetadata,
    parse_write_metadata,
)
from objectstore_core.emulator._routing import ObjectPath, Route, RouteKind, parse_query
from objectstore_core.emulator._storage import ObjectId, ObjectRecord, Storage

__all__ = ["MULTIPART_ROUTES", "MultipartUploads"]

MULTIPART_ROUTES = frozenset(
    {
        RouteKind.MULTIPART_INITIATE,
        RouteKind.MULTIPART,
        RouteKind.MULTIPART_PARTS,
        RouteKind.MULTIPART_COMPLETE,
    }
)

Deny = Callable[[Permission], ServerResponse | None]

_MAX_PART_NUMBER = 4_294_967_295  # §9.2: the server's range (the store's limit is lower)
_COMPLETE_BODY_LIMIT = 2 * 1000 * 1000  # §9.4: the framework's default body limit
_DIGITS = re.compile(r"[0-9]+")
_JSON_TYPE = re.compile(r"application/(?:[^;/\s]+\+)?json\s*(?:;.*)?", re.IGNORECASE)


@dataclass(slots=True)
class _Part:
    etag: str
    last_modified: datetime
    size: int


@dataclass(slots=True)
class _OpenUpload:
    upload_id: str
    oid: ObjectId
    record: ObjectRecord  # the final object's, but for its size and custom metadata
    custom: tuple[tuple[str, str], ...]  # the final object's custom metadata
    parts: dict[int, _Part] = field(default_factory=dict)
    completed: bool = False


_HIDDEN = "\0multipart-uploads"  # a usecase no request can name (§2.1)
_PART_PREFIX = "part-"


def _state_id(upload_id: str) -> ObjectId:
    return ObjectId(_HIDDEN, upload_id, "state")


def _part_id(upload_id: str, number: int) -> ObjectId:
    return ObjectId(_HIDDEN, upload_id, f"{_PART_PREFIX}{number:010d}")


class _Uploads:
    """Open uploads kept in the emulator's storage, so a directory store keeps them
    across restarts: a ``state`` object per upload (its record holds the final
    metadata and one custom entry per part, updated atomically; its body the
    target and the final custom metadata) and an object per part."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def create(self, upload_id: str, oid: ObjectId, metadata: WriteMetadata, now: datetime) -> None:
        body = json.dumps(
            {"usecase": oid.usecase, "scope": oid.scope, "key": oid.key, "custom": metadata.custom}
        ).encode()
        record = replace(metadata.record(len(body), now), custom=())
        writer = self.storage.writer(_state_id(upload_id))
        writer.write(body)
        writer.commit(record)

    def find(self, upload_id: str, oid: ObjectId) -> _OpenUpload | None:
        opened = self.storage.open(_state_id(upload_id))
        if opened is None:
            return None
        record = opened.record
        state = json.loads(read_body(ServerResponse(200, (), opened.read_range(0, record.size))))
        if ObjectId(state["usecase"], state["scope"], state["key"]) != oid:
            return None  # bound to its usecase, scope and key (§9.1)
        custom = tuple((str(name), str(value)) for name, value in state["custom"])
        upload = _OpenUpload(upload_id, oid, record, custom)
        for name, value in record.custom:
            if name == "completed":
                upload.completed = True
            elif name.startswith(_PART_PREFIX):
                etag, modified, size = json.loads(value)
                number = int(name[len(_PART_PREFIX) :])
                upload.parts[number] = _Part(etag, datetime.fromisoformat(modified), size)
        return upload

    def add_part(self, upload_id: str, number: int, part: _Part, data: bytes) -> bool:
        """Store a part (a re-upload replaces it); False when the upload is gone."""
        state = _state_id(upload_id)
        if self.storage.lookup(state) is None:
            return False
        writer = self.storage.writer(_part_id(upload_id, number))
        writer.write(data)
        writer.commit(ObjectRecord(size=len(data), time_created=part.last_modified))
        entry = (
            f"{_PART_PREFIX}{number:010d}",
            json.dumps([part.etag, part.last_modified.isoformat(), part.size]),
        )

        def with_part(record: ObjectRecord) -> ObjectRecord:
            others = [pair for pair in record.custom if pair[0] != entry[0]]
            return replace(record, custom=tuple(sorted([*others, entry])))

        return self.storage.update(state, with_part) is not None

    def part_data(self, upload_id: str, number: int) -> bytes:
        opened = self.storage.open(_part_id(upload_id, number))
        if opened is None:
            raise LookupError(f"part {number} went missing")
        return read_body(ServerResponse(200, (), opened.read_range(0, opened.record.size)))

    def mark_completed(self, upload: _OpenUpload) -> None:
        """Drop the parts, keep the state as completed (a retried complete succeeds)."""
        for number in upload.parts:
            self.storage.delete(_part_id(upload.upload_id, number))
        self.storage.update(
            _state_id(upload.upload_id),
            lambda record: replace(record, custom=(("completed", "1"),)),
        )

    def drop(self, upload: _OpenUpload) -> None:
        for number in upload.parts:
            self.storage.delete(_part_id(upload.upload_id, number))
        self.storage.delete(_state_id(upload.upload_id))


class _BadQuery(ValueError):
    """A 400 ``Failed to deserialize query string: ...`` (plain text)."""


def _bad_query(exc: ValueError) -> ServerResponse:
    return text_response(400, f"Failed to deserialize query string: {exc}")


def _upload_id(query: dict[str, str]) -> str:
    upload_id = query.get("upload_id")
    if upload_id is None:
        raise _BadQuery("missing field `upload_id`")
    # §9.2: non-empty, no path-traversal components.
    if not upload_id or upload_id.startswith(("/", "./")) or ".." in upload_id.split("/"):
        raise _BadQuery(f"invalid upload_id: {upload_id!r}")
    return upload_id


def _number(query: dict[str, str], name: str, *, low: int) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    if not _DIGITS.fullmatch(text) or not low <= int(text) <= _MAX_PART_NUMBER:
        raise _BadQuery(f"{name}: invalid value: {text!r}")
    return int(text)


def _rfc3339(moment: datetime) -> str:
    """§9.3: UTC with ``Z``; fractional seconds omitted when zero, else nine digits."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond * 1000:09d}"
    return text + "Z"


def _complete_result(value: object) -> ServerResponse:
    """The always-200 answer of complete (§9.4), sent chunked after a leading space.

    The reference server streams spaces while it assembles; the emulator
    assembles at once but keeps one space, so clients must trim as they would.
    """
    body = b" " + json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return ServerResponse(200, (("content-type", "application/json"),), body, None)


def _complete_error(code: str, message: str) -> ServerResponse:
    return _complete_result({"error": {"code": code, "message": message}})


class MultipartUploads:
    """The open multipart uploads of one emulator and its endpoints (§9.1-§9.5).

    Uploads live in the storage (see :class:`_Uploads`); concurrent part
    uploads stay consistent through the storage's atomic record updates.
    """

    def __init__(self, storage: Storage, clock: Callable[[], datetime]) -> None:
        self.storage = storage
        self.clock = clock
        self._uploads = _Uploads(storage)
        self._open = 0

    def __len__(self) -> int:
        """How many uploads this emulator started are open (neither completed nor aborted)."""
        return self._open

    def begin(
        self,
        request: ServerRequest,
        raw_query: str,
        route: Route,
        path: ObjectPath,
        deny: Deny,
        new_key: Callable[[], str],
    ) -> Exchange:
        """Handle one request to a multipart route (after routing, auth and path parsing)."""
        kind, method = route.kind, request.method
        try:
            if kind is RouteKind.MULTIPART_INITIATE:
                return Exchange(self._initiate(request, path, new_key(), deny))
            assert path.key is not None  # every other multipart route carries a key
            oid = ObjectId(path.usecase, path.scope_wire, path.key)
            if kind is RouteKind.MULTIPART:
                if method == "PUT":
                    return Exchange(self._initiate(request, path, path.key, deny))
                return Exchange(self._abort(raw_query, oid, deny))
            if kind is RouteKind.MULTIPART_PARTS:
                if method == "PUT":
                    return self._upload_part(request, raw_query, oid, deny)
                return Exchange(self._list(raw_query, oid, deny))
            return self._complete(request, raw_query, oid, deny)
        except _BadQuery as exc:
            return Exchange(_bad_query(exc))

    # -- §9.1 initiate -----------------------------------------------------------------

    def _initiate(
        self, request: ServerRequest, path: ObjectPath, key: str, deny: Deny
    ) -> ServerResponse:
        try:
            metadata = parse_write_metadata(request.headers)
        except MetadataError as exc:
            message = f"metadata error: {exc}"
            return json_error(400, f"service error: {message}", [message, str(exc)])
        denial = deny(Permission.OBJECT_WRITE)
        if denial is not None:
            return denial
        upload_id = str(uuid.uuid4())
        oid = ObjectId(path.usecase, path.scope_wire, key)
        self._uploads.create(upload_id, oid, metadata, self.clock())
        self._open += 1
        return json_response(200, {"key": key, "upload_id": upload_id})

    def _find(self, upload_id: str, oid: ObjectId) -> _OpenUpload | None:
        upload = self._uploads.find(upload_id, oid)
        return None if upload is None or upload.completed else upload

    # -- §9.2 upload part --------------------------------------------------------------

    def _upload_part(
        self, request: ServerRequest, raw_query: str, oid: ObjectId, deny: Deny
    ) -> Exchange:
        query = self._query(raw_query, ("upload_id", "part_number"))
        upload_id = _upload_id(query)
        number = _number(query, "part_number", low=1)
        if number is None:
            raise _BadQuery("missing field `part_number`")
        length = request.header("content-length")
        if length is None or not _DIGITS.fullmatch(length.strip()):
            return Exchange(json_error(400, "client error: Content-Length header is required"))
        denial = deny(Permission.OBJECT_WRITE)
        if denial is not None:
            return Exchange(denial)
        if self._find(upload_id, oid) is None:
            return Exchange(service_error(500, "storage backend error: multipart upload not found"))

        def store(data: bytes) -> ServerResponse:
            digest = hashlib.md5(data, usedforsecurity=False).hexdigest()[:16]
            etag = f'"etag-{number}-{len(data)}-{digest}"'  # quotes included, as the dev backends
            part = _Part(etag, self.clock(), len(data))
            if not self._uploads.add_part(upload_id, number, part, data):
                # aborted or completed while the part was arriving
                return service_error(500, "storage backend error: multipart upload not found")
            return json_response(200, {"etag": etag})

        return Exchange(sink=_PartSink(store))

    # -- §9.3 list parts ---------------------------------------------------------------

    def _list(self, raw_query: str, oid: ObjectId, deny: Deny) -> ServerResponse:
        query = self._query(raw_query, ("upload_id", "max_parts", "part_number_marker"))
        upload_id = _upload_id(query)
        max_parts = _number(query, "max_parts", low=0)
        marker = _number(query, "part_number_marker", low=0) or 0
        denial = deny(Permission.OBJECT_WRITE)
        if denial is not None:
            return denial
        upload = self._find(upload_id, oid)
        if upload is None:
            return service_error(500, "storage backend error: multipart upload not found")
        numbers = sorted(n for n in upload.parts if n > marker)
        shown = numbers if max_parts is None else numbers[:max_parts]
        listed = []
        for number in shown:
            part = upload.parts[number]
            listed.append(
                {
                    "part_number": number,
                    "etag": part.etag,
                    "last_modified": _rfc3339(part.last_modified),
                    "size": part.size,
                }
            )
        page: dict[str, object] = {"parts": listed, "is_truncated": len(shown) < len(numbers)}
        if page["is_truncated"] and shown:
            page["next_part_number_marker"] = shown[-1]
        return json_response(200, page)

    # -- §9.4 complete -----------------------------------------------------------------

    def _complete(
        self, request: ServerRequest, raw_query: str, oid: ObjectId, deny: Deny
    ) -> Exchange:
        upload_id = _upload_id(self._query(raw_query, ("upload_id",)))
        content_type = request.header("content-type") or ""
        if not _JSON_TYPE.fullmatch(content_type.strip()):
            return Exchange(
                text_response(415, "Expected request with `Content-Type: application/json`")
            )

        def complete(body: bytes) -> ServerResponse:
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError) as exc:
                return text_response(400, f"Failed to parse the request body as JSON: {exc}")
            parts = _parse_parts(parsed)
            if parts is None:
                return text_response(
                    422,
                    "Failed to deserialize the JSON body into the target type: "
                    'expected {"parts": [{"part_number": n >= 1, "etag": "..."}]}',
                )
            if deny(Permission.OBJECT_WRITE) is not None:  # reported in the body (§9.4)
                return _complete_error("internal error", "auth error: operation not allowed")
            return self._assemble(upload_id, oid, parts)

        return Exchange(sink=BufferSink(complete, _COMPLETE_BODY_LIMIT))

    def _assemble(
        self, upload_id: str, oid: ObjectId, parts: list[tuple[int, str]]
    ) -> ServerResponse:
        upload = self._uploads.find(upload_id, oid)
        if upload is not None and upload.completed:
            return _complete_result({"key": oid.key})  # a retried success stays one
        if upload is None:
            return _complete_error(
                "internal error", "storage backend error: multipart upload not found"
            )
        for number, etag in parts:
            part = upload.parts.get(number)
            if part is None:
                return _complete_error("InvalidPart", f"part number {number} was not uploaded")
            if part.etag != etag:
                return _complete_error(
                    "InvalidPart", f"part number {number} has etag {part.etag}, not {etag}"
                )
        writer = self.storage.writer(oid)
        try:
            size = 0
            for number, _ in parts:  # in the given order, as the development backends (§9.4)
                data = self._uploads.part_data(upload_id, number)
                writer.write(data)
                size += len(data)
            writer.commit(replace(upload.record, size=size, custom=upload.custom))
        except Exception as exc:
            writer.abort()
            return _complete_error("internal error", f"storage backend error: {exc}")
        self._uploads.mark_completed(upload)
        self._open = max(0, self._open - 1)
        return _complete_result({"key": oid.key})

    # -- §9.5 abort --------------------------------------------------------------------

    def _abort(self, raw_query: str, oid: ObjectId, deny: Deny) -> ServerResponse:
        upload_id = _upload_id(self._query(raw_query, ("upload_id",)))
        denial = deny(Permission.OBJECT_WRITE)
        if denial is not None:
            return denial
        upload = self._find(upload_id, oid)
        if upload is not None:
            self._uploads.drop(upload)
            self._open = max(0, self._open - 1)
        return empty_response(204)  # an unknown upload counts as already aborted

    @staticmethod
    def _query(raw_query: str, known: tuple[str, ...]) -> dict[str, str]:
        try:
            return parse_query(raw_query, known)
        except _BadQuery:
            raise
        except ValueError as exc:
            raise _BadQuery(str(exc)) from None


def _parse_parts(parsed: object) -> list[tuple[int, str]] | None:
    """``{"parts": [{"part_number": n, "etag": e}, ...]}`` as pairs, or None if misshapen."""
    if not isinstance(parsed, dict) or not isinstance(parsed.get("parts"), list):
        return None
    pairs = []
    for entry in parsed["parts"]:
        if not isinstance(entry, dict):
            return None
        number, etag = entry.get("part_number"), entry.get("etag")
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(etag, str):
            return None
        if not 1 <= number <= _MAX_PART_NUMBER:
            return None
        pairs.append((number, etag))
    return pairs


class _PartSink:
    """Collects one part's bytes, then stores them (parts are held in memory)."""

    __slots__ = ("_chunks", "_store")

    def __init__(self, store: Callable[[bytes], ServerResponse]) -> None:
        self._store = store
        self._chunks: list[bytes] = []

    def feed(self, data: BytesLike) -> None:
        self._chunks.append(bytes(data))

    def finish(self) -> ServerResponse:
        data, self._chunks = b"".join(self._chunks), []
        return self._store(data)

    def abort(self) -> None:
        self._chunks = []
