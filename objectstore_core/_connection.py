"""One HTTP/1.1 client exchange, sans-IO: what to write, what arrived, what it means.

Both transports run every request through :class:`Exchange`; they only move
bytes (connect, write what it hands out, receive, wait) and report what their
socket library raised as a :class:`Failure`. Everything else about HTTP/1.1
lives here, once:

* request framing: the head, a bytes body by ``content-length``, an upload
  with chunked framing (RFC 9112 §7.1), every write sliced (see
  :data:`WRITE_SLICE`) so that the write timeout bounds each wait for the
  server to accept more of the request, never the transfer as a whole;
* response framing, informational responses and malformed heads (by
  :class:`~objectstore_core._h1.ResponseParser`);
* an early answer: a server may answer and close before it read the whole
  request (an auth error on a large upload); a failed write is then not the
  error, the answer is;
* the resend verdict: a request that died on a reused keep-alive connection
  before any byte of an answer arrived was most likely sent into a
  connection the server had closed while idle, and is sent once more on a
  fresh connection, if repeating it cannot store anything twice (idempotent
  methods with a bytes body or none; a keyless ``POST`` or a streamed upload
  never, API §6);
* whether the connection can carry another request;
* deadlines: a ``Timeout.total`` bounds the whole exchange, head included, so
  a server dripping its head byte by byte cannot stretch it; each wait gets
  the smaller of its own timeout and the time left;
* what a failure means in the project's error tree, with a true message.

The shape follows h11: bytes in through :meth:`Exchange.receive_data`
(``b""`` is EOF), events out through :meth:`Exchange.next_event`, which
returns :data:`NEED_DATA` instead of waiting; misuse raises ``RuntimeError``
(a bug in a transport), a misbehaving peer our :class:`ProtocolError` or
:class:`IntegrityError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from typing import Final

from objectstore_core._config import Timeout
from objectstore_core._errors import (
    ConnectError,
    ConnectTimeout,
    ObjectstoreError,
    ProtocolError,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from objectstore_core._h1 import (
    END,
    LAST_CHUNK,
    NEED_DATA,
    ResponseHead,
    ResponseParser,
    _Sentinel,
    chunk_header,
    encode_request_head,
)
from objectstore_core._http import Request, Response, Upload
from objectstore_core._retry import IDEMPOTENT_METHODS

__all__ = [
    "END",
    "ERROR_BODY_LIMIT",
    "NEED_DATA",
    "RESEND",
    "WRITE_SLICE",
    "Exchange",
    "Failure",
    "ResponseHead",
    "SmallBody",
]

WRITE_SLICE: Final = 256 * 1024
"""The largest single write. The write timeout bounds the wait for each one,
so a server that takes in at least this much per write timeout never trips it."""

_SMALL_WRITE: Final = 64 * 1024  # bodies and chunks up to this go out joined with their framing

ERROR_BODY_LIMIT: Final = 1024 * 1024
"""The most a response body read whole (not streamed to the caller) may hold."""


class Failure(Enum):
    """What a transport's socket reported, in the only terms the exchange needs."""

    TIMEOUT = "timeout"  # the wait ran out
    BROKEN = "broken"  # reset, broken pipe, closed, TLS failure: the connection is gone


RESEND: Final = _Sentinel("RESEND")
"""Nothing of an answer arrived on a reused connection: send the request again
on a fresh connection (the transport closes this one)."""

# Phases of an exchange.
_SENDING, _AWAITING, _BODY, _DONE, _FAILED = range(5)


