"""The emulator's batch endpoint, ``POST /v1/objects:batch/{usecase}/{scopes}/`` (PROTOCOL §8).

The request is ``multipart/form-data`` with one operation per part (§8.1).
Each operation is validated and executed on its own through the handler's
single-object code (metadata parsing, the permission check of the
request's permit, storage), so a read-only token gets a 403 part for each
write while its reads succeed (§8.3). Limits of §8.2: parts past the
1000th and insert payloads over 1 MiB get 413 parts. The response is
always 200 once the request itself was accepted (§8.4): a quoted
``os-boundary-<32 hex>`` boundary, parts in *completion* order (here a
shuffle that differs from request to request, so clients must correlate by
index), error parts with only index, status and content-disposition.

This module reads the wire on its own terms (it shares no parser with the
client's decoder), so a client bug is not mirrored here.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from http import HTTPStatus
from typing import Protocol
from urllib.parse import unquote

from objectstore_core import Permission
from objectstore_core.emulator._exchange import (
    BufferSink,
    Exchange,
    UploadSink,
    read_body,
    read_stream,
    service_error,
)
from objectstore_core.emulator._messages import ServerRequest, ServerResponse, text_response
from objectstore_core.emulator._object_headers import WriteMetadata
from objectstore_core.emulator._routing import ObjectPath
from objectstore_core.emulator._storage import ObjectId, ObjectRecord, OpenObject

__all__ = ["begin_batch"]

MAX_OPERATIONS = 1000  # §8.2
MAX_INSERT = 1024 * 1024  # §8.2: an insert's payload as sent
MAX_BODY = 1024 * 1024 * 1024  # §8.2: the whole request body
_SMALL = 256 * 1024  # inserts up to this size are stored in one step where the store can
_KINDS = ("get", "head", "insert", "delete")
_BOUNDARY_RE = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))', re.IGNORECASE)
_DISPOSITION = "content-disposition: form-data; name=part\r\n"
# Headers of a single-object read that a batch part does not carry (§4.5, §8.4).
_NOT_IN_PARTS = frozenset({"accept-ranges", "content-disposition", "content-length"})
_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

Deny = Callable[[Permission], ServerResponse | None]


class Handler(Protocol):
    """The single-object operations of the handler that a batch reuses."""

    @property
    def storage(self) -> object: ...  # a MemoryStorage's put_small stores an insert at once
    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def batch_turns(self) -> AbstractContextManager[object]: ...  # held while a batch runs

    def _open_live(self, oid: ObjectId, deny: Deny) -> OpenObject | ServerResponse: ...
    def _read_small(
        self, oid: ObjectId, deny: Deny
    ) -> tuple[ObjectRecord, bytes] | ServerResponse | None: ...
    def _found_headers(self, record: ObjectRecord) -> list[tuple[str, str]]: ...
    def _head(self, oid: ObjectId) -> ServerResponse: ...
    def _delete(self, raw_query: str, oid: ObjectId, deny: Deny) -> ServerResponse: ...
    def _admit_write(
        self, headers: tuple[tuple[str, str], ...], deny: Deny
    ) -> WriteMetadata | ServerResponse: ...
    def _upload(
        self, oid: ObjectId, metadata: WriteMetadata, success: ServerResponse
    ) -> UploadSink: ...


Headers = tuple[tuple[str, str], ...]
_Part = tuple[Headers, bytes]
"""A parsed part: its headers (lower-case names, in order) and its body."""

_Outcome = tuple[str, bytes]
"""A response part: its header block (header lines and the blank line) and its body."""


class _BadPart(ValueError):
    """A part that cannot be executed: its error part's status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def begin_batch(
    handler: Handler, request: ServerRequest, path: ObjectPath, deny: Deny, seed: int
) -> Exchange:
    """Start a batch request: check its content type, then buffer and run its parts."""
    boundary = _boundary(request.header("content-type"))
    if boundary is None:
        # §8.1: the plain-text 400 of the multipart extractor.
        return Exchange(text_response(400, "Invalid `boundary` for `multipart/form-data` request"))

    def run(body: bytes) -> ServerResponse:
        parts = _split(body, boundary)
        with handler.batch_turns:
            return _respond(handler, path, deny, parts, random.Random(seed))

    return Exchange(sink=BufferSink(run, MAX_BODY))


def _boundary(content_type: str | None) -> str | None:
    if content_type is None:
        return None
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "multipart/form-data":
        return None
    match = _BOUNDARY_RE.search(params)
    return None if match is None else (match.group(1) or match.group(2))


