"""The batch endpoint's wire format (PROTOCOL §8): request encoder, response decoder.

The encoder turns operations into a ``multipart/form-data`` body, one part
per operation (§8.1); it yields the body piece by piece, so a caller can
stream it or join it. The decoder reads the multipart response (§8.4) in
h11's style: push bytes with :meth:`BatchDecoder.receive_data` (``b""`` is
the end of the body), pull events with :meth:`BatchDecoder.next_event`,
which returns a :class:`BatchPart`, :data:`END` once the closing delimiter
was read, or :data:`NEED_DATA` when more bytes are needed. A malformed
stream raises :class:`~objectstore_core.ProtocolError` (the peer
misbehaved); after that the decoder refuses further use. Memory per part is
bounded by ``max_part_size`` and ``max_header_size``.

The decoder does not interpret part headers (index, status, key, kind): the
batch flow (:mod:`objectstore_core._batch_flow`) correlates parts with the
operations, so a part with a bad index fails exactly its operation.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import unquote

from objectstore_core._errors import ProtocolError
from objectstore_core._values import quick_setters

__all__ = [
    "END",
    "NEED_DATA",
    "BatchDecoder",
    "BatchPart",
    "EncodedPart",
    "batch_content_type",
    "boundary_from_content_type",
    "decode_batch_key",
    "encode_batch",
    "encode_batch_key",
    "encoded_size",
    "part_head",
    "part_size",
]

MAX_HEADER_SIZE = 64 * 1024
"""Bound on one part's header section (a part's metadata headers are small, §4.2)."""

DEFAULT_MAX_PART_SIZE = 1024 * 1024 * 1024
"""Default bound on one part's body (a batch get returns whole objects, §8.4)."""


class _Sentinel(Enum):
    NEED_DATA = "NEED_DATA"
    END = "END"


NEED_DATA = _Sentinel.NEED_DATA
"""Returned by :meth:`BatchDecoder.next_event` when more bytes are needed."""

END = _Sentinel.END
"""Returned by :meth:`BatchDecoder.next_event` after the closing delimiter."""


# ------------------------------------------------------------------- encoder

_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def encode_batch_key(key: str) -> str:
    """Percent-encode a key for ``x-sn-batch-operation-key``: every byte except
    ``A-Z a-z 0-9`` (PROTOCOL §8.1, as the official client does)."""
    if key.isascii() and key.isalnum():
        return key
    return "".join(chr(byte) if byte in _ALNUM else f"%{byte:02X}" for byte in key.encode("utf-8"))


def decode_batch_key(value: str) -> str:
    """The key of a response part's ``x-sn-batch-operation-key`` (§8.4), or ValueError."""
    return unquote(value, encoding="utf-8", errors="strict")


def batch_content_type(boundary: str) -> str:
    """The request's content type, with the boundary quoted as the server quotes its own."""
    return f'multipart/form-data; boundary="{boundary}"'


@dataclass(frozen=True, slots=True)
class EncodedPart:
    """One operation as a request part (§8.1): its kind, key and headers, and its body.

    ``kind`` is the wire kind (``get``, ``head``, ``insert``, ``delete``);
    ``headers`` are the insert's metadata headers (§4.1), lower case.
    """

    kind: str
    key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def head(self, boundary: str) -> bytes:
        return f"--{boundary}\r\n".encode() + part_head(self.kind, self.key, self.headers)


_DISPOSITION = 'content-disposition: form-data; name="part"\r\nx-sn-batch-operation-kind: '


