"""The state of one streamed download: length accounting, decoding and buffering.

A twin's payload object runs one small loop over it::

    while (chunk := download.read(limit)) is None:   # None: needs raw bytes
        data = raw_stream.read()                     # b"" declares the end
        download.feed(data, last=raw_stream.done)    # or the stream knows it was the last
    return chunk                                     # b"" at the end of the payload

A body shorter or longer than the server announced, a truncated or corrupt
zstd stream, or a whole-body read past ``max_read_size`` raises
:class:`IntegrityError`, never short data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from objectstore_core._codec import IdentityDecoder, ZstdContexts, ZstdDecoder
from objectstore_core._errors import IntegrityError, ObjectstoreError

if TYPE_CHECKING:
    from objectstore_core._log import RequestRecord
    from objectstore_core._metrics import Meter

__all__ = [
    "COPY_PIECE",
    "DEFAULT_CHUNK",
    "PIECE_SIZE",
    "Download",
    "check_chunk_size",
    "check_max_read_size",
    "prime_heap",
]

PIECE_SIZE = 1024 * 1024
"""Largest socket read of a body, and of an uncompressed body's pieces.

Each read is one allocation the kernel fills directly; uncompressed bodies
are handed on as received, without copies. Large pieces take fewer trips
through the transport and the decoder per byte, which is what a body that
expands as it is decoded costs most (the "download ... JSON-like" rows of
``python benchmarks/run.py``). Buffers this size stay cheap only on a
primed heap (see :func:`prime_heap`).
"""

COPY_PIECE = 128 * 1024
"""Socket read size while a body is only copied: uncompressed, or zstd that does not expand.

Such a body costs what copying it costs: the kernel copies it into the
read's buffer and libzstd (for raw zstd blocks) copies it again. With
128 KiB reads the buffer is still in the core's cache when it is copied
again; 1 MiB reads evict it first, and 64 KiB reads cost more per byte in
trips through the transport. The "download ... random" rows of
``python benchmarks/run.py`` show the result against the official client,
which reads 1 MiB pieces. Bodies that expand as they are decoded keep
:data:`PIECE_SIZE` reads.
"""

DEFAULT_CHUNK = 256 * 1024
"""Largest piece of decoded payload handed out per read.

