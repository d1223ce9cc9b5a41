"""A small sans-IO HTTP/1.1 client codec: request heads out, response events in.

Why not only urllib3: every small operation pays for ``http.client``'s
header parsing through the ``email`` package and for two layers of response
wrappers, which is most of a client's CPU per request. The sync transport
still uses urllib3 to establish connections (TCP, TLS, socket options) and
speaks HTTP/1.1 on the socket with this codec. Why not h11, which DESIGN
prefers: per small exchange it costs several times this codec's CPU, a
share of the whole client's CPU per small operation well above the 15 %
that would have bought it (``benchmarks/h11_vs_codec.py`` measures both);
``tests/core/test_h1_vs_h11.py`` fuzzes the parser against h11 instead.

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
from objectstore_core._values import quick_setters

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
# Bounds on what a peer can make us hold or parse before an answer begins:
# a head (each of its lines is bounded by the whole), the lines in it, the
# informational responses before the final one, a chunk-size line, trailers.
# The head bound is at least what a server can send back for metadata it
# accepted: the reference server takes request heads up to about 400 KiB
# (PROTOCOL §4.2, §12), and a GET answers with that metadata plus the
# filename a second time (content-disposition, §4.5). The client refuses
# metadata over those limits before sending (_metadata.check_head_limits).
_MAX_HEAD = 1024 * 1024
_MAX_HEADER_LINES = 256
# Object metadata headers (PROTOCOL §4.1) are sent once each: a repeat joined
# into "a, b" would be a value nobody stored, so a repeat is a protocol error.
_SINGLE_PREFIX = "x-sn"
_SINGLE_NAMES = frozenset(("content-type", "content-encoding"))
_MAX_INFORMATIONAL = 16
_MAX_CHUNK_LINE = 4096
# Peer numbers are ASCII digits (hex digits for chunk sizes) and nothing else:
# int() alone would also take Unicode digits, signs, underscores and spaces.
_MAX_LENGTH_DIGITS = 19  # any such number fits 63 bits
# A chunk size line: hex digits, then optional whitespace and extensions
# (RFC 9112 §7.1; BWS before ";" per §7.1.1).
_CHUNK_SIZE_RE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?", re.DOTALL)
# The blank line ending a head or trailers, with a bare LF read as a line end
# (RFC 9112 §2.2) where a CRLF belongs.
_BLANK_LINE_RE = re.compile(rb"\n\r?\n")
# Control characters a field or status line may not hold: all but HTAB
# (RFC 9110 §5.5). As bytes, to be deleted in one pass; as a pattern, to search.
_CONTROLS = bytes([*range(9), *range(10, 32), 127])
_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_PREFIX = b"HTTP/1."
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
    global _last_block
    seen, block = _last_block
    if headers is not seen:
        lines = []
        for name, value in headers:
            _check_value(name, value)
            lines.append(f"{name}: {value}\r\n")
        block = "".join(lines)
        if isinstance(headers, tuple) and "authorization: " not in block:
            _last_block = (headers, block)  # a token is never kept past its request
    if chunked:
        framing = "transfer-encoding: chunked\r\n"
    elif content_length is not None:
        framing = f"content-length: {content_length}\r\n"
    else:
        framing = ""
    try:
        return f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n{block}{framing}\r\n".encode(
            "latin-1"
        )
    except UnicodeEncodeError as exc:
        raise ValueError(f"request head is not Latin-1 encodable: {exc}") from None


# The header lines of the last headers tuple sent, kept with it. A session sends the
# same tuple (its own headers) with every request that adds none: checked and
# formatted once, not once per request. Compared by identity: a tuple is immutable.
# Headers with a token are not kept.
_last_block: tuple[object, str] = ((), "")


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
    chunked = isinstance(body, Upload) and body.length is None
    if isinstance(body, bytes):
        length: int | None = len(body)
    elif isinstance(body, Upload):
        length = body.length  # a fixed-length upload (a multipart part, PROTOCOL §9.2)
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
            chunked=chunked,
        )
    except ValueError:
        raise ProtocolError(
            "the request could not be sent: a header is invalid (value not shown)"
        ) from None


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """Status line and headers (lower-case names; repeated headers joined by ``, ``,
    except object metadata headers, which must not repeat)."""

    status: int
    reason: str
    headers: dict[str, str]
    keep_alive: bool

    def __init__(self, status: int, reason: str, headers: dict[str, str], keep_alive: bool) -> None:
        _head_status(self, status)  # one head per response: see quick_setters
        _head_reason(self, reason)
        _head_headers(self, headers)
        _head_keep_alive(self, keep_alive)


_head_status, _head_reason, _head_headers, _head_keep_alive = quick_setters(
    ResponseHead, "status", "reason", "headers", "keep_alive"
)

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
    """Parses one response to a request of ``method`` (HEAD responses have no body).

    Framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304;
    chunked when ``transfer-encoding`` says so (it wins over a
    ``content-length``, and the connection is then not reused); else a
    ``content-length`` (repeats must agree); else the body runs until the
    peer closes. Informational responses (at most 16; never 101, which we
    never ask for) are skipped. A bare LF is read as a line end in heads,
    chunk-size lines and trailers (RFC 9112 §2.2), not after chunk data;
    obsolete line folding is replaced by a space (§5.2). Heads are bounded (1 MiB, 256 lines), and
    so are chunk-size lines and trailers: a peer over a bound gets a
    :class:`ProtocolError` as soon as the bound is crossed, not a wait.
    """

    __slots__ = (
        "_buffer",
        "_direct",
        "_direct_at",
        "_eof",
        "_head",
        "_informational",
        "_method",
        "_remaining",
        "_scan",
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
        self._scan = 0  # where the search for the end of a head resumes
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
    def starved(self) -> bool:
        """True when a body is being read and nothing of it is buffered: feed first.

        The next event would be NEED_DATA; a download checks this once per
        received piece, cheaper than asking for the event.
        """
        return (
            self._direct is None
            and not self._buffer
            and not self._eof
            and self._state in _DIRECT_STATES
        )

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
            end = buffer.find(b"\r\n\r\n", self._scan)
            head = None
            if end >= 0:
                if end > _MAX_HEAD:
                    raise ProtocolError(f"response head exceeds {_MAX_HEAD} bytes")
                # The usual head, CRLF lines only: one decode, one split, and
                # one pass deleting control characters, which must then have
                # been the CRLFs alone. Else the head is read the long way.
                raw = buffer[:end]
                lines = raw.decode("latin-1").split("\r\n")
                if len(raw) - len(raw.translate(None, _CONTROLS)) == 2 * len(lines) - 2:
                    head = _parse_lines(lines)
                    del buffer[: end + 4]
            if head is None:  # not yet whole, or not plain CRLF lines
                found = _BLANK_LINE_RE.search(buffer, self._scan)
                if found is None:
                    self._scan = max(0, len(buffer) - 3)
                    self._check_incomplete_head()
                    return NEED_DATA
                if found.start() > _MAX_HEAD:
                    raise ProtocolError(f"response head exceeds {_MAX_HEAD} bytes")
                head = _parse_lf_head(bytes(buffer[: found.start()]))
                del buffer[: found.end()]
            self._scan = 0
            if head.status >= 200:
                self._head = self._choose_framing(head)
                return self._head
            _framing(head.headers)  # checked even here, as h11 does
            # Informational (e.g. 100 Continue): the real response follows.
            # We never ask to switch protocols, and take a bounded number only.
            if head.status == 101:
                raise ProtocolError("unexpected 101 Switching Protocols: no upgrade was asked")
            self._informational += 1
            if self._informational > _MAX_INFORMATIONAL:
                raise ProtocolError(
                    f"more than {_MAX_INFORMATIONAL} informational responses before the answer"
                )

    def _check_incomplete_head(self) -> None:
        """Raise at once what waiting for the rest of a head cannot mend."""
        buffer = self._buffer
        if len(buffer) > _MAX_HEAD:
            raise ProtocolError(f"response head exceeds {_MAX_HEAD} bytes")
        if not _STATUS_PREFIX.startswith(buffer[: len(_STATUS_PREFIX)]):
            # Not HTTP/1.x at all (a TLS server, say): no point waiting for a blank line.
            raise ProtocolError(f"malformed status line {bytes(buffer[:40])!r}")
        if self._eof:
            if buffer:
                raise ProtocolError("connection closed in the middle of a response head")
            raise ProtocolError("connection closed before any response")

    def _choose_framing(self, head: ResponseHead) -> ResponseHead:
        headers = head.headers
        # The usual heads (no transfer-encoding; no length, or one plain one) are
        # framed here as _framing would frame them, without its calls.
        length: int | None = None
        chunked = False
        if "transfer-encoding" in headers:
            chunked, length = _framing(headers)
        elif (value := headers.get("content-length")) is not None:
            if value.isascii() and value.isdigit() and len(value) <= _MAX_LENGTH_DIGITS:
                length = int(value)
            else:
                chunked, length = _framing(headers)
        if self._method == "HEAD" or head.status in (204, 304):
            self._state = _DONE
            return head
        if chunked:
            self._state = _CHUNK_SIZE
            if length is None:
                return head
            # RFC 9112 §6.3: transfer-encoding wins over content-length; such a
            # message may be an attempt at response splitting: do not reuse.
            return replace(head, keep_alive=False)
        if length is not None:
            self._remaining = length
            self._state = _LENGTH if length else _DONE
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
                buffer = self._buffer
                if buffer == _LAST_CRLF_AND_CHUNK:
                    # The usual end of a body, all received: skip three state steps.
                    buffer.clear()
                    self._state = _DONE
                    return END
                # A CRLF, strictly, unlike line ends elsewhere: these two bytes are the
                # only check that the chunk size was right, and with a lone LF a
                # chunk one byte short whose data ends in CR would pass unnoticed.
                if buffer[:2] != b"\r\n":
                    if len(buffer) >= 2 or (buffer and buffer[0] != 13):  # not b"" or b"\r"
                        raise ProtocolError("malformed chunked body: missing CRLF after chunk data")
                    if self._eof:
                        raise IntegrityError("response body was truncated inside chunked framing")
                    return NEED_DATA
                del buffer[:2]
                self._state = _CHUNK_SIZE
            else:  # trailers: read (and checked) as header lines, then dropped
                line = self._line()
                if line is None:
                    return NEED_DATA
                if not line:
                    self._state = _DONE
                    return END
                self._check_trailer(line)

    def _check_trailer(self, line: bytes) -> None:
        # _remaining counts the trailer bytes so far: they are bounded as a head is.
        self._remaining += len(line) + 2
        if self._remaining > _MAX_HEAD:
            raise ProtocolError(f"response trailers exceed {_MAX_HEAD} bytes")
        text = line.decode("latin-1")
        if _CONTROL_RE.search(text):
            raise ProtocolError(f"malformed trailer line {text[:80]!r}")
        if text[0] in " \t":  # obsolete line folding (RFC 9112 §5.2): continues a field
            if self._remaining == len(line) + 2:
                raise ProtocolError("a continuation line begins the trailers")
            return
        name, sep, _ = text.partition(":")
        if not sep or not _TOKEN_RE.fullmatch(name):
            raise ProtocolError(f"malformed trailer line {text[:80]!r}")

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
        """The next chunk-size or trailer line, without its CRLF (or bare LF)."""
        if (direct := self._direct) is not None:
            # A framing line inside a received piece: read in place, no spill.
            at = self._direct_at
            end = direct.find(b"\n", at, at + _MAX_CHUNK_LINE + 2)
            if end >= 0:
                self._advance_direct(end + 1)
                return direct[at : end - 1 if end > at and direct[end - 1] == 13 else end]
        self._spill()
        buffer = self._buffer
        end = buffer.find(b"\n", 0, _MAX_CHUNK_LINE + 2)
        if end < 0:
            if len(buffer) > _MAX_CHUNK_LINE + 1:
                raise ProtocolError("chunked framing line is too long")
            if self._eof:
                raise IntegrityError("response body was truncated inside chunked framing")
            return None
        line = bytes(buffer[: end - 1 if end and buffer[end - 1] == 13 else end])
        del buffer[: end + 1]
        return line


# Header lines already parsed, as received -> (lower-case name, value). Servers
# send the same lines again and again (server, content type, encoding, a date
# for a whole second): each is checked and split once, not once per response.
# Bounded: emptied when full, and long lines are never kept.
_LINES: dict[str, tuple[str, str]] = {}
_LINES_LIMIT = 2048
_CACHED_LINE = 200


def _parse_lf_head(raw: bytes) -> ResponseHead:
    """A head whose lines may end in a bare LF (RFC 9112 §2.2); other controls are errors."""
    lines = raw.decode("latin-1").split("\n")
    for index, line in enumerate(lines):
        if line.endswith("\r"):
            lines[index] = line = line[:-1]
        if _CONTROL_RE.search(line):
            raise ProtocolError(f"control character in response head line {line[:80]!r}")
    return _parse_lines(lines)


def _parse_lines(lines: list[str]) -> ResponseHead:
    if len(lines) > _MAX_HEADER_LINES + 1:
        raise ProtocolError(f"response head has more than {_MAX_HEADER_LINES} header lines")
    status_line = lines[0]
    known = _STATUS_LINES.get(status_line)
    if known is None:
        known = _status_line(status_line)
    version, status, reason = known
    headers: dict[str, str] = {}
    parsed = _LINES
    for index in range(1, len(lines)):
        line = lines[index]
        header = parsed.get(line)
        if header is None:
            name, sep, value = line.partition(":")
            if not sep or not _TOKEN_RE.fullmatch(name):
                if line[:1] in (" ", "\t"):
                    return _parse_lines(_unfold(lines))
                raise ProtocolError(f"malformed header line {line[:80]!r}")
            header = (name.lower(), value.strip(" \t"))
            if len(line) <= _CACHED_LINE:
                if len(parsed) >= _LINES_LIMIT:
                    parsed.clear()
                parsed[line] = header
        key, text = header
        if key in headers:
            if key.startswith(_SINGLE_PREFIX) or key in _SINGLE_NAMES:
                raise ProtocolError(
                    f"response repeats header {key[:80]!r}: object metadata headers appear "
                    "once each (PROTOCOL §4.1)"
                )
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text
    connection = headers.get("connection")
    options = () if connection is None else [o.strip(" \t") for o in connection.lower().split(",")]
    # HTTP/1.1 keeps connections open unless told otherwise; HTTP/1.0 the
    # reverse, and never after a transfer-encoding (RFC 9112 §9.3, §6.1).
    if version == "HTTP/1.1":
        keep_alive = "close" not in options
    else:
        keep_alive = (
            "keep-alive" in options
            and "close" not in options
            and "transfer-encoding" not in headers
        )
    return ResponseHead(status, reason, headers, keep_alive)


# Status lines already parsed (a server sends a handful): -> (version, status, reason).
_STATUS_LINES: dict[str, tuple[str, int, str]] = {}
_STATUS_LINES_LIMIT = 64


def _status_line(line: str) -> tuple[str, int, str]:
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise ProtocolError(f"malformed status line {line[:80]!r}")
    if len(code) != 3 or not (code.isascii() and code.isdigit()) or code[0] == "0":
        raise ProtocolError(f"malformed status code in {line[:80]!r}")
    parsed = (version, int(code), reason)
    if len(line) <= _CACHED_LINE:
        if len(_STATUS_LINES) >= _STATUS_LINES_LIMIT:
            _STATUS_LINES.clear()
        _STATUS_LINES[line] = parsed
    return parsed


def _unfold(lines: list[str]) -> list[str]:
    """Obsolete line folding replaced by a space (RFC 9112 §5.2)."""
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if len(out) == 1:
                raise ProtocolError("a continuation line begins the header fields")
            out[-1] += " " + line.lstrip(" \t")
        else:
            out.append(line)
    return out


def _framing(headers: dict[str, str]) -> tuple[bool, int | None]:
    """Whether the body is chunked, and its content-length, checked on every head.

    Only ``chunked`` is a transfer coding we read. A content-length is ASCII
    digits; repeats (joined by ``, ``) must all be the same number (RFC 9110
    §8.6), any other list is an error.
    """
    encoding = headers.get("transfer-encoding")
    if encoding is not None and encoding.lower() != "chunked":
        raise ProtocolError(f"unsupported transfer-encoding {encoding[:40]!r}")
    value = headers.get("content-length")
    if value is None:
        return encoding is not None, None
    if not _is_length(value):
        values = {part.strip(" \t") for part in value.split(",")}
        value = values.pop() if len(values) == 1 else ""
        if not _is_length(value):
            raise ProtocolError(f"invalid content-length {headers['content-length'][:40]!r}")
    return encoding is not None, int(value)


def _is_length(text: str) -> bool:
    # isdigit alone would take Unicode digits (and int() them): ASCII first.
    return text.isascii() and text.isdigit() and len(text) <= _MAX_LENGTH_DIGITS
