"""Zstandard payload codec: streaming encoder and bounded-output streaming decoders.

Objectstore stores payloads zstd-compressed. An object uploaded in several parts is
stored as the concatenation of one zstd frame per part (PROTOCOL.md §5), so a
download body is *any number of concatenated frames*, possibly interleaved with
skippable frames, and an empty body is an empty payload. The decoder here accepts
exactly that.

Bounded output, decoded in place
--------------------------------
python-zstandard's ``decompressobj().decompress(data)`` has no output limit: four
input bytes describing an RLE block regenerate 128 KiB, so a hostile or corrupt
body can expand without bound inside a single call (a "decompression bomb"). This
module is sans-IO and must give callers a *hard* bound on the memory a single
``read()`` can produce, and downloads should cost little more than libzstd's own
decoding. So :class:`ZstdDecoder` drives python-zstandard's *stream reader*, whose
``read1(n)`` lets libzstd decode straight into a result of at most ``n`` bytes (no
intermediate buffers, no joins), over an input queue that the caller pushes to
(see :class:`_Input` for how a pull API is driven by pushed input).

Beside the decoding, a structure walk (:class:`_FrameScanner`) follows the frame
format (RFC 8878) over the input as it is fed, reading headers only:

* frame header: magic ``0xFD2FB528``, Frame_Header_Descriptor, optional
  Window_Descriptor, Dictionary_ID and Frame_Content_Size;
* blocks: a 3-byte little-endian header (Last_Block bit 0, Block_Type bits 1-2
  where 0 = raw, 1 = RLE, 2 = compressed, 3 = reserved, Block_Size bits 3-23)
  followed by ``Block_Size`` content bytes (a single byte for RLE blocks, whose
  Block_Size is the regenerated size);
* an optional 4-byte content checksum;
* skippable frames (magic ``0x184D2A50``-``0x184D2A5F``, 4-byte size, content),
  whose content is skipped without being buffered.

It rejects invalid structure early with a precise message, and it lets
``feed_eof()`` tell at once whether the input ended exactly on a frame boundary:
libzstd alone would simply stop producing output at a truncated frame. Content
checksums are verified by libzstd while decoding. Frame_Content_Size, which
libzstd checks only once a frame ends, is checked as output is produced: while
every frame so far declares its size, no read decodes more than one byte past
the declared total, and more or less than declared is an :class:`IntegrityError`.

This module performs no I/O.
"""

from __future__ import annotations

from collections import deque
from typing import IO, Final, Protocol, cast

import zstandard

from objectstore_core._errors import IntegrityError

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "Decoder",
    "IdentityDecoder",
    "ZstdContexts",
    "ZstdDecoder",
    "ZstdEncoder",
    "compress",
    "compress_bound",
    "decompress",
]

#: Default cap on the size of one ``read()`` result.
DEFAULT_MAX_OUTPUT: Final = 1 << 20

_ZSTD_MAGIC: Final = 0xFD2FB528
_ZSTD_MAGIC_BYTES: Final = _ZSTD_MAGIC.to_bytes(4, "little")
_SKIPPABLE_MAGIC_MIN: Final = 0x184D2A50
_SKIPPABLE_MAGIC_MAX: Final = 0x184D2A5F
_BLOCK_SIZE_MAX: Final = 128 * 1024  # Block_Maximum_Size upper limit (RFC 8878 §3.1.1.2.3)
_BLOCK_RLE: Final = 1
_BLOCK_RESERVED: Final = 3
_HEADER_MAX: Final = 18  # longest frame header: magic, descriptor, window, DID 4, FCS 8

# Where the structure walk is: the kind of header expected next.
_ST_MAGIC: Final = 0  # between frames: a magic number (or the end of input)
_ST_BLOCK: Final = 1  # inside a zstd frame: a block header
_ST_CHECKSUM: Final = 2  # inside a zstd frame: the 4-byte content checksum

# ZSTD_MAX_INPUT_SIZE on 64-bit platforms; ZSTD_COMPRESSBOUND is undefined beyond.
_ZSTD_MAX_INPUT_SIZE: Final = 0xFF00FF00FF00FF00

_FCS_FIELD_SIZES: Final = (0, 2, 4, 8)
_DID_FIELD_SIZES: Final = (0, 1, 2, 4)

_FIRST_OUTPUT: Final = 64 * 1024  # first read size of a ZstdDecoder; doubles up to max_output
_INPUT_PIECE: Final = 4 << 20  # most compressed input handed to libzstd at once

_WORKER_JOB: Final = 4 << 20  # most input per libzstd worker job when compressing with threads
_WORKER_JOB_MIN: Final = 512 << 10  # libzstd's smallest job

MULTITHREAD_MIN: Final = 1 << 20
"""Compressible payloads known to be at least this large get two zstd workers."""

