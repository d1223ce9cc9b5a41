"""The emulator behind a real socket: HTTP/1.1, one thread per connection.

The protocol logic lives in :mod:`objectstore_core.emulator`; this module only
moves bytes, and tries to cost as little CPU per request and per byte as it
can, so that client benchmarks measure the clients:

* **Request heads** are parsed by a small strict parser that accepts exactly
  what h11 accepts in the common case (same grammar: tokens, ``[^\\x00\\s]``
  field values, CRLF lines). Anything it is not sure about (obsolete line
  folding, bare LF, duplicate or listed ``content-length``, unknown
  ``transfer-encoding``, a missing ``host``, malformed lines...) goes to h11,
  whose verdict (a request or a 400/431/501) is final. h11 therefore decides
  every edge case, while a plain request never pays for its event machinery.
* **Request bodies** are read here, not through h11: a content-length body (or
  a large chunk) is received with ``recv_into`` and ``MSG_WAITALL`` (one
  syscall per MiB) straight into storage memory when the exchange offers it
  (:meth:`Exchange.buffer`, as ``MemoryStorage`` does: no copy at all), else
  into one reusable buffer whose memoryviews are fed; chunked bodies are
  decoded by :class:`_Connection` with h11's rules (hex size, optional
  extension, CRLF after the data, trailer lines). The bytes fed to an
  exchange are views of that buffer, valid only during the call; sinks copy
  what they keep (``MemoryStorage`` appends to its body, files are written).
* **Responses** are framed here: the head is one string, and bodies go out
  with ``sendmsg`` so stored bytes are never copied into a framing buffer. A
  stream that can lend views of stored bytes (``read_view``, as
  ``MemoryStorage`` does) is sent without any copy.

Protocol details:

* Response header names are lower case (PROTOCOL §1.2), ``server`` and
  ``date`` are added, and framing follows the request: ``content-length``
  when the length is known, chunked otherwise (GET 200, §1.1); an HTTP/1.0
  client gets an unframed body and the connection is closed, as with h11.
* ``Expect: 100-continue`` is answered with ``100 Continue`` when the body is
  wanted; when the response is already known (an error) it is sent at once
  and the connection is closed, since the client may or may not send the body.
* A client vanishing mid-upload aborts the exchange (nothing becomes
  visible); mid-download the body stream is closed. Malformed heads and
  bodies get a 400 (or h11's hint, e.g. 431, 501) and the connection is
  closed.

Limits (constructor parameters of :class:`EmulatorServer`): a connection cap
(503 past it), an idle timeout before each request, a head timeout and a
body timeout (408), a send timeout for clients that stop reading, and
hyper's head limits (431). A connection's receive buffer starts small and
grows only for a long head or a body read through it. On plain sockets the
timeouts are the kernel's socket options, so the fast paths above keep their
syscalls; TLS sockets use Python's socket timeout.

TLS (``EmulatorServer(tls=context)``, for testing clients over ``https``;
the reference server itself speaks plain HTTP, §1.1): the handshake runs in
the connection's thread, and the paths TLS sockets lack fall back to plain
ones: pieces are gathered and sent with ``sendall`` instead of ``sendmsg``,
bodies are received without ``MSG_WAITALL``, stored files go through
``send`` instead of ``sendfile``, and a stall watches for a hang-up by
receiving (into the connection's buffer) instead of peeking.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import math
import os
import re
import selectors
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from http import HTTPStatus
from types import TracebackType
from typing import IO

import h11

from objectstore_core.emulator import (
    Authenticator,
    BodyStream,
    Emulator,
    Exchange,
    FaultedBody,
    FaultKind,
    MemoryStorage,
    ServerRequest,
    ServerResponse,
    Storage,
)
from objectstore_sync.emulator._clock import wall_clock
from objectstore_sync.emulator._dirstore import DirectoryStorage
from objectstore_sync.emulator._keys import AuthKeySpec, resolve_auth_keys

__all__ = ["EmulatorServer"]

_log = logging.getLogger(__name__)

_SMALL_BUFFER = 16 * 1024  # receive buffer of a new or idle connection; grows as needed
_BUFFER = 1 << 20  # the receive buffer's size for bodies at most (one recv per MiB)
_CHUNK = 1 << 20  # response chunk size when reading a stream that copies (files, faults)
_VIEW_CHUNK = 1 << 20  # response chunk size when the stream lends views of stored bytes
_COALESCE = 64 * 1024  # gather response pieces up to this size into one sendmsg
_MAX_LINE = 64 * 1024  # chunk-size and trailer lines (h11 bounds them by the head limit)

MAX_HEADERS = 100
"""Request header fields allowed by default: hyper's limit (PROTOCOL §4.2, §12); more is 431."""
MAX_HEAD_BYTES = 8192 + 4096 * 100
"""Request head size allowed by default: hyper's read buffer, ~400 KiB (PROTOCOL §4.2); 431."""
MAX_CONNECTIONS = 1024
"""Open connections allowed by default; past it a connection is answered 503 (PROTOCOL §12)."""
IDLE_TIMEOUT = 60.0
"""Default seconds a connection may wait for the first byte of its next request."""
HEAD_TIMEOUT = 30.0
"""Default seconds from a request's first byte to the end of its head (hyper's default)."""
BODY_TIMEOUT = 60.0
"""Default seconds a request body may pause between two bytes received."""
SEND_TIMEOUT = 60.0
"""Default seconds a response may wait for the client to take any of it."""
_SHUTDOWN_GRACE = 5.0  # seconds busy connections get to finish on shutdown()
_LINGER = 5.0  # seconds an error answer waits for the rest of a refused request, at most
_LINGER_BYTES = 4 << 20  # and how much of it is read and dropped, at most
_WAITALL = getattr(socket, "MSG_WAITALL", 0)

