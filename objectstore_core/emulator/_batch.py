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
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol
from urllib.parse import unquote

from objectstore_core import Permission
from objectstore_core.emulator._exchange import BufferSink, Exchange, read_body
from objectstore_core.emulator._messages import ServerRequest, ServerResponse, text_response
from objectstore_core.emulator._routing import ObjectPath
from objectstore_core.emulator._storage import ObjectId

__all__ = ["begin_batch"]

MAX_OPERATIONS = 1000  # §8.2
MAX_INSERT = 1024 * 1024  # §8.2: an insert's payload as sent
MAX_BODY = 1024 * 1024 * 1024  # §8.2: the whole request body
_KINDS = ("get", "head", "insert", "delete")
_BOUNDARY_RE = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))', re.IGNORECASE)
_DISPOSITION = ("content-disposition", "form-data; name=part")
# Headers of a single-object read that a batch part does not carry (§4.5, §8.4).
_NOT_IN_PARTS = frozenset({"accept-ranges", "content-disposition", "content-length"})
_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

Deny = Callable[[Permission], ServerResponse | None]


class Handler(Protocol):
    """The single-object operations of the handler that a batch reuses."""

    def _get(self, request: ServerRequest, oid: ObjectId, deny: Deny) -> ServerResponse: ...
    def _head(self, oid: ObjectId) -> ServerResponse: ...
    def _delete(self, raw_query: str, oid: ObjectId, deny: Deny) -> ServerResponse: ...
    def _begin_write(
        self,
        request: ServerRequest,
        raw_query: str,
        path: ObjectPath,
        key: str,
        status: int,
        deny: Deny,
    ) -> Exchange: ...


@dataclass(frozen=True, slots=True)
class _Part:
    index: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


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
        return _respond(handler, path, deny, _split(body, boundary), random.Random(seed))

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
    for segment in segments[1:]:  # segments[0] is the preamble
        if segment.startswith(b"--"):
            closed = True
            break
        index = len(parts)
        head, separator, content = segment.partition(b"\r\n\r\n")
        if not segment.startswith(b"\r\n") or not separator:
            parts.append(_BadPart(400, "multipart parse error: malformed part"))
            continue
        try:
            lines = head[2:].decode("latin-1").split("\r\n") if head[2:] else []
            headers = tuple(_header_line(line) for line in lines)
        except ValueError as exc:
            parts.append(_BadPart(400, f"multipart parse error: {exc}"))
            continue
        parts.append(_Part(index, headers, content))
    if not closed:
        parts.append(_BadPart(400, "multipart parse error: the closing boundary is missing"))
    return parts


