"""Zstandard payload codec: streaming encoder and bounded-output streaming decoders.

Objectstore stores payloads zstd-compressed. An object uploaded in several parts is
stored as the concatenation of one zstd frame per part (PROTOCOL.md §5), so a
download body is *any number of concatenated frames*, possibly interleaved with
skippable frames, and an empty body is an empty payload. The decoder here accepts
exactly that.

Why parse the frame format ourselves
------------------------------------
python-zstandard's ``decompressobj().decompress(data)`` has no output limit: four
input bytes describing an RLE block regenerate 128 KiB, so a hostile or corrupt
body can expand without bound inside a single call (a "decompression bomb"). This
module is sans-IO and must give callers a *hard* bound on the memory a single
``read()`` can produce. We therefore walk the frame structure (RFC 8878) ourselves:

* frame header: magic ``0xFD2FB528``, Frame_Header_Descriptor, optional
  Window_Descriptor, Dictionary_ID and Frame_Content_Size;
* blocks: a 3-byte little-endian header (Last_Block bit 0, Block_Type bits 1-2
  where 0 = raw, 1 = RLE, 2 = compressed, 3 = reserved, Block_Size bits 3-23)
  followed by ``Block_Size`` content bytes (a single byte for RLE blocks, whose
  Block_Size is the regenerated size);
* an optional 4-byte content checksum;
* skippable frames (magic ``0x184D2A50``-``0x184D2A5F``, 4-byte size, content),
  which we discard without buffering their content.

Every block regenerates at most Block_Maximum_Size = min(Window_Size, 128 KiB)
bytes (libzstd enforces that too). The actual decoding, and the verification of
the content checksum and Frame_Content_Size, is left to libzstd: we feed one
``decompressobj`` per frame, but only *whole* units (header, whole blocks,
checksum), and per ``read()`` call only as many blocks as fit in the output budget
(always at least one so progress is guaranteed). Output beyond the budget, at most
one block's worth, is parked and returned by the next ``read()``; thus every
``read()`` returns at most ``max_output`` bytes and the decoder never holds more
than ``max_output + 128 KiB`` of decoded data. At the end of every frame we insist
that libzstd reports ``eof`` (frame, including checksum, fully verified).

The walk over the structure only inspects headers, so ``feed_eof()`` can cheaply
tell whether the input ended exactly on a frame boundary and report truncation
immediately, even while decoded output is still waiting to be read.

This module performs no I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Protocol

import zstandard

from objectstore_core._errors import IntegrityError

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "Decoder",
    "IdentityDecoder",
    "ZstdDecoder",
    "ZstdEncoder",
    "compress",
    "compress_bound",
    "decompress",
]

#: Default cap on the size of one ``read()`` result.
DEFAULT_MAX_OUTPUT: Final = 1 << 20

_ZSTD_MAGIC: Final = 0xFD2FB528
_SKIPPABLE_MAGIC_MIN: Final = 0x184D2A50
_SKIPPABLE_MAGIC_MAX: Final = 0x184D2A5F
_BLOCK_SIZE_MAX: Final = 128 * 1024  # Block_Maximum_Size upper limit (RFC 8878 §3.1.1.2.3)
_BLOCK_RAW: Final = 0
_BLOCK_RLE: Final = 1
_BLOCK_COMPRESSED: Final = 2

# Parser stages.
_ST_MAGIC: Final = 0  # between frames: expecting a magic number (or end of input)
_ST_BLOCK: Final = 1  # inside a zstd frame: expecting a block
_ST_CHECKSUM: Final = 2  # inside a zstd frame: expecting the 4-byte content checksum
_ST_SKIP: Final = 3  # inside a skippable frame: discarding content

# Unit kinds produced by the structural walk.
_K_HEADER: Final = 0  # zstd frame header: fed to a fresh decompressobj
_K_BLOCK: Final = 1  # block (or checksum): fed to the frame's decompressobj
_K_SKIP: Final = 2  # skippable-frame bytes: discarded

# ZSTD_MAX_INPUT_SIZE on 64-bit platforms; ZSTD_COMPRESSBOUND is undefined beyond.
_ZSTD_MAX_INPUT_SIZE: Final = 0xFF00FF00FF00FF00

_FCS_FIELD_SIZES: Final = (0, 2, 4, 8)
_DID_FIELD_SIZES: Final = (0, 1, 2, 4)

_Buffer = bytes | bytearray | memoryview

# (kind, new_pos, new_stage, new_aux, output_bound, frame_done)
_Step = tuple[int, int, int, int, int, bool]


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


def compress(data: _Buffer, level: int = 3, *, checksum: bool = True) -> bytes:
    """Compress ``data`` into a single zstd frame (with content size in the header)."""
    return zstandard.ZstdCompressor(level=level, write_checksum=checksum).compress(data)


class ZstdEncoder:
    """Streaming compressor producing one zstd frame.

    A thin wrapper over ``ZstdCompressor.compressobj()`` so that the upload path
    does not depend on python-zstandard directly and gets byte counters. Input is
    handed to libzstd by buffer, without copies.
    """

    def __init__(self, level: int = 3, *, checksum: bool = True) -> None:
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=checksum)
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

    def read(self) -> bytes: ...

    def feed_eof(self) -> None: ...


def _check_max_output(max_output: int) -> int:
    if max_output < 1:
        raise ValueError("max_output must be at least 1")
    return max_output


def _step(buf: bytearray, pos: int, stage: int, aux: int) -> _Step | None:
    """Describe the next complete structural unit at ``buf[pos:]``.

    Pure function over the parser state (``stage`` and ``aux``: for a zstd frame,
    ``block_max << 1 | has_checksum``; for a skippable frame, the bytes left to
    skip). Returns ``None`` if more input is needed, raises :class:`IntegrityError`
    for structurally invalid data. Being side-effect free lets ``feed_eof()`` walk
    ahead over buffered input without decoding it.
    """
    avail = len(buf) - pos
    if stage == _ST_BLOCK:
        if avail < 3:
            return None
        header = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
        last = bool(header & 1)
        btype = (header >> 1) & 3
        bsize = header >> 3
        block_max = aux >> 1
        if btype == _BLOCK_RLE:
            content = 1
        elif btype in (_BLOCK_RAW, _BLOCK_COMPRESSED):
            content = bsize
        else:
            raise IntegrityError(f"zstd block at input offset {pos} has the reserved block type")
        if bsize > block_max:
            raise IntegrityError(
                f"zstd block at input offset {pos} is {bsize} bytes, "
                f"larger than the frame's maximum block size {block_max}"
            )
        end = pos + 3 + content
        if end > len(buf):
            return None
        if not last:
            return (_K_BLOCK, end, _ST_BLOCK, aux, block_max, False)
        if aux & 1:
            return (_K_BLOCK, end, _ST_CHECKSUM, aux, block_max, False)
        return (_K_BLOCK, end, _ST_MAGIC, 0, block_max, True)
    if stage == _ST_CHECKSUM:
        if avail < 4:
            return None
        return (_K_BLOCK, pos + 4, _ST_MAGIC, 0, 0, True)
    if stage == _ST_SKIP:
        if avail == 0:
            return None
        n = min(avail, aux)
        if n == aux:
            return (_K_SKIP, pos + n, _ST_MAGIC, 0, 0, True)
        return (_K_SKIP, pos + n, _ST_SKIP, aux - n, 0, False)
    # _ST_MAGIC
    if avail < 4:
        return None
    magic = int.from_bytes(buf[pos : pos + 4], "little")
    if _SKIPPABLE_MAGIC_MIN <= magic <= _SKIPPABLE_MAGIC_MAX:
        if avail < 8:
            return None
        size = int.from_bytes(buf[pos + 4 : pos + 8], "little")
        if size == 0:
            return (_K_SKIP, pos + 8, _ST_MAGIC, 0, 0, True)
        return (_K_SKIP, pos + 8, _ST_SKIP, size, 0, False)
    if magic != _ZSTD_MAGIC:
        raise IntegrityError(
            f"data at input offset {pos} is not a zstd frame (magic 0x{magic:08x}); "
            "corrupt or trailing garbage"
        )
    if avail < 5:
        return None
    fhd = buf[pos + 4]
    if fhd & 0x08:
        raise IntegrityError(f"zstd frame at input offset {pos} has the reserved header bit set")
    fcs_flag = fhd >> 6
    single_segment = bool(fhd & 0x20)
    has_checksum = (fhd >> 2) & 1
    did_size = _DID_FIELD_SIZES[fhd & 3]
    fcs_size = _FCS_FIELD_SIZES[fcs_flag] or (1 if single_segment else 0)
    header_size = 5 + (0 if single_segment else 1) + did_size + fcs_size
    if avail < header_size:
        return None
    off = pos + 5
    if single_segment:
        window_size = -1
    else:
        wd = buf[off]
        off += 1
        window_base = 1 << (10 + (wd >> 3))
        window_size = window_base + (window_base >> 3) * (wd & 7)
    if did_size:
        dict_id = int.from_bytes(buf[off : off + did_size], "little")
        off += did_size
        if dict_id:
            raise IntegrityError(
                f"zstd frame at input offset {pos} needs dictionary {dict_id}, "
                "but dictionaries are not supported"
            )
    if single_segment:
        window_size = int.from_bytes(buf[off : off + fcs_size], "little")
        if fcs_size == 2:
            window_size += 256
    block_max = min(window_size, _BLOCK_SIZE_MAX)
    return (_K_HEADER, pos + header_size, _ST_BLOCK, (block_max << 1) | has_checksum, 0, False)


class ZstdDecoder:
    """Push-style zstd decoder with a hard cap on the size of each ``read()``.

    Usage, in the style of h11: ``feed()`` bytes as they arrive, call ``read()``
    until it returns ``b""`` (more input needed), repeat; at end of input call
    ``feed_eof()`` and keep calling ``read()`` until it returns ``b""``, at which
    point :attr:`finished` is true. ``feed_eof()`` may equally be called after
    draining. Accepts any number of concatenated frames and skippable frames.

    Every ``read()`` returns at most ``max_output`` bytes, whatever the input, and
    never decodes more than ``max_output + 128 KiB`` ahead of the caller.

    ``max_window_size`` (bytes, 0 = libzstd's default of 128 MiB) limits the
    window a frame may request, i.e. the memory libzstd allocates per frame.

    Any integrity problem (corruption, checksum mismatch, truncation, trailing
    garbage) raises :class:`IntegrityError`; the decoder is then unusable and every
    later call raises :class:`IntegrityError` again.
    """

    def __init__(self, max_output: int = DEFAULT_MAX_OUTPUT, *, max_window_size: int = 0) -> None:
        self._max_output = _check_max_output(max_output)
        self._dctx = zstandard.ZstdDecompressor(max_window_size=max_window_size)
        self._dobj: zstandard.ZstdDecompressionObj | None = None
        self._buf = bytearray()
        self._pos = 0  # parse position in _buf; _buf[:_pos] is consumed
        self._consumed = 0  # input bytes discarded from the front of _buf
        self._stage = _ST_MAGIC
        self._aux = 0
        self._frame_start = 0  # absolute input offset of the current frame
        self._pending: bytes | memoryview = b""
        self._eof = False
        self._error: IntegrityError | None = None
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def max_output(self) -> int:
        return self._max_output

    @property
    def finished(self) -> bool:
        """End of input was declared, and all output has been read."""
        return (
            self._eof
            and self._error is None
            and not self._pending
            and self._pos == len(self._buf)
            and self._stage == _ST_MAGIC
        )

    def _check_usable(self) -> None:
        if self._error is not None:
            raise IntegrityError(
                f"zstd decoder is unusable after an earlier error: {self._error}"
            ) from self._error

    def _fail(self, exc: IntegrityError) -> IntegrityError:
        """Poison the decoder and return ``exc`` for raising."""
        self._error = exc
        self._dobj = None
        self._buf = bytearray()
        self._pos = 0
        self._pending = b""
        return exc

    def feed(self, data: _Buffer) -> None:
        """Append compressed input. Chunk boundaries are arbitrary."""
        self._check_usable()
        if self._eof:
            raise RuntimeError("ZstdDecoder.feed() called after feed_eof()")
        n = memoryview(data).nbytes
        if not n:
            return
        self.bytes_in += n
        pos = self._pos
        if pos and (pos >= len(self._buf) or (pos >= 1 << 16 and pos * 2 >= len(self._buf))):
            # Compact before growing, so the buffer holds little consumed data and
            # the cost stays linear (at most one extra move per byte).
            del self._buf[:pos]
            self._consumed += pos
            self._pos = 0
        self._buf += data

    def feed_eof(self) -> None:
        """Declare end of input; raise :class:`IntegrityError` if it is truncated.

        Walks the structure of the still-buffered input (headers only, nothing is
        decoded) to check it ends exactly on a frame boundary. Output decoded from
        complete frames remains available through :meth:`read`. Calling it again is
        a no-op.
        """
        self._check_usable()
        if self._eof:
            return
        self._eof = True
        buf, pos, stage, aux = self._buf, self._pos, self._stage, self._aux
        frame_start = self._frame_start - self._consumed
        try:
            while True:
                step = _step(buf, pos, stage, aux)
                if step is None:
                    break
                if stage == _ST_MAGIC:
                    frame_start = pos
                _, pos, stage, aux, _, _ = step
        except IntegrityError as exc:
            self._fail(exc)
            raise
        if stage != _ST_MAGIC or pos != len(buf):
            where = frame_start + self._consumed
            if stage == _ST_MAGIC:
                raise self._fail(
                    IntegrityError(
                        f"input ends with {len(buf) - pos} stray bytes at offset "
                        f"{pos + self._consumed}: truncated frame header or trailing garbage"
                    )
                )
            what = "skippable frame" if stage == _ST_SKIP else "zstd frame"
            raise self._fail(
                IntegrityError(
                    f"compressed input is truncated: {what} starting at offset {where} "
                    f"is incomplete ({self.bytes_in} bytes received)"
                )
            )

    def read(self) -> bytes:
        """Return up to ``max_output`` decoded bytes; ``b""`` if more input is needed.

        After ``feed_eof()``, ``b""`` means the end of the payload.
        """
        self._check_usable()
        try:
            return self._read()
        except IntegrityError as exc:
            self._fail(exc)
            raise

    def _read(self) -> bytes:
        limit = self._max_output
        out: list[bytes | memoryview] = []
        n = 0
        pending = self._pending
        if pending:
            take = min(len(pending), limit)
            out.append(pending[:take])
            self._pending = pending[take:]
            n = take
        buf = self._buf
        while n < limit:
            pos = self._pos
            stage = self._stage
            aux = self._aux
            step = _step(buf, pos, stage, aux)
            if step is None:
                break
            kind, npos, nstage, naux, obound, frame_done = step
            if kind == _K_SKIP:
                if stage == _ST_MAGIC:
                    self._frame_start = pos + self._consumed
                self._pos, self._stage, self._aux = npos, nstage, naux
                continue
            if n and n + obound > limit:
                break  # this block might not fit; leave it for the next call
            # Gather a contiguous run of units of the current frame whose combined
            # output fits the remaining budget (the first one is always taken so
            # every call makes progress), and hand them to libzstd in one call.
            if kind == _K_HEADER:
                self._frame_start = pos + self._consumed
                self._dobj = self._dctx.decompressobj()
            start = pos
            bound = obound
            while not frame_done:
                nxt = _step(buf, npos, nstage, naux)
                if nxt is None or n + bound + nxt[4] > limit:
                    break
                _, npos, nstage, naux, ob, frame_done = nxt
                bound += ob
            dobj = self._dobj
            assert dobj is not None
            try:
                with memoryview(buf) as view, view[start:npos] as chunk:
                    data = dobj.decompress(chunk)
            except zstandard.ZstdError as exc:
                raise IntegrityError(
                    f"zstd frame starting at offset {self._frame_start} is corrupt: {exc}"
                ) from exc
            self._pos, self._stage, self._aux = npos, nstage, naux
            if frame_done:
                if not dobj.eof or dobj.unused_data:
                    raise IntegrityError(
                        f"zstd frame starting at offset {self._frame_start} "
                        "did not end where its block structure says it does"
                    )
                self._dobj = None
            if data:
                room = limit - n
                if len(data) <= room:
                    out.append(data)
                    n += len(data)
                else:
                    rest = memoryview(data)
                    out.append(rest[:room])
                    self._pending = rest[room:]
                    n = limit
        if not out:
            return b""
        result = out[0] if len(out) == 1 and isinstance(out[0], bytes) else b"".join(out)
        self.bytes_out += len(result)
        return result


class IdentityDecoder:
    """Pass-through decoder with the :class:`ZstdDecoder` interface.

    Lets download code treat uncompressed and compressed bodies alike, including
    the ``max_output`` cap on each ``read()``. Fed ``bytes`` chunks are kept by
    reference and returned without copying when they fit.
    """

    def __init__(self, max_output: int = DEFAULT_MAX_OUTPUT) -> None:
        self._max_output = _check_max_output(max_output)
        self._chunks: deque[bytes] = deque()
        self._head_off = 0  # bytes of _chunks[0] already returned
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

    def read(self) -> bytes:
        """Return up to ``max_output`` bytes; ``b""`` if none are buffered."""
        chunks = self._chunks
        if not chunks:
            return b""
        room = self._max_output
        head = chunks[0]
        off = self._head_off
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
        self._head_off = off
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
