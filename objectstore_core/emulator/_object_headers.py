"""Metadata headers: validation on write, emission on read (PROTOCOL §4, §14.5).

Write rules (§4.1, §4.2): every metadata header value must be visible ASCII
or tab; ``content-type`` must be a media type; ``content-encoding`` only
exactly ``zstd``; ``x-sn-expiration`` as in §4.3; ``x-sn-time-*`` are
ignored; every ``x-snme-*`` header becomes custom metadata. When a header
appears more than once the last occurrence wins (§4.1).

Values are stored and echoed verbatim: the emulator does not decode the
percent-encoding of §14.4 clients, just as the reference server stores it
literally (so ``x-sn-filename`` and ``content-disposition`` carry the
encoded text).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from objectstore_core import ExpirationPolicy
from objectstore_core.emulator._expiry import deadline_after
from objectstore_core.emulator._storage import DEFAULT_CONTENT_TYPE, ObjectRecord
from objectstore_core.emulator._wire import (
    format_expiration,
    format_timestamp,
    is_media_type,
    parse_expiration,
)

__all__ = [
    "MetadataError",
    "WriteMetadata",
    "content_disposition",
    "parse_write_metadata",
    "read_headers",
    "size_header",
]

# Header names of §4.1, as the server reads and writes them (lower case, §1.2).
HEADER_EXPIRATION = "x-sn-expiration"
HEADER_TIME_CREATED = "x-sn-time-created"
HEADER_TIME_EXPIRES = "x-sn-time-expires"
HEADER_ORIGIN = "x-sn-origin"
HEADER_FILENAME = "x-sn-filename"
HEADER_SIZE = "x-sn-size"  # §14.5
HEADER_META_PREFIX = "x-snme-"

_STANDARD = ("content-type", "content-encoding", HEADER_EXPIRATION, HEADER_ORIGIN, HEADER_FILENAME)


class MetadataError(ValueError):
    """A metadata header was rejected (400); the message follows ``metadata error: ``."""


@dataclass(frozen=True, slots=True)
class WriteMetadata:
    """The metadata of a write request, validated, before the body is known."""

    content_type: str
    content_encoding: str | None
    expiration: ExpirationPolicy | None
    origin: str | None
    filename: str | None
    custom: tuple[tuple[str, str], ...]

    def record(self, size: int, now: datetime) -> ObjectRecord:
        """The record of an object written at ``now``: the deadline starts now (§7.1)."""
        expires = None if self.expiration is None else deadline_after(now, self.expiration.delta)
        return ObjectRecord(
            size=size,
            time_created=now,
            content_type=self.content_type,
            content_encoding=self.content_encoding,
            expiration=self.expiration,
            time_expires=expires,
            origin=self.origin,
            filename=self.filename,
            custom=self.custom,
        )


def _is_visible(value: str) -> bool:
    # §4.2: visible ASCII (0x20-0x7E) or horizontal tab; h11 hands us Latin-1 text.
    # For ASCII text, printable is exactly 0x20-0x7E.
    return value.isascii() and (value.isprintable() or value.replace("\t", " ").isprintable())


def parse_write_metadata(headers: tuple[tuple[str, str], ...]) -> WriteMetadata:
    """Validate the metadata headers of a PUT/POST (§4.1); raises :class:`MetadataError`."""
    relevant = []  # other x-sn-* (incl. x-sn-time-*) and unrelated headers are ignored
    chars = 0
    for header in headers:
        name = header[0]
        if name in _STANDARD or name.startswith(HEADER_META_PREFIX):
            relevant.append(header)
            chars += len(header[1])
    if chars > _REMEMBERED_CHARS:
        return _parse_metadata(tuple(relevant))
    return _remembered_metadata(tuple(relevant))


def _parse_metadata(headers: tuple[tuple[str, str], ...]) -> WriteMetadata:
    standard: dict[str, str] = {}
    custom: dict[str, str] = {}
    for name, value in headers:
        is_custom = name.startswith(HEADER_META_PREFIX)
        if not _is_visible(value):
            raise MetadataError("error dealing with http headers")
        if is_custom:
            custom[name[len(HEADER_META_PREFIX) :]] = value
        else:
            standard[name] = value
    content_type = standard.get("content-type", DEFAULT_CONTENT_TYPE)
    if content_type != DEFAULT_CONTENT_TYPE and not is_media_type(content_type):
        raise MetadataError("invalid content type")
    encoding = standard.get("content-encoding")
    if encoding is not None and encoding != "zstd":  # §4.1, §5: exactly `zstd`
        raise MetadataError("invalid compression value")
    expiration = None
    if HEADER_EXPIRATION in standard:
        try:
            expiration = parse_expiration(standard[HEADER_EXPIRATION])
        except ValueError:
            raise MetadataError("invalid expiration policy") from None
    return WriteMetadata(
        content_type=content_type,
        content_encoding=encoding,
        expiration=expiration,
        origin=standard.get(HEADER_ORIGIN),
        filename=standard.get(HEADER_FILENAME),
        custom=tuple(sorted(custom.items())) if custom else (),
    )


# The same metadata comes again and again (all the inserts of a batch, say): small sets
# of headers are parsed once. Failures are not remembered; they raise every time.
_REMEMBERED_CHARS = 2048
_remembered_metadata = functools.lru_cache(maxsize=256)(_parse_metadata)


def content_disposition(filename: str) -> str:
    """``attachment; filename="..."`` with the sanitizing of PROTOCOL §4.5.

    >>> content_disposition('a/b\\\\c "x".txt')
    'attachment; filename="a-b-c \\\\"x\\\\".txt"'
    >>> content_disposition("..")
    'attachment; filename="--"'
    """
    name = filename.replace("/", "-").replace("\\", "-")
    if name and set(name) == {"."}:
        name = "-" * len(name)
    name = name.replace('"', '\\"')
    return f'attachment; filename="{name}"'


def read_headers(record: ObjectRecord) -> list[tuple[str, str]]:
    """Metadata headers of a GET/HEAD in the reference server's order (§4.1).

    ``x-sn-expiration`` is omitted for manual expiry and uses the compact
    duration form (§13 item 6, §14.3). ``content-disposition`` follows when a
    filename is set. The caller appends ``content-range``/``accept-ranges``
    and :func:`size_header`.
    """
    headers = [("content-type", record.content_type)]
    if record.content_encoding is not None:
        headers.append(("content-encoding", record.content_encoding))
    if record.expiration is not None:
        headers.append((HEADER_EXPIRATION, format_expiration(record.expiration)))
    headers.append((HEADER_TIME_CREATED, format_timestamp(record.time_created)))
    if record.time_expires is not None:
        headers.append((HEADER_TIME_EXPIRES, format_timestamp(record.time_expires)))
    if record.origin is not None:
        headers.append((HEADER_ORIGIN, record.origin))
    if record.filename is not None:
        headers.append((HEADER_FILENAME, record.filename))
    headers.extend((HEADER_META_PREFIX + name, value) for name, value in record.custom)
    if record.filename is not None:
        headers.append(("content-disposition", content_disposition(record.filename)))
    return headers


def size_header(record: ObjectRecord) -> tuple[str, str]:
    """``x-sn-size``: the complete stored size, also on 206 (§14.5)."""
    return (HEADER_SIZE, str(record.size))
