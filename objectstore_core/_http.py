"""Plain data that crosses the boundary between the core and the transports.

A flow (see :mod:`objectstore_core._operations`) yields :class:`SendRequest`,
:class:`Sleep`, :class:`Clock`, :class:`Compress` and :class:`Spool` steps
(among others); a driver performs them and sends back a :class:`Response`,
None, the time, the compressed bytes, or the :class:`Spooled` file. Nothing
here refers to an HTTP library, and nothing here touches a payload: the twins
read files, measure them and compress (PROTOCOL §5).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol, TypeAlias, TypeVar

from objectstore_core._codec import (
    LEVEL,
    ZstdContexts,
    ZstdEncoder,
    compress,
    zstd_plan,
    zstd_workers,
)
from objectstore_core._errors import ObjectstoreError
from objectstore_core._timeout import Timeout
from objectstore_core._values import quick_setters

__all__ = [
    "UPLOAD_CHUNK",
    "BinaryReader",
    "Buffer",
    "Clock",
    "Compress",
    "Credentials",
    "Flow",
    "Join",
    "Joined",
    "LengthCheck",
    "Measure",
    "Payload",
    "PayloadKind",
    "ReadAt",
    "ReadBody",
    "Request",
    "Response",
    "SendRequest",
    "Sleep",
    "Spawn",
    "Spool",
    "SpoolTally",
    "Spooled",
    "Step",
    "Upload",
    "UploadReplay",
    "WriteAt",
    "check_upload_chunk",
    "classify_payload",
    "read_clock",
    "relayed",
    "send_once",
    "upload_size",
]

T = TypeVar("T")

Buffer: TypeAlias = bytes | bytearray | memoryview
"""Bytes-like values: what a payload, a chunk of one or a compressed body may be."""

UPLOAD_CHUNK = 1024 * 1024
"""How much of a file or path payload the twins read at a time for an upload.

Large enough that a read costs little beside compressing it, small enough
that a payload of any size streams in bounded memory.
"""


class BinaryReader(Protocol):
    """A binary file as ``put`` reads it: ``read(size)`` gives at most ``size`` bytes, ``b""``
    at the end.

    Blocking files (``open(path, "rb")``, :class:`io.BytesIO`) return the bytes;
    async files (anyio's, aiofiles'; the async twin only) return an awaitable of them.
    """

    def read(self, size: int, /) -> Buffer | Awaitable[Buffer]: ...


Payload: TypeAlias = (
    Buffer | str | BinaryReader | Iterable[Buffer] | AsyncIterable[Buffer] | os.PathLike[str]
)
"""What ``put`` accepts: bytes-like, str (sent as UTF-8), a binary file, an iterable of
bytes, an os.PathLike (opened lazily), or (async twin only) an async iterable of bytes
or an async file."""


class PayloadKind(Enum):
    """How a transport must read a payload; decided without touching it."""

    BYTES = "bytes"  # bytes, bytearray, memoryview (str is encoded to bytes first)
    FILE = "file"  # an object with read(); seekable ones can be replayed
    PATH = "path"  # os.PathLike or a path given as such: opened lazily by the transport
    ITERABLE = "iterable"  # one-shot iterable of bytes-like chunks
    ASYNC_ITERABLE = "async_iterable"  # one-shot async iterable (async twin only)


def classify_payload(contents: object) -> PayloadKind:
    """Classify a payload for the transports, or raise TypeError naming it.

    ``str`` is not a kind of its own: callers encode it as UTF-8 first.
    """
    if isinstance(contents, bytes | bytearray | memoryview):
        return PayloadKind.BYTES
    if isinstance(contents, os.PathLike):
        return PayloadKind.PATH
    if callable(getattr(contents, "read", None)):
        return PayloadKind.FILE
    if isinstance(contents, AsyncIterable):
        return PayloadKind.ASYNC_ITERABLE
    if isinstance(contents, Iterable) and not isinstance(contents, str | dict):
        return PayloadKind.ITERABLE
    raise TypeError(
        f"cannot upload {type(contents).__name__} {contents!r:.60}: pass bytes, bytearray, "
        "memoryview, str, a binary file, an iterable of bytes or an os.PathLike"
    )


@dataclass(slots=True)
class UploadReplay:
    """What the transports learned about a payload while reading it, for retries.

    The one mutable piece of an :class:`Upload`, written only by the twins'
    source readers: ``started`` once a chunk was taken from the caller's
    payload; ``start`` the position of a seekable file when it was first
    read (found with ``tell()``, without reading), so every later attempt
    rewinds there and re-encodes from the start. The core's retry decision
    (:func:`objectstore_core._retry.body_replayable`) reads it.
    """

    started: bool = False
    start: int | None = None

    def begin(self) -> int | Literal["note"] | None:
        """Start an attempt at reading a file payload: what the twin does to the file first.

        ``"note"``: the first attempt, so note where the file stands in
        :attr:`start` (``tell()`` when it can seek, reading nothing; None when
        it cannot). An ``int``: a later attempt, so seek back there. None:
        nothing (a later attempt at a file that cannot seek; the retry
        decision never sends such a payload again once touched).
        """
        first = not self.started
        self.started = True
        return "note" if first else self.start


def check_upload_chunk(chunk: object) -> Buffer:
    """A chunk the caller's payload produced, or TypeError: chunks must be bytes-like."""
    if isinstance(chunk, bytes | bytearray | memoryview):
        return chunk
    raise TypeError(
        f"upload payload produced {type(chunk).__name__} {chunk!r:.40}: chunks must be bytes"
    )