def _split(body: bytes, boundary: str) -> list[_Part | _BadPart]:
    """The request's parts in body order; a malformed tail becomes one 400 part."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    segments = (b"\r\n" + body).split(delimiter)
    parts: list[_Part | _BadPart] = []
    closed = False
    seen: dict[str, tuple[str, str]] = {}  # parts mostly repeat their header lines
    for segment in segments[1:]:  # segments[0] is the preamble
        if segment.startswith(b"--"):
            closed = True
            break
        head, separator, content = segment.partition(b"\r\n\r\n")
        if not segment.startswith(b"\r\n") or not separator:
            parts.append(_BadPart(400, "multipart parse error: malformed part"))
            continue
        try:
            headers = _header_lines(head[2:].decode("latin-1"), seen) if head[2:] else ()
        except ValueError as exc:
            parts.append(_BadPart(400, f"multipart parse error: {exc}"))
            continue
        parts.append((headers, content))
    if not closed:
        parts.append(_BadPart(400, "multipart parse error: the closing boundary is missing"))
    return parts


def _header_lines(text: str, seen: dict[str, tuple[str, str]]) -> Headers:
    headers = []
    for line in text.split("\r\n"):
        header = seen.get(line)
        if header is None:
            name, colon, value = line.partition(":")
            name = name.strip()
            if not colon or not name:
                raise ValueError(f"invalid header line {line[:80]!r}")
            header = seen[line] = (name.lower(), value.strip())
        headers.append(header)
    return tuple(headers)


def _respond(
    handler: Handler,
    path: ObjectPath,
    deny: Deny,
    parts: list[_Part | _BadPart],
    shuffle: random.Random,
) -> ServerResponse:
    usecase, scope = path.usecase, path.scope_wire
    outcomes = []
    for index, part in enumerate(parts):
        if index >= MAX_OPERATIONS:
            message = f"batch exceeds the limit of {MAX_OPERATIONS} operations"
            outcomes.append(_error_part(index, 413, message))
        elif isinstance(part, _BadPart):
            outcomes.append(_error_part(index, part.status, str(part)))
        else:
            outcomes.append(_execute(handler, usecase, scope, deny, index, *part))
    shuffle.shuffle(outcomes)  # §8.4: completion order, not request order
    boundary = "os-boundary-" + uuid.uuid4().hex
    headers = (("content-type", f'multipart/form-data; boundary="{boundary}"'),)
    return ServerResponse(200, headers, _assemble(outcomes, boundary), None)  # chunked


def _assemble(outcomes: list[_Outcome], boundary: str) -> bytes:
    """``--<boundary>\r\n<head><body>\r\n`` per part, then ``--<boundary>--`` (no CRLF, §8.4).

    The text between two bodies is encoded in one piece: parts without a body
    (inserts, deletes) cost no bytes objects of their own.
    """
    delimiter = f"--{boundary}\r\n"
    pieces: list[bytes] = []
    text = []
    for head, body in outcomes:
        text.append(delimiter)
        text.append(head)
        if body:
            pieces.append("".join(text).encode("latin-1"))
            pieces.append(body)
            text = ["\r\n"]
        else:
            text.append("\r\n")
    text.append(f"--{boundary}--")
    pieces.append("".join(text).encode("latin-1"))
    return b"".join(pieces)


def _status_text(status: int) -> str:
    if status == 413:  # the server's (hyper's) phrase, §8.4; older stdlib names differ
        return "413 Payload Too Large"
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


_STATUS_LINES = {status.value: _status_text(status.value) for status in HTTPStatus}


def _status_line(status: int) -> str:
    line = _STATUS_LINES.get(status)
    return _status_text(status) if line is None else line


# Each byte as the key header spells it: itself for A-Z a-z 0-9, else %XX (§8.4).
_KEY_BYTES = tuple(chr(b) if b in _ALNUM else f"%{b:02X}" for b in range(256))


def _encode_key(key: str) -> str:
    """Every byte except ``A-Z a-z 0-9`` percent-encoded, upper-case hex (§8.4)."""
    if key.isascii() and key.isalnum():  # for ASCII text: nothing but A-Z a-z 0-9
        return key
    return "".join([_KEY_BYTES[b] for b in key.encode("utf-8")])


def _error_part(index: int, status: int, message: str) -> _Outcome:
    detail = {"detail": f"batch error: {message}", "causes": [message]}
    body = json.dumps(detail, separators=(",", ":")).encode()
    return _error_head(index, status), body


def _from_response(index: int, response: ServerResponse) -> _Outcome:
    """An error response of the single-object code as an error part (§8.4)."""
    return _error_head(index, response.status), read_body(response)


def _error_head(index: int, status: int) -> str:
    return (
        f"x-sn-batch-operation-index: {index}\r\n"
        f"x-sn-batch-operation-status: {_status_line(status)}\r\n{_DISPOSITION}\r\n"
    )


_STORED = ServerResponse(201)  # what a batch insert's upload answers once stored


def _execute(
    handler: Handler,
    usecase: str,
    scope: str,
    deny: Deny,
    index: int,
    headers: Headers,
    body: bytes,
) -> _Outcome:
    try:
        kind, key = _kind_and_key(headers)
    except _BadPart as bad:
        return _error_part(index, bad.status, str(bad))
    if kind == "insert":
        if len(body) > MAX_INSERT:
            return _error_part(index, 413, f"insert payload exceeds {MAX_INSERT} bytes")
        key = key if key is not None else str(uuid.uuid4())
        # The metadata headers are the part's; its x-sn-batch-* headers are none of them.
        metadata = handler._admit_write(headers, deny)
        if isinstance(metadata, ServerResponse):
            return _from_response(index, metadata)
        oid = ObjectId(usecase, scope, key)
        put_small = getattr(handler.storage, "put_small", None)
        if put_small is not None and len(body) <= _SMALL:  # what the upload below does, at once
            try:
                put_small(oid, metadata.record(len(body), handler.clock()), body)
            except Exception as exc:  # as UploadSink answers a storage failure
                return _from_response(index, service_error(500, f"storage backend error: {exc}"))
        else:
            sink = handler._upload(oid, metadata, _STORED)
            if body:
                sink.feed(body)
            response = sink.finish()
            if response.status >= 400:
                return _from_response(index, response)
        return _success(index, key, kind, 201, ""), b""  # 201 even on overwrite (§15.3)
    assert key is not None
    oid = ObjectId(usecase, scope, key)
    if kind == "get":  # the whole object, as a GET without Range reads it (§8.4)
        small = handler._read_small(oid, deny)
        if small is not None and not isinstance(small, ServerResponse):
            record, body = small
            return _success(
                index, key, kind, 200, _part_lines(handler._found_headers(record))
            ), body
        opened = small if small is not None else handler._open_live(oid, deny)
        if not isinstance(opened, ServerResponse):
            record = opened.record
            try:
                lines = _part_lines(handler._found_headers(record))
                stream = opened.read_range(0, record.size)
            except BaseException:
                opened.close()
                raise
            return _success(index, key, kind, 200, lines), read_stream(stream)
        response = opened
    elif kind == "head":
        response = deny(Permission.OBJECT_READ) or handler._head(oid)
    else:
        response = handler._delete("", oid, deny)
    status = response.status
    if status >= 400 and status != 404:
        return _from_response(index, response)
    return _success(index, key, kind, status, _part_lines(response.headers)), b""


def _part_lines(headers: Iterable[tuple[str, str]]) -> str:
    """The header lines of a single-object response that a batch part carries too."""
    return "".join([f"{name}: {value}\r\n" for name, value in headers if name not in _NOT_IN_PARTS])


def _kind_and_key(headers: Headers) -> tuple[str, str | None]:
    kind_text = raw = None
    for name, value in headers:  # the first of each counts
        if name == "x-sn-batch-operation-kind":
            if kind_text is None:
                kind_text = value
        elif name == "x-sn-batch-operation-key" and raw is None:
            raw = value
    if kind_text is None:
        raise _BadPart(400, "bad request: missing x-sn-batch-operation-kind header")
    kind = kind_text if kind_text in _KINDS else kind_text.strip().lower()
    if kind not in _KINDS:
        raise _BadPart(400, f"bad request: unknown operation kind {kind_text!r}")
    if raw is None:
        if kind != "insert":
            raise _BadPart(
                400, f"bad request: missing x-sn-batch-operation-key header for {kind} operation"
            )
        return kind, None
    try:
        key = unquote(raw, encoding="utf-8", errors="strict") if "%" in raw else raw
    except UnicodeDecodeError:
        raise _BadPart(400, "bad request: the key does not decode to UTF-8") from None
    if not key:
        raise _BadPart(400, "bad request: empty key")
    return kind, key


def _success(index: int, key: str, kind: str, status: int, lines: str) -> str:
    """The header block of a success part; ``lines`` are the operation's own header lines."""
    return (
        f"x-sn-batch-operation-index: {index}\r\n"
        f"x-sn-batch-operation-key: {_encode_key(key)}\r\n"
        f"x-sn-batch-operation-kind: {kind}\r\n"
        f"x-sn-batch-operation-status: {_status_line(status)}\r\n{lines}{_DISPOSITION}\r\n"
    )
