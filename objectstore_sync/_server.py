"""The emulator behind a real socket: HTTP/1.1 on h11, one thread per connection.

The protocol logic lives in :mod:`objectstore_core.emulator`; this module only
moves bytes. Per connection it parses requests with h11, pushes body chunks
into the handler's :class:`~objectstore_core.emulator.Exchange` as they arrive
(bounded memory for any body size), and streams response bodies from the
handler's ``BodyStream`` in 1 MiB chunks.

Details worth knowing:

* Response header names are lower case (PROTOCOL §1.2). h11 title-cases the
  framing headers it adds itself (``Transfer-Encoding``, ``Connection``);
  :func:`_lower_framing` fixes that in the serialized head.
* GET 200 bodies are chunked (``content_length`` None, §1.1). Chunked data
  is sent with ``send_with_data_passthrough`` + ``sendmsg`` so a 1 MiB chunk
  is never copied into a framing buffer.
* ``Expect: 100-continue`` is answered with ``100 Continue`` when the body is
  wanted; when the response is already known (an error) it is sent at once
  and the connection is closed, since the client may or may not send the body.
* A client vanishing mid-upload aborts the exchange (nothing becomes
  visible); mid-download the body stream is closed. h11 protocol errors get
  a 400 (or h11's hint, e.g. 431) and the connection is closed.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from http import HTTPStatus
from types import TracebackType
from typing import cast

import h11

from objectstore_core.emulator import (
    Authenticator,
    Emulator,
    FaultedBody,
    FaultKind,
    MemoryStorage,
    ServerRequest,
    ServerResponse,
    Storage,
)
from objectstore_sync._dirstore import DirectoryStorage
from objectstore_sync._keys import AuthKeySpec, resolve_auth_keys

__all__ = ["EmulatorServer"]

_log = logging.getLogger(__name__)

_CHUNK = 1 << 20  # recv buffer and response chunk size
_COALESCE = 64 * 1024  # gather response pieces up to this size into one sendmsg
_MAX_HEAD = 512 * 1024  # like hyper's ~400 KiB request head limit (PROTOCOL §4.2)
_SERVER_HEADER = (b"server", b"objectstore-emulator")
_SHUTDOWN_GRACE = 5.0  # seconds busy connections get to finish on shutdown()


class _ClientGone(Exception):
    """The peer closed the connection or reset it."""


def _lower_framing(head: bytes) -> bytes:
    # Names start right after CRLF and our own names are already lower case, so a
    # literal replace of the two names h11 adds title-cased is exact.
    return head.replace(b"\r\nTransfer-Encoding:", b"\r\ntransfer-encoding:").replace(
        b"\r\nConnection:", b"\r\nconnection:"
    )


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


def _send_all(sock: socket.socket, pieces: list[bytes]) -> None:
    """Send ``pieces`` in order with as few copies and syscalls as possible."""
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


class _Connection:
    """Serves the requests of one accepted socket until it closes."""

    def __init__(self, server: EmulatorServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.idle = True
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        self._buffer = bytearray(_CHUNK)
        self._view = memoryview(self._buffer)

    def run(self) -> None:
        try:
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

    def _next_event(self) -> object:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                n = self.sock.recv_into(self._buffer)
            except (ConnectionError, TimeoutError) as exc:
                raise _ClientGone from exc
            # h11 documents `data` as bytes-like and copies it into its own buffer, so a
            # view of our reusable buffer is safe and saves a copy per chunk.
            self.h11.receive_data(cast(bytes, self._view[:n]) if n else b"")

    def _serve_one(self) -> bool:
        """Serve one request; False when the connection must close."""
        if not self.server._mark_idle(self):
            return False
        try:
            event = self._next_event()
        except h11.RemoteProtocolError as exc:
            self._send_error(exc.error_status_hint)
            return False
        self.idle = False
        if isinstance(event, h11.ConnectionClosed) or not isinstance(event, h11.Request):
            return False
        try:
            keep_going = self._exchange(event)
        except h11.RemoteProtocolError as exc:
            self._send_error(exc.error_status_hint)
            return False
        except h11.LocalProtocolError:
            return False  # e.g. a body stream shorter than its content-length
        if not keep_going or self.h11.our_state is h11.MUST_CLOSE:
            return False
        self.h11.start_next_cycle()
        return True

    def _exchange(self, event: h11.Request) -> bool:
        headers = tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers)
        request = ServerRequest(
            event.method.decode("ascii"), event.target.decode("latin-1"), headers
        )
        exchange = self.server.emulator.begin(request)
        is_head = request.method == "HEAD"
        if self.h11.they_are_waiting_for_100_continue:
            if exchange.response is not None:
                # Answer now; the client may never send the body, so we cannot reuse
                # the connection afterwards.
                exchange.abort()
                self._send_response(exchange.response, is_head, close=True)
                return False
            self._send(
                [
                    self.h11.send(
                        h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
                    )
                ]
            )
        try:
            while True:
                body_event = self._next_event()
                if isinstance(body_event, h11.Data):
                    exchange.feed(body_event.data)
                elif isinstance(body_event, h11.EndOfMessage):
                    break
                else:
                    raise _ClientGone
        except BaseException:
            exchange.abort()  # nothing becomes visible, temp data is removed
            raise
        self._send_response(exchange.finish(), is_head)
        return True

    # -- sending ------------------------------------------------------------------------

    def _send(self, pieces: list[bytes] | None) -> None:
        if pieces:
            try:
                _send_all(self.sock, pieces)
            except (ConnectionError, TimeoutError) as exc:
                raise _ClientGone from exc

    def _send_response(self, response: ServerResponse, is_head: bool, close: bool = False) -> None:
        body = response.body
        faulted = body if isinstance(body, FaultedBody) else None
        try:
            if faulted is not None and faulted.before_head:
                self._inject(faulted, [])
            headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
            headers += [_SERVER_HEADER, (b"date", _http_date())]
            if close:
                headers.append((b"connection", b"close"))  # h11 then closes after this response
            no_body = is_head or response.status in (204, 304)
            if response.content_length is not None and response.status not in (204, 304):
                headers.append((b"content-length", str(response.content_length).encode()))
            reason = HTTPStatus(response.status).phrase.encode("ascii")
            head = self.h11.send(
                h11.Response(status_code=response.status, headers=headers, reason=reason)
            )
            assert head is not None
            # Pieces are gathered and flushed with one sendmsg once they reach _COALESCE,
            # so a small response leaves in a single segment (we set TCP_NODELAY) while a
            # large body goes out chunk by chunk without being copied.
            pending = [_lower_framing(head)]
            if isinstance(body, bytes | bytearray | memoryview):
                if body and not no_body:
                    pending += self._framed(h11.Data(data=body))
            elif not no_body:
                while True:
                    if faulted is not None and faulted.due() is not None:
                        self._inject(faulted, pending)
                        pending = []
                    if not (chunk := body.read(_CHUNK)):
                        break
                    pending += self._framed(h11.Data(data=chunk))
                    if sum(map(len, pending)) >= _COALESCE:
                        self._send(pending)
                        pending = []
            pending += self._framed(h11.EndOfMessage())
            self._send(pending)
        finally:
            if not isinstance(body, bytes | bytearray | memoryview):
                body.close()

    def _inject(self, faulted: FaultedBody, pending: list[bytes]) -> None:
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
            time.sleep(faulted.fault.seconds)
            return
        with contextlib.suppress(OSError):
            if kind is FaultKind.RESET:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
        raise _ClientGone

    def _framed(self, event: h11.Data | h11.EndOfMessage) -> list[bytes]:
        return self.h11.send_with_data_passthrough(event) or []

    def _send_error(self, status: int) -> None:
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        text = f"{status} {HTTPStatus(status).phrase}".encode()
        response = ServerResponse(
            status, (("content-type", "text/plain; charset=utf-8"),), text, len(text)
        )
        with contextlib.suppress(_ClientGone, OSError, h11.LocalProtocolError):
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
    :data:`objectstore_sync._keys.AuthKeySpec`. With ``enforce_auth`` every
    object request needs a valid token or pre-signed signature (§10, §11).

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
    ) -> None:
        # Keys are read and checked even without enforcement: a bad key fails at start.
        keys = resolve_auth_keys(auth_keys)
        if emulator is None:
            if storage is None:
                if data_dir is None:
                    storage = MemoryStorage(lock=threading.Lock())
                else:
                    storage = DirectoryStorage(data_dir)
            emulator = Emulator(storage) if clock is None else Emulator(storage, clock=clock)
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
        self.url = f"http://{shown}:{bound_port}"
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
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_RDWR)

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
