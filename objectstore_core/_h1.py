"""A small sans-IO HTTP/1.1 client codec: request heads out, response events in.

Why not only urllib3: every small operation pays for ``http.client``'s
header parsing through the ``email`` package and for two layers of response
wrappers, which is most of a client's CPU per request. The sync transport
still uses urllib3 to establish connections (TCP, TLS, socket options) and
speaks HTTP/1.1 on the socket with this codec.

The parser follows h11's shape: push bytes with :meth:`ResponseParser.feed`
(``b""`` is EOF), pull events with :meth:`ResponseParser.next_event`, which
returns :data:`NEED_DATA` instead of raising; after an error the parser
refuses further use. A malformed response raises :class:`ProtocolError`; a
body cut short raises :class:`IntegrityError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from objectstore_core._errors import IntegrityError, ProtocolError
from objectstore_core._http import Request, Upload

__all__ = [
    "END",
    "LAST_CHUNK",
    "NEED_DATA",
    "ResponseHead",
    "ResponseParser",
    "chunk_header",
    "encode_request_head",
    "host_header",
    "request_head",
]


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Final = _Sentinel("NEED_DATA")
"""More bytes must be fed before the next event."""
END: Final = _Sentinel("END")
"""The response is complete."""

LAST_CHUNK = b"0\r\n\r\n"
"""Ends a chunked request body."""

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_HEAD = 256 * 1024
_MAX_CHUNK_LINE = 4096
_LENGTH_RE = re.compile(r"[0-9]{1,19}", re.ASCII)
_MAX_INFORMATIONAL = 16
# A chunk size line: hex digits, optional whitespace and extensions (RFC 9112 §7.1).
_CHUNK_SIZE_RE = re.compile(rb"\s*([0-9A-Fa-f]{1,15})\s*(?:;.*)?", re.DOTALL)
# The CRLF ending a last data chunk, then the zero-size chunk and no trailers.
_LAST_CRLF_AND_CHUNK = b"\r\n" + LAST_CHUNK


def chunk_header(size: int) -> bytes:
    """The size line that precedes a chunk of ``size`` bytes (followed by data and CRLF)."""
    return b"%x\r\n" % size


def _check_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\0" in value:
        # Values are validated where they are built; this is a last line of defence.
        raise ValueError(f"header {name!r} has a value with a line break or NUL")


def request_head(
    method: str,
    target: str,
    host: str,
    headers: Iterable[tuple[str, str]],
    *,
    content_length: int | None,
    chunked: bool,
) -> bytes:
    """Serialize a request head. ``content_length`` None and not chunked: no body."""
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    for name, value in headers:
        _check_value(name, value)
        lines.append(f"{name}: {value}")
    if chunked:
        lines.append("transfer-encoding: chunked")
    elif content_length is not None:
        lines.append(f"content-length: {content_length}")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"request head is not Latin-1 encodable: {exc}") from None


def host_header(scheme: str, host: str, port: int) -> str:
    """The ``host`` header value: the port only when not the scheme's default."""
    default = 443 if scheme == "https" else 80
    name = f"[{host}]" if ":" in host else host  # IPv6 literals are bracketed
    return name if port == default else f"{name}:{port}"


def encode_request_head(request: Request, host: str) -> bytes:
    """The head of ``request`` with its framing: chunked for an upload, else a length.

    A header value that cannot be sent raises ProtocolError without showing
    the value: headers may carry a token (API §7).
    """
    body = request.body
    if isinstance(body, bytes):
        length: int | None = len(body)
    elif body is None and request.method in ("POST", "PUT", "PATCH"):
        length = 0
    else:
        length = None
    try:
        return request_head(
            request.method,
            request.target,
            host,
            request.headers,
            content_length=length,
            chunked=isinstance(body, Upload),
        )
    except ValueError:
        raise ProtocolError(
            "the request could not be sent: a header is invalid (value not shown)"
        ) from None


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """Status line and headers (lower-case names; repeated headers joined by ``, ``)."""

    status: int
    reason: str
    headers: dict[str, str]
    keep_alive: bool


