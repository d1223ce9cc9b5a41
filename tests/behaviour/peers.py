"""A scripted raw HTTP/1.1 peer on 127.0.0.1, to play servers the emulator cannot.

A :class:`Peer` listens on a free loopback port and runs ``script(conn)`` in
a thread of its own for every connection it accepts. The script drives the
connection through :class:`PeerConnection`: read the request (whole, at a
limited rate, or only part of it), stop reading, send arbitrary bytes, drip
them one at a time, answer early, close or reset. What the peer saw (the
connections and every request head) is recorded for the test to assert on.

Everything is bounded: a peer lives at most ``lifetime`` seconds, every
socket wait is short and re-checks whether the peer is stopping, and
:meth:`Peer.close` (or leaving the ``with`` block) stops the peer, closes its
sockets and joins its threads. A script ends quietly when the client goes
away (EOF, reset, broken pipe) or the peer stops; any other exception it
raises is kept in :attr:`Peer.errors`.

>>> def script(conn: PeerConnection) -> None:
...     while conn.read_request() is not None:
...         conn.send(response(200, b"ok"))
>>> with Peer(script) as peer:
...     peer.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "ClientGone",
    "Peer",
    "PeerConnection",
    "RequestHead",
    "json_response",
    "response",
]

_TICK = 0.05  # longest single socket wait: how soon a blocked script notices the peer stopping
_RECV = 64 * 1024
_MAX_REQUEST_HEAD = 1024 * 1024

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
}


class ClientGone(Exception):
    """The client closed or reset the connection; a script raising it ends quietly."""


class _Stopped(Exception):
    """The peer is stopping (closed, or its lifetime ran out)."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A request head as the peer read it; header names in lower case (last one wins)."""

    connection: int
    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return None if value is None else int(value)

    @property
    def chunked(self) -> bool:
        return self.headers.get("transfer-encoding", "").strip().lower() == "chunked"


def response(
    status: int,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
    *,
    reason: str | None = None,
    close: bool = False,
    length: bool = True,
) -> bytes:
    """A complete response: status line, ``headers``, a ``content-length`` (unless
    ``length`` is false) and ``connection: close`` when ``close``; then ``body``."""
    lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Whatever')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length:
        lines.append(f"content-length: {len(body)}")
    if close:
        lines.append("connection: close")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def json_response(
    status: int, value: object, *, close: bool = False, reason: str | None = None
) -> bytes:
    """A response with a JSON body (``content-type: application/json``)."""
    body = json.dumps(value).encode()
    return response(
        status, body, [("content-type", "application/json")], reason=reason, close=close
    )


