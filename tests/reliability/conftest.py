"""Fixtures for the reliability suite: both twins against the loopback emulator,
the in-process emulator, and small hand-made servers that misbehave on purpose.

Everything listens on 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import h11
import pytest

from objectstore_sync import Usecase
from objectstore_sync.testing import LocalServer
from tests.behaviour.twins import Twin as BaseTwin

KINDS = ["sync", "asyncio"]
_scopes = itertools.count()


class Twin(BaseTwin):
    """A client of either twin whose sessions default to a fresh scope per test."""

    def session(self, usecase: str = "reliability", **scopes: Any) -> Any:  # type: ignore[override]
        scopes = scopes or {"org": 1, "test": next(_scopes)}
        return super().session(Usecase(usecase), **scopes)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "server" in request.fixturenames:
        server: LocalServer = request.getfixturevalue("server")
        server.faults.clear()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_twin(kind: str) -> Iterator[Callable[..., Twin]]:
    made: list[Twin] = []

    def make(url: str, transport: Any = None, **kwargs: Any) -> Twin:
        twin = Twin(kind, url, transport, **kwargs)
        made.append(twin)
        return twin

    yield make
    for twin in made:
        twin.close()


# ------------------------------------------------------------ misbehaving servers


def refused_url() -> str:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def full_backlog_url() -> Iterator[str]:
    """A listener that never accepts and whose accept queue is full: SYNs go unanswered."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(2):  # Linux queues backlog + 1 connections
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        for sock in [*fillers, listener]:
            sock.close()


class RawServer:
    """Serves each connection with ``handler(sock)`` in a thread (loopback, bounded)."""

    def __init__(self, handler: Callable[[socket.socket], None], rcvbuf: int | None = None) -> None:
        self._listener = socket.socket()
        if rcvbuf is not None:  # inherited by accepted sockets: a small window fills fast
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._handler = handler
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RawServer:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accept_thread.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            sock.settimeout(5)
            with contextlib.suppress(OSError, h11.ProtocolError):  # the client gave up
                self._handler(sock)


def read_head(sock: socket.socket) -> bytes:
    """Read a request head (up to the blank line)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def answer(body: bytes) -> bytes:
    """A 200 response carrying ``body`` with a content-length."""
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def numbered(
    after_first: Callable[[socket.socket], None] | None = None,
) -> Callable[[socket.socket], None]:
    """A handler: each connection answers every request with its own number
    (1, 2, ... in order of arrival); ``after_first(sock)`` runs once after its
    first answer (to misbehave while the connection is idle); a ``GET /slow``
    is answered after half a second."""
    count = iter(range(1, 100))
    lock = threading.Lock()

    def handle(sock: socket.socket) -> None:
        with lock:
            number = str(next(count)).encode()
        first = True
        while head := read_head(sock):
            if head.startswith(b"GET /slow"):
                time.sleep(0.5)
            sock.sendall(answer(number))
            if first and after_first is not None:
                after_first(sock)
            first = False

    return handle


def pausing_reader(pause: float, after: int) -> Callable[[socket.socket], None]:
    """A handler reading a request body that stops reading for ``pause`` s after ``after`` bytes,
    then answers ``{"key": "k"}`` like a PUT."""

    def handle(sock: socket.socket) -> None:
        conn = h11.Connection(h11.SERVER)
        received = 0
        paused = False
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
                continue
            if isinstance(event, h11.Data):
                received += len(event.data)
                if received >= after and not paused:
                    paused = True
                    time.sleep(pause)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                return
        body = b'{"key":"k"}'
        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        sock.sendall(conn.send(h11.Response(status_code=200, headers=headers)) or b"")
        sock.sendall(conn.send(h11.Data(data=body)) or b"")
        sock.sendall(conn.send(h11.EndOfMessage()) or b"")

    return handle