_SAMPLE: Final = 64 * 1024  # bytes of a first piece tried for compressibility

REUSED_MAX: Final = 64 * 1024
"""Payloads up to this size are compressed by a reused context (see :class:`ZstdContexts`)."""

_Buffer = bytes | bytearray | memoryview


def compress_bound(n: int) -> int:
    """Worst-case size of a single zstd frame compressing ``n`` bytes in one shot.

    This is libzstd's ``ZSTD_COMPRESSBOUND`` (python-zstandard does not expose it).
    It bounds :func:`compress`; a streamed frame with intermediate flushes may carry
    extra block headers and exceed it slightly.
    """
    if n < 0:
        raise ValueError("input size must be non-negative")
    if n >= _ZSTD_MAX_INPUT_SIZE:
        raise ValueError("input size exceeds zstd's maximum")
    margin = ((_BLOCK_SIZE_MAX - n) >> 11) if n < _BLOCK_SIZE_MAX else 0
    return n + (n >> 8) + margin


def compress(
    data: _Buffer,
    level: int = 3,
    *,
    checksum: bool = True,
    threads: int = 0,
    contexts: ZstdContexts | None = None,
) -> bytes:
    """Compress ``data`` into a single zstd frame (with content size in the header).

    ``threads``: libzstd worker threads (see :func:`zstd_workers`), 0 for the calling thread.
    ``contexts``: a client's idle contexts, to reuse one for a small payload.
    """
    size = memoryview(data).nbytes
    if contexts is not None and not threads and size <= REUSED_MAX:
        return contexts.compress(data, level, checksum)
    return _compressor(level, checksum, threads, size).compress(data)


LEVEL: Final = 3
"""The zstd level of uploads, the official client's."""

INCOMPRESSIBLE_LEVEL: Final = 1
"""The zstd level of a large payload whose first piece does not compress.

libzstd stores such data in raw blocks at either level, and tries less hard
at level 1 before it does so: about 12% faster on random data, checksum
included, for output of the same size.
"""


def zstd_plan(size: int | None, first: _Buffer | None, cpus: int) -> tuple[int, int]:
    """The level and the libzstd worker count to compress a payload with.

    :data:`INCOMPRESSIBLE_LEVEL` on the calling thread for a payload known to
    hold at least :data:`MULTITHREAD_MIN` bytes whose ``first`` piece does
    not compress; else :data:`LEVEL`, on the workers :func:`zstd_workers`
    gives. Smaller payloads and unknown sizes are not judged: level 3.
    """
    if size is None or size < MULTITHREAD_MIN or first is None:
        return LEVEL, 0
    if not compressible(first):
        return INCOMPRESSIBLE_LEVEL, 0
    return LEVEL, (2 if cpus >= 2 else 0)


def zstd_workers(size: int | None, first: _Buffer | None, cpus: int) -> int:
    """How many libzstd worker threads should compress a payload: 0 or 2.

    Two, when ``cpus`` (the machine's CPU count, measured by the twin) is two
    or more, for a payload known to hold at least :data:`MULTITHREAD_MIN`
    bytes whose ``first`` piece compresses: the output is still one standard
    frame, produced up to twice as fast as one core allows (each worker takes
    half the payload, 512 KiB to 4 MiB at a time). Incompressible data (zstd
    stores it nearly as is, faster alone), smaller or unknown sizes use the
    calling thread: starting workers costs about 0.2 ms, and libzstd's
    smallest job is 512 KiB.
    """
    if cpus < 2:
        return 0
    return zstd_plan(size, first, cpus)[1]


def compressible(piece: _Buffer, sample_size: int = _SAMPLE) -> bool:
    """Whether zstd gains on ``piece`` (judged on its first ``sample_size`` bytes,
    64 KiB by default, at level 1).

    Incompressible data is stored nearly as is, several times faster than
    text is compressed, so it is not worth worker threads.
    """
    sample = memoryview(piece)[:sample_size]
    return len(sample) > 0 and len(compress(sample, level=1, checksum=False)) < 0.9 * len(sample)