class PeerConnection:
    """One accepted connection, as the script sees it.

    Reads keep bytes received past what was asked for (a recv may take more
    than a request head) and hand them out first to the next read.
    ``received`` counts every byte taken from the socket so far.
    """

    def __init__(self, peer: Peer, sock: socket.socket, index: int) -> None:
        self._peer = peer
        self._sock = sock
        self.index = index
        self.received = 0
        self._pending = bytearray()
        sock.settimeout(_TICK)

    # -- reading ------------------------------------------------------------------

    def _recv(self, limit: int) -> bytes:
        """One receive of at most ``limit`` bytes; ``b""`` at EOF."""
        while True:
            self._peer._check()
            try:
                data = self._sock.recv(limit)
            except TimeoutError:
                continue
            except OSError as exc:
                raise ClientGone(f"receive failed: {exc!r}") from exc
            self.received += len(data)
            return data

    def _take(self, limit: int) -> bytes:
        """Up to ``limit`` bytes, buffered ones first; ``b""`` at EOF."""
        if self._pending:
            data = bytes(self._pending[:limit])
            del self._pending[:limit]
            return data
        return self._recv(min(limit, _RECV))

    def _line(self) -> bytes:
        """One CRLF-terminated line, without its CRLF."""
        while (end := self._pending.find(b"\r\n")) < 0:
            if len(self._pending) > _MAX_REQUEST_HEAD:
                raise ClientGone("line too long")
            data = self._recv(_RECV)
            if not data:
                raise ClientGone("EOF in the middle of a line")
            self._pending += data
        line = bytes(self._pending[:end])
        del self._pending[: end + 2]
        return line

    def read_head(self) -> RequestHead | None:
        """The next request head; None when the client closed before sending one."""
        while (end := self._pending.find(b"\r\n\r\n")) < 0:
            if len(self._pending) > _MAX_REQUEST_HEAD:
                raise ClientGone("request head too large")
            data = self._recv(_RECV)
            if not data:
                if self._pending:
                    raise ClientGone("EOF in the middle of a request head")
                return None
            self._pending += data
        raw = bytes(self._pending[:end]).decode("latin-1")
        del self._pending[: end + 4]
        request_line, *lines = raw.split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        head = RequestHead(self.index, method, target, headers)
        self._peer._record(head)
        return head

    def read_exactly(self, size: int, *, rate: float | None = None) -> None:
        """Read and discard ``size`` bytes, at most ``rate`` bytes per second if given.

        The pace is kept by short sleeps after each receive of at most 64 KiB,
        so the peer never stops taking bytes for long.
        """
        started = time.monotonic()
        done = 0
        while done < size:
            data = self._take(size - done)
            if not data:
                raise ClientGone(f"EOF after {done} of {size} bytes")
            done += len(data)
            if rate is not None:
                self.wait(started + done / rate - time.monotonic())

    def read_body(self, head: RequestHead, *, rate: float | None = None) -> int:
        """Read and discard the body announced by ``head``; returns its size."""
        if head.chunked:
            total = 0
            while size := int(self._line().split(b";")[0], 16):
                self.read_exactly(size, rate=rate)
                if self._line():
                    raise ClientGone("chunk not followed by CRLF")
                total += size
            while self._line():  # trailers, up to the blank line
                pass
            return total
        size = head.content_length or 0
        self.read_exactly(size, rate=rate)
        return size

    def read_request(self, *, rate: float | None = None) -> RequestHead | None:
        """A whole request (its body read and discarded); None when the client closed."""
        head = self.read_head()
        if head is not None:
            self.read_body(head, rate=rate)
        return head

    def wait_for_close(self, seconds: float | None = None) -> bool:
        """Read and discard until the client closes (True) or ``seconds`` pass (False)."""
        end = None if seconds is None else time.monotonic() + seconds
        while end is None or time.monotonic() < end:
            try:
                if not self._take(_RECV):
                    return True
            except ClientGone:
                return True
        return False

    # -- writing ------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Send all of ``data`` (raises :class:`ClientGone` if the client went away)."""
        view = memoryview(data)
        while view:
            self._peer._check()
            try:
                sent = self._sock.send(view)
            except TimeoutError:
                continue
            except OSError as exc:
                raise ClientGone(f"send failed: {exc!r}") from exc
            view = view[sent:]

    def drip(self, data: bytes, *, interval: float) -> None:
        """Send ``data`` one byte at a time, ``interval`` seconds apart."""
        for index in range(len(data)):
            self.send(data[index : index + 1])
            self.wait(interval)

    # -- waiting and ending -------------------------------------------------------

    def wait(self, seconds: float) -> None:
        """Sleep (without reading) for ``seconds``, ending early if the peer stops."""
        if seconds > 0 and self._peer._stopping.wait(seconds):
            raise _Stopped

    def hold(self) -> None:
        """Keep the connection open without reading from it until the peer stops."""
        self._peer._stopping.wait(self._peer._left())
        raise _Stopped

    def shutdown_write(self) -> None:
        """Send FIN: the client reads EOF after what was sent."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise ClientGone(f"shutdown failed: {exc!r}") from exc

    def close(self) -> None:
        """Close the connection. With request bytes left unread the kernel resets it."""
        self._sock.close()

    def reset(self) -> None:
        """Close the connection with a reset (RST), whatever was read."""
        with contextlib.suppress(OSError):  # linger on, for 0 s: close sends RST
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._sock.close()


class Peer:
    """A listening socket on 127.0.0.1 running ``script`` for each accepted connection.

    ``receive_buffer`` sets SO_RCVBUF on the listener (accepted sockets
    inherit it), so that a peer that stops or slows reading pushes back on
    the client sooner. ``lifetime`` bounds how long the peer serves.
    """

    def __init__(
        self,
        script: Callable[[PeerConnection], None],
        *,
        lifetime: float = 10.0,
        receive_buffer: int | None = None,
    ) -> None:
        self._script = script
        self._lifetime = lifetime
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(_TICK)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._deadline = 0.0
        self._accepter = threading.Thread(target=self._accept, name="peer-accept", daemon=True)
        self._threads: list[threading.Thread] = []
        self.connections: list[PeerConnection] = []
        self.requests: list[RequestHead] = []
        self.errors: list[BaseException] = []

    # -- what the peer saw --------------------------------------------------------

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self.connections)

    def methods(self) -> list[tuple[int, str]]:
        """``(connection index, method)`` of every request head read, in order."""
        with self._lock:
            return [(head.connection, head.method) for head in self.requests]

    def _record(self, head: RequestHead) -> None:
        with self._lock:
            self.requests.append(head)

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> Peer:
        self._deadline = time.monotonic() + self._lifetime
        self._accepter.start()
        return self

    def __enter__(self) -> Peer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, close every socket and join every thread."""
        self._stopping.set()
        if self._accepter.is_alive():
            self._accepter.join(5)
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)
        alive = [thread.name for thread in [self._accepter, *threads] if thread.is_alive()]
        if alive:
            raise RuntimeError(f"peer threads did not end: {alive}")

    def _left(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def _check(self) -> None:
        if self._stopping.is_set() or not self._left():
            raise _Stopped

    def _accept(self) -> None:
        while not self._stopping.is_set() and self._left():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed under us
                return
            with self._lock:
                conn = PeerConnection(self, sock, len(self.connections))
                self.connections.append(conn)
                thread = threading.Thread(
                    target=self._serve, args=(conn, sock), name=f"peer-{conn.index}", daemon=True
                )
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: PeerConnection, sock: socket.socket) -> None:
        try:
            self._script(conn)
        except (ClientGone, _Stopped):
            pass
        except BaseException as exc:  # kept for the test; a thread must not raise
            with self._lock:
                self.errors.append(exc)
        finally:
            sock.close()
