"""Multipart uploads (PROTOCOL §9), shaped as the official client's: values and flows.

``CompletePart`` is what ``put_part`` returns and ``complete`` takes (§9.2,
§9.4); ``PartInfo`` is one entry of ``list_parts`` (§9.3). Both are plain
mutable dataclasses with value equality, as in the official client.

:func:`initiate_multipart_flow` starts an upload; :class:`MultipartFlows`
holds one upload's identity (key and upload id) and returns the flow of
each call on it. Both twins' ``MultipartUpload`` classes only drive these.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from objectstore_core._durations import parse_timestamp
from objectstore_core._errors import MultipartCompleteError
from objectstore_core._http import Flow, Payload, Request, Response, Upload, classify_payload
from objectstore_core._metadata import metadata_headers
from objectstore_core._metered import metered
from objectstore_core._models import Compression, ExpirationPolicy, validate_compression
from objectstore_core._operations import (
    _context,
    _protocol_error,
    _raise_for,
    _send,
    _validate_expiration,
)
from objectstore_core._paths import Target, validate_key
from objectstore_core._timeout import Timeout

__all__ = [
    "MAX_PART_NUMBER",
    "CompletePart",
    "MultipartFlows",
    "MultipartUploadBase",
    "PartInfo",
    "initiate_multipart_flow",
]

MAX_PART_NUMBER = 10_000
"""The highest part number the production store accepts (PROTOCOL §9.2)."""


@dataclass
class CompletePart:
    """A stored part: its number (1-10000) and the etag the server gave it."""

    part_number: int
    etag: str


@dataclass
class PartInfo:
    """A stored part as listed by the server (PROTOCOL §9.3)."""

    part_number: int
    etag: str
    last_modified: datetime
    size: int


_PARTS = "objects:multipart:parts"


def _query(upload_id: str, **extra: int) -> str:
    # Opaque ids (UUIDs, base64url documents; §9.1) are escaped whole, so no
    # character of theirs can split the query.
    items = [f"upload_id={quote(upload_id, safe='-._~')}"]
    items += [f"{name}={value}" for name, value in extra.items()]
    return "?" + "&".join(items)


def _json_object(response: Response, target: Target, operation: str, key: str | None) -> dict:  # type: ignore[type-arg]
    body = response.body.lstrip(b" \t\r\n")  # complete streams spaces before its JSON (§9.4)
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise _protocol_error(
            f"expected a JSON object, got {response.body[:200]!r}", target, operation, key
        )
    return parsed


def _validate_part_number(part_number: object) -> int:
    if (
        isinstance(part_number, bool)
        or not isinstance(part_number, int)
        or not 1 <= part_number <= MAX_PART_NUMBER
    ):
        raise ValueError(
            f"part_number={part_number!r} is invalid: use an integer from 1 to {MAX_PART_NUMBER}"
        )
    return part_number


def _validate_upload_id(upload_id: object) -> str:
    # The server's rule (§9.2): non-empty, no path-traversal components.
    if not isinstance(upload_id, str):
        raise TypeError(f"upload_id must be a str, got {upload_id!r}")
    if (
        not upload_id
        or upload_id.startswith(("/", "./"))
        or ".." in upload_id.split("/")
        or upload_id == "."
    ):
        raise ValueError(
            f"upload_id={upload_id!r} is invalid: it must be non-empty and contain no "
            "path-traversal components ('..', a leading '/' or './')"
        )
    return upload_id


def _validate_md5(content_md5: object) -> str | None:
    """The ``content-md5`` value: the 16-byte digest (as the official client takes it)
    in base64, or base64 text as given (PROTOCOL §9.2)."""
    if content_md5 is None:
        return None
    digest = b""
    if isinstance(content_md5, bytes | bytearray | memoryview):
        digest = bytes(content_md5)
    elif isinstance(content_md5, str):
        try:
            digest = base64.b64decode(content_md5, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
    if len(digest) != 16:
        raise ValueError(
            f"content_md5={content_md5!r} is invalid: pass the 16-byte MD5 digest of the "
            "part (hashlib.md5(part).digest()) or its base64 (PROTOCOL §9.2)"
        )
    return base64.b64encode(digest).decode("ascii")


def _part_body(contents: Payload, content_length: object) -> bytes | Upload:
    """The part as a request body with an exact ``content-length`` (required, §9.2)."""
    if isinstance(content_length, bool) or not isinstance(content_length, int):
        raise TypeError(f"content_length must be an int, got {content_length!r}")
    if content_length < 0:
        raise ValueError(f"content_length={content_length} is invalid: it must be >= 0")
    if isinstance(contents, str):
        contents = contents.encode("utf-8")
    kind = classify_payload(contents)
    if isinstance(contents, bytes | bytearray | memoryview):
        size = memoryview(contents).nbytes
        if size != content_length:
            raise ValueError(
                f"content_length={content_length} does not match the part: it holds {size} bytes"
            )
        return bytes(contents)
    # A stream is sent as it is read, framed by content_length; the transport
    # refuses to send more or fewer bytes (see Upload.length).
    return Upload(source=contents, kind=kind, compress=False, length=content_length)


def initiate_multipart_flow(
    target: Target,
    *,
    key: str | None = None,
    compression: Compression | None = None,
    content_type: str | None = None,
    metadata: Mapping[str, str] | None = None,
    expiration_policy: ExpirationPolicy | None = None,
    origin: str | None = None,
    filename: str | None = None,
    timeout: Timeout | float | None = None,
) -> Flow[MultipartFlows]:
    """Start a multipart upload (PROTOCOL §9.1); the metadata describes the final object.

    ``compression`` is only recorded: parts are uploaded as given, so pass
    ``"none"`` for raw parts. It defaults to the usecase's, as in the
    official clients (§9.6).
    """
    if key == "":
        key = None
    if key is not None:
        validate_key(key)
    chosen = validate_compression(
        compression if compression is not None else target.usecase.compression, "compression"
    )
    policy = _validate_expiration(
        expiration_policy if expiration_policy is not None else target.usecase.expiration_policy
    )
    headers = metadata_headers(
        content_type=content_type,
        compression=chosen,
        expiration_policy=policy,
        origin=origin,
        filename=filename,
        custom=metadata,
    )
    if key is None:  # keyless: POST without the trailing slash, as the official clients (§9.6)
        method, path = "POST", target.collection("objects:multipart").rstrip("/")
    else:
        method, path = "PUT", target.object(key, "objects:multipart")
    request = Request(method, path, tuple(headers), None, timeout=Timeout.coerce(timeout))
    # Each call is timed as the official client does: storage.multipart.<call>.*.
    return metered(target, "multipart.initiate", _initiate_steps(target, request, key))


def _initiate_steps(target: Target, request: Request, key: str | None) -> Flow[MultipartFlows]:
    operation = "initiate_multipart_upload"
    response = yield from _send(target, request, operation, key)
    if not 200 <= response.status < 300:
        _raise_for(response, target, operation, key)
    parsed = _json_object(response, target, operation, key)
    got_key, upload_id = parsed.get("key"), parsed.get("upload_id")
    if not isinstance(got_key, str) or not got_key or not isinstance(upload_id, str):
        raise _protocol_error(
            f"expected a key and an upload_id, got {response.body[:200]!r}",
            target,
            operation,
            key,
        )
    return MultipartFlows(target, got_key, upload_id)


class MultipartFlows:
    """One multipart upload (its key and ``upload_id``); each method returns a flow.

    Built by :func:`initiate_multipart_flow`, or directly to resume an upload
    started elsewhere (no network call, §9.6).
    """

    __slots__ = ("key", "target", "upload_id")

    def __init__(self, target: Target, key: str, upload_id: str) -> None:
        self.target = target
        self.key = validate_key(key)
        self.upload_id = _validate_upload_id(upload_id)

    def _fail(self, response: Response, operation: str) -> None:
        _raise_for(response, self.target, operation, self.key)

    def put_part(
        self,
        contents: Payload,
        *,
        part_number: int,
        content_length: int,
        content_md5: bytes | str | None = None,
        timeout: Timeout | float | None = None,
    ) -> Flow[CompletePart]:
        """Upload part ``part_number`` (PROTOCOL §9.2); returns it with its etag.

        ``contents``: bytes or a binary stream of exactly ``content_length``
        bytes (they are sent as given; nothing is compressed). Re-uploading a
        number replaces the earlier part. ``content_md5``: base64 of the
        part's MD5 digest, checked by the production store.
        """
        number = _validate_part_number(part_number)
        md5 = _validate_md5(content_md5)
        body = _part_body(contents, content_length)
        headers = () if md5 is None else (("content-md5", md5),)
        path = self.target.object(self.key, _PARTS) + _query(self.upload_id, part_number=number)
        request = Request("PUT", path, headers, body, timeout=Timeout.coerce(timeout))
        flow = self._put_part_steps(request, number)
        return metered(self.target, "multipart.put_part", flow, size=content_length)

    def _put_part_steps(self, request: Request, number: int) -> Flow[CompletePart]:
        response = yield from _send(self.target, request, "put_part", self.key)
        if not 200 <= response.status < 300:
            self._fail(response, "put_part")
        etag = _json_object(response, self.target, "put_part", self.key).get("etag")
        if not isinstance(etag, str):
            raise _protocol_error(
                f"expected an etag, got {response.body[:200]!r}", self.target, "put_part", self.key
            )
        return CompletePart(number, etag)  # echoed byte for byte on complete (§9.2)

    def list_parts(self, *, timeout: Timeout | float | None = None) -> Flow[list[PartInfo]]:
        """Every part stored so far, in part-number order, following pagination (§9.3)."""
        flow = self._list_steps(Timeout.coerce(timeout))
        return metered(self.target, "multipart.list_parts", flow)  # not in the official client

    def _list_steps(self, timeout: Timeout | None) -> Flow[list[PartInfo]]:
        parts: list[PartInfo] = []
        marker = 0
        base = self.target.object(self.key, _PARTS)
        while True:
            extra = {"part_number_marker": marker} if marker else {}
            request = Request("GET", base + _query(self.upload_id, **extra), timeout=timeout)
            response = yield from _send(self.target, request, "list_parts", self.key)
            if not 200 <= response.status < 300:
                self._fail(response, "list_parts")
            page = _json_object(response, self.target, "list_parts", self.key)
            parts += self._parse_page(page)
            if page.get("is_truncated") is not True:
                return parts
            following = page.get("next_part_number_marker")
            # A truncated page must move the marker forward, or paging never ends.
            if isinstance(following, bool) or not isinstance(following, int) or following <= marker:
                raise _protocol_error(
                    f"a truncated list of parts gave next_part_number_marker={following!r} "
                    f"after marker {marker}",
                    self.target,
                    "list_parts",
                    self.key,
                )
            marker = following

    def _parse_page(self, page: dict) -> list[PartInfo]:  # type: ignore[type-arg]
        entries = page.get("parts")
        if not isinstance(entries, list):
            raise _protocol_error(
                f"expected a list of parts, got {entries!r:.200}", self.target, "list_parts", None
            )
        parts = []
        for entry in entries:
            try:
                number, etag = entry["part_number"], entry["etag"]
                size, modified = entry["size"], entry["last_modified"]
                if not (isinstance(number, int) and isinstance(etag, str)):
                    raise TypeError("part_number or etag")
                if not (isinstance(size, int) and isinstance(modified, str)):
                    raise TypeError("size or last_modified")
                parts.append(PartInfo(number, etag, parse_timestamp(modified), size))
            except (KeyError, TypeError, ValueError) as exc:
                raise _protocol_error(
                    f"malformed part {entry!r:.200}: {exc}", self.target, "list_parts", self.key
                ) from exc
        return parts

    def complete(
        self,
        parts: Sequence[CompletePart | PartInfo],
        *,
        timeout: Timeout | float | None = None,
    ) -> Flow[str]:
        """Assemble the object from ``parts`` (any order; sent sorted) and return its key.

        ``parts``: what :meth:`put_part` returned, or what :meth:`list_parts` lists.

        The server answers 200 and reports a failure in the body (§9.4): that
        raises :class:`MultipartCompleteError` with the server's code, and
        the upload stays open for another attempt.
        """
        if isinstance(parts, CompletePart | PartInfo | str) or not isinstance(parts, Sequence):
            raise TypeError(f"parts must be a list of CompletePart, got {parts!r:.80}")
        chosen: dict[int, str] = {}
        for part in parts:
            # Duck-typed: the official client's values (and PartInfo) carry the same fields.
            if not (hasattr(part, "part_number") and hasattr(part, "etag")):
                raise TypeError(f"parts must hold CompletePart values, got {part!r:.80}")
            number = _validate_part_number(part.part_number)
            if number in chosen:
                raise ValueError(f"part number {number} is listed twice in parts")
            if not isinstance(part.etag, str):
                raise TypeError(f"the etag of part {number} must be a str, got {part.etag!r}")
            chosen[number] = part.etag
        listed = [{"part_number": n, "etag": chosen[n]} for n in sorted(chosen)]
        body = json.dumps({"parts": listed}, separators=(",", ":")).encode()
        path = self.target.object(self.key, "objects:multipart:complete") + _query(self.upload_id)
        headers = (("content-type", "application/json"),)
        request = Request("POST", path, headers, body, timeout=Timeout.coerce(timeout))
        return metered(self.target, "multipart.complete", self._complete_steps(request))

    def _complete_steps(self, request: Request) -> Flow[str]:
        response = yield from _send(self.target, request, "complete", self.key)
        if not 200 <= response.status < 300:
            self._fail(response, "complete")
        parsed = _json_object(response, self.target, "complete", self.key)
        error = parsed.get("error")
        if error is not None:  # the outcome is in the body, not the status (§9.4)
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            failure = MultipartCompleteError(
                str(code) if code is not None else "unknown",
                str(message) if message is not None else str(error),
            )
            raise failure.with_context(**_context(self.target, "complete", self.key))
        key = parsed.get("key")
        if not isinstance(key, str) or not key:
            raise _protocol_error(
                f"expected a key, got {response.body[:200]!r}", self.target, "complete", self.key
            )
        return key

    def abort(self, *, timeout: Timeout | float | None = None) -> Flow[None]:
        """Abandon the upload and drop its parts (§9.5); an unknown upload is fine."""
        path = self.target.object(self.key, "objects:multipart") + _query(self.upload_id)
        flow = self._abort_steps(Request("DELETE", path, timeout=Timeout.coerce(timeout)))
        return metered(self.target, "multipart.abort", flow)  # not in the official client

    def _abort_steps(self, request: Request) -> Flow[None]:
        response = yield from _send(self.target, request, "abort", self.key)
        if response.status != 404 and not 200 <= response.status < 300:
            self._fail(response, "abort")
        return None

    def __repr__(self) -> str:
        return f"MultipartFlows(key={self.key!r}, upload_id={self.upload_id!r})"


class MultipartUploadBase:
    """What a twin's multipart upload object holds, with no I/O: its session and flows.

    ``MultipartUpload`` and ``AsyncMultipartUpload`` add the calls, each
    driving one :class:`MultipartFlows` flow (blocking or awaited).
    """

    __slots__ = ("_flows", "_session")

    def __init__(self, session: Any, key: str, upload_id: str) -> None:
        # session: the twin's session, whose ``_flows`` continue upload ``upload_id``
        self._session = session
        self._flows: MultipartFlows = session._flows.resume_multipart_upload(key, upload_id)

    @property
    def _client(self) -> Any:
        """The twin's client, whose transport runs this upload's flows."""
        return self._session._client

    @property
    def key(self) -> str:
        """The key the object will have."""
        return self._flows.key

    @property
    def upload_id(self) -> str:
        """The server's opaque id of this upload (keep it to resume the upload)."""
        return self._flows.upload_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, upload_id={self.upload_id!r})"
