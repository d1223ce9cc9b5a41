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
import os
import re
import selectors
import socket
import ssl
import struct
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

_BUFFER = 1 << 20  # receive buffer per connection (larger than _MAX_HEAD)
_CHUNK = 1 << 20  # response chunk size when reading a stream that copies (files, faults)
_VIEW_CHUNK = 1 << 20  # response chunk size when the stream lends views of stored bytes
_COALESCE = 64 * 1024  # gather response pieces up to this size into one sendmsg
_MAX_HEAD = 512 * 1024  # like hyper's ~400 KiB request head limit (PROTOCOL §4.2)
_MAX_LINE = 64 * 1024  # chunk-size and trailer lines (h11 bounds them by _MAX_HEAD)
_SHUTDOWN_GRACE = 5.0  # seconds busy connections get to finish on shutdown()
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


class _BadRequest(Exception):
    """The peer broke HTTP/1.1; answer ``status`` (if still possible) and close."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


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
        for name, value in headers:
            if name == "transfer-encoding":  # validated to be `chunked`; it beats a length
                self.chunked = True
            elif name == "content-length" and not self.chunked:
                self.length = int(value)  # validated (and de-duplicated) already
        old = http_version < "1.1"
        self.http10 = old  # cannot read chunked responses
        self.keep_alive = not old and "close" not in _comma_values(headers, "connection")
        self.expect_continue = not old and "100-continue" in _comma_values(headers, "expect")


def _fast_head(text: str) -> _Head | None:
    """Parse a plain request head (CRLF lines, no folding); None to let h11 judge it."""
    lines = text.split("\r\n")
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


def _h11_head(head: bytes) -> _Head:
    """Parse a head with h11 (the judge of every unusual case); raises _BadRequest."""
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
    try:
        parser.receive_data(head)
        event = parser.next_event()
    except h11.RemoteProtocolError as exc:
        raise _BadRequest(exc.error_status_hint) from None
    if not isinstance(event, h11.Request):
        raise _BadRequest(400)
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
        self._buffer = bytearray(_BUFFER)
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = 0
        self._http10 = False  # whether the current request is HTTP/1.0 (no chunked replies)
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._waitall = 0 if self._tls else _WAITALL  # TLS sockets take no recv flags

    def run(self) -> None:
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                self.sock.do_handshake()  # a failed one (say, plain HTTP) is an OSError
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

    def _recv(self) -> int:
        """Receive more bytes after ``_end`` (compacting first when room runs out)."""
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == _BUFFER or (
            self._end > _BUFFER - _BUFFER // 4 and self._end - self._start < _BUFFER // 4
        ):
            # No or little room left: move the unconsumed rest to the front.
            pending = bytes(self._view[self._start : self._end])
            self._start, self._end = 0, len(pending)
            self._buffer[: self._end] = pending
        try:
            n = self.sock.recv_into(self._view[self._end :])
        except (ConnectionError, TimeoutError) as exc:
            raise _ClientGone from exc
        self._end += n
        return n

    def _read_head(self) -> _Head | None:
        """The next request head, or None when the peer closed an idle connection."""
        scanned = 0  # bytes after _start known not to complete a head (_recv may compact)
        while True:
            found = _HEAD_END.search(self._buffer, self._start + max(0, scanned - 2), self._end)
            if found is not None:
                head = bytes(self._view[self._start : found.end()])
                self._start = found.end()
                text = head.decode("latin-1")
                parsed = _fast_head(text[:-4]) if head.endswith(b"\r\n\r\n") else None
                return parsed if parsed is not None else _h11_head(head)
            if self._end - self._start > _MAX_HEAD:
                raise _BadRequest(431)
            scanned = self._end - self._start
            if not self._recv():
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
            into = self._view if target is None else target
            try:
                # Never past this body, so no byte of a pipelined request is taken; WAITALL
                # fills the buffer in one call instead of returning every few segments.
                n = recv_into(into, min(count, len(into)), self._waitall)
            except (ConnectionError, TimeoutError) as exc:
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
        buffer, view = self._buffer, self._view
        while True:
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
            try:
                _send_all(self.sock, pieces)
            except (ConnectionError, TimeoutError) as exc:
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
            try:
                sent = self.sock.sendfile(file, offset, count)
            except (ConnectionError, TimeoutError) as exc:
                raise _ClientGone from exc
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
        if self._start == 0 and self._end == _BUFFER:
            time.sleep(wait)  # no room to receive into: the bytes wait unread
            return False
        self.sock.settimeout(wait)
        try:
            return self._recv() == 0
        except _ClientGone as exc:
            return not isinstance(exc.__cause__, TimeoutError)
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                self.sock.settimeout(None)

    def _send_error(self, status: int) -> None:
        text = f"{status} {HTTPStatus(status).phrase}".encode()
        response = ServerResponse(
            status, (("content-type", "text/plain; charset=utf-8"),), text, len(text)
        )
        with contextlib.suppress(_ClientGone, OSError):
            self._send_response(response, is_head=False, close=True)


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
    TLS and :attr:`url` starts with ``https://``.

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
    ) -> None:
        if tls is not None and not isinstance(tls, ssl.SSLContext):
            raise TypeError(f"tls must be an ssl.SSLContext (server side), got {tls!r}")
        self.tls = tls
        """The server's TLS context, or None for plain HTTP."""
        # Keys are read and checked even without enforcement: a bad key fails at start.
        keys = resolve_auth_keys(auth_keys)
        if emulator is None:
            if storage is None:
                if data_dir is None:
                    storage = MemoryStorage(lock=threading.Lock())
                else:
                    storage = DirectoryStorage(data_dir)
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