@dataclass(frozen=True, slots=True)
class Upload:
    """A request body the transport produces by reading the user's payload.

    The transport pulls chunks from ``source`` (according to ``kind``), passes
    each through a fresh encoder from :func:`objectstore_core.new_encoder`
    when ``compress`` is true, and streams the result with chunked framing.
    Each attempt reads the payload from its start: bytes and paths always,
    a seekable file by seeking back to ``replay.start``.

    With ``length`` (never together with ``compress``) the body is framed by
    ``content-length: length`` instead of chunks, and the twins' readers pass
    the payload through a :class:`LengthCheck`, so exactly that many bytes are
    sent: the whole payload (a multipart part, PROTOCOL §9.2), or with
    ``offset`` the ``length`` bytes from there (bytes, a path or a seekable
    file; an append of a resumable upload, §14.1).
    """

    source: Payload
    kind: PayloadKind
    compress: bool
    length: int | None = None
    offset: int | None = None
    replay: UploadReplay = field(default_factory=UploadReplay, compare=False, repr=False)


def upload_size(upload: Upload, file_size: int | None = None) -> int | None:
    """The bytes an upload will read, when known before reading any (else None).

    Bytes by their length. A path or a file by ``file_size``, its size as the
    twin measured it (``fstat`` of the open file: the core reads no file
    metadata); for a file, less the position its reading starts at
    (``replay.start``, which the twin's source reader notes before the first
    read). Unknown for iterators, non-seekable files and unmeasured ones.
    """
    source = upload.source
    if isinstance(source, bytes | bytearray | memoryview):
        return memoryview(source).nbytes
    if file_size is None:
        return None
    if upload.kind is PayloadKind.PATH:
        return file_size
    start = upload.replay.start
    if upload.kind is PayloadKind.FILE and start is not None and 0 <= start <= file_size:
        return file_size - start
    return None