class Exchange:
    """One request and its response, across at most two connections.

    ``limits`` are the request's timeouts. ``Timeout.total`` counts from
    ``now``, the transport's monotonic time when the exchange starts; a
    transport may pass its ``clock`` instead, which the exchange then reads
    only where a total deadline applies (at the start and for each wait whose
    method is given no ``now``): without one, no wait costs a clock read.
    For each connection the transport calls :meth:`start` (``reused``: an
    idle pooled connection, not a fresh one), writes what :meth:`writes`
    (and, for an upload, :meth:`upload_writes` for each chunk of the
    payload and :meth:`upload_end`) hands out, then receives until
    :meth:`next_event` gives the head. :data:`RESEND` from a failure method
    means: close this connection, take a fresh one, :meth:`start` again.
    """

    __slots__ = (
        "_clock",
        "_cut",
        "_deadline",
        "_early",
        "_fixed",
        "_parser",
        "_pending",
        "_phase",
        "_received",
        "_resendable",
        "_resent",
        "_reused",
        "_sent",
        "_silent_close",
        "_started",
        "_whole",
        "head",
        "limits",
        "request",
        "wire_head",
    )

    def __init__(
        self,
        request: Request,
        host: str,
        limits: Timeout,
        now: float | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.request = request
        self.limits = limits
        self.wire_head = encode_request_head(request, host)
        self._clock = clock
        self._deadline: float | None = None
        if limits.total is not None:
            self._deadline = self._time(now) + limits.total
        body = request.body
        if isinstance(body, Upload):
            # PROTOCOL §2 / API §6: only a request that cannot store anything twice
            # is resent (and only once): never a streamed upload.
            self._resendable = False
            # An upload with a length is framed by content-length (a part, PROTOCOL §9.2).
            self._fixed = body.length is not None
        else:
            self._resendable = request.method in IDEMPOTENT_METHODS
            self._fixed = False
        self._phase = _SENDING
        self._reused = False
        self._parser = ResponseParser(request.method)
        self._early: BaseException | None = None
        self._received = False
        self._silent_close = False
        self._cut = False
        self._resent = False
        self._started = False
        self._sent = 0
        self._whole = 0
        self._pending = b""
        self.head: ResponseHead | None = None

    def _time(self, now: float | None) -> float:
        """``now``, else the transport's clock (read only where a deadline applies)."""
        if now is not None:
            return now
        if self._clock is None:
            raise TypeError("Exchange needs the time (now or clock) when a total timeout applies")
        return self._clock()

    # -- connections ------------------------------------------------------------

    @property
    def resent(self) -> bool:
        """True once the request is being sent again: it needs a fresh connection."""
        return self._resent

    def start(self, *, reused: bool) -> None:
        """Begin (again) on a connection; ``reused``: it carried a request before."""
        self._reused = reused
        if not self._started:  # the first connection: the state is as __init__ left it
            self._started = True
            return
        if self._phase != _SENDING or self._sent:
            if not (self._resent and self._resendable):
                raise RuntimeError("Exchange.start after the exchange went past its sending")
            self._resendable = False  # once only
        self._phase = _SENDING
        self._parser = ResponseParser(self.request.method)  # the last one saw other bytes
        self._early = None
        self._received = False
        self._silent_close = False
        self._sent = 0
        self._whole = 0
        self._pending = b""

    def _resend(self) -> _Sentinel:
        self._resent = True
        return RESEND

    def _resendable_now(self) -> bool:
        return self._reused and self._resendable and not self._received

    def connect_timeout(self, now: float | None = None) -> float | None:
        """How long the connect (TCP and TLS) may take (``now``: see :class:`Exchange`)."""
        if self._deadline is None:
            return self.limits.connect
        return self._wait(self.limits.connect, self._time(now), "connecting")

    def connect_failed(
        self, failure: Failure, cause: BaseException, where: str
    ) -> ObjectstoreError:
        """The error for a failed connect to ``where`` (raise it ``from cause``)."""
        self._phase = _FAILED
        if failure is Failure.TIMEOUT:
            return ConnectTimeout(f"connecting to {where} took longer than {self.limits.connect} s")
        return ConnectError(f"cannot connect to {where}: {_describe(cause)}")

    # -- sending ----------------------------------------------------------------

    def writes(self) -> Iterable[bytes | memoryview]:
        """The request head and a bytes body, in writes of at most :data:`WRITE_SLICE`.

        A small request (a head, and a bytes body of up to 64 KiB) is one write,
        handed out without a generator; :meth:`sent` then counts it as taken.
        """
        head = self.wire_head
        body = self.request.body
        if isinstance(body, bytes) and body:
            if len(body) > _SMALL_WRITE:
                return self._head_and_body(head, body)
            head += body
        if len(head) > WRITE_SLICE or isinstance(body, Upload):
            return self._sliced(head)  # counted write by write, for the timeout's message
        self._whole = len(head)
        return (head,)

    def _head_and_body(self, head: bytes, body: bytes) -> Iterator[bytes | memoryview]:
        yield from self._sliced(head)
        yield from self._sliced(body)

    def upload_writes(self, chunk: bytes | bytearray | memoryview) -> Iterator[bytes | memoryview]:
        """One chunk of an upload with its chunked framing (RFC 9112 §7.1).

        Each chunk's closing CRLF travels with the next chunk's size line, so
        a small chunk costs one write.
        """
        size = len(chunk)
        if not size:
            return
        if self._fixed:  # framed by content-length: the bytes as they are
            yield from self._sliced(chunk if isinstance(chunk, bytes) else memoryview(chunk))
            return
        framing = self._pending + chunk_header(size)
        self._pending = b"\r\n"
        if size <= _SMALL_WRITE:
            yield from self._sliced(b"".join((framing, chunk)))
        else:
            yield from self._sliced(framing)
            yield from self._sliced(chunk if isinstance(chunk, bytes) else memoryview(chunk))

    def upload_end(self) -> Iterator[bytes | memoryview]:
        """The end of an upload: the last chunk's CRLF and the zero-size chunk."""
        if self._fixed:
            return
        yield from self._sliced(self._pending + LAST_CHUNK)

    def _sliced(self, data: bytes | memoryview) -> Iterator[bytes | memoryview]:
        if len(data) <= WRITE_SLICE:
            yield data
            self._sent += len(data)
            return
        view = memoryview(data)
        for start in range(0, len(view), WRITE_SLICE):
            piece = view[start : start + WRITE_SLICE]
            yield piece
            self._sent += len(piece)

    def write_timeout(self, now: float | None = None) -> float | None:
        """How long the next write may wait for the server to take it."""
        if self._deadline is None:  # the usual case, once per write: no clock, no call
            return self.limits.write
        return self._wait(self.limits.write, self._time(now), "sending the request")

    def send_failed(self, failure: Failure, cause: BaseException) -> _Sentinel | None:
        """A write failed. :data:`RESEND`, or None: read the answer the server may
        have sent before closing (:meth:`next_event` decides); a timeout raises
        :class:`WriteTimeout`.
        """
        if self._phase != _SENDING:
            raise RuntimeError("Exchange.send_failed outside of sending")
        if failure is Failure.TIMEOUT:
            self._phase = _FAILED
            raise self._write_timeout() from cause
        if self._resendable_now():
            self._phase = _FAILED
            return self._resend()
        self._early = cause
        self._phase = _AWAITING
        return None

    def _write_timeout(self) -> WriteTimeout:
        if self._cut:
            return WriteTimeout(
                f"the request was not sent within the total timeout ({self.limits.total:.3g} s)"
            )
        wait = self.limits.write
        if not self._sent:
            return WriteTimeout(
                f"the server accepted no request bytes within the write timeout ({wait} s)"
            )
        return WriteTimeout(
            f"the server stopped taking the request: no progress for the write timeout ({wait} s) "
            f"after {self._sent} bytes were sent"
        )

    def sent(self) -> None:
        """The whole request is written: wait for the answer."""
        if self._phase == _SENDING:
            self._phase = _AWAITING
            self._sent += self._whole

    # -- receiving --------------------------------------------------------------

    def read_timeout(self, now: float | None = None) -> float | None:
        """How long the next receive may wait."""
        if self._deadline is None:
            return self.limits.read
        return self._wait(self.limits.read, self._time(now), "waiting for the response")

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes received from the server; ``b""`` when it closed the connection."""
        if data:
            self._received = True
        elif not self._received and self._phase != _BODY:
            self._silent_close = True
        self._parser.feed(data)

    def receive_failed(self, failure: Failure, cause: BaseException) -> _Sentinel:
        """A receive failed: :data:`RESEND`, or the error (raised from ``cause``)."""
        phase = self._phase
        self._phase = _FAILED
        timeout = failure is Failure.TIMEOUT
        if phase == _BODY:
            if timeout:
                raise ReadTimeout(
                    f"the server sent no body bytes within the read timeout ({self.limits.read} s)"
                ) from cause
            raise ReadError(
                f"the connection failed while reading the response body: {_describe(cause)}"
            ) from cause
        if not self._received:
            if not timeout and self._resendable_now():
                return self._resend()
            if self._early is not None:
                raise self._lost_while_sending() from self._early
        if timeout and self._cut:
            raise ReadTimeout(
                f"no response within the total timeout ({self.limits.total:.3g} s)"
            ) from cause
        if timeout:
            raise ReadTimeout(
                f"no response within the read timeout ({self.limits.read} s)"
            ) from cause
        raise ReadError(
            f"the connection failed while waiting for the response: {_describe(cause)}"
        ) from cause

    def next_event(self) -> ResponseHead | bytes | memoryview | object:
        """The next event: the :class:`ResponseHead`, body bytes, :data:`END`,
        :data:`NEED_DATA` or :data:`RESEND` (the server closed a reused
        connection before answering).

        After the last body bytes :attr:`complete` is true: the connection can
        be released with them.
        """
        phase = self._phase
        if phase == _DONE:
            return END
        if phase == _FAILED:
            raise RuntimeError("Exchange.next_event after the exchange failed")
        if self._silent_close:
            self._phase = _FAILED
            return self._closed_without_answer()
        event = self._parsed()
        if event is NEED_DATA or isinstance(event, ResponseHead):
            return event
        if event is END:
            self._phase = _DONE
            return END
        parser = self._parser
        if parser.at_end():  # the last bytes: the connection is free with them
            parser.next_event()
            self._phase = _DONE
        return event

    def next_head(self) -> ResponseHead | _Sentinel | None:
        """The response head, :data:`RESEND`, or None: receive more first."""
        if self._phase == _AWAITING and not self._received and not self._silent_close:
            return None  # nothing arrived yet: no parse to attempt
        event = self.next_event()
        if event is NEED_DATA:
            return None
        if isinstance(event, ResponseHead | _Sentinel):
            return event
        raise RuntimeError("Exchange.next_head after the head")  # pragma: no cover

    def receive_head(self, data: bytes | bytearray | memoryview) -> ResponseHead | _Sentinel | None:
        """:meth:`receive_data`, then :meth:`next_head`, in one step: what a transport
        calls with each piece received while it waits for the head."""
        if self._phase > _AWAITING:
            raise RuntimeError("Exchange.receive_head outside of waiting for the head")
        if data:
            self._received = True
        elif not self._received:
            self._silent_close = True
        self._parser.feed(data)
        if self._silent_close:
            return self.next_head()
        event = self._parsed()
        if event is NEED_DATA:
            return None
        if isinstance(event, ResponseHead):
            return event
        raise RuntimeError("Exchange.receive_head after the head")  # pragma: no cover

    def _parsed(self) -> ResponseHead | bytes | memoryview | object:
        """The parser's next event; a head is recorded, a malformed answer fails the exchange."""
        parser = self._parser
        try:
            event = parser.next_event()
        except ObjectstoreError:
            self._phase = _FAILED
            raise
        if isinstance(event, ResponseHead):
            self.head = event
            self._phase = _DONE if parser.done else _BODY
        return event

    def next_data(self) -> bytes | memoryview | None:
        """Body bytes, ``b""`` at the end, or None: receive more first."""
        if self._phase == _BODY:  # next_event's body step, without its other cases
            parser = self._parser
            if parser.starved:
                return None
            try:
                data = parser.next_event()
            except ObjectstoreError:
                self._phase = _FAILED
                raise
            if data is NEED_DATA:
                return None
            if data is END:
                self._phase = _DONE
                return b""
            if parser.at_end():  # the last bytes: the connection is free with them
                parser.next_event()
                self._phase = _DONE
            if isinstance(data, bytes | memoryview):
                return data
            raise RuntimeError("Exchange.next_data: a head in the body")  # pragma: no cover
        event = self.next_event()
        if event is NEED_DATA:
            return None
        if event is END:
            return b""
        if isinstance(event, bytes | memoryview):
            return event
        raise RuntimeError("Exchange.next_data before the head")  # pragma: no cover

    def hand_over(self) -> bool:
        """Whether the open body goes to the caller as a stream (see :class:`Request`).

        A streaming request's 2xx answer does, and ``Timeout.total`` then stops
        applying; any other body is read whole by the transport.
        """
        head = self.head
        if self.request.stream and head is not None and 200 <= head.status < 300:
            self._deadline = None
            return True
        return False

    def response(self, body: bytes = b"") -> Response:
        """The response for the flow: the head's status and headers, with ``body``."""
        head = self.head
        if head is None:
            raise RuntimeError("Exchange.response before the head")
        return Response(head.status, head.headers, body)

    def _closed_without_answer(self) -> object:
        if self._resendable_now():
            return self._resend()
        if self._early is not None:
            raise self._lost_while_sending() from self._early
        raise ReadError("the server closed the connection without a response")

    def _lost_while_sending(self) -> WriteError:
        return WriteError(f"connection lost while sending the request: {_describe(self._early)}")

    @property
    def complete(self) -> bool:
        """True when the response was read to its end."""
        return self._phase == _DONE

    @property
    def reusable(self) -> bool:
        """True when the connection can carry another request (PROTOCOL §2)."""
        return self._phase == _DONE and self._early is None and self._parser.reusable

    # -- deadlines --------------------------------------------------------------

    def _wait(self, limit: float | None, now: float, doing: str) -> float | None:
        """``limit``, cut to the time left before the deadline (which may have passed)."""
        deadline = self._deadline
        if deadline is None:
            return limit
        left = deadline - now
        if left <= 0:
            self._phase = _FAILED
            error = {"connecting": ConnectTimeout, "sending the request": WriteTimeout}.get(
                doing, ReadTimeout
            )
            raise error(f"the total timeout ({self.limits.total:.3g} s) ran out while {doing}")
        self._cut = limit is None or left < limit
        return left if self._cut else limit


class SmallBody:
    """Collects a response body read whole, refusing more than :data:`ERROR_BODY_LIMIT`."""

    __slots__ = ("_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[bytes | memoryview] = []
        self._size = 0

    def add(self, data: bytes | memoryview) -> None:
        self._size += len(data)
        if self._size > ERROR_BODY_LIMIT:
            raise ProtocolError(
                f"response body exceeds {ERROR_BODY_LIMIT} bytes where a small one was expected"
            )
        self._parts.append(data)

    def result(self) -> bytes:
        parts = self._parts
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]
        return b"".join(parts)


def _describe(exc: BaseException | None) -> str:
    """A short description of what a socket library's exception reports, never empty.

    The socket libraries wrap the error that says what went wrong (urllib3's
    NewConnectionError, httpcore's ConnectError, trio's textless errors), each
    with its own text: the description is taken from the cause chain instead,
    so both twins say the same and no library's wording or class reaches the
    user. A TLS error gives its own text; else the innermost OS error gives
    the system's message for its errno; else the first text in the chain.
    """
    if exc is None:
        return "unknown error"
    chain: list[BaseException] = []
    found: BaseException | None = exc
    while found is not None and len(chain) < 8 and found not in chain:
        chain.append(found)
        following = found.__cause__ or found.__context__
        if following is None and isinstance(found, BaseExceptionGroup) and found.exceptions:
            following = found.exceptions[0]  # trio: one error per address tried
        found = following
    for error in chain:
        if type(error).__module__ in ("ssl", "_ssl") and str(error):
            return f"TLS error: {error}"
    for error in reversed(chain):
        number = error.errno if isinstance(error, OSError) else None
        if isinstance(number, int) and number > 0:
            return f"{_strerror(number)} (errno {number})"
    for error in chain:
        if str(error):
            name = type(error).__name__
            return f"{name}: {error}" if type(error).__module__ == "builtins" else str(error)
    return type(exc).__name__


def _strerror(number: int) -> str:
    import os  # the system's message table: no I/O, no state

    return os.strerror(number)