Reads start at 64 KiB and double while they come back full, so a small
payload gets no large buffer; a frame that declares its size is decoded in
one read when it fits. Measured on 64 MiB JSON-like downloads (medians of
6-8, fresh processes), 64 KiB chunks ran at 1,105 MB/s sync and 1,060 MB/s
async, 256 KiB and 1 MiB chunks within 1% of each other at 1,150-1,190 and
1,110-1,150 MB/s: the rest of the time is libzstd's, and fewer chunks mean
less Python around it. 1 MiB chunks cost memory instead: with a consumer
slower than the network (hashing each chunk), random-data downloads left the
heap 43 MiB larger, against 19 MiB with 256 KiB chunks (glibc cannot reuse
the freed pieces, of assorted sizes near 1 MiB, for the next ones).
"""

_HEAP_PRIMER = 4 * 1024 * 1024


def prime_heap() -> None:
    """Let glibc serve 1 MiB buffers from its heap: call it when a transport is built.

    glibc's malloc gives every allocation of 128 KiB or more a mapping of its
    own until the process frees one such mapping; it then raises that
    threshold to the size freed, and lets the heap keep twice as much free
    memory before returning it to the system (the dynamic threshold of
    mallopt(3)). Before that, each 1 MiB piece of a download is mapped,
    faulted in page by page and unmapped again: measured on 64 MiB downloads
    in a fresh process, 2,900 page faults per download with 1 MiB chunks and
    a quarter less throughput on random data. Allocating and freeing 4 MiB
    once moves the process to the state any process that ever freed a large
    buffer is in (heap buffers up to 4 MiB, up to 8 MiB kept free); after
    it, downloads fault no pages. Under other allocators it is one
    short-lived allocation.

    It keeps no state (the core holds nothing per process): each call is one
    allocation of 4 MiB, so it belongs where a transport or client is made,
    never on a per-request path.
    """
    primer = bytes(_HEAP_PRIMER)
    del primer


class Download:
    """Length checking, decoding and leftover buffering for one response body.

    ``expected_length`` is the number of raw bytes the server announced
    (``content-length``, or ``x-sn-size`` for a full read); None skips the check.
    ``contexts``: the client's idle zstd contexts, for a decoded body.
    ``max_read_size``: the largest payload a whole-body read may return (see
    :meth:`read`); None leaves it unbounded.
    """

    __slots__ = (
        "_context",
        "_decoder",
        "_delivered",
        "_eof",
        "_error",
        "_expected",
        "_max_read",
        "_received",
        "_stored",
        "log",
        "meter",
        "unsettled",
    )

    def __init__(
        self,
        *,
        decode: bool,
        expected_length: int | None,
        max_output: int | None = None,
        context: Mapping[str, str | None] | None = None,
        contexts: ZstdContexts | None = None,
        max_read_size: int | None = None,
        meter: Meter | None = None,
        stored: str | None = None,
        log: RequestRecord | None = None,
    ) -> None:
        # meter: the get's metrics, recorded by settle() (None: the backend records nothing);
        # stored: the encoding of the stored bytes (for the size metrics' tags);
        # log: the get's DEBUG line, written by settle() (None: DEBUG is off).
        # unsettled: settle() has something to do (the twins test it per read).
        self.meter = meter
        self.log = log
        self.unsettled = meter is not None or log is not None
        self._stored = stored
        self._error: ObjectstoreError | None = None
        self._context = context if context is not None else {}
        self._max_read = check_max_read_size(max_read_size)
        self._delivered = 0  # payload bytes handed out so far
        # max_output: the largest piece per read (default: DEFAULT_CHUNK decoded,
        # PIECE_SIZE as received).
        self._decoder: ZstdDecoder | IdentityDecoder = (
            ZstdDecoder(max_output=max_output or DEFAULT_CHUNK, contexts=contexts)
            if decode
            else IdentityDecoder(max_output=max_output or PIECE_SIZE)
        )
        self._expected = expected_length
        self._received = 0
        self._eof = False

    @property
    def piece(self) -> int:
        """How many raw bytes the twin should ask the socket for next.

        :data:`PIECE_SIZE` once the decoded payload is more than twice the
        bytes received (decoding, not copying, is then the cost), else
        :data:`COPY_PIECE`.
        """
        if self._decoder.bytes_out > 2 * self._received:
            return PIECE_SIZE
        return COPY_PIECE

    @property
    def received(self) -> int:
        """Raw bytes received so far."""
        return self._received

    @property
    def expected_length(self) -> int | None:
        return self._expected

    @property
    def decoded(self) -> int:
        """Payload bytes the decoder produced so far (what it cost in memory and CPU)."""
        return self._decoder.bytes_out

    def annotate(self, error: ObjectstoreError) -> ObjectstoreError:
        """``error`` with the download's operation, usecase, scope and key filled in."""
        self._error = error
        return error.with_context(**self._context)

    def failed(self, error: ObjectstoreError, now: float) -> ObjectstoreError:
        """``error`` annotated (see :meth:`annotate`), after settling the get as failed:
        what a twin raises when reading the body fails (``now``: its monotonic clock)."""
        annotated = self.annotate(error)
        self.settle(now)
        return annotated

    def settle(self, now: float) -> None:
        """Record the get's metrics and write its DEBUG line, once: the twins call it
        at the end of the body, when reading it failed, and when it is closed
        (``now``: their monotonic clock) while :attr:`unsettled` is true.

        Read to its end, the body reports latency, sizes and throughput
        (decoded bytes as ``compression: none``, received bytes in their stored
        encoding); a failed read reports latency with the error's class as
        ``outcome``; a body closed early, latency with ``outcome: closed``.
        The log line counts the raw bytes received, and says how a body that
        did not reach its end stopped.
        """
        if not self.unsettled:
            return
        self.unsettled = False
        meter, log = self.meter, self.log
        self.meter = self.log = None
        if log is not None:
            if self._error is not None:
                log.finish(now, self._received, type(self._error).__name__)
            elif not self.finished:
                log.finish(now, self._received, "closed before the end")
            else:
                log.finish(now, self._received)
        if meter is None:
            return
        if self._error is not None:
            meter.failed(now, self._error)
        elif not self.finished:
            meter.record(now, outcome="closed")
        elif isinstance(self._decoder, ZstdDecoder):
            meter.record(now, uncompressed=self.decoded, compressed=self._received)
        elif self._stored is not None:
            meter.record(now, compressed=self._received, compression=self._stored)
        else:
            meter.record(now, uncompressed=self._received)

    @property
    def finished(self) -> bool:
        """True once the end was declared and every payload byte was read."""
        return self._eof and self._decoder.finished

    def feed(self, raw: bytes | bytearray | memoryview, *, last: bool = False) -> None:
        """Push raw body bytes (any chunking); ``b""`` declares the end of the body.

        ``last``: the transport knows these are the body's last bytes (it has
        already released the connection), so the end is declared with them.
        A compressed body that arrives whole this way (a small object) is
        decoded at once, by libzstd alone (see :meth:`ZstdDecoder.feed_whole`).
        """
        if (
            last
            and raw
            and not self._received
            and not self._eof
            and (self._expected is None or len(raw) == self._expected)
            and isinstance(self._decoder, ZstdDecoder)
            and isinstance(raw, bytes | memoryview)
            and self._decoder.feed_whole(raw)
        ):
            self._received = len(raw)
            self._eof = True
            return
        if raw and last:
            self.feed(raw)
            raw = b""
        if self._eof:
            raise RuntimeError("feed() after the end of the body was declared")
        if not raw:
            self._eof = True
            if self._expected is not None and self._received < self._expected:
                raise IntegrityError(
                    f"response body was truncated: received {self._received} of "
                    f"{self._expected} bytes"
                )
            self._decoder.feed_eof()
            return
        self._received += len(raw)
        if self._expected is not None and self._received > self._expected:
            raise IntegrityError(
                f"response body is longer than announced: more than {self._expected} bytes"
            )
        self._decoder.feed(raw)
        if self._received == self._expected:
            # All announced bytes are here: the decoder may finish without
            # waiting for the transport to report the end.
            self._decoder.feed_eof()

    def read(self, limit: int | None = None, *, whole: bool = False) -> bytes | None:
        """The next piece of payload, at most ``limit`` bytes (one decoded chunk if None).

        Returns None when raw bytes are needed first, and ``b""`` at the end.

        ``whole``: the piece is for a read of the whole body, which
        ``max_read_size`` bounds. Such a read never decodes more than one byte
        past the bound, and raises :class:`IntegrityError` naming the bound as
        soon as the payload handed out would pass it (at once when the server
        announced a larger uncompressed body). Streaming reads are not bounded:
        they hold one piece at a time.
        """
        bound = self._max_read if whole else None
        if bound is not None:
            announced = self._expected
            if (
                announced is not None
                and announced > bound
                and isinstance(self._decoder, IdentityDecoder)
            ):
                raise self._too_large(bound, f"the server announced {announced} bytes")
            room = bound - self._delivered + 1  # one byte past the bound tells it is passed
            limit = room if limit is None else min(limit, room)
        chunk = self._decoder.read(limit)
        if chunk:
            self._delivered += len(chunk)
            if bound is not None and self._delivered > bound:
                raise self._too_large(bound, "the payload is larger")
            return chunk
        return b"" if self._eof else None

    def _too_large(self, bound: int, why: str) -> IntegrityError:
        return IntegrityError(
            f"response body exceeds max_read_size={bound} bytes ({why}): read it in pieces "
            "(iter_bytes, or read(n)) or raise the limit"
        )


def check_max_read_size(value: int | None) -> int | None:
    """Validate ``max_read_size``: None (unbounded) or a byte count >= 0."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(
            f"max_read_size={value!r} is invalid: use a byte count >= 0, or None for no bound"
        )
    return value


def check_chunk_size(chunk_size: int | None) -> None:
    """Validate ``iter_bytes(chunk_size)``: None or a positive byte count."""
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0
    ):
        raise ValueError(f"chunk_size={chunk_size!r} is invalid: use a positive byte count or None")
