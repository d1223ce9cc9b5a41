"""Helpers the official client's modules export that the client itself has no use for.

``objectstore_sync``'s submodules (``metadata``, ``metrics``, ``utils``)
re-export these beside the real implementation, so code that imports them
from the official client keeps working after changing the import. None of
them does I/O; the parts that read a file or the clock are in the sync twin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import timedelta
from itertools import islice
from typing import TypeVar

from objectstore_core._config import DEFAULT_USER_AGENT
from objectstore_core._durations import parse_duration
from objectstore_core._errors import RequestError
from objectstore_core._metrics import StorageMetricEmitter
from objectstore_core._timeout import Timeout

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "MIME_SNIFF_BYTES",
    "PARAM_AUTH",
    "TIME_SPLIT",
    "USER_AGENT",
    "StorageMetricEmitter",
    "T",
    "error_for_status",
    "itertools_batched",
    "parse_timedelta",
    "sniff_mime_type",
]

T = TypeVar("T")
"""The item type of :func:`itertools_batched`."""

TIME_SPLIT = re.compile(r"[^\W\d_]+|\d+")
"""Splits a duration into its runs of letters and of digits: ``1d 2h`` -> 1, d, 2, h."""


def itertools_batched(
    iterable: Iterable[T], n: int, strict: bool = False
) -> Iterator[tuple[T, ...]]:
    """``itertools.batched`` of Python 3.13 (with ``strict``) for older Pythons.

    >>> list(itertools_batched("abcde", 2))
    [('a', 'b'), ('c', 'd'), ('e',)]
    """
    if n < 1:
        raise ValueError("n must be at least one")
    iterator = iter(iterable)
    while batch := tuple(islice(iterator, n)):
        if strict and len(batch) != n:
            raise ValueError("final batch is shorter than n")
        yield batch


def parse_timedelta(delta: str) -> timedelta:
    """A duration as written in metadata (``1d 2h 3m 4s``; PROTOCOL §4.3, §14.3).

    The official client's name for :func:`parse_duration`, which also reads
    the reference server's humantime forms (``30days``, ``1month``) that the
    official one refuses.

    >>> parse_timedelta("1d 2h")
    datetime.timedelta(days=1, seconds=7200)
    """
    return parse_duration(delta)


# -- content types by magic number -------------------------------------------------------

MIME_SNIFF_BYTES = 8192
"""How much of a payload :func:`sniff_mime_type` looks at (the sync twin reads this much)."""

# (offset, signature, media type), most specific first. Formats are recognised by their
# published magic numbers; anything else (text, JSON, unknown binaries) is None.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\x00\x00\x01\x00", "image/x-icon"),
    (0, b"8BPS", "image/vnd.adobe.photoshop"),
    (0, b"%PDF", "application/pdf"),
    (0, b"\x28\xb5\x2f\xfd", "application/zstd"),
    (0, b"\x1f\x8b\x08", "application/gzip"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/x-rar-compressed"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x00asm", "application/wasm"),
    (0, b"SQLite format 3\x00", "application/x-sqlite3"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/x-flac"),
    (0, b"ID3", "audio/mpeg"),
)
_RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/x-wav", b"AVI ": "video/x-msvideo"}


def sniff_mime_type(head: bytes) -> str | None:
    """The media type that the first bytes of a payload announce, or None.

    ``head`` is the payload's first :data:`MIME_SNIFF_BYTES` bytes (or all
    of it). Only binary formats with a magic number are recognised.

    >>> sniff_mime_type(b"%PDF-1.7 ...")
    'application/pdf'
    >>> sniff_mime_type(b'{"json": true}') is None
    True
    """
    for offset, signature, media_type in _SIGNATURES:
        if head.startswith(signature, offset):
            return media_type
    if head.startswith(b"\x7fELF") and len(head) > 52:  # magic plus a whole ELF header
        return "application/x-executable"
    if head.startswith(b"RIFF") and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head[4:8] == b"ftyp":  # ISO base media: the brand tells MP4 from HEIC and others
        brand = head[8:12]
        if brand in (b"heic", b"heix"):
            return "image/heic"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    return None


# -- the official client's per-operation metrics ------------------------------------------


# -- constants of the official client's modules -------------------------------------------

DEFAULT_CONNECT_TIMEOUT = Timeout().connect
"""Seconds a connect may take unless the client is told otherwise."""

USER_AGENT = DEFAULT_USER_AGENT
"""The ``user-agent`` this client sends (it names this client, not the official one)."""

PARAM_AUTH = "os_auth"
"""The query parameter that carries a token in an object URL (PROTOCOL §10.2)."""


def error_for_status(
    status: int, body: bytes, error_type: type[RequestError] = RequestError
) -> RequestError | None:
    """The ``error_type`` for a response status >= 400 (None below), with the body as text.

    What the official ``raise_for_status`` raises; the client's own requests
    map statuses to the finer tree with :func:`error_for_response` instead.
    """
    if status < 400:
        return None
    text = body.decode("utf-8", errors="replace")
    return error_type(f"Objectstore request failed with status {status}", status, text)
