"""Object metadata and its header encoding (PROTOCOL §4, §14.4, §14.5).

Writing: every value that can hold free text (origin, filename, custom values)
is percent-encoded as newer servers expect (§14.4), so a CR or LF in a value
becomes ``%0D``/``%0A`` and can never start a new header. ``content-type`` is
validated as a media type of visible ASCII instead.

Reading: response header names must already be lower case (PROTOCOL §1.2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from urllib.parse import quote, unquote_to_bytes

from objectstore_core._durations import format_expiration, parse_expiration, parse_timestamp
from objectstore_core._models import Compression, ExpirationPolicy
from objectstore_core._values import quick_setters

__all__ = [
    "HEADER_EXPIRATION",
    "HEADER_FILENAME",
    "HEADER_META_PREFIX",
    "HEADER_ORIGIN",
    "HEADER_SIZE",
    "HEADER_TIME_CREATED",
    "HEADER_TIME_EXPIRES",
    "MAX_REQUEST_HEAD",
    "MAX_REQUEST_HEADERS",
    "Metadata",
    "check_head_limits",
    "decode_header_value",
    "encode_header_value",
    "metadata_headers",
    "read_metadata",
    "validate_content_type",
]

HEADER_EXPIRATION = "x-sn-expiration"
HEADER_TIME_CREATED = "x-sn-time-created"
HEADER_TIME_EXPIRES = "x-sn-time-expires"
HEADER_ORIGIN = "x-sn-origin"
HEADER_FILENAME = "x-sn-filename"
HEADER_SIZE = "x-sn-size"
HEADER_META_PREFIX = "x-snme-"

# PROTOCOL §14.4: keep space and visible ASCII except '%'; escape every other byte.
_VALUE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
# A '%' not starting an escape: the value was not written percent-encoded.
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DIGITS_RE = re.compile(r"[0-9]+")


def encode_header_value(value: str) -> str:
    """Percent-encode a metadata value (PROTOCOL §14.4).

    >>> encode_header_value("café 100%")
    'caf%C3%A9 100%25'
    """
    return quote(value, safe=_VALUE_SAFE, encoding="utf-8", errors="strict")


def decode_header_value(value: str) -> str:
    """Reverse :func:`encode_header_value` (strict UTF-8).

    A value that is not valid percent-encoded UTF-8 (old data written raw, such
    as ``100%``) is returned unchanged rather than failing the read.
    """
    if "%" not in value:
        return value
    if _BAD_ESCAPE_RE.search(value):
        return value
    try:
        return unquote_to_bytes(value).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return value


# RFC 9110 token characters: what a header name may contain.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A media type: type "/" subtype, then optional parameters, all visible ASCII (§4.1).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"[ !#-\[\]-~]*"'  # visible ASCII and space, no quote or backslash
_MEDIA_TYPE_RE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*")


def validate_content_type(value: str) -> str:
    """Return ``value`` if it is a media type the server accepts, else raise ValueError."""
    if not isinstance(value, str):
        raise TypeError(f"content_type must be a str, got {value!r}")
    if not _MEDIA_TYPE_RE.fullmatch(value):
        raise ValueError(
            f"content_type {value!r} is invalid: it must be a media type such as "
            "'application/json' or 'text/plain; charset=utf-8', in visible ASCII"
        )
    return value


def _validate_custom(custom: Mapping[str, str]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    headers = []
    for name, value in custom.items():
        if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
            raise ValueError(
                f"metadata name {name!r} is invalid: it must be a non-empty HTTP token "
                "(letters, digits and !#$%&'*+-.^_`|~)"
            )
        if not isinstance(value, str):
            raise TypeError(f"metadata value for {name!r} must be a str, got {value!r}")
        lowered = name.lower()
        if lowered in seen:
            raise ValueError(
                f"metadata names {seen[lowered]!r} and {name!r} collide: names are "
                "case-insensitive and stored lower-cased (PROTOCOL §4.2)"
            )
        seen[lowered] = name
        headers.append((HEADER_META_PREFIX + lowered, encode_header_value(value)))
    return headers


def metadata_headers(
    *,
    content_type: str | None = None,
    compression: Compression | None = None,
    expiration_policy: ExpirationPolicy | None = None,
    origin: str | None = None,
    filename: str | None = None,
    custom: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The request headers describing an object to write (PROTOCOL §4.1).

    ``compression`` is the encoding of the bytes being sent: ``"zstd"`` adds
    ``content-encoding: zstd``; ``"none"`` or None adds nothing. A policy of
    None sends nothing (the server default is manual).
    """
    headers: list[tuple[str, str]] = []
    if content_type is not None:
        headers.append(("content-type", validate_content_type(content_type)))
    if compression == "zstd":
        headers.append(("content-encoding", "zstd"))
    elif compression not in (None, "none"):
        raise ValueError(f"compression {compression!r} is not supported: use 'zstd' or 'none'")
    if expiration_policy is not None:
        headers.append((HEADER_EXPIRATION, format_expiration(expiration_policy)))
    for header, value, what in (
        (HEADER_ORIGIN, origin, "origin"),
        (HEADER_FILENAME, filename, "filename"),
    ):
        if value is not None:
            if not isinstance(value, str):
                raise TypeError(f"{what} must be a str, got {value!r}")
            headers.append((header, encode_header_value(value)))
    if custom:
        headers.extend(_validate_custom(custom))
    return headers


