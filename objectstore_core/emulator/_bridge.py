"""Glue between client request descriptions and the emulator, for in-process transports.

``objectstore_sync.testing.InProcessTransport`` and
``objectstore_async.testing.AsyncInProcessTransport`` run the emulator
without sockets. What they share lives here: turning a client
:class:`~objectstore_core.Request` into a :class:`ServerRequest`, and a
:class:`ServerResponse` into what the client's flows expect (headers with
the framing a real server would send, a body to stream or read whole).
They differ only in how they read the caller's upload (blocking or awaited).

Injected faults (``emulator.faults``, see ``_faults``) reach the client as
they would over a socket, minus the waiting: a reset before the response
raises :class:`ReadError` from ``send``; a reset or truncation mid-body
raises :class:`ReadError` or :class:`IntegrityError` when the body is read
(inside ``send`` for small bodies, from the payload for streamed ones); a
corrupted byte arrives corrupted; stalls are skipped, as there is no socket
whose timeout could expire.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

from objectstore_core import ReadError, Request, Response, Upload
from objectstore_core.emulator._faults import FaultedBody, FaultKind
from objectstore_core.emulator._handler import Emulator, read_body
from objectstore_core.emulator._messages import BodyStream, ServerRequest, ServerResponse
from objectstore_core.emulator._storage import MemoryStorage, Storage

__all__ = [
    "InProcessBase",
    "InProcessBody",
    "InProcessCall",
    "server_request",
    "split_response",
]


def server_request(request: Request) -> ServerRequest:
    """The request as the emulator would receive it over HTTP/1.1."""
    headers = [(name.lower(), value) for name, value in request.headers]
    if isinstance(request.body, Upload) and request.body.length is not None:
        headers.append(("content-length", str(request.body.length)))
    elif isinstance(request.body, Upload):
        headers.append(("transfer-encoding", "chunked"))
    elif request.body is not None or request.method in ("POST", "PUT", "PATCH"):
        headers.append(("content-length", str(len(request.body or b""))))
    return ServerRequest(request.method, request.target, tuple(headers))


class InProcessBody:
    """An emulator response body, read like a connection's raw body."""

    __slots__ = ("_body", "_closed", "_offset")

    def __init__(self, body: bytes | BodyStream) -> None:
        self._body = body
        self._offset = 0
        self._closed = False

    def read(self, amount: int = 1 << 20) -> bytes:
        """Up to ``amount`` bytes; ``b""`` at the end."""
        if self._closed:
            return b""
        if isinstance(self._body, bytes):
            chunk = self._body[self._offset : self._offset + amount]
            self._offset += len(chunk)
        else:
            chunk = self._body.read(amount)
        if not chunk:
            self.close()
        return chunk

    @property
    def done(self) -> bool:
        """True once the end was read (or the body closed): the next read is ``b""``."""
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if not isinstance(self._body, bytes):
                self._body.close()


def split_response(
    request: Request, response: ServerResponse
) -> tuple[Response, InProcessBody | None]:
    """The client's view of an emulator response, following the streaming rule of Request."""
    if isinstance(response.body, FaultedBody) and response.body.before_head:
        due = response.body.due()
        response.body.acknowledge()
        if due is FaultKind.RESET:
            response.body.close()
            raise ReadError("the server reset the connection before responding (injected fault)")
    headers = dict(response.headers)
    no_body = request.method == "HEAD" or response.status in (204, 304)
    if response.content_length is not None and not no_body:
        headers["content-length"] = str(response.content_length)
    if no_body:
        read_body(response)  # closes a stream, if any
        return Response(response.status, headers), None
    body = response.body if isinstance(response.body, BodyStream) else bytes(response.body)
    if request.stream and 200 <= response.status < 300:
        return Response(response.status, headers), InProcessBody(body)
    return Response(response.status, headers, read_body(response)), None


class InProcessBase:
    """What both in-process transports share: the emulator they talk to.

    Pass ``emulator`` to share one emulator between clients (sync and async
    alike), or ``storage``/``clock`` to build a new one (in memory by default).
    Without a ``clock`` the new emulator runs on :attr:`default_clock`, which
    each twin sets to the wall clock (the core never reads the time).
    """

    @staticmethod
    def default_clock() -> datetime:
        """The clock of an emulator built without one; each twin gives the wall clock."""
        raise NotImplementedError("an in-process transport needs a clock")

    @staticmethod
    def new_lock() -> AbstractContextManager[object]:
        """The lock of a store built without one; each twin gives a re-entrant thread
        lock, since its client may call from several threads at once (a managed
        upload's parts, a batch's requests) and the store's updates read, then write."""
        raise NotImplementedError("an in-process transport needs a lock")

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        storage: Storage | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if emulator is None:
            storage = storage if storage is not None else MemoryStorage(lock=self.new_lock())
            emulator = Emulator(storage, clock=self.default_clock if clock is None else clock)
        self.emulator = emulator


class InProcessCall:
    """One request on its way through the emulator.

    A bytes body is fed at once; an upload is left in :attr:`upload` for
    the twin to read (blocking or awaited) and :meth:`feed` chunk by chunk
    inside :meth:`receiving`, which drops everything if reading fails or is
    cancelled, so nothing half-written becomes visible.
    """

    __slots__ = ("_exchange", "_request", "upload")

    def __init__(self, emulator: Emulator, request: Request) -> None:
        self._request = request
        self._exchange = emulator.begin(server_request(request))
        self.upload: Upload | None = None
        if self._exchange.response is None:
            if isinstance(request.body, Upload):
                self.upload = request.body
            elif request.body:
                self._exchange.feed(request.body)

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Push one chunk of the upload."""
        self._exchange.feed(chunk)

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """Feed the upload inside this block; a failure aborts the exchange."""
        try:
            yield
        except BaseException:
            self._exchange.abort()
            raise

    def finish(self) -> tuple[Response, InProcessBody | None]:
        """The client's view of the emulator's answer."""
        response = self._exchange.response
        if response is None:
            response = self._exchange.finish()
        return split_response(self._request, response)