class LengthCheck:
    """Counts the chunks of an :class:`Upload` with a ``length`` as a twin reads them.

    :meth:`take` raises ValueError as soon as the payload holds more bytes
    than announced, :meth:`end` when it held fewer: the request is then
    abandoned (its connection is not reused), never sent with a wrong length.
    """

    __slots__ = ("_length", "_seen")

    def __init__(self, length: int) -> None:
        self._length = length
        self._seen = 0

    def take(self, chunk: Buffer) -> Buffer:
        """``chunk``, after checking it does not run past the announced length."""
        self._seen += memoryview(chunk).nbytes
        if self._seen > self._length:
            raise ValueError(
                f"content_length={self._length} does not match the payload: it holds more bytes"
            )
        return chunk

    def end(self) -> None:
        """The payload is exhausted: it must have held exactly the announced length."""
        if self._seen != self._length:
            raise ValueError(
                f"content_length={self._length} does not match the payload: "
                f"it held {self._seen} bytes"
            )


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, described.

    ``target`` is the origin-form request target (path and query, already
    percent-encoded; PROTOCOL §2.5). ``body`` is ready bytes, an
    :class:`Upload` for the transport to stream, or None. With ``stream`` the
    transport leaves a 2xx response body unread for the caller to stream;
    other bodies are always read whole (they are small) and the connection
    released before the flow sees the response. ``timeout`` overrides the
    client's timeouts for this request.
    """

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | Upload | None = None
    stream: bool = False
    timeout: Timeout | None = None

    def __init__(
        self,
        method: str,
        target: str,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes | Upload | None = None,
        stream: bool = False,
        timeout: Timeout | None = None,
    ) -> None:
        # What the frozen dataclass's own __init__ does, through the slots' setters:
        # half its cost, on every request (see quick_setters).
        _request_method(self, method)
        _request_target(self, target)
        _request_headers(self, headers)
        _request_body(self, body)
        _request_stream(self, stream)
        _request_timeout(self, timeout)

    def with_headers(self, first: tuple[tuple[str, str], ...]) -> Request:
        """This request with ``first`` in front of its headers (cheaper than ``replace``)."""
        return Request(
            self.method,
            self.target,
            first + self.headers,
            self.body,
            self.stream,
            self.timeout,
        )

    def __repr__(self) -> str:
        # Headers may carry a token: never show values (API §5).
        names = ", ".join(name for name, _ in self.headers)
        return f"Request({self.method} {self.target} headers=[{names}])"


@dataclass(frozen=True, slots=True)
class Response:
    """A response as the flow sees it: status, lower-case headers, body.

    ``body`` is empty when the transport kept a streaming body open.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __init__(
        self, status: int, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> None:
        _response_status(self, status)
        _response_headers(self, {} if headers is None else headers)
        _response_body(self, body)


(
    _request_method,
    _request_target,
    _request_headers,
    _request_body,
    _request_stream,
    _request_timeout,
) = quick_setters(Request, "method", "target", "headers", "body", "stream", "timeout")
_response_status, _response_headers, _response_body = quick_setters(
    Response, "status", "headers", "body"
)


class Credentials(Protocol):
    """Signs requests at the moment they are sent (PROTOCOL §10.2)."""

    def headers(self, now: float) -> tuple[tuple[str, str], ...]:
        """Authentication headers valid at wall-clock time ``now`` (seconds since the epoch)."""
        ...


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Flow step: send ``request``; the driver sends back a :class:`Response`.

    The driver sends :meth:`prepare` of the current time, so a token is
    fresh for every attempt. When sending fails with an ObjectstoreError
    the driver throws it into the flow at this step instead.
    """

    request: Request
    credentials: Credentials | None = None

    def __init__(self, request: Request, credentials: Credentials | None = None) -> None:
        _send_request(self, request)
        _send_credentials(self, credentials)

    def prepare(self, now: float) -> Request:
        """The request to put on the wire at time ``now``, with fresh credentials."""
        if self.credentials is None:
            return self.request
        signed = self.credentials.headers(now)
        request = self.request  # built directly: dataclasses.replace costs more than the rest
        return Request(
            request.method,
            request.target,
            request.headers + signed,
            request.body,
            request.stream,
            request.timeout,
        )


_send_request, _send_credentials = quick_setters(SendRequest, "request", "credentials")


@dataclass(frozen=True, slots=True)
class Sleep:
    """Flow step: wait ``seconds``; the driver sends back None."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Compress:
    """Flow step: compress ``data`` (``size`` bytes) into one zstd frame; the driver sends
    back the frame.

    The flow only describes the work; the driver decides where it runs (the
    sync twin in the calling thread; the async twin on the event loop when it
    is small, else in a worker thread) and passes the CPU count it measured to
    :meth:`run`. The frame is sent with a content-length and reused on retries.
    ``alone``: compressed on the calling thread only, for flows that run
    several compressions side by side (a managed upload's parts), where
    libzstd workers would add memory, not speed.
    """

    data: Buffer
    size: int
    alone: bool = False

    def run(self, cpus: int, contexts: ZstdContexts | None = None) -> bytes:
        """The frame (zstd with a checksum) at the level and on the libzstd workers
        :func:`objectstore_core.zstd_plan` gives for ``size`` and ``cpus`` (no
        workers when ``alone``); a small one by one of the client's idle ``contexts``."""
        level, threads = zstd_plan(self.size, self.data, cpus)
        return compress(self.data, level, threads=0 if self.alone else threads, contexts=contexts)


@dataclass(frozen=True, slots=True)
class Spool:
    """Flow step: compress the whole payload of ``upload`` into a temporary file; the
    driver sends back a :class:`Spooled`.

    PROTOCOL §14.1: a resumable upload of a payload the client compresses
    sends the compressed bytes, so their length must be known before the
    session is created. The twin reads the source as a streamed put reads it
    (from a file's current position), passes the pieces through
    :meth:`encoder` and writes its output to a ``tempfile.TemporaryFile``,
    counting and hashing it with a :meth:`tally`; it hands the file back at
    position 0. The driver owns the file: it closes it when the flow ends,
    whatever the outcome. A failure while spooling is thrown into the flow.

    ``size``: the source's size as the twin measured it (the encoder's
    worker jobs are sized by it). ``workers``: the libzstd worker count a
    previous spool of the same source used (a resumed upload must produce
    the same bytes); None lets :func:`objectstore_core.zstd_workers` decide
    as for a plain put.
    """

    upload: Upload
    size: int | None
    workers: int | None = None

    def encoder(self, first: Buffer, cpus: int) -> ZstdEncoder:
        """The encoder of a streamed put (zstd with a checksum), on the workers recorded
        in :attr:`workers`, else on those ``zstd_workers`` gives for ``size``, the
        ``first`` piece and the twin's ``cpus``.

        Always at :data:`~objectstore_core._codec.LEVEL`, even for data that does not
        compress: a resume compresses again and must get the bytes the handle
        records, whichever version of this client made it.
        """
        workers = self.workers
        if workers is None:
            workers = zstd_workers(self.size, first, cpus)
        return ZstdEncoder(level=LEVEL, checksum=True, threads=workers, size=self.size)

    def tally(self) -> SpoolTally:
        """A fresh count and digest of the bytes written to the spool."""
        return SpoolTally()


class SpoolTally:
    """Counts and hashes (sha256) the compressed bytes a twin writes to its spool file."""

    __slots__ = ("_digest", "_encoder", "size")

    def __init__(self) -> None:
        self.size = 0
        self._digest = hashlib.sha256()
        self._encoder: ZstdEncoder | None = None

    def compressed(self, step: Spool, chunks: Iterator[Buffer], cpus: int) -> Iterator[Buffer]:
        """The payload read as ``chunks`` compressed by ``step``'s encoder (for the
        twin's ``cpus``), piece by piece, counted and hashed: the twin writes each
        piece to its spool file, then rewinds it and calls :meth:`spooled`."""
        first = next(chunks, b"")
        encoder = self._encoder = step.encoder(first, cpus)
        if out := encoder.encode(first):
            yield self.take(out)
        for chunk in chunks:
            if out := encoder.encode(chunk):
                yield self.take(out)
        yield self.take(encoder.finish())

    def take(self, piece: Buffer) -> Buffer:
        """``piece``, counted and hashed, for the twin to write."""
        self._digest.update(piece)
        self.size += memoryview(piece).nbytes
        return piece

    def spooled(self, file: BinaryReader) -> Spooled:
        """What the driver sends back once :meth:`compressed` ended and ``file`` is rewound."""
        encoder = self._encoder
        if encoder is None:
            raise RuntimeError("SpoolTally.spooled() before compressed() ran to its end")
        return Spooled(file, self.size, self._digest.hexdigest(), encoder.bytes_in, encoder.threads)


@dataclass(frozen=True, slots=True)
class Spooled:
    """What a :class:`Spool` step gives: the driver's temporary ``file`` holding ``size``
    compressed bytes (at position 0; the flow only hands it back to the driver in
    :class:`Upload` bodies), their ``sha256`` (hex), the ``source_size`` read from
    the payload and the libzstd ``workers`` that compressed it."""

    file: BinaryReader = field(repr=False)
    size: int
    sha256: str
    source_size: int
    workers: int


@dataclass(frozen=True, slots=True)
class Measure:
    """Flow step: the driver sends back the size in bytes of ``source`` (a path or a
    file, from its current position), or None when it cannot tell without reading.

    The core never stats a file: the twin measures (PROTOCOL §14.1 needs the
    size before a resumable upload starts).
    """

    source: Payload


@dataclass(frozen=True, slots=True)
class ReadAt:
    """Flow step: the driver sends back up to ``size`` bytes of ``source`` (a path or a
    file) from ``offset`` (counted from the file's position when first read), ``b""``
    at the end. A managed upload reads its parts this way, one at a time."""

    source: Payload
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Spawn:
    """Flow step: start running ``flow`` beside this one; the driver sends back None.

    The sync driver runs it in a worker thread, the async one in a task;
    :class:`Join` collects the outcome. Used for the parallel parts of a
    managed upload; a flow never spawns more at once than it can join.
    """

    flow: Generator[object, object, object]
    tag: int


@dataclass(frozen=True, slots=True)
class Joined:
    """What :class:`Join` sends back: the ``tag`` of a finished flow and its value, or the
    exception it raised."""

    tag: int
    value: object = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Join:
    """Flow step: wait until one spawned flow finishes; the driver sends back a
    :class:`Joined`."""


@dataclass(frozen=True, slots=True)
class Clock:
    """Flow step: the driver sends back a monotonic time in seconds.

    The core never reads a clock; a flow that must keep a deadline
    (``Timeout.total``) asks for the time with this step.
    """


@dataclass(frozen=True, slots=True)
class ReadBody:
    """Flow step: the next raw bytes of the body the last request left open
    (``stream=True``); the driver sends back bytes, ``b""`` once the body is done.

    A failure while reading is thrown into the flow at this step. The batch
    flow reads its multipart response this way, part by part (PROTOCOL §8.4).
    """


@dataclass(frozen=True, slots=True)
class WriteAt:
    """Flow step: the driver writes ``data`` to the destination of a managed download, at
    ``offset`` from where it started, or after what was written so far when ``offset``
    is None; it sends back None.

    The core never touches the file: the twin opened it and hands it to its
    driver. A failure to write is thrown into the flow at this step.
    """

    offset: int | None
    data: bytes


Step: TypeAlias = (
    SendRequest
    | Sleep
    | Clock
    | Compress
    | ReadBody
    | Measure
    | ReadAt
    | Spawn
    | Join
    | WriteAt
    | Spool
)
"""One step a flow yields."""


Flow: TypeAlias = Generator[
    Step,
    Response | float | bytes | Joined | Spooled | None,
    T,
]
"""A multi-step operation written once, driven by the sync and the async driver."""


def relayed(
    flow: Flow[T],
    before: Callable[[Step], Step] | None = None,
    after: Callable[[Step, object], None] | None = None,
) -> Flow[T]:
    """Run ``flow`` for a caller that watches its steps: metrics, spans, byte counts.

    ``before(step)`` gives the step to yield in its place (the same one, or a
    changed copy); ``after(step, reply)`` sees what the driver sent back.
    Whatever the driver throws in at a step goes to ``flow``, and closing the
    relay closes ``flow``, exactly as with ``yield from flow``.
    """
    reply: object = None
    throw: BaseException | None = None
    while True:
        try:
            step = flow.send(reply) if throw is None else flow.throw(throw)  # type: ignore[arg-type]
        except StopIteration as done:
            value: T = done.value
            return value
        throw = None
        if before is not None:
            step = before(step)
        try:
            reply = yield step
        except GeneratorExit:
            flow.close()
            raise
        except BaseException as error:  # for the flow to decide, as at any yield
            throw, reply = error, None
            continue
        if after is not None:
            after(step, reply)


def send_once(step: SendRequest) -> Flow[Response | ObjectstoreError]:
    """Perform ``step`` once: the response, or the transport failure the driver threw in
    (returned, for the caller to decide on a retry)."""
    try:
        reply = yield step
    except ObjectstoreError as error:
        return error
    if not isinstance(reply, Response):  # pragma: no cover - driver contract
        raise TypeError(f"driver sent {reply!r} for a SendRequest")
    return reply


def read_clock() -> Flow[float]:
    """The driver's monotonic time, through a :class:`Clock` step (the core reads no clock)."""
    now = yield Clock()
    if not isinstance(now, int | float):  # pragma: no cover - driver contract
        raise TypeError(f"driver sent {now!r} for a Clock step")
    return float(now)