# PROTOCOL §4.2, §12: the reference server's HTTP stack takes at most 100
# request headers and about 400 KiB of request head (431 past either).
MAX_REQUEST_HEADERS = 100
MAX_REQUEST_HEAD = 400 * 1024
# What a write carries besides its metadata and the session's headers: the
# host, the framing, credentials (a token of some hundred bytes) and room
# for tracing headers; the request line is counted with the path.
_RESERVED_HEADERS = 8
_RESERVED_BYTES = 8 * 1024


def check_head_limits(
    path: str, session_headers: Sequence[tuple[str, str]], metadata: Sequence[tuple[str, str]]
) -> None:
    """Refuse metadata the server would not take, before anything is sent (PROTOCOL §4.2, §12).

    ``metadata`` are the headers :func:`metadata_headers` made for a write to
    ``path``, ``session_headers`` those every request of the session carries.
    Past 100 request headers or about 400 KiB of request head the server
    answers 431; what fits is also what a read of the object can return,
    since the client reads response heads up to 1 MiB. Raises ValueError
    naming the count or the largest entry and the limit.
    """
    count = len(session_headers) + len(metadata) + _RESERVED_HEADERS
    if count > MAX_REQUEST_HEADERS:
        custom = sum(1 for name, _ in metadata if name.startswith(HEADER_META_PREFIX))
        room = custom - (count - MAX_REQUEST_HEADERS)
        raise ValueError(
            f"metadata with {custom} custom entries is too many: a request may carry at most "
            f"{MAX_REQUEST_HEADERS} headers (PROTOCOL §4.2, §12), which leaves room for "
            f"{max(room, 0)} custom entries here"
        )
    size = len(path) + _RESERVED_BYTES
    for name, value in (*session_headers, *metadata):
        size += len(name) + len(value) + 4  # ": " and CRLF
    if size > MAX_REQUEST_HEAD:
        largest = max(metadata, key=lambda header: len(header[1]), default=None)
        if largest is None or len(path) > len(largest[1]):
            culprit = f"the path takes {len(path)} bytes"
        else:
            culprit = (
                f"the largest metadata entry is {largest[0]!r} with a value of "
                f"{len(largest[1])} bytes (as sent, percent-encoded)"
            )
        raise ValueError(
            f"metadata is too large: the request head would take {size} bytes, over the "
            f"{MAX_REQUEST_HEAD} bytes a server accepts (PROTOCOL §4.2, §12); {culprit}"
        )