def _compressor(
    level: int, checksum: bool, threads: int, size: int | None
) -> zstandard.ZstdCompressor:
    if not threads:
        return zstandard.ZstdCompressor(level=level, write_checksum=checksum)
    # Jobs of half the payload keep both workers busy from the start; at most
    # 4 MiB: about 25 MiB of worker buffers instead of libzstd's default of
    # about 50 MiB, at the same speed.
    job = _WORKER_JOB if size is None else min(_WORKER_JOB, max(_WORKER_JOB_MIN, -(-size // 2)))
    params = zstandard.ZstdCompressionParameters.from_level(
        level, threads=threads, job_size=job, write_checksum=checksum
    )
    return zstandard.ZstdCompressor(compression_params=params)


class ZstdEncoder:
    """Streaming compressor producing one zstd frame.

    A thin wrapper over ``ZstdCompressor.compressobj()`` so that the upload path
    does not depend on python-zstandard directly and gets byte counters. Input is
    handed to libzstd by buffer, without copies.
    """

    def __init__(
        self, level: int = 3, *, checksum: bool = True, threads: int = 0, size: int | None = None
    ) -> None:
        # ``size``: the payload's length when known, to size worker jobs.
        compressor = _compressor(level, checksum, threads, size)
        self.threads = threads  # libzstd worker threads (0: compress in the calling thread)
        self._cobj: zstandard.ZstdCompressionObj | None = compressor.compressobj()
        self.bytes_in = 0
        self.bytes_out = 0

    def encode(self, data: _Buffer) -> bytes:
        """Compress ``data``; return whatever output is ready (possibly ``b""``)."""
        if self._cobj is None:
            raise RuntimeError("ZstdEncoder.encode() called after finish()")
        out = self._cobj.compress(data)
        self.bytes_in += memoryview(data).nbytes
        self.bytes_out += len(out)
        return out

    def finish(self) -> bytes:
        """End the frame (writing the checksum if enabled) and return the rest."""
        if self._cobj is None:
            raise RuntimeError("ZstdEncoder.finish() called twice")
        out = self._cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        self._cobj = None
        self.bytes_out += len(out)
        return out

    @property
    def finished(self) -> bool:
        """True once :meth:`finish` has been called."""
        return self._cobj is None


class Decoder(Protocol):
    """What download code needs from a body decoder (zstd or identity)."""

    @property
    def bytes_in(self) -> int: ...

    @property
    def bytes_out(self) -> int: ...

    @property
    def finished(self) -> bool: ...

    def feed(self, data: _Buffer) -> None: ...

    def read(self, limit: int | None = None) -> bytes: ...

    def feed_eof(self) -> None: ...


def _check_max_output(max_output: int) -> int:
    if max_output < 1:
        raise ValueError("max_output must be at least 1")
    return max_output


def _immutable(data: _Buffer) -> bytes | memoryview:
    """``data`` itself when nobody can change it (bytes, or a view of bytes); else a copy."""
    if isinstance(data, bytes):
        return data
    if (
        isinstance(data, memoryview)
        and isinstance(data.obj, bytes)
        and data.format == "B"
        and data.c_contiguous
    ):
        return data  # a byte view of immutable bytes (an HTTP chunk inside a received piece)
    return bytes(data)


class _Starved(Exception):
    """Raised by :class:`_Input` when decoding needs bytes that were not fed yet."""


# An empty skippable frame: handed to libzstd after the last input byte so that
# it flushes any output it still holds (see _Input.read).
_FLUSH_FRAME: Final = _SKIPPABLE_MAGIC_MIN.to_bytes(4, "little") + bytes(4)


class _Input:
    """The compressed input of a :class:`ZstdDecoder`, as a source for libzstd's reader.

    python-zstandard's stream reader pulls its input with ``read()`` and takes
    ``b""`` for the end of the stream. Here input is pushed, so while nothing is
    queued and the end was not declared, ``read()`` raises :class:`_Starved`.
    The reader's ``read1()`` asks its source for more only after the input it
    holds was consumed *without producing output*, so the exception never
    discards decoded bytes: libzstd keeps its state and the next ``read1()``
    resumes once more input is queued.

    At the end, one empty skippable frame is handed out before ``b""``:
    libzstd flushes output it still holds before it consumes further input,
    and the reader only calls into libzstd while it has input.
    """

    __slots__ = ("chunks", "eof", "flushed", "queued")

    def __init__(self) -> None:
        self.chunks: deque[bytes | memoryview] = deque()
        self.eof = False
        self.flushed = False
        self.queued = 0  # bytes fed but not yet handed to libzstd

    def read(self, size: int) -> bytes | memoryview:
        chunks = self.chunks
        if not chunks:
            if not self.eof:
                raise _Starved
            if self.flushed:
                return b""
            self.flushed = True
            return _FLUSH_FRAME
        chunk = chunks[0]
        if len(chunk) > size:
            view = memoryview(chunk)
            chunks[0] = view[size:]
            chunk = view[:size]
        else:
            chunks.popleft()
        self.queued -= len(chunk)
        return chunk


class _FrameScanner:
    """Follows the frame structure of the input as it is fed, without decoding.

    Only headers are inspected; block and skippable-frame contents are skipped
    by count, so at most one partial header (under 18 bytes) is kept. It
    rejects what is structurally invalid as early as possible (bad magic,
    reserved bits, dictionaries, blocks over Block_Maximum_Size) and tells at
    the end whether the input stopped exactly on a frame boundary. libzstd does
    the decoding and verifies content sizes and checksums.
    """

    __slots__ = (
        "_aux",
        "_frame_start",
        "_frames",
        "_offset",
        "_skip",
        "_stage",
        "content_size",
        "declared",
        "head",
    )

    def __init__(self) -> None:
        self._stage = _ST_MAGIC
        self._aux = 0  # inside a zstd frame: block_max << 1 | has_checksum
        self._skip = 0  # content bytes to pass over before the next header
        self.head = b""  # the start of a header that is not complete yet (held back)
        self._offset = 0  # input bytes scanned so far
        self._frame_start = 0  # input offset of the current frame
        self.content_size = -1  # Frame_Content_Size of the latest zstd frame; -1: not given
        # Sum of the Frame_Content_Size of every zstd frame begun so far; -1 once a
        # frame does not declare its size (then nothing bounds the output).
        self.declared = 0
        self._frames = 0  # frames started, zstd and skippable

    def scan(self, data: _Buffer) -> None:
        """Advance over ``data``; raise :class:`IntegrityError` on invalid structure."""
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                take = min(self._skip, end - pos)
                self._skip -= take
                pos += take
                continue
            head = self.head
            if self._stage == _ST_BLOCK and not head and end - pos >= 3:
                # The common case, a whole block header in this piece: read in place.
                self._block(data[pos] | (data[pos + 1] << 8) | (data[pos + 2] << 16), pos)
                pos += 3
                continue
            unit = head + bytes(data[pos : pos + _HEADER_MAX])
            used = self._parse(unit, self._offset + pos - len(head))
            if used is None:  # header incomplete: keep it for the next piece
                self.head = unit
                break
            self.head = b""
            pos += used - len(head)
        self._offset += end

    def _block(self, header: int, pos: int) -> None:
        """Take a block header (3 bytes, little-endian) found at ``pos`` of the current piece."""
        block_type = (header >> 1) & 3
        block_size = header >> 3
        block_max = self._aux >> 1
        if block_type == _BLOCK_RESERVED:
            raise IntegrityError(
                f"zstd block at input offset {self._offset + pos} has the reserved block type"
            )
        if block_size > block_max:
            raise IntegrityError(
                f"zstd block at input offset {self._offset + pos} is {block_size} bytes, "
                f"larger than the frame's maximum block size {block_max}"
            )
        self._skip = 1 if block_type == _BLOCK_RLE else block_size
        if header & 1:  # Last_Block
            self._stage = _ST_CHECKSUM if self._aux & 1 else _ST_MAGIC

    def _parse(self, unit: bytes, start: int) -> int | None:
        """Take the header at the front of ``unit``; its length, or None if incomplete."""
        if self._stage == _ST_BLOCK:
            if len(unit) < 3:
                return None
            self._block(unit[0] | (unit[1] << 8) | (unit[2] << 16), start - self._offset)
            return 3
        if self._stage == _ST_CHECKSUM:
            if len(unit) < 4:
                return None
            self._stage = _ST_MAGIC
            return 4
        if len(unit) < 4:
            return None
        magic = int.from_bytes(unit[:4], "little")
        if _SKIPPABLE_MAGIC_MIN <= magic <= _SKIPPABLE_MAGIC_MAX:
            if len(unit) < 8:
                return None
            self._frame_start = start
            self._frames += 2  # never a single zstd frame
            self._skip = int.from_bytes(unit[4:8], "little")
            return 8
        if magic != _ZSTD_MAGIC:
            raise IntegrityError(
                f"data at input offset {start} is not a zstd frame (magic 0x{magic:08x}); "
                "corrupt or trailing garbage"
            )
        if len(unit) < 5:
            return None
        descriptor = unit[4]
        if descriptor & 0x08:
            raise IntegrityError(
                f"zstd frame at input offset {start} has the reserved header bit set"
            )
        single_segment = bool(descriptor & 0x20)
        did_size = _DID_FIELD_SIZES[descriptor & 3]
        fcs_size = _FCS_FIELD_SIZES[descriptor >> 6] or (1 if single_segment else 0)
        header_size = 5 + (0 if single_segment else 1) + did_size + fcs_size
        if len(unit) < header_size:
            return None
        did_at = 5 if single_segment else 6
        if did_size and (dict_id := int.from_bytes(unit[did_at : did_at + did_size], "little")):
            raise IntegrityError(
                f"zstd frame at input offset {start} needs dictionary {dict_id}, "
                "but dictionaries are not supported"
            )
        content_size = -1
        if fcs_size:
            content_size = int.from_bytes(unit[did_at + did_size : header_size], "little")
            if fcs_size == 2:
                content_size += 256
        if single_segment:  # the window is the content size
            window_size = content_size
        else:
            descriptor = unit[5]
            window_base = 1 << (10 + (descriptor >> 3))
            window_size = window_base + (window_base >> 3) * (descriptor & 7)
        has_checksum = (unit[4] >> 2) & 1
        self._frame_start = start
        self._frames += 1
        self._stage = _ST_BLOCK
        self._aux = (min(window_size, _BLOCK_SIZE_MAX) << 1) | has_checksum
        self.content_size = content_size
        if content_size < 0:
            self.declared = -1
        elif self.declared >= 0:
            self.declared += content_size
        return header_size

    @property
    def single_frame(self) -> bool:
        """True when the input so far is one zstd frame (or part of one)."""
        return self._frames == 1

    def check_end(self) -> None:
        """Raise :class:`IntegrityError` unless the input ended on a frame boundary."""
        if self._stage == _ST_MAGIC and not self._skip:
            if self.head:
                raise IntegrityError(
                    f"input ends with {len(self.head)} stray bytes at offset "
                    f"{self._offset - len(self.head)}: truncated frame header or trailing "
                    "garbage"
                )
            return
        what = "zstd frame" if self._stage != _ST_MAGIC else "skippable frame"
        raise IntegrityError(
            f"compressed input is truncated: {what} starting at offset {self._frame_start} "
            f"is incomplete ({self._offset} bytes received)"
        )


class ZstdContexts:
    """Idle zstd contexts of one client, kept for its next upload or download to reuse.

    Setting up a context costs more than using it on a small object: 1 KiB
    of JSON-like text took 14-22 µs to compress with a fresh level-3 context
    and 5-9 µs with a reused one, 12-15 µs to decode with a fresh
    decompressor (libzstd allocates its window on first use) and 2-3 µs with
    a reused one (``benchmarks/compress_threshold.py``). Each client owns one
    (see :class:`objectstore_core.BaseClient`): nothing is shared between
    clients or kept by this module. A context is here only while nobody uses
    it; ``list.append`` and ``list.pop`` are atomic, so threads may share it.

    Compressors are reused only for payloads up to :data:`REUSED_MAX`: for
    larger ones the setup is a few per cent of the work, and a context keeps
    the workspace of the largest payload it compressed.
    """

    __slots__ = ("_compressors", "_decompressors")

    LIMIT: Final = 8  # idle contexts kept of each kind

    def __init__(self) -> None:
        self._compressors: dict[tuple[int, bool], list[zstandard.ZstdCompressor]] = {}
        self._decompressors: dict[int, list[zstandard.ZstdDecompressor]] = {}

    def compress(self, data: _Buffer, level: int, checksum: bool) -> bytes:
        """``data`` as one frame, by an idle single-threaded compressor (or a new one)."""
        idle = self._compressors.setdefault((level, checksum), [])
        try:
            compressor = idle.pop()
        except IndexError:
            compressor = zstandard.ZstdCompressor(level=level, write_checksum=checksum)
        frame: bytes = compressor.compress(data)
        if len(idle) < self.LIMIT:
            idle.append(compressor)
        return frame

    def take_decompressor(self, max_window_size: int) -> zstandard.ZstdDecompressor:
        """An idle context for frames of at most ``max_window_size`` (0: libzstd's limit)."""
        try:
            return self._decompressors.setdefault(max_window_size, []).pop()
        except IndexError:
            return zstandard.ZstdDecompressor(max_window_size=max_window_size)

    def give_back_decompressor(
        self, max_window_size: int, context: zstandard.ZstdDecompressor
    ) -> None:
        """Keep ``context`` for the next decoder, unless enough are idle already."""
        idle = self._decompressors.setdefault(max_window_size, [])
        if len(idle) < self.LIMIT:
            idle.append(context)

    def idle(self) -> tuple[int, int]:
        """How many (compressors, decompressors) wait to be reused."""
        return (
            sum(map(len, self._compressors.values())),
            sum(map(len, self._decompressors.values())),
        )


class ZstdDecoder:
    """Push-style zstd decoder with a hard cap on the size of each ``read()``.

    Usage, in the style of h11: ``feed()`` bytes as they arrive, call ``read()``
    until it returns ``b""`` (more input needed), repeat; at end of input call
    ``feed_eof()`` and keep calling ``read()`` until it returns ``b""``, at which
    point :attr:`finished` is true. ``feed_eof()`` may equally be called after
    draining. Accepts any number of concatenated frames and skippable frames.

    Every ``read()`` returns at most ``max_output`` bytes (or its ``limit``),
    whatever the input: libzstd decodes straight into the result, which is
    never larger than asked for, so a decompression bomb costs at most one
    read's worth of memory at a time. Reads start at 64 KiB and double while
    they come back full, so small payloads cost no large buffers; a frame that
    declares its content size gets reads of that size (up to ``max_output``).

    ``max_window_size`` (bytes, 0 = libzstd's default of 128 MiB) limits the
    window a frame may request, i.e. the memory libzstd allocates per frame.
    ``contexts``: where to take a decompression context from and give it back
    when done (without, each decoder sets up its own).

    Any integrity problem (corruption, checksum mismatch, truncation, trailing
    garbage) raises :class:`IntegrityError`; the decoder is then unusable and every
    later call raises :class:`IntegrityError` again.
    """

    __slots__ = (
        "_context",
        "_contexts",
        "_done",
        "_error",
        "_input",
        "_max_output",
        "_max_window_size",
        "_reader",
        "_ready",
        "_scanner",
        "_size",
        "_starving",
        "bytes_in",
        "bytes_out",
    )

    def __init__(
        self,
        max_output: int = DEFAULT_MAX_OUTPUT,
        *,
        max_window_size: int = 0,
        contexts: ZstdContexts | None = None,
    ) -> None:
        self._max_output = _check_max_output(max_output)
        self._max_window_size = max_window_size
        self._contexts = contexts
        # Taken when the first bytes are decoded (see _take_context): a body
        # decoded whole by feed_whole() never needs one of its own.
        self._context: zstandard.ZstdDecompressor | None = None
        self._input = _Input()
        self._reader: zstandard.ZstdDecompressionReader | None = None  # made by the first read
        self._scanner = _FrameScanner()
        self._size = min(_FIRST_OUTPUT, self._max_output)
        # The last read came back short: libzstd used up its input, so until more
        # is fed (or the end declared) another read would only starve.
        self._starving = False
        # The payload feed_whole() decoded, until read() hands it out (then b"").
        self._ready: bytes | None = None
        self._done = False
        self._error: IntegrityError | None = None
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def max_output(self) -> int:
        return self._max_output

    @property
    def finished(self) -> bool:
        """End of input was declared, and ``read()`` has since returned ``b""``."""
        return self._done and self._error is None

    def _check_usable(self) -> None:
        if self._error is not None:
            raise IntegrityError(
                f"zstd decoder is unusable after an earlier error: {self._error}"
            ) from self._error

    def _fail(self, exc: IntegrityError) -> IntegrityError:
        """Poison the decoder and return ``exc`` for raising."""
        self._error = exc
        self._release()
        self._input.chunks.clear()
        self._input.queued = 0
        return exc

    def _take_context(self) -> zstandard.ZstdDecompressor:
        if self._context is None:
            contexts, window = self._contexts, self._max_window_size
            self._context = (
                contexts.take_decompressor(window)
                if contexts is not None
                else zstandard.ZstdDecompressor(max_window_size=window)
            )
        return self._context

    def _release(self) -> None:
        """Drop the reader and hand the context back for another decoder."""
        context, self._context, self._reader = self._context, None, None
        if context is not None and self._contexts is not None:
            self._contexts.give_back_decompressor(self._max_window_size, context)

    def feed(self, data: _Buffer) -> None:
        """Append compressed input. Chunk boundaries are arbitrary.

        ``bytes``, and memoryviews of ``bytes``, are kept by reference; other
        buffers are copied, since the caller may reuse them.
        """
        self._check_usable()
        if self._input.eof:
            raise RuntimeError("ZstdDecoder.feed() called after feed_eof()")
        chunk = _immutable(data)
        if not chunk:
            return
        self.bytes_in += len(chunk)
        scanner = self._scanner
        held = scanner.head
        try:
            scanner.scan(chunk)
        except IntegrityError as exc:
            raise self._fail(exc) from None
        # libzstd gets only bytes the walk has checked: the start of a header
        # that is still incomplete waits (a few bytes), so that invalid
        # structure is reported by the walk, with its offset and reason.
        keep = len(scanner.head)
        if keep == len(held) + len(chunk):
            return
        queue = self._input
        if held:
            queue.chunks.append(held)
        if keep:
            queue.chunks.append(memoryview(chunk)[: len(chunk) - keep])
        else:
            queue.chunks.append(chunk)
        queue.queued += len(held) + len(chunk) - keep

    def feed_eof(self) -> None:
        """Declare end of input; raise :class:`IntegrityError` if it is truncated.

        Nothing is decoded here: the structure seen so far tells whether the
        input ended exactly on a frame boundary. Output of complete frames
        stays available through :meth:`read`. Calling it again is a no-op.
        """
        self._check_usable()
        if self._input.eof:
            return
        self._input.eof = True
        try:
            self._scanner.check_end()
        except IntegrityError as exc:
            raise self._fail(exc) from None

    def feed_whole(self, data: bytes | memoryview) -> bool:
        """Take ``data`` as the whole input, when it is one frame libzstd decodes at once.

        For a body received in one piece (a small object): the frame is
        checked and decoded by :func:`decode_frame` (one call into libzstd, no
        walk of its structure in Python), and :meth:`read` then returns the
        payload. False, with nothing taken, when the decoder has input
        already, the frame is not one of a declared size of at most
        ``max_output``, or a window limit applies: :meth:`feed` it then. A
        corrupt frame raises :class:`IntegrityError` as :meth:`feed` would.
        """
        self._check_usable()
        if self.bytes_in or self._input.eof or self._max_window_size:
            return False
        try:
            out = decode_frame(data, self._max_output, self._contexts)
        except IntegrityError as exc:
            raise self._fail(exc) from exc.__cause__
        if out is None:
            return False
        self.bytes_in = len(data)
        self._input.eof = True
        self._ready = out  # handed out by read()
        return True

    def read(self, limit: int | None = None) -> bytes:
        """Return up to ``max_output`` decoded bytes (and at most ``limit``).

        ``b""`` means more input is needed, or, after ``feed_eof()``, the end
        of the payload.
        """
        self._check_usable()
        if self._done:
            return b""
        if (ready := self._ready) is not None:  # decoded whole by feed_whole()
            if not ready:
                self._ready = None
                self._done = True
                self._release()
                return b""
            cut = len(ready) if limit is None else max(limit, 1)
            piece, self._ready = (ready, b"") if cut >= len(ready) else (ready[:cut], ready[cut:])
            self.bytes_out += len(piece)
            return piece
        if self._starving and not self._input.chunks and not self._input.eof:
            # A read that starves costs an exception raised through libzstd's
            # reader: one per received piece of a large download (about 5% of
            # a random-data download's client CPU).
            return b""
        size = self._size
        hint = self._scanner.content_size
        if hint >= 0:
            # The frame says how much it holds: one result of that size, when it
            # fits, lets libzstd decode in a single pass with no buffer of its own.
            size = min(max(hint, 1), self._max_output)
        if limit is not None and limit < size:
            size = max(limit, 1)
        declared = self._scanner.declared
        if declared >= 0 and declared - self.bytes_out < size:
            # One byte past what the frames declare is enough to tell that they
            # hold more: never decode further than that.
            size = declared - self.bytes_out + 1
        reader = self._reader
        if reader is None:
            if not self._input.eof:
                if not self._input.chunks:
                    return b""  # nothing to decode yet
            elif self._scanner.single_frame and 0 <= hint <= size:
                return self._read_whole()
            # The stubs want an IO[bytes]; the reader only ever calls read(size).
            reader = self._reader = self._take_context().stream_reader(
                cast("IO[bytes]", self._input), read_size=_INPUT_PIECE, read_across_frames=True
            )
        try:
            out: bytes = reader.read1(size)
        except _Starved:
            return b""
        except zstandard.ZstdError as exc:
            raise self._fail(IntegrityError(f"zstd data is corrupt: {exc}")) from exc
        if out:
            n = len(out)
            self._starving = n < size
            self.bytes_out += n
            if declared >= 0 and self.bytes_out > declared:
                raise self._fail(self._size_mismatch(declared, "more"))
            if n == self._size and n < self._max_output:
                self._size = min(2 * n, self._max_output)
            return out
        # Only the end of the input makes the reader return nothing.
        if declared >= 0 and self.bytes_out != declared:
            raise self._fail(self._size_mismatch(declared, "less"))
        self._done = True
        self._release()
        return b""

    def _size_mismatch(self, declared: int, what: str) -> IntegrityError:
        # RFC 8878 §3.1.1.1.4: Frame_Content_Size is the size of the decoded content.
        # libzstd checks it only when a frame ends; this checks it as output is made.
        return _size_mismatch(declared, what, self.bytes_out)

    def _read_whole(self) -> bytes:
        """Decode a body that is one complete frame, small enough for one read, at once.

        The common case of a small object: no stream reader, one call into
        libzstd, a result of exactly the declared size.
        """
        chunks = self._input.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._input.queued = 0
        try:
            out = _decompress_whole(self._take_context(), data, self._scanner.declared)
        except IntegrityError as exc:
            raise self._fail(exc) from exc.__cause__
        self.bytes_out += len(out)
        self._done = True
        self._release()
        return out


def decode_frame(
    data: bytes | memoryview, limit: int, contexts: ZstdContexts | None = None
) -> bytes | None:
    """The decoded payload of ``data``, held whole, when it is one complete zstd frame
    declaring a size of at most ``limit``; None when it is not (use a :class:`ZstdDecoder`).

    The same checks as a :class:`ZstdDecoder` fed ``data`` and its end, with
    the same errors, at a tenth of the cost for a small object (one walk of
    the frame header, one call into libzstd): what a batch's gets need.
    """
    if data[:4] == _ZSTD_MAGIC_BYTES:
        # The usual case, a valid frame, checked by libzstd alone: its header
        # (no dictionary, a declared size within the limit), then the whole
        # frame and nothing after it. Anything else takes the walk below,
        # which names what is wrong as the streaming decoder does.
        try:
            params = zstandard.get_frame_parameters(data)
        except zstandard.ZstdError:
            params = None
        if params is not None and not params.dict_id and params.content_size <= limit:
            context = (
                contexts.take_decompressor(0)
                if contexts is not None
                else zstandard.ZstdDecompressor()
            )
            try:
                out: bytes = context.decompress(data, allow_extra_data=False)
            except zstandard.ZstdError:
                pass
            else:
                if len(out) == params.content_size:
                    return out
            finally:
                if contexts is not None:
                    contexts.give_back_decompressor(0, context)
    scanner = _FrameScanner()
    scanner.scan(data)
    scanner.check_end()
    declared = scanner.content_size
    if not scanner.single_frame or not 0 <= declared <= limit:
        return None
    context = (
        contexts.take_decompressor(0) if contexts is not None else zstandard.ZstdDecompressor()
    )
    try:
        return _decompress_whole(context, data, declared)
    finally:
        if contexts is not None:
            contexts.give_back_decompressor(0, context)


def _decompress_whole(context: zstandard.ZstdDecompressor, data: _Buffer, declared: int) -> bytes:
    """``data`` (complete frames) decoded in one call; ``declared``: their total size, or -1."""
    try:
        out: bytes = context.decompress(data)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"zstd data is corrupt: {exc}") from exc
    if declared >= 0 and len(out) != declared:  # python-zstandard checks it too
        raise _size_mismatch(declared, "more" if len(out) > declared else "less", len(out))
    return out


def _size_mismatch(declared: int, what: str, decoded: int) -> IntegrityError:
    return IntegrityError(
        f"zstd data is corrupt: the frames declare {declared} decoded bytes "
        f"but hold {what} ({decoded} decoded so far)"
    )


class IdentityDecoder:
    """Pass-through decoder with the :class:`ZstdDecoder` interface.

    Lets download code treat uncompressed and compressed bodies alike, including
    the ``max_output`` cap on each ``read()``. Fed ``bytes`` chunks are kept by
    reference and returned without copying when they fit.
    """

    def __init__(self, max_output: int = DEFAULT_MAX_OUTPUT) -> None:
        self._max_output = _check_max_output(max_output)
        self._chunks: deque[bytes] = deque()
        self.head_off = 0  # bytes of _chunks[0] already returned
        self._eof = False
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def max_output(self) -> int:
        return self._max_output

    @property
    def finished(self) -> bool:
        """End of input was declared, and all output has been read."""
        return self._eof and not self._chunks

    def feed(self, data: _Buffer) -> None:
        """Append input. ``bytes`` are kept by reference; other buffers are copied."""
        if self._eof:
            raise RuntimeError("IdentityDecoder.feed() called after feed_eof()")
        chunk = data if isinstance(data, bytes) else bytes(data)
        if chunk:
            self._chunks.append(chunk)
            self.bytes_in += len(chunk)

    def feed_eof(self) -> None:
        """Declare end of input. There is nothing to verify; repeated calls are no-ops."""
        self._eof = True

    def read(self, limit: int | None = None) -> bytes:
        """Up to ``max_output`` bytes (and at most ``limit``); ``b""`` if none are buffered."""
        chunks = self._chunks
        if not chunks:
            return b""
        room = self._max_output if limit is None else max(1, min(limit, self._max_output))
        head = chunks[0]
        off = self.head_off
        if not off and len(head) <= room and (len(chunks) == 1 or len(head) == room):
            chunks.popleft()
            self.bytes_out += len(head)
            return head
        parts: list[bytes | memoryview] = []
        while chunks and room:
            head = chunks[0]
            take = min(len(head) - off, room)
            parts.append(memoryview(head)[off : off + take])
            room -= take
            off += take
            if off == len(head):
                chunks.popleft()
                off = 0
        self.head_off = off
        result = b"".join(parts)
        self.bytes_out += len(result)
        return result


def decompress(data: _Buffer, *, max_output: int = DEFAULT_MAX_OUTPUT) -> bytes:
    """One-shot decode of a whole body of concatenated frames (for small bodies).

    Unlike ``zstandard.decompress`` this accepts multiple and skippable frames and
    rejects truncated or trailing data. The result is not size-capped: only use it
    when the body is known to be small.
    """
    decoder = ZstdDecoder(max_output)
    decoder.feed(data)
    decoder.feed_eof()
    parts: list[bytes] = []
    while chunk := decoder.read():
        parts.append(chunk)
    assert decoder.finished
    return b"".join(parts)