# Parser states.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS, _UNTIL_CLOSE, _DONE, _ERROR = (
    range(9)
)


# States in which received bytes can be held as they are (everything after the head):
# body data is handed out from them and chunk framing is read in place.
_DIRECT_STATES = frozenset(
    (_LENGTH, _UNTIL_CLOSE, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS)
)


class ResponseParser:
    """Parses one response to a request of ``method`` (HEAD responses have no body)."""

    __slots__ = (
        "_buffer",
        "_direct",
        "_direct_at",
        "_eof",
        "_head",
        "_informational",
        "_method",
        "_remaining",
        "_state",
    )

    def __init__(self, method: str) -> None:
        self._method = method
        self._buffer = bytearray()
        self._state = _HEAD
        self._remaining = 0
        self._eof = False
        self._head: ResponseHead | None = None
        self._informational = 0
        # Body bytes received while nothing else is buffered are kept as the
        # received object and handed out without copying (large downloads).
        self._direct: bytes | None = None
        self._direct_at = 0

    @property
    def head(self) -> ResponseHead | None:
        """The response head once parsed."""
        return self._head

    @property
    def done(self) -> bool:
        """True when the whole response was parsed."""
        return self._state == _DONE

    def at_end(self) -> bool:
        """True when the body is complete: the next event is END, with no more input.

        Lets a transport release the connection together with the last body
        bytes (a small chunked body arrives whole, terminator included).
        """
        state = self._state
        if state == _DONE:
            return True
        if state != _CHUNK_CRLF or self._buffered() != len(_LAST_CRLF_AND_CHUNK):
            return False
        self._spill()
        return self._buffer == _LAST_CRLF_AND_CHUNK

    @property
    def reusable(self) -> bool:
        """True when the connection can carry another request after this response."""
        return (
            self._state == _DONE
            and self._head is not None
            and self._head.keep_alive
            and not self._buffer
            and self._direct is None
        )

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Push received bytes; ``b""`` means the peer closed the connection."""
        if self._state == _ERROR:
            raise ProtocolError("the response parser failed earlier and cannot be reused")
        if not data:
            self._eof = True
        elif (
            isinstance(data, bytes)
            and self._direct is None
            and not self._buffer
            and self._state in _DIRECT_STATES
        ):
            self._direct, self._direct_at = data, 0
        else:
            self._spill()
            self._buffer += data

    def _spill(self) -> None:
        """Move directly held bytes into the buffer (framing needs to search them)."""
        if self._direct is not None:
            self._buffer += memoryview(self._direct)[self._direct_at :]
            self._direct = None

    def _buffered(self) -> int:
        direct = len(self._direct) - self._direct_at if self._direct is not None else 0
        return direct + len(self._buffer)

    def next_event(self) -> ResponseHead | bytes | memoryview | _Sentinel:
        """The next event: a :class:`ResponseHead`, body bytes, NEED_DATA or END.

        Body bytes are ``bytes``, or a ``memoryview`` of received ``bytes``
        (read-only, safe to keep) where a chunk ends inside a received piece.
        """
        try:
            state = self._state
            if state == _HEAD:
                return self._parse_head()
            if state == _LENGTH:
                return self._take_length()
            if state == _UNTIL_CLOSE:
                if self._buffered():
                    return self._take(self._buffered())
                if self._eof:
                    self._state = _DONE
                    return END
                return NEED_DATA
            if state in (_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS):
                return self._chunked()
            if state == _DONE:
                return END
            raise ProtocolError("the response parser failed earlier and cannot be reused")
        except (ProtocolError, IntegrityError):
            self._state = _ERROR
            raise

    # -- head ---------------------------------------------------------------------

    def _parse_head(self) -> ResponseHead | _Sentinel:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            # RFC 9112 §2.2: a recipient may read a bare LF as a line end. A head
            # ending in one is read as such, at once, rather than waited on.
            bare = buffer.find(b"\n\n", 0, end if end >= 0 else len(buffer))
            raw: bytes | bytearray
            if bare >= 0:
                raw = bytes(buffer[:bare]).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                del buffer[: bare + 2]
            elif end >= 0:
                raw = buffer[:end]
                del buffer[: end + 4]
            else:
                if len(buffer) > _MAX_HEAD:
                    raise ProtocolError(f"response head exceeds {_MAX_HEAD} bytes")
                if self._eof:
                    if buffer:
                        raise ProtocolError("connection closed in the middle of a response head")
                    raise ProtocolError("connection closed before any response")
                return NEED_DATA
            if len(raw) > _MAX_HEAD:
                raise ProtocolError(f"response head exceeds {_MAX_HEAD} bytes")
            head = _parse_head(raw)
            if 100 <= head.status < 200:
                # Informational (e.g. 100 Continue): the real response follows.
                # We never ask to switch protocols, and a bounded number only.
                if head.status == 101:
                    raise ProtocolError("unexpected 101 Switching Protocols: no upgrade was asked")
                self._informational += 1
                if self._informational > _MAX_INFORMATIONAL:
                    raise ProtocolError(
                        f"more than {_MAX_INFORMATIONAL} informational responses before the answer"
                    )
                continue
            self._head = self._choose_framing(head)
            return self._head

    def _choose_framing(self, head: ResponseHead) -> ResponseHead:
        headers = head.headers
        if self._method == "HEAD" or head.status in (204, 304):
            self._state = _DONE
            return head
        encoding = headers.get("transfer-encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise ProtocolError(f"unsupported transfer-encoding {encoding!r}")
            self._state = _CHUNK_SIZE
            return head
        length = headers.get("content-length")
        if length is not None:
            # ASCII digits only: str.strip and int() would also take Unicode
            # spaces and digits (RFC 9110 §8.6).
            digits = length.strip(" \t")
            if not _LENGTH_RE.fullmatch(digits):
                raise ProtocolError(f"invalid content-length {length[:40]!r}")
            self._remaining = int(digits)
            self._state = _LENGTH if self._remaining else _DONE
            return head
        # Delimited by the end of the connection, which therefore cannot be reused.
        self._state = _UNTIL_CLOSE
        return replace(head, keep_alive=False)

    # -- bodies -------------------------------------------------------------------

    def _take_length(self) -> bytes | memoryview | _Sentinel:
        if not self._buffered():
            if self._eof:
                raise IntegrityError(
                    f"response body was truncated: {self._remaining} announced bytes missing"
                )
            return NEED_DATA
        data = self._take(self._remaining)
        self._remaining -= len(data)
        if not self._remaining:
            self._state = _DONE
        return data

    def _take(self, limit: int) -> bytes | memoryview:
        """Up to ``limit`` buffered bytes.

        Bytes held as received are handed out as they are, or as a view of
        the part wanted (chunk boundaries fall inside received pieces): no
        copy. Bytes from the buffer are copied once.
        """
        if self._direct is not None:
            direct, start = self._direct, self._direct_at
            end = min(len(direct), start + limit)
            if start == 0 and end == len(direct):
                self._direct = None
                return direct
            self._direct_at = end
            if end == len(direct):
                self._direct = None
            return memoryview(direct)[start:end]
        if limit >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        with memoryview(self._buffer) as view:
            data = bytes(view[:limit])
        del self._buffer[:limit]
        return data

    def _chunked(self) -> bytes | memoryview | _Sentinel:
        while True:
            state = self._state
            if state == _CHUNK_SIZE:
                line = self._line()
                if line is None:
                    return NEED_DATA
                match = _CHUNK_SIZE_RE.fullmatch(line)
                if match is None:
                    raise ProtocolError(f"malformed chunk size line {line[:40]!r}")
                self._remaining = int(match[1], 16)
                self._state = _CHUNK_DATA if self._remaining else _TRAILERS
                buffer = self._buffer
                if (
                    self._remaining
                    and len(buffer) == self._remaining + len(_LAST_CRLF_AND_CHUNK)
                    and buffer.endswith(_LAST_CRLF_AND_CHUNK)
                ):
                    # A whole small body: this chunk, then the end. One copy, one event.
                    del buffer[self._remaining :]
                    body = bytes(buffer)
                    buffer.clear()
                    self._remaining = 0
                    self._state = _DONE
                    return body
            elif state == _CHUNK_DATA:
                return self._take_length_chunk()
            elif state == _CHUNK_CRLF:
                if (direct := self._direct) is not None:
                    at = self._direct_at
                    if len(direct) - at == len(_LAST_CRLF_AND_CHUNK) and direct.endswith(
                        _LAST_CRLF_AND_CHUNK
                    ):
                        self._direct = None
                        self._state = _DONE
                        return END
                    if direct.startswith(b"\r\n", at):
                        self._advance_direct(at + 2)
                        self._state = _CHUNK_SIZE
                        continue
                self._spill()
                if self._buffer == _LAST_CRLF_AND_CHUNK:
                    # The usual end of a body, all received: skip three state steps.
                    self._buffer.clear()
                    self._state = _DONE
                    return END
                if len(self._buffer) < 2:
                    if self._eof:
                        raise IntegrityError("response body was truncated inside chunked framing")
                    return NEED_DATA
                if self._buffer[:2] != b"\r\n":
                    raise ProtocolError("malformed chunked body: missing CRLF after chunk data")
                del self._buffer[:2]
                self._state = _CHUNK_SIZE
            else:  # trailers: skip lines until an empty one
                line = self._line()
                if line is None:
                    return NEED_DATA
                if not line:
                    self._state = _DONE
                    return END

    def _take_length_chunk(self) -> bytes | memoryview | _Sentinel:
        if not self._buffered():
            if self._eof:
                raise IntegrityError("response body was truncated inside a chunk")
            return NEED_DATA
        data = self._take(self._remaining)
        self._remaining -= len(data)
        if not self._remaining:
            self._state = _CHUNK_CRLF
        return data

    def _advance_direct(self, at: int) -> None:
        """Consume the directly held bytes up to ``at``."""
        assert self._direct is not None
        if at == len(self._direct):
            self._direct = None
        else:
            self._direct_at = at

    def _line(self) -> bytes | None:
        if (direct := self._direct) is not None:
            # A framing line inside a received piece: read in place, no spill.
            at = self._direct_at
            end = direct.find(b"\r\n", at, at + _MAX_CHUNK_LINE + 2)
            if end >= 0:
                self._advance_direct(end + 2)
                return direct[at:end]
        self._spill()
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_CHUNK_LINE:
                raise ProtocolError("chunked framing line is too long")
            if self._eof:
                raise IntegrityError("response body was truncated inside chunked framing")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line


# Header names already validated, as received -> lower case. Servers send the
# same few names on every response: checking and lowering each name once per
# process, not once per response, halves the cost of parsing a head.
_NAMES: dict[str, str] = {}
_NAMES_LIMIT = 1024


def _parse_head(raw: bytes | bytearray) -> ResponseHead:
    # One decode and plain string operations: this runs for every response.
    lines = raw.decode("latin-1").split("\r\n")
    status_line = lines[0]
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise ProtocolError(f"malformed status line {status_line[:80]!r}")
    if len(code) != 3 or not (code.isascii() and code.isdigit()):
        raise ProtocolError(f"malformed status code in {status_line[:80]!r}")
    headers: dict[str, str] = {}
    names = _NAMES
    for index in range(1, len(lines)):
        line = lines[index]
        name, sep, value = line.partition(":")
        key = names.get(name)
        if key is None or not sep:
            if not sep or not _TOKEN_RE.fullmatch(name):
                raise ProtocolError(f"malformed header line {line[:80]!r}")
            key = name.lower()
            if len(names) < _NAMES_LIMIT:
                names[name] = key
        text = value.strip(" \t")
        if key in headers:
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text
    connection = headers.get("connection")
    # HTTP/1.1 keeps connections open unless told otherwise; HTTP/1.0 the reverse.
    if version == "HTTP/1.1":
        keep_alive = connection is None or "close" not in connection.lower()
    else:
        keep_alive = connection is not None and "keep-alive" in connection.lower()
    return ResponseHead(int(code), reason, headers, keep_alive)