# The grammar h11 parses heads with (RFC 9110/9112 as h11 spells it), on Latin-1 text.
_TOKEN = r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_VCHAR_OR_OBS = r"[^\x00\t\n\v\f\r ]"
_REQUEST_LINE = re.compile(rf"({_TOKEN}) ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])")
_HEADER_LINE = re.compile(
    rf"({_TOKEN}):[ \t]*((?:{_VCHAR_OR_OBS}+(?:[ \t]+{_VCHAR_OR_OBS}+)*)?)[ \t]*"
)
_HEAD_END = re.compile(rb"\n\r?\n")  # h11's end of a head (a bare LF line end is tolerated)
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")  # a line, without CRLF
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_LAST_CHUNK = b"0\r\n\r\n"
_CRLF = b"\r\n"


class _ClientGone(Exception):
    """The peer closed the connection or reset it."""


class _TimedOut(Exception):
    """A receive waited longer than the phase allows (idle, head or body timeout)."""


# What a blocking socket raises when SO_RCVTIMEO / SO_SNDTIMEO runs out (EAGAIN; the TLS
# layer reports it as wanting to read or write).
_EXPIRED = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def _timeval(seconds: float | None) -> bytes:
    """``seconds`` as the SO_RCVTIMEO / SO_SNDTIMEO option value (None: wait forever)."""
    if seconds is None:
        seconds = 0.0  # the option's "no timeout"
    elif seconds < 1e-6:
        seconds = 1e-6  # 0 would mean "no timeout": an expired deadline waits the least
    if sys.platform == "win32":  # pragma: no cover - milliseconds as a DWORD there
        return struct.pack("<I", max(1, round(seconds * 1000)) if seconds else 0)
    whole = int(seconds)
    return struct.pack("@ll", whole, round((seconds - whole) * 1e6))