def part_head(kind: str, key: str | None, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A part's header lines after its delimiter line, and the empty line (§8.1).

    The batch flow keeps this per operation, so a retried request encodes
    only its new boundary.
    """
    text = _DISPOSITION + kind
    if key is not None:
        text += "\r\nx-sn-batch-operation-key: " + encode_batch_key(key)
    for name, value in headers:
        text += f"\r\n{name}: {value}"
    return (text + "\r\n\r\n").encode("utf-8")


def encode_batch(parts: Sequence[EncodedPart], boundary: str) -> Iterator[bytes]:
    """The request body for ``parts``, piece by piece (§8.1).

    Each part is ``--boundary CRLF``, its headers, an empty line, the body
    and ``CRLF``; the body ends with ``--boundary--``. The caller joins the
    pieces or streams them.
    """
    for part in parts:
        yield part.head(boundary)
        if part.body:
            yield part.body
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


def encoded_size(part: EncodedPart, body_size: int) -> int:
    """An upper estimate of the bytes ``part`` adds to a request with a ``body_size`` body.

    Used to keep a request under the 100 MiB the Rust client allows (§8.5):
    the boundary is 44 characters, the fixed headers under 200 bytes.
    """
    return part_size(part.key, part.headers, body_size)


def part_size(key: str | None, headers: Sequence[tuple[str, str]], body_size: int) -> int:
    """:func:`encoded_size` of a part with ``key`` and ``headers``, without building it."""
    size = 300 + body_size
    if headers:  # most parts have none (every get, head and delete)
        for name, value in headers:
            size += len(name) + len(value) + 4
    if key is not None:
        # An ASCII key is as long in UTF-8: no encoding to count it.
        size += 3 * (len(key) if key.isascii() else len(key.encode("utf-8"))) + 30
    return size


# ------------------------------------------------------------------- decoder

_BOUNDARY_RE = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))', re.IGNORECASE)


def boundary_from_content_type(value: str | None) -> str:
    """The boundary of a ``multipart/form-data`` content type (§8.4: it is quoted).

    Raises ProtocolError naming the value when it is not multipart or has no boundary.
    """
    if value is None or not value.strip().lower().startswith("multipart/"):
        raise ProtocolError(f"batch response has content-type {value!r}, expected multipart")
    match = _BOUNDARY_RE.search(value)
    if match is None:
        raise ProtocolError(f"batch response content-type {value!r} has no boundary")
    return match.group(1) or match.group(2)


@dataclass(frozen=True, slots=True)
class BatchPart:
    """One response part: its headers (names lower case) and its body."""

    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class BatchDecoder:
    """Incremental decoder of a batch response body (PROTOCOL §8.4).

    >>> decoder = BatchDecoder("b")
    >>> decoder.receive_data(b"--b\\r\\nx-sn-batch-operation-index: 0\\r\\n\\r\\nhi\\r\\n--b--")
    >>> decoder.next_event()
    BatchPart(headers={'x-sn-batch-operation-index': '0'}, body=b'hi')
    >>> decoder.next_event() is END
    True
    """

    __slots__ = (
        "_buffer",
        "_delimiter",
        "_eof",
        "_failed",
        "_lines",
        "_marker",
        "_max_part",
        "_pending",
        "_ready",
        "_scan",
        "_state",
    )

    def __init__(self, boundary: str, *, max_part_size: int = DEFAULT_MAX_PART_SIZE) -> None:
        if not boundary or len(boundary) > 200:
            raise ValueError(f"boundary {boundary!r} is invalid: use 1 to 200 characters")
        self._delimiter = b"--" + boundary.encode("latin-1")
        self._buffer = bytearray()
        self._state = "preamble"  # preamble -> after_delimiter -> headers -> body -> ... -> end
        self._scan = 0  # where the next search for the delimiter may start
        self._eof = False
        self._failed = False
        self._max_part = max_part_size
        self._pending: dict[str, str] = {}
        self._marker = b"\r\n" + self._delimiter  # what ends a part's body
        self._lines: dict[str, tuple[str, str]] = {}  # header lines parsed so far
        self._ready: deque[BatchPart] = deque()  # whole parts taken from the buffer at once

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Push body bytes in any chunking; ``b""`` declares the end of the body."""
        if self._failed:
            raise RuntimeError("the decoder failed earlier and cannot be reused")
        if self._eof:
            raise RuntimeError("receive_data() after the end of the body was declared")
        if not data:
            self._eof = True
        else:
            self._buffer += data

    def next_event(self) -> BatchPart | _Sentinel:
        """The next part, :data:`END`, or :data:`NEED_DATA`; ProtocolError if malformed."""
        if self._ready:
            return self._ready.popleft()
        if self._failed:
            raise RuntimeError("the decoder failed earlier and cannot be reused")
        try:
            return self._next()
        except ProtocolError:
            self._failed = True
            raise

    def _next(self) -> BatchPart | _Sentinel:
        if self._state == "after_delimiter" and self._whole_parts():
            return self._ready.popleft()
        while True:
            if self._state == "end":
                return END
            if self._state == "preamble":
                if not self._skip_preamble():
                    return self._need("the first boundary delimiter")
            elif self._state == "after_delimiter":
                if len(self._buffer) < 2:
                    return self._need("the end of a boundary delimiter")
                if self._buffer[:2] == b"--":
                    self._state = "end"  # §8.4: no CRLF needs to follow the close
                    self._buffer.clear()
                    return END
                if self._buffer[:2] != b"\r\n":
                    after = bytes(self._buffer[:2])
                    raise ProtocolError(f"batch response: boundary delimiter followed by {after!r}")
                del self._buffer[:2]
                self._state = "headers"
            elif self._state == "headers":
                headers = self._headers()
                if headers is None:
                    return self._need("the headers of a part")
                self._pending = headers
                self._state = "body"
                self._scan = 0
            else:
                part = self._body()
                if part is None:
                    return self._need("the end of a part")
                return part

    def _need(self, what: str) -> _Sentinel:
        if self._eof:
            raise ProtocolError(f"batch response ended before {what} (truncated stream)")
        return NEED_DATA

    def _skip_preamble(self) -> bool:
        at = self._buffer.find(self._delimiter)
        if at < 0:
            if len(self._buffer) > MAX_HEADER_SIZE:
                raise ProtocolError("batch response: no boundary delimiter in the first 64 KiB")
            return False
        del self._buffer[: at + len(self._delimiter)]
        self._state = "after_delimiter"
        return True

    def _headers(self) -> dict[str, str] | None:
        if len(self._buffer) < 2:
            return None
        if self._buffer[:2] == b"\r\n":  # a part without headers: the empty line comes first
            del self._buffer[:2]
            return {}
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEADER_SIZE:
                raise ProtocolError("batch response: a part's headers exceed 64 KiB")
            return None
        block = self._buffer[:end].decode("latin-1")  # one decode per part, not per line
        del self._buffer[: end + 4]
        return _header_block(block, self._lines)

    def _body(self) -> BatchPart | None:
        marker = self._marker
        at = self._buffer.find(marker, self._scan)
        if at < 0:
            if len(self._buffer) > self._max_part + len(marker):
                raise ProtocolError(
                    f"batch response: a part is larger than the limit of {self._max_part} bytes"
                )
            self._scan = max(0, len(self._buffer) - len(marker) + 1)
            return None
        body = bytes(self._buffer[:at])
        del self._buffer[: at + len(marker)]
        self._state = "after_delimiter"
        return _new_part(self._pending, body)

    def _whole_parts(self) -> bool:
        """Take every part that is all there at the front of the buffer; False if none is.

        What the general path would return for them (the same checks, the same
        errors), in one pass with one deletion from the buffer: the usual case
        of a response read in large pieces. It stops at the first part it does
        not take as it is (the end, a part without headers, a malformed header
        line, an incomplete part), which the general path then reads.
        """
        buffer, marker, lines, ready = self._buffer, self._marker, self._lines, self._ready
        start = 0
        # Up to a bound, so a response read whole is not copied into parts at once.
        while start < _TAKEN_AT_ONCE and buffer.startswith(b"\r\n", start):
            end = buffer.find(b"\r\n\r\n", start)
            if end <= start:  # incomplete, or the empty line at once: a part without headers
                break
            at = buffer.find(marker, end + 4)
            if at < 0:
                break
            try:
                headers = _header_block(buffer[start + 2 : end].decode("latin-1"), lines)
            except ProtocolError:
                break  # raised by the general path, once the parts before it are out
            ready.append(_new_part(headers, bytes(buffer[end + 4 : at])))
            start = at + len(marker)
        if not start:
            return False
        del buffer[:start]
        return True


_TAKEN_AT_ONCE = 4 * 1024 * 1024
"""Bytes of whole parts :meth:`BatchDecoder._whole_parts` takes from the buffer in one pass."""

_MAX_CACHED_LINES = 4096


# Header lines whose value differs from part to part: not worth remembering.
# Their names are checked as they are (lower case, nothing around them).
_UNIQUE_LINES = frozenset(
    {
        "x-sn-batch-operation-index",
        "x-sn-batch-operation-key",
        "x-sn-size",
        "x-sn-time-created",
        "x-sn-time-expires",
    }
)


def _header_block(block: str, seen: dict[str, tuple[str, str]]) -> dict[str, str]:
    """A part's header lines as a dict (lower-case names, stripped values).

    ``seen`` remembers lines already parsed: most lines repeat from part to
    part (kind, status, content type, disposition), so they are parsed once;
    lines of the names in ``_UNIQUE_LINES`` seldom repeat and are parsed
    without filling ``seen``.
    """
    headers: dict[str, str] = {}
    for line in block.split("\r\n"):
        header = seen.get(line)
        if header is None:
            name, colon, value = line.partition(":")
            if colon and name in _UNIQUE_LINES:
                headers[name] = value.strip()
                continue
            name = name.strip()
            if not colon or not name or not name.isascii():
                raise ProtocolError(f"batch response: malformed part header line {line[:100]!r}")
            if len(seen) >= _MAX_CACHED_LINES:
                seen.clear()
            header = seen[line] = (name.lower(), value.strip())
        headers[header[0]] = header[1]
    return headers


_set_headers, _set_body = quick_setters(BatchPart, "headers", "body")


def _new_part(headers: dict[str, str], body: bytes) -> BatchPart:
    """``BatchPart(headers, body)`` without the frozen dataclass's ``__init__`` (a part per
    operation: this costs a third as much)."""
    part: BatchPart = object.__new__(BatchPart)
    _set_headers(part, headers)
    _set_body(part, body)
    return part