def _header_line(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not name.strip():
        raise ValueError(f"invalid header line {line[:80]!r}")
    return name.strip().lower(), value.strip()


def _respond(
    handler: Handler,
    path: ObjectPath,
    deny: Deny,
    parts: list[_Part | _BadPart],
    shuffle: random.Random,
) -> ServerResponse:
    outcomes = []
    for index, part in enumerate(parts):
        if index >= MAX_OPERATIONS:
            message = f"batch exceeds the limit of {MAX_OPERATIONS} operations"
            outcomes.append(_error_part(index, 413, message))
        elif isinstance(part, _BadPart):
            outcomes.append(_error_part(index, part.status, str(part)))
        else:
            outcomes.append(_execute(handler, path, deny, part))
    shuffle.shuffle(outcomes)  # §8.4: completion order, not request order
    boundary = "os-boundary-" + uuid.uuid4().hex
    chunks = [b"--" + boundary.encode() + b"\r\n" + outcome + b"\r\n" for outcome in outcomes]
    body = b"".join(chunks) + b"--" + boundary.encode() + b"--"  # no trailing CRLF (§8.4)
    headers = (("content-type", f'multipart/form-data; boundary="{boundary}"'),)
    return ServerResponse(200, headers, body, None)  # chunked, as the server streams it


def _status_line(status: int) -> str:
    if status == 413:  # the server's (hyper's) phrase, §8.4; older stdlib names differ
        return "413 Payload Too Large"
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _encode_key(key: str) -> str:
    """Every byte except ``A-Z a-z 0-9`` percent-encoded, upper-case hex (§8.4)."""
    return "".join(chr(b) if b in _ALNUM else f"%{b:02X}" for b in key.encode("utf-8"))


def _render(headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("latin-1") + b"\r\n" + body


def _error_part(index: int, status: int, message: str) -> bytes:
    detail = {"detail": f"batch error: {message}", "causes": [message]}
    body = json.dumps(detail, separators=(",", ":")).encode()
    headers = [
        ("x-sn-batch-operation-index", str(index)),
        ("x-sn-batch-operation-status", _status_line(status)),
        _DISPOSITION,
    ]
    return _render(headers, body)


def _from_response(index: int, response: ServerResponse) -> bytes:
    """An error response of the single-object code as an error part (§8.4)."""
    headers = [
        ("x-sn-batch-operation-index", str(index)),
        ("x-sn-batch-operation-status", _status_line(response.status)),
        _DISPOSITION,
    ]
    return _render(headers, read_body(response))


def _execute(handler: Handler, path: ObjectPath, deny: Deny, part: _Part) -> bytes:
    index = part.index
    try:
        kind, key = _kind_and_key(part)
    except _BadPart as bad:
        return _error_part(index, bad.status, str(bad))
    if kind == "insert":
        if len(part.body) > MAX_INSERT:
            return _error_part(index, 413, f"insert payload exceeds {MAX_INSERT} bytes")
        key = key if key is not None else str(uuid.uuid4())
        metadata = tuple(h for h in part.headers if not h[0].startswith("x-sn-batch-"))
        write = ServerRequest("PUT", "/", metadata)
        exchange = handler._begin_write(write, "", path, key, 201, deny)
        if exchange.response is None:
            exchange.feed(part.body)
            response = exchange.finish()
        else:
            response = exchange.response
        if response.status >= 400:
            return _from_response(index, response)
        return _success(index, key, kind, 201, [], b"")  # 201 even on overwrite (§15.3)
    assert key is not None
    oid = ObjectId(path.usecase, path.scope_wire, key)
    if kind == "get":
        response = handler._get(ServerRequest("GET", "/"), oid, deny)
    elif kind == "head":
        response = deny(Permission.OBJECT_READ) or handler._head(oid)
    else:
        response = handler._delete("", oid, deny)
    if response.status >= 400 and response.status != 404:
        return _from_response(index, response)
    body = read_body(response) if kind == "get" else b""
    headers = [h for h in response.headers if h[0] not in _NOT_IN_PARTS]
    return _success(index, key, kind, response.status, headers, body)


def _kind_and_key(part: _Part) -> tuple[str, str | None]:
    kind_text = part.header("x-sn-batch-operation-kind")
    if kind_text is None:
        raise _BadPart(400, "bad request: missing x-sn-batch-operation-kind header")
    kind = kind_text.strip().lower()
    if kind not in _KINDS:
        raise _BadPart(400, f"bad request: unknown operation kind {kind_text!r}")
    raw = part.header("x-sn-batch-operation-key")
    if raw is None:
        if kind != "insert":
            raise _BadPart(
                400, f"bad request: missing x-sn-batch-operation-key header for {kind} operation"
            )
        return kind, None
    try:
        key = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise _BadPart(400, "bad request: the key does not decode to UTF-8") from None
    if not key:
        raise _BadPart(400, "bad request: empty key")
    return kind, key


def _success(
    index: int, key: str, kind: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> bytes:
    lines = [
        ("x-sn-batch-operation-index", str(index)),
        ("x-sn-batch-operation-key", _encode_key(key)),
        ("x-sn-batch-operation-kind", kind),
        ("x-sn-batch-operation-status", _status_line(status)),
        *headers,
        _DISPOSITION,
    ]
    return _render(lines, body)