class _BadRequest(Exception):
    """The peer broke HTTP/1.1; answer ``status`` (if still possible) and close."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_BUSY_HEAD = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n"


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: expected a positive whole number")
    return value


def _timeout(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name}={value!r} is invalid: expected seconds > 0, or None")
    return float(value)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


def _comma_values(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    """The comma-separated, lower-cased values of header ``name`` (as h11 reads them)."""
    found = []
    for key, value in headers:
        if key == name:
            found += [piece.strip().lower() for piece in value.split(",")]
    return found


class _Head:
    """A parsed request head: the request, how its body is framed, the connection rules."""

    __slots__ = ("chunked", "expect_continue", "http10", "keep_alive", "length", "request")

    def __init__(self, request: ServerRequest, http_version: str) -> None:
        self.request = request
        headers = request.headers
        self.chunked = False
        self.length = 0
        sized = False
        for name, value in headers:
            if name == "transfer-encoding":  # validated to be `chunked`; it beats a length
                self.chunked = True
            elif name == "content-length":
                sized = True
                if not self.chunked:
                    self.length = int(value)  # validated (and de-duplicated) already
        old = http_version < "1.1"
        if old and self.chunked:
            # RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing
            # (hyper refuses it with 400).
            raise _BadRequest(400)
        self.http10 = old  # cannot read chunked responses
        # RFC 9112 §6.1: with both Content-Length and Transfer-Encoding the body is framed
        # by the latter, and the connection MUST close after the response: whatever
        # follows may be a second request smuggled past a proxy that framed by length.
        self.keep_alive = (
            not old
            and not (self.chunked and sized)
            and "close" not in _comma_values(headers, "connection")
        )
        self.expect_continue = not old and "100-continue" in _comma_values(headers, "expect")


def _fast_head(text: str, max_headers: int) -> _Head | None:
    """Parse a plain request head (CRLF lines, no folding); None to let h11 judge it."""
    lines = text.split("\r\n")
    if len(lines) - 1 > max_headers:
        raise _BadRequest(431)  # PROTOCOL §4.2: hyper's header count limit
    match = _REQUEST_LINE.fullmatch(lines[0])  # nor any line matches a bare CR or LF
    if match is None:
        return None
    method, target, version = match.groups()
    headers = []
    hosts = 0
    lengths = 0
    encodings = 0
    for line in lines[1:]:
        field = _HEADER_LINE.fullmatch(line)
        if field is None:
            return None
        name = field[1].lower()
        value = field[2]
        if name == "host":
            hosts += 1
        elif name == "content-length":
            lengths += 1
            if not value.isdigit() or not value.isascii() or len(value) > 20:
                return None
        elif name == "transfer-encoding":
            encodings += 1
            if value.lower() != "chunked":
                return None
            value = "chunked"
        headers.append((name, value))
    if hosts > 1 or (hosts == 0 and version == "1.1") or lengths > 1 or encodings > 1:
        return None  # h11 refuses or normalizes these
    if version not in ("1.0", "1.1"):
        return None
    return _Head(ServerRequest(method, target, tuple(headers)), version)


def _h11_head(head: bytes, max_head_bytes: int, max_headers: int) -> _Head:
    """Parse a head with h11 (the judge of every unusual case); raises _BadRequest."""
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_bytes)
    try:
        parser.receive_data(head)
        event = parser.next_event()
    except h11.RemoteProtocolError as exc:
        raise _BadRequest(exc.error_status_hint) from None
    if not isinstance(event, h11.Request):
        raise _BadRequest(400)
    if event.http_version not in (b"1.0", b"1.1"):
        # h11 answers any HTTP/x.y as 1.1; like hyper (whose parser knows only 1.0 and
        # 1.1), refuse the rest, HTTP/2.0 included, with 505 Version Not Supported.
        raise _BadRequest(505)
    if len(event.headers) > max_headers:
        raise _BadRequest(431)  # PROTOCOL §4.2: hyper's header count limit
    headers = tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers)
    request = ServerRequest(event.method.decode("ascii"), event.target.decode("latin-1"), headers)
    return _Head(request, event.http_version.decode("ascii"))


def _response_head(response: ServerResponse, framing: str, close: bool) -> bytes:
    """The serialized head; ``framing`` is a ready header line (or "")."""
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in response.headers]
    lines.append(f"server: objectstore-emulator\r\ndate: {_http_date()}\r\n{framing}")
    if close:
        lines.append("connection: close\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    if text.count("\n") != len(response.headers) + 4 + bool(framing) + close:
        raise ValueError("response header with a line break")  # never put CR/LF on the wire
    return text.encode("latin-1")


def _send_all(sock: socket.socket, pieces: list[bytes | memoryview]) -> None:
    """Send ``pieces`` in order with as few copies and syscalls as possible."""
    if isinstance(sock, ssl.SSLSocket):
        _send_all_tls(sock, pieces)
        return
    if len(pieces) == 1:
        sock.sendall(pieces[0])
        return
    sent = sock.sendmsg(pieces)
    for piece in pieces:
        if sent >= len(piece):
            sent -= len(piece)
            continue
        sock.sendall(memoryview(piece)[sent:])
        sent = 0


def _send_all_tls(sock: ssl.SSLSocket, pieces: list[bytes | memoryview]) -> None:
    """``_send_all`` without ``sendmsg``: small pieces are joined into one TLS write."""
    batch: list[bytes | memoryview] = []
    size = 0
    for piece in pieces:
        if len(piece) >= _COALESCE:
            if batch:
                sock.sendall(b"".join(batch))
                batch, size = [], 0
            sock.sendall(piece)
            continue
        batch.append(piece)
        size += len(piece)
        if size >= _COALESCE:
            sock.sendall(b"".join(batch))
            batch, size = [], 0
    if batch:
        sock.sendall(b"".join(batch))


def _hang_up(sock: socket.socket) -> None:
    """Shut both directions of the TCP connection (the peer sees EOF or its reset).

    Called on the plain socket level even for TLS: ``SSLSocket.shutdown``
    would also detach the TLS state another thread may be reading with.
    """
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Connection:
    """Serves the requests of one accepted socket until it closes.

    Received bytes live in ``_buffer``; ``_start:_end`` is what was received
    but not consumed yet (a head, body bytes, a pipelined request).
    """

    def __init__(self, server: EmulatorServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.idle = True
        # Small at first: an idle or slow connection costs little memory. It grows for a
        # long head (up to the head limit, then 431) or a body read into it.
        self._buffer = bytearray(_SMALL_BUFFER)
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = 0
        self._limit = max(_BUFFER, server.max_head_bytes + 1)
        # The receive timeout in force: SO_RCVTIMEO, or on TLS the socket's timeout.
        self._receive_timeout: float | None = None
        self._http10 = False  # whether the current request is HTTP/1.0 (no chunked replies)
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._waitall = 0 if self._tls else _WAITALL  # TLS sockets take no recv flags

    def run(self) -> None:
        try:
            send_timeout = self.server.send_timeout
            if send_timeout is not None and not self._tls:  # (TLS: see _set_receive_timeout)
                # A client that never reads must not pin a thread.
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(send_timeout))
            if isinstance(self.sock, ssl.SSLSocket):
                # A failed handshake (plain HTTP, or no bytes within the head timeout)
                # is an OSError.
                self._set_receive_timeout(self.server.head_timeout)
                self.sock.do_handshake()
            while self._serve_one():
                pass
        except (_ClientGone, OSError):
            pass
        except Exception:  # a bug must not kill the thread silently nor leak the socket
            _log.exception("objectstore emulator: connection failed")
        finally:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.server._forget(self)

    # -- receiving ----------------------------------------------------------------------

    def _set_receive_timeout(self, seconds: float | None) -> None:
        """Make receives wait at most ``seconds`` (None: forever), then raise _TimedOut.

        An option of the kernel's socket rather than Python's socket timeout,
        which would make the socket non-blocking and so lose ``MSG_WAITALL``.
        Python's TLS layer retries a read or write the kernel timed out (it
        waits in poll() instead), so a TLS socket gets Python's timeout, which
        then bounds its sends too: :meth:`_send` sets the send timeout.
        """
        if seconds != self._receive_timeout:
            if self._tls:
                self.sock.settimeout(seconds)
            else:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
            self._receive_timeout = seconds

    def _make_room(self) -> None:
        """Room after ``_end`` to receive into: start over, move the rest to the front, or grow.

        The buffer grows (doubling, up to ``_limit``) only when mostly full of
        bytes not consumed yet: a long head, or a large chunk of a body.
        """
        if self._start == self._end:
            self._start = self._end = 0
            return
        size = len(self._buffer)
        pending = self._end - self._start
        if self._end < size and not (self._end > size - size // 4 and pending < size // 4):
            return  # room enough, or too much to move for the little room it would make
        if pending > size // 2 and size < self._limit:
            bigger = bytearray(min(2 * size, self._limit))
            bigger[:pending] = self._view[self._start : self._end]
            self._buffer, self._view = bigger, memoryview(bigger)
        else:
            self._buffer[:pending] = bytes(self._view[self._start : self._end])
        self._start, self._end = 0, pending

    def _grow_for_body(self, count: int) -> None:
        """With nothing pending: a buffer of up to ``_BUFFER`` for ``count`` body bytes."""
        wanted = min(_BUFFER, 1 << max(0, count - 1).bit_length())
        if len(self._buffer) < wanted:
            self._buffer = bytearray(wanted)
            self._view = memoryview(self._buffer)

    def _shrink(self) -> None:
        """Between requests: back to a small buffer, keeping any pipelined bytes."""
        pending = self._end - self._start
        if len(self._buffer) > _SMALL_BUFFER and pending <= _SMALL_BUFFER // 2:
            small = bytearray(_SMALL_BUFFER)
            small[:pending] = self._view[self._start : self._end]
            self._buffer, self._view = small, memoryview(small)
            self._start, self._end = 0, pending

    def _recv(self) -> int:
        """Receive more bytes after ``_end`` (making room first); _TimedOut if none came."""
        self._make_room()
        try:
            n = self.sock.recv_into(self._view[self._end :])
        except (*_EXPIRED, TimeoutError) as exc:
            raise _TimedOut from exc
        except ConnectionError as exc:
            raise _ClientGone from exc
        self._end += n
        return n

    def _read_head(self) -> _Head | None:
        """The next request head, or None when the peer closed or left an idle connection.

        Waiting for a request's first byte is bounded by the idle timeout (the
        connection then closes quietly), the rest of the head by the head
        timeout (408). A head over the size or header count limit is a 431
        (PROTOCOL §4.2: hyper's limits).
        """
        server = self.server
        scanned = 0  # bytes after _start known not to complete a head (_recv may compact)
        deadline: float | None = None
        while True:
            found = _HEAD_END.search(self._buffer, self._start + max(0, scanned - 2), self._end)
            if found is not None:
                if found.end() - self._start > server.max_head_bytes:
                    raise _BadRequest(431)
                head = bytes(self._view[self._start : found.end()])
                self._start = found.end()
                text = head.decode("latin-1")
                parsed = None
                if head.endswith(b"\r\n\r\n"):
                    parsed = _fast_head(text[:-4], server.max_headers)
                if parsed is None:
                    parsed = _h11_head(head, server.max_head_bytes, server.max_headers)
                return parsed
            if self._end - self._start > server.max_head_bytes:
                raise _BadRequest(431)
            scanned = self._end - self._start
            if not scanned:
                self._set_receive_timeout(server.idle_timeout)
            elif server.head_timeout is not None:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + server.head_timeout
                if deadline <= now:
                    raise _BadRequest(408)
                self._set_receive_timeout(deadline - now)
            try:
                received = self._recv()
            except _TimedOut:
                if not scanned:
                    return None  # idle for too long: close quietly
                raise _BadRequest(408) from None
            if not received:
                if self._start == self._end:
                    return None
                raise _BadRequest(400)  # the peer closed in the middle of a head

    def _read_line(self) -> bytes:
        """One CRLF-terminated line of a chunked body, without the CRLF."""
        scanned = 0
        while True:
            at = self._buffer.find(b"\r\n", self._start + max(0, scanned - 1), self._end)
            if at >= 0:
                line = bytes(self._view[self._start : at])
                self._start = at + 2
                return line
            if self._end - self._start > _MAX_LINE:
                raise _BadRequest(400)
            scanned = self._end - self._start
            if not self._recv():
                raise _BadRequest(400)

    def _feed_exact(self, exchange: Exchange, count: int) -> None:
        """Feed the next ``count`` body bytes: those received already, then straight reads."""
        if self._start < self._end:
            take = min(count, self._end - self._start)
            exchange.feed(self._view[self._start : self._start + take])
            self._start += take
            count -= take
        if not count:
            return
        self._start = self._end = 0  # everything received is consumed
        recv_into = self.sock.recv_into
        while count:
            # Straight into storage memory when the exchange offers it, else our buffer.
            target = exchange.buffer(count)
            if target is None:
                self._grow_for_body(count)
            into = self._view if target is None else target
            try:
                # Never past this body, so no byte of a pipelined request is taken; WAITALL
                # fills the buffer in one call instead of returning every few segments.
                n = recv_into(into, min(count, len(into)), self._waitall)
            except (*_EXPIRED, TimeoutError) as exc:
                raise _TimedOut from exc
            except ConnectionError as exc:
                raise _ClientGone from exc
            if not n:
                raise _BadRequest(400)  # the peer closed in the middle of the body
            if target is None:
                exchange.feed(into[:n])
            else:
                exchange.buffer_filled(n)
            count -= n

    def _read_chunked(self, exchange: Exchange) -> None:
        """Decode a chunked body into ``exchange`` (h11's rules; trailers are read and dropped).

        Clients often send small chunks (16 KiB), so chunks found whole in the
        buffer are handled inline; the general path receives what is missing.
        """
        while True:
            buffer, view = self._buffer, self._view  # reading more may replace them
            at = buffer.find(b"\r\n", self._start, self._end)
            line: bytes | bytearray
            if at >= 0:
                line = buffer[self._start : at]
                self._start = at + 2
            else:
                line = self._read_line()
            header = _CHUNK_HEADER.fullmatch(line)
            if header is None:
                raise _BadRequest(400)
            size = int(header[1], 16)
            if size == 0:
                break
            start = self._start
            if self._end - start >= size + 2:  # data and its CRLF are here already
                if buffer[start + size : start + size + 2] != b"\r\n":
                    raise _BadRequest(400)
                exchange.feed(view[start : start + size])
                self._start = start + size + 2
                continue
            self._feed_exact(exchange, size)
            if self._read_line():  # the data must be followed by CRLF exactly
                raise _BadRequest(400)
        while trailer := self._read_line():  # trailer fields until the empty line
            if _HEADER_LINE.fullmatch(trailer.decode("latin-1")) is None:
                raise _BadRequest(400)

    # -- one exchange ---------------------------------------------------------------------

    def _serve_one(self) -> bool:
        """Serve one request; False when the connection must close."""
        if not self.server._mark_idle(self):
            return False
        self._http10 = False
        self._shrink()
        try:
            head = self._read_head()
        except _BadRequest as exc:
            self._send_error(exc.status)
            return False
        self.idle = False
        if head is None:
            return False
        try:
            return self._exchange(head)
        except _BadRequest as exc:
            self._send_error(exc.status)
            return False
        except _TimedOut:  # the body stopped coming for the body timeout
            self._send_error(408)
            return False

    def _exchange(self, head: _Head) -> bool:
        request = head.request
        self._http10 = head.http10
        exchange = self.server.emulator.begin(request)
        is_head = request.method == "HEAD"
        if head.expect_continue:
            if exchange.response is not None:
                # Answer now; the client may never send the body, so we cannot reuse
                # the connection afterwards.
                exchange.abort()
                self._send_response(exchange.response, is_head, close=True)
                return False
            self._send([b"HTTP/1.1 100 Continue\r\n\r\n"])
        try:
            if head.chunked or head.length:
                self._set_receive_timeout(self.server.body_timeout)
            if head.chunked:
                self._read_chunked(exchange)
            elif head.length:
                self._feed_exact(exchange, head.length)
        except BaseException:
            exchange.abort()  # nothing becomes visible, temp data is removed
            raise
        self._send_response(exchange.finish(), is_head, close=not head.keep_alive)
        return head.keep_alive

    # -- sending ------------------------------------------------------------------------

    def _send(self, pieces: list[bytes | memoryview]) -> None:
        if pieces:
            if self._tls:
                self._set_receive_timeout(self.server.send_timeout)
            try:
                _send_all(self.sock, pieces)
            except (*_EXPIRED, ConnectionError, TimeoutError) as exc:  # incl. the send timeout
                raise _ClientGone from exc

    def _send_response(self, response: ServerResponse, is_head: bool, close: bool = False) -> None:
        body = response.body
        stream = None if isinstance(body, bytes | bytearray | memoryview) else body
        try:
            self._write_response(response, stream, is_head, close)
        finally:
            if stream is not None:
                stream.close()

    def _write_response(
        self, response: ServerResponse, stream: BodyStream | None, is_head: bool, close: bool
    ) -> None:
        faulted = stream if isinstance(stream, FaultedBody) else None
        if faulted is not None and faulted.before_head:
            self._inject(faulted, [])
        status = response.status
        no_body = is_head or status in (204, 304)
        length = response.content_length
        # Framing as h11 chooses it (for HEAD: as for the GET). A body of unknown length
        # is chunked, or, for an HTTP/1.0 client, unframed and ended by closing.
        chunked = False
        if status in (204, 304):
            framing = ""
        elif length is not None:
            framing = f"content-length: {length}\r\n"
        elif self._http10:
            framing = ""
            close = close or not is_head
        else:
            framing = "transfer-encoding: chunked\r\n"
            chunked = True
        pending: list[bytes | memoryview] = [_response_head(response, framing, close)]
        if no_body:
            self._send(pending)
            return
        if stream is None:
            data = response.body
            assert isinstance(data, bytes | bytearray | memoryview)
            if data:
                pending += [b"%x\r\n" % len(data), data, _CRLF] if chunked else [data]
            if chunked:
                pending.append(_LAST_CHUNK)
            if len(pending) > 1 and len(data) < _COALESCE:
                pending = [b"".join(pending)]
            self._send(pending)
            return
        file_region = getattr(stream, "file_region", None)
        if faulted is None and file_region is not None:
            self._send_file(pending, file_region(), chunked)
            return
        read_view = getattr(stream, "read_view", None)
        if faulted is not None or read_view is None:
            read_view = None
        pending_size = 0
        while True:
            if faulted is not None and faulted.due() is not None:
                self._inject(faulted, pending)
                pending, pending_size = [], 0
            if read_view is None:
                chunk = stream.read(_CHUNK)
                pieces: list[bytes | memoryview] = [chunk] if chunk else []
                size = len(chunk)
            else:  # views of stored bytes (no copy), gathered into one large chunk
                pieces, size = [], 0
                while size < _VIEW_CHUNK and (view := read_view(_VIEW_CHUNK - size)):
                    pieces.append(view)
                    size += len(view)
            if not size:
                break
            pending += [b"%x\r\n" % size, *pieces, _CRLF] if chunked else pieces
            pending_size += size
            if pending_size >= _COALESCE:
                self._send(pending)
                pending, pending_size = [], 0
        if chunked:
            pending.append(_LAST_CHUNK)
        self._send(pending)

    def _send_file(
        self, pending: list[bytes | memoryview], region: tuple[IO[bytes], int, int], chunked: bool
    ) -> None:
        """Send the head in ``pending``, then a stored file's bytes by ``sendfile`` (no copies).

        A chunked body goes out as one chunk. A file shorter than its record
        ends the connection: the framing already promised the recorded length.
        """
        file, offset, count = region
        if chunked and count:
            pending.append(b"%x\r\n" % count)
        self._send(pending)
        if count:
            # sendfile waits for a blocked socket with select(), deaf to SO_SNDTIMEO: give
            # it the send timeout as a socket timeout for the call.
            self.sock.settimeout(self.server.send_timeout)
            try:
                sent = self.sock.sendfile(file, offset, count)
            except (*_EXPIRED, ConnectionError, TimeoutError) as exc:
                raise _ClientGone from exc
            finally:
                with contextlib.suppress(OSError):
                    self.sock.settimeout(None)
                if self._tls:
                    self._receive_timeout = None
            if sent < count:
                _hang_up(self.sock)
                raise _ClientGone
        if chunked:
            self._send([_CRLF + _LAST_CHUNK if count else _LAST_CHUNK])

    def _inject(self, faulted: FaultedBody, pending: list[bytes | memoryview]) -> None:
        """Perform the due action of an injected fault on the wire (see ``_faults``).

        Bytes gathered so far are sent first. A stall sleeps and carries on;
        a reset closes with SO_LINGER 0 (the peer gets an RST); a truncation
        closes cleanly mid-body (the peer gets EOF). Both end the connection.
        """
        kind = faulted.due()
        if kind is None:
            return
        faulted.acknowledge()
        self._send(pending)
        if kind is FaultKind.STALL:
            self._stall(faulted.fault.seconds)
            return
        with contextlib.suppress(OSError):
            if kind is FaultKind.RESET:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                _hang_up(self.sock)
            self.sock.close()
        raise _ClientGone

    def _stall(self, seconds: float) -> None:
        """Send nothing for ``seconds``; end the connection early if the client hangs up.

        A client that gave up (a read timeout) closes its end: waiting out the
        stall would only hold a handler thread. Bytes the client sends
        meanwhile (a pipelined request) are left unread for later.
        """
        deadline = time.monotonic() + seconds
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not selector.select(left):
                    continue
                if self._tls:
                    if self._peer_gone_tls(left):
                        raise _ClientGone
                    continue
                try:
                    gone = not self.sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    gone = True
                if gone:
                    raise _ClientGone
                time.sleep(max(0.0, deadline - time.monotonic()))  # data waits unread

    def _peer_gone_tls(self, wait: float) -> bool:
        """Whether a TLS peer hung up: TLS cannot peek, so what arrived is received.

        The bytes go to the buffer like any received ones, so a pipelined
        request is served later. Readable may also mean only part of a TLS
        record: receiving then waits at most ``wait`` seconds.
        """
        if self._end - self._start >= self._limit:
            time.sleep(wait)  # no room to receive into: the bytes wait unread
            return False
        self._set_receive_timeout(wait)
        try:
            return self._recv() == 0
        except _TimedOut:
            return False
        except (_ClientGone, OSError):
            return True

    def _send_error(self, status: int) -> None:
        text = f"{status} {HTTPStatus(status).phrase}".encode()
        response = ServerResponse(
            status, (("content-type", "text/plain; charset=utf-8"),), text, len(text)
        )
        with contextlib.suppress(_ClientGone, OSError):
            self._send_response(response, is_head=False, close=True)
            self._linger()

    def _linger(self) -> None:
        """After an error answer, drop what the client still sends, then let it close.

        Closing a socket with unread bytes resets the connection, and the
        reset can destroy the answer before the client reads it (say, a 431
        while the rest of a huge head is on its way). So stop sending, and
        read and drop, for a bounded time and amount, until the client closes.
        """
        socket.socket.shutdown(self.sock, socket.SHUT_WR)
        deadline = time.monotonic() + _LINGER
        budget = _LINGER_BYTES
        self._start = self._end = 0
        while budget > 0 and (left := deadline - time.monotonic()) > 0:
            self._set_receive_timeout(left)
            try:
                received = self.sock.recv_into(self._view)
            except (*_EXPIRED, ConnectionError, TimeoutError):
                return
            if not received:
                return
            budget -= received


class EmulatorServer:
    """An Objectstore emulator listening on ``host:port`` (port 0 picks a free port).

    The socket is bound in the constructor, so :attr:`url` is known at once;
    :meth:`start` accepts connections in a daemon thread, :meth:`serve_forever`
    in the calling thread. Storage is a :class:`MemoryStorage` unless
    ``data_dir`` (a :class:`DirectoryStorage`) or ``storage`` is given; an
    ``emulator`` can be passed to configure the handler fully.

    ``auth_keys`` is the key directory (PROTOCOL §10.6): ``kid`` -> public
    key PEM text or file, optionally ``(key, permissions)``; see
    :data:`~objectstore_sync.emulator.AuthKeySpec`. With ``enforce_auth`` every
    object request needs a valid token or pre-signed signature (§10, §11).

    ``tls`` is a server-side :class:`ssl.SSLContext` (for instance
    ``LocalCertificate.create().server_context()``): connections then speak
    TLS and :attr:`url` starts with ``https://``. ``fsync`` makes a
    ``data_dir`` store durable (see :class:`DirectoryStorage`).

    Limits, so that hostile or broken clients cannot exhaust the server
    (timeouts in seconds; None waits forever):

    * ``max_connections`` open at once (default 1024); a connection past
      it is answered ``503`` with an empty body and closed, as the reference
      server answers past its in-flight request limit (PROTOCOL §12); a TLS
      one is closed without an answer.
    * ``idle_timeout`` (60): how long a connection, new or kept alive, may
      wait for the first byte of a request before it is closed quietly.
    * ``head_timeout`` (30, as hyper): from the first byte of a request to
      the end of its head (also bounds the TLS handshake); then ``408``.
    * ``body_timeout`` (60): the longest pause inside a request body; then
      the upload is discarded, ``408`` and close.
    * ``send_timeout`` (60): the longest a response may wait for the client
      to take any of it; then the connection is closed.
    * ``max_headers`` and ``max_head_bytes``: hyper's limits by default,
      100 header fields and about 400 KiB (PROTOCOL §4.2); past them ``431``.

    >>> with EmulatorServer("127.0.0.1", 0) as server:
    ...     server.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8888,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        storage: Storage | None = None,
        clock: Callable[[], datetime] | None = None,
        emulator: Emulator | None = None,
        auth_keys: Mapping[str, AuthKeySpec] | None = None,
        enforce_auth: bool = False,
        tls: ssl.SSLContext | None = None,
        fsync: bool = False,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float | None = IDLE_TIMEOUT,
        head_timeout: float | None = HEAD_TIMEOUT,
        body_timeout: float | None = BODY_TIMEOUT,
        send_timeout: float | None = SEND_TIMEOUT,
        max_headers: int = MAX_HEADERS,
        max_head_bytes: int = MAX_HEAD_BYTES,
    ) -> None:
        if tls is not None and not isinstance(tls, ssl.SSLContext):
            raise TypeError(f"tls must be an ssl.SSLContext (server side), got {tls!r}")
        self.max_connections = _positive_int("max_connections", max_connections)
        self.max_headers = _positive_int("max_headers", max_headers)
        self.max_head_bytes = _positive_int("max_head_bytes", max_head_bytes)
        self.idle_timeout = _timeout("idle_timeout", idle_timeout)
        self.head_timeout = _timeout("head_timeout", head_timeout)
        self.body_timeout = _timeout("body_timeout", body_timeout)
        self.send_timeout = _timeout("send_timeout", send_timeout)
        if fsync and (data_dir is None or storage is not None or emulator is not None):
            raise ValueError("fsync=True needs data_dir (the directory store), without storage")
        self.tls = tls
        """The server's TLS context, or None for plain HTTP."""
        # Keys are read and checked even without enforcement: a bad key fails at start.
        keys = resolve_auth_keys(auth_keys)
        if emulator is None:
            if storage is None:
                if data_dir is None:
                    storage = MemoryStorage(lock=threading.RLock())
                else:
                    storage = DirectoryStorage(data_dir, fsync=fsync)
            emulator = Emulator(storage, clock=wall_clock if clock is None else clock)
            if enforce_auth:
                emulator.authorize = Authenticator(keys)
        elif auth_keys is not None or enforce_auth:
            raise ValueError("pass auth_keys/enforce_auth or an emulator, not both")
        self.emulator = emulator
        self.storage = emulator.storage
        self.faults = emulator.faults
        """Faults to inject (``server.faults.inject(Fault.reset())``); see ``_faults``."""
        self.faults.use_lock(threading.Lock())  # one plan, many connection threads
        emulator.use_batch_lock(threading.Lock())  # batches take turns (see use_batch_lock)
        self._listener = socket.create_server((host, port), backlog=128)
        self._listener.setblocking(False)
        bound_host, bound_port = self._listener.getsockname()[:2]
        self.host, self.port = bound_host, bound_port
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"{'https' if tls is not None else 'http'}://{shown}:{bound_port}"
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._closing = False
        self._connections: dict[_Connection, threading.Thread] = {}
        self.connections_accepted = 0
        """How many TCP connections were accepted so far (tests check connection reuse)."""
        self.connections_refused = 0
        """How many connections were answered 503 because ``max_connections`` were open."""
        self._loop_thread: threading.Thread | None = None  # runs the accept loop
        self._loop_exited = threading.Event()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def start(self) -> None:
        """Accept connections in a background daemon thread."""
        thread = threading.Thread(
            target=self._accept_loop, name="objectstore-emulator-accept", daemon=True
        )
        self._claim_loop(thread)
        thread.start()

    def serve_forever(self) -> None:
        """Accept connections in this thread until :meth:`shutdown` (or KeyboardInterrupt).

        The caller should call :meth:`shutdown` afterwards (also after
        KeyboardInterrupt) to close the remaining connections.
        """
        self._claim_loop(threading.current_thread())
        self._accept_loop()

    def _claim_loop(self, thread: threading.Thread) -> None:
        with self._lock:
            if self._loop_thread is not None or self._closing:
                raise RuntimeError("the server is already started or shut down")
            self._loop_thread = thread

    def shutdown(self) -> None:
        """Stop accepting, close idle connections, wait (bounded) for busy ones."""
        with self._lock:
            already = self._closing
            self._closing = True
            idle = [c for c in self._connections if c.idle]
        if not already:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        loop = self._loop_thread
        if loop is None:
            self._close_sockets()
        elif loop is not threading.current_thread():
            self._loop_exited.wait(_SHUTDOWN_GRACE)
        # else: called inside the loop's thread (a signal handler); the loop closes on exit.
        for connection in idle:
            self._hang_up(connection)
        deadline = time.monotonic() + _SHUTDOWN_GRACE
        for connection, thread in list(self._connections.items()):
            if thread is threading.current_thread():
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():  # still busy after the grace period: cut it off
                self._hang_up(connection)
                thread.join(1.0)

    @property
    def connections_open(self) -> int:
        """How many connections are open now (each holds one thread)."""
        with self._lock:
            return len(self._connections)

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _hang_up(connection: _Connection) -> None:
        _hang_up(connection.sock)

    def _mark_idle(self, connection: _Connection) -> bool:
        """Called before waiting for the next request; False when shutting down."""
        with self._lock:
            if self._closing:
                return False
            connection.idle = True
            return True

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.pop(connection, None)

    def _close_sockets(self) -> None:
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def _accept_loop(self) -> None:
        # The loop owns the listening and wake-up sockets: they are closed when it ends,
        # never under a running select().
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._listener, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._closing:
                    for key, _ in selector.select():
                        if key.fileobj is self._wake_r:
                            return
                        self._accept()
        finally:
            self._close_sockets()
            self._loop_exited.set()

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:  # the handshake waits for the connection's own thread
                sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except OSError:
                sock.close()
                return
        with self._lock:
            full = len(self._connections) >= self.max_connections
            if full:
                self.connections_refused += 1
        if full:
            self._refuse(sock)
            return
        connection = _Connection(self, sock)
        thread = threading.Thread(
            target=connection.run, name="objectstore-emulator-connection", daemon=True
        )
        with self._lock:
            if self._closing:
                sock.close()
                return
            self._connections[connection] = thread
            self.connections_accepted += 1
        thread.start()

    def _refuse(self, sock: socket.socket) -> None:
        """Answer 503 (empty body, PROTOCOL §1.3, §12) and close, without waiting on the peer.

        The request (if sent yet) is not read, and the answer goes out at
        once: this runs in the accept loop. What arrived already is drained
        before closing, so that the close does not reset the connection
        under the answer. A TLS connection would need a handshake first:
        it is closed unanswered.
        """
        with contextlib.suppress(OSError):
            sock.setblocking(False)
            if not isinstance(sock, ssl.SSLSocket):
                head = f"{_BUSY_HEAD}server: objectstore-emulator\r\ndate: {_http_date()}\r\n\r\n"
                sock.send(head.encode("ascii"))
                socket.socket.shutdown(sock, socket.SHUT_WR)
                with contextlib.suppress(BlockingIOError):
                    while sock.recv(65536):
                        pass
        sock.close()