@dataclass(frozen=True, slots=True)
class Metadata:
    """What the server knows about an object (PROTOCOL §4.1).

    ``compression`` is the encoding of the bytes as stored (None when stored
    raw); after a decompressing ``get`` it is None. ``size`` is the stored
    (possibly compressed) size where the server reports it.
    """

    content_type: str | None = None
    compression: Compression | None = None
    expiration_policy: ExpirationPolicy | None = None
    time_created: datetime | None = None
    time_expires: datetime | None = None
    origin: str | None = None
    filename: str | None = None
    size: int | None = None
    custom: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Metadata:
        """Read metadata from response headers with lower-case names.

        Raises ValueError naming the header when a value is malformed.
        """
        metadata = read_metadata(headers)
        if cls is Metadata:
            return metadata
        # A subclass: built by its own __init__, from what was read.
        return cls(*(getattr(metadata, field.name) for field in fields(Metadata)))


# Names a response carries that are not custom metadata: the metadata's own
# (§4.1), a batch part's (§8.4) and the usual framing of a response.
_NOT_CUSTOM = frozenset(
    {
        "content-type",
        "content-encoding",
        HEADER_EXPIRATION,
        HEADER_TIME_CREATED,
        HEADER_TIME_EXPIRES,
        HEADER_ORIGIN,
        HEADER_FILENAME,
        HEADER_SIZE,
        "x-sn-batch-operation-index",
        "x-sn-batch-operation-key",
        "x-sn-batch-operation-kind",
        "x-sn-batch-operation-status",
        "content-disposition",
        "accept-ranges",
        "connection",
        "content-length",
        "date",
        "etag",
        "last-modified",
        "server",
    }
)


def read_metadata(
    headers: Mapping[str, str], *, default_size: int | None = None, decoded: bool = False
) -> Metadata:
    """:meth:`Metadata.from_headers`, with what a ``get`` changes applied in one step.

    ``default_size`` is the size when the headers give none; ``decoded``
    records the object as handed out decompressed (``compression`` None).
    Building the final value once costs half of building it and then
    ``replace``-ing it, on every get.
    """
    get = headers.get
    encoding = get("content-encoding")
    compression: Compression | None
    if encoding is None or encoding == "":
        compression = None
    elif encoding == "zstd":
        compression = None if decoded else "zstd"
    else:
        raise ValueError(
            f"content-encoding {encoding!r} is not supported: only zstd is (PROTOCOL §5)"
        )
    policy = None
    expiration = get(HEADER_EXPIRATION)
    if expiration is not None:
        policy = parse_expiration(expiration)
    size = default_size
    size_text = get(HEADER_SIZE)
    if size_text is not None:
        # What _DIGITS_RE.fullmatch tells, at a third of its cost: ASCII digits only.
        if not (size_text.isdigit() and size_text.isascii()):
            raise ValueError(f"{HEADER_SIZE} {size_text!r} is invalid: expected a byte count")
        size = int(size_text)
    created = get(HEADER_TIME_CREATED)
    expires = get(HEADER_TIME_EXPIRES)
    origin = get(HEADER_ORIGIN)
    filename = get(HEADER_FILENAME)
    custom = (
        {
            name[len(HEADER_META_PREFIX) :]: decode_header_value(value)
            for name, value in headers.items()
            if name.startswith(HEADER_META_PREFIX)
        }
        # Most reads have none: names all known rule them out (one C call), else one
        # C scan of the names does.
        if not _NOT_CUSTOM.issuperset(headers) and HEADER_META_PREFIX in "\n".join(headers)
        else {}
    )
    # Metadata(...) without the frozen dataclass's __init__: a third of the cost, on
    # every get (and each of a batch's).
    metadata: Metadata = _new(Metadata)
    _set_content_type(metadata, get("content-type"))
    _set_compression(metadata, compression)
    _set_expiration_policy(metadata, policy)
    _set_time_created(metadata, parse_timestamp(created) if created is not None else None)
    _set_time_expires(metadata, parse_timestamp(expires) if expires is not None else None)
    _set_origin(metadata, decode_header_value(origin) if origin is not None else None)
    _set_filename(metadata, decode_header_value(filename) if filename is not None else None)
    _set_size(metadata, size)
    _set_custom(metadata, custom)
    return metadata


_new = object.__new__
(
    _set_content_type,
    _set_compression,
    _set_expiration_policy,
    _set_time_created,
    _set_time_expires,
    _set_origin,
    _set_filename,
    _set_size,
    _set_custom,
) = quick_setters(Metadata, *(field.name for field in fields(Metadata)))
