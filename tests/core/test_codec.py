"""Tests for objectstore_core._codec: zstd encoder, bounded streaming decoders."""

from __future__ import annotations

import itertools
import os
import random
import struct
import tracemalloc

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from objectstore_core._codec import (
    REUSED_MAX,
    IdentityDecoder,
    ZstdContexts,
    ZstdDecoder,
    ZstdEncoder,
    compress,
    compress_bound,
    decompress,
)
from objectstore_core._errors import IntegrityError

KIB = 1024
MIB = 1024 * KIB
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- helpers


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (taken modulo len+1, any order)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def decode_chunks(
    chunks: list[bytes], max_output: int = 64 * KIB, *, eof_first: bool = False
) -> bytes:
    """Feed ``chunks`` draining output after each, then end the stream."""
    decoder = ZstdDecoder(max_output)
    out = bytearray()
    for chunk in chunks:
        decoder.feed(chunk)
        if eof_first:
            continue
        while piece := decoder.read():
            assert len(piece) <= max_output
            out += piece
    decoder.feed_eof()
    while piece := decoder.read():
        assert len(piece) <= max_output
        out += piece
    assert decoder.finished
    assert decoder.read() == b""
    assert decoder.bytes_in == sum(map(len, chunks))
    assert decoder.bytes_out == len(out)
    return bytes(out)


def skippable(content: bytes, nibble: int = 0) -> bytes:
    return struct.pack("<II", 0x184D2A50 + nibble, len(content)) + content


def frame_header(*, window_log: int = 17, checksum: bool = False, dict_id: int = 0) -> bytes:
    """Hand-built frame header: Window_Descriptor, optional 4-byte DID, no FCS."""
    fhd = (0x04 if checksum else 0) | (3 if dict_id else 0)
    header = ZSTD_MAGIC + bytes([fhd, (window_log - 10) << 3])
    if dict_id:
        header += struct.pack("<I", dict_id)
    return header


def block(block_type: int, size: int, content: bytes, *, last: bool = False) -> bytes:
    header = (size << 3) | (block_type << 1) | int(last)
    return header.to_bytes(3, "little") + content


def rle_block(size: int, byte: int = 0, *, last: bool = False) -> bytes:
    return block(1, size, bytes([byte]), last=last)


compressible = st.lists(st.tuples(st.integers(0, 255), st.integers(1, 3000)), max_size=40).map(
    lambda runs: b"".join(bytes([b]) * n for b, n in runs)
)
payloads = st.one_of(st.binary(max_size=5000), compressible)


# --------------------------------------------------------------------- round trips


@fast
@given(
    data=payloads,
    enc_cuts=st.lists(st.integers(0, 1 << 20), max_size=8),
    dec_cuts=st.lists(st.integers(0, 1 << 20), max_size=20),
    checksum=st.booleans(),
    max_output=st.sampled_from([1, 100, 4 * KIB, 64 * KIB, 1 * MIB]),
    eof_first=st.booleans(),
)
def test_round_trip_random_chunking(
    data: bytes,
    enc_cuts: list[int],
    dec_cuts: list[int],
    checksum: bool,
    max_output: int,
    eof_first: bool,
) -> None:
    encoder = ZstdEncoder(level=1, checksum=checksum)
    blob = b"".join(encoder.encode(c) for c in split_at(data, enc_cuts)) + encoder.finish()
    assert encoder.bytes_in == len(data)
    assert encoder.bytes_out == len(blob)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(blob) == data
    got = decode_chunks(split_at(blob, dec_cuts), max_output, eof_first=eof_first)
    assert got == data


@settings(max_examples=15, deadline=None)
@given(data=payloads, checksum=st.booleans())
def test_round_trip_byte_by_byte(data: bytes, checksum: bool) -> None:
    blob = compress(data, checksum=checksum) + compress(data[::-1], level=1)
    chunks = [blob[i : i + 1] for i in range(len(blob))]
    assert decode_chunks(chunks, max_output=1000) == data + data[::-1]


def test_encoder_accepts_buffers_and_large_input() -> None:
    data = os.urandom(300 * KIB) + bytes(600 * KIB)
    encoder = ZstdEncoder()
    out = [
        encoder.encode(memoryview(data)[: 100 * KIB]),
        encoder.encode(bytearray(data[100 * KIB : 500 * KIB])),
        encoder.encode(b""),
        encoder.encode(data[500 * KIB :]),
    ]
    blob = b"".join(out) + encoder.finish()
    assert encoder.finished
    assert encoder.bytes_in == len(data)
    assert decompress(blob) == data
    params = zstandard.get_frame_parameters(blob)
    assert params.has_checksum


def test_encoder_checksum_flag() -> None:
    encoder = ZstdEncoder(checksum=False)
    blob = encoder.encode(b"hello") + encoder.finish()
    assert not zstandard.get_frame_parameters(blob).has_checksum
    assert decompress(blob) == b"hello"
    assert zstandard.get_frame_parameters(compress(b"x")).has_checksum
    assert not zstandard.get_frame_parameters(compress(b"x", checksum=False)).has_checksum


def test_encoder_misuse() -> None:
    encoder = ZstdEncoder()
    empty_frame = encoder.finish()
    assert decompress(empty_frame) == b""
    with pytest.raises(RuntimeError):
        encoder.encode(b"x")
    with pytest.raises(RuntimeError):
        encoder.finish()


@pytest.mark.parametrize("n", [0, 1, 100, 128 * KIB - 1, 128 * KIB, 128 * KIB + 1, 1 * MIB])
def test_compress_bound(n: int) -> None:
    data = os.urandom(n)
    assert len(compress(data, level=19)) <= compress_bound(n)
    assert len(compress(data, level=1, checksum=False)) <= compress_bound(n)


def test_compress_bound_values() -> None:
    assert compress_bound(0) == 64
    assert compress_bound(128 * KIB) == 128 * KIB + 512
    assert compress_bound(1 << 20) == (1 << 20) + (1 << 12)
    with pytest.raises(ValueError):
        compress_bound(-1)


# ---------------------------------------------------------------- multi-frame input


def test_concatenated_frames_of_all_kinds() -> None:
    big = os.urandom(200 * KIB) + bytes(300 * KIB)
    parts = [
        (zstandard.ZstdCompressor(write_checksum=True).compress(big), big),
        (zstandard.ZstdCompressor(write_content_size=False).compress(b"no size"), b"no size"),
        (skippable(b"metadata", 5), b""),
        (zstandard.ZstdCompressor().compress(b""), b""),  # empty frame, single segment
        (skippable(b""), b""),
        (ZstdEncoder(checksum=False).finish(), b""),  # empty frame, streamed
        (skippable(os.urandom(70 * KIB), 15), b""),
        (compress(b"tail" * 1000, checksum=False), b"tail" * 1000),
    ]
    cctx = zstandard.ZstdCompressor(write_content_size=False, write_checksum=True)
    cobj = cctx.compressobj()
    streamed = cobj.compress(big[:1000]) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    streamed += cobj.compress(big[1000:]) + cobj.flush()
    parts.append((streamed, big))
    blob = b"".join(p for p, _ in parts)
    expected = b"".join(e for _, e in parts)
    assert decompress(blob) == expected
    rng = random.Random(7)
    for max_output in (999, 64 * KIB, 128 * KIB, 1 * MIB):
        cuts = [rng.randrange(len(blob)) for _ in range(50)]
        assert decode_chunks(split_at(blob, cuts), max_output) == expected
        assert decode_chunks([blob], max_output, eof_first=True) == expected


def test_empty_input_is_empty_payload() -> None:
    assert decompress(b"") == b""
    decoder = ZstdDecoder()
    assert decoder.read() == b""
    assert not decoder.finished
    decoder.feed(b"")
    decoder.feed_eof()
    assert decoder.read() == b""
    assert decoder.finished


def test_only_skippable_frames() -> None:
    assert decompress(skippable(b"abc") + skippable(b"", 3)) == b""


def test_large_skippable_frame_is_not_buffered() -> None:
    decoder = ZstdDecoder()
    decoder.feed(struct.pack("<II", 0x184D2A5A, 64 * MIB))
    chunk = bytes(MIB)
    for _ in range(64):
        decoder.feed(chunk)
        assert decoder.read() == b""
        assert decoder._input.queued <= 2 * MIB
    decoder.feed(compress(b"after"))
    decoder.feed_eof()
    assert decoder.read() == b"after"
    assert decoder.read() == b""
    assert decoder.finished


# ---------------------------------------------------------------------- truncation


def _two_frames() -> tuple[bytes, list[int], bytes]:
    first = compress(b"first frame " * 20)
    second = zstandard.ZstdCompressor(write_content_size=False, write_checksum=True).compress(
        os.urandom(50) + b"second"
    )
    blob = first + second + skippable(b"x") + compress(b"", checksum=False)
    boundaries = [
        0,
        len(first),
        len(first) + len(second),
        len(first) + len(second) + 9,
        len(blob),
    ]
    return blob, boundaries, decompress(blob)


@pytest.mark.parametrize("eof_first", [False, True])
def test_truncation_at_every_offset(eof_first: bool) -> None:
    blob, boundaries, full = _two_frames()
    for cut in range(len(blob) + 1):
        prefix = blob[:cut]
        if cut in boundaries:
            assert full.startswith(decode_chunks([prefix], 16, eof_first=eof_first))
            continue
        decoder = ZstdDecoder(16)
        out = bytearray()
        with pytest.raises(IntegrityError):
            decoder.feed(prefix)
            if not eof_first:
                while piece := decoder.read():
                    out += piece
            decoder.feed_eof()
            while piece := decoder.read():
                out += piece
        assert full.startswith(out)
        with pytest.raises(IntegrityError):
            decoder.read()


def test_truncation_byte_by_byte_feed() -> None:
    blob, boundaries, _ = _two_frames()
    for cut in range(len(blob)):
        if cut in boundaries:
            continue
        with pytest.raises(IntegrityError, match=r"truncated|stray"):
            decode_chunks([blob[i : i + 1] for i in range(cut)], 7)


def test_truncation_at_block_boundary_and_before_checksum() -> None:
    cobj = zstandard.ZstdCompressor(write_checksum=True, write_content_size=False).compressobj()
    blob = cobj.compress(b"a" * 1000) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    block_boundary = len(blob)
    blob += cobj.compress(b"b" * 1000) + cobj.flush()
    for cut in (block_boundary, len(blob) - 4):
        with pytest.raises(IntegrityError, match="truncated"):
            decode_chunks([blob[:cut]])
    assert decompress(blob) == b"a" * 1000 + b"b" * 1000


# ---------------------------------------------------------------------- corruption


def _corrupt_blob() -> tuple[bytes, bytes]:
    data = os.urandom(3000) + b"abcd" * 2000
    blob = (
        compress(data)
        + compress(b"", checksum=True)
        + zstandard.ZstdCompressor(write_checksum=True, write_content_size=False).compress(
            data[:500]
        )
    )
    return blob, data + data[:500]


_CORRUPT_BLOB, _CORRUPT_PLAIN = _corrupt_blob()


@settings(max_examples=300, deadline=None)
@given(
    pos=st.integers(0, len(_CORRUPT_BLOB) - 1),
    xor=st.integers(1, 255),
    chunk=st.sampled_from([1, 7, 100, 1 << 20]),
)
def test_flipped_byte_is_detected(pos: int, xor: int, chunk: int) -> None:
    corrupt = bytearray(_CORRUPT_BLOB)
    corrupt[pos] ^= xor
    chunks = [bytes(corrupt[i : i + chunk]) for i in range(0, len(corrupt), chunk)]
    try:
        out = decode_chunks(chunks, 1000)
    except IntegrityError:
        return
    # Every frame is checksummed: undetected changes may only touch bits that do
    # not affect the content (e.g. the header's unused bit or the window size).
    assert out == _CORRUPT_PLAIN


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"hello world", "not a zstd frame"),
        (compress(b"x") + b"\0\0\0\0", "not a zstd frame"),
        (compress(b"x") + b"junk", "not a zstd frame"),
        (compress(b"x") + b"\x28\xb5", "stray bytes"),
        (frame_header() + block(3, 0, b"", last=True), "reserved block type"),
        (ZSTD_MAGIC + b"\x08\x38" + block(0, 0, b"", last=True), "reserved header bit"),
        (frame_header(dict_id=12345) + block(0, 0, b"", last=True), "dictionary"),
        # Single segment, FCS=10: blocks may not exceed 10 bytes.
        (ZSTD_MAGIC + b"\x20\x0a" + block(0, 11, bytes(11), last=True), "maximum block size"),
        (frame_header(window_log=23) + rle_block(128 * KIB + 1, last=True), "maximum block size"),
        (frame_header(window_log=10) + rle_block(KIB + 1, last=True), "maximum block size"),
        # Content size says 10, content is 5 bytes: libzstd rejects it.
        (ZSTD_MAGIC + b"\x20\x0a" + block(0, 5, bytes(5), last=True), "corrupt"),
        (frame_header(window_log=40) + rle_block(10, last=True), "corrupt"),
    ],
)
def test_structural_corruption(blob: bytes, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        decode_chunks([blob])
    with pytest.raises(IntegrityError, match=message):
        decode_chunks([blob[i : i + 1] for i in range(len(blob))])


def test_checksum_mismatch_chains_zstd_error() -> None:
    blob = bytearray(compress(b"payload" * 100))
    blob[-1] ^= 1
    decoder = ZstdDecoder()
    decoder.feed(blob)
    decoder.feed_eof()  # structure is fine; the checksum is verified while decoding
    with pytest.raises(IntegrityError, match="corrupt") as info:
        decoder.read()
    assert isinstance(info.value.__cause__, zstandard.ZstdError)
    for call in (decoder.read, decoder.feed_eof, lambda: decoder.feed(b"x")):
        with pytest.raises(IntegrityError, match="unusable"):
            call()
    assert not decoder.finished


def test_decoder_misuse() -> None:
    with pytest.raises(ValueError):
        ZstdDecoder(0)
    decoder = ZstdDecoder()
    decoder.feed_eof()
    decoder.feed_eof()  # idempotent
    with pytest.raises(RuntimeError):
        decoder.feed(b"x")


def test_max_window_size() -> None:
    blob = frame_header(window_log=22) + rle_block(100, last=True)
    assert decompress(blob) == bytes(100)
    decoder = ZstdDecoder(max_window_size=1 << 20)
    decoder.feed(blob)
    with pytest.raises(IntegrityError):
        decoder.read()


# --------------------------------------------------------------- decompression bombs


def _drain_bomb(decoder: ZstdDecoder, cap: int, limit: int) -> int:
    total = 0
    while total < limit:
        piece = decoder.read()
        assert piece, "bomb ended early"
        assert len(piece) <= cap
        assert piece.count(0) == len(piece)
        total += len(piece)
    return total


@pytest.mark.parametrize("cap", [64 * KIB, 1000, 128 * KIB, 200 * KIB])
def test_rle_bomb_output_is_bounded(cap: int) -> None:
    # 8192 RLE blocks: 32 KiB of input describing 1 GiB of zeros.
    bomb = (
        frame_header(window_log=17) + rle_block(128 * KIB) * 8191 + rle_block(128 * KIB, last=True)
    )
    limit = 50 * MIB if cap >= 64 * KIB else 4 * MIB
    decoder = ZstdDecoder(max_output=cap)
    decoder.feed(bomb)
    decoder.feed_eof()  # structurally complete
    tracemalloc.start()
    try:
        total = _drain_bomb(decoder, cap, limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total >= limit
    # Decoded data held at once: at most one read plus one parked block.
    assert peak < cap + 128 * KIB + 1 * MIB


def test_compressed_bomb_output_is_bounded() -> None:
    cobj = zstandard.ZstdCompressor(level=19).compressobj()
    zeros = bytes(MIB)
    blob = b"".join(cobj.compress(zeros) for _ in range(256)) + cobj.flush()
    assert len(blob) < 64 * KIB
    decoder = ZstdDecoder(max_output=64 * KIB)
    for i in range(0, len(blob), 1000):
        decoder.feed(blob[i : i + 1000])
    tracemalloc.start()
    try:
        total = _drain_bomb(decoder, 64 * KIB, 50 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total >= 50 * MIB
    assert peak < 4 * MIB


def test_reads_are_exactly_capped_across_blocks() -> None:
    blob = (
        frame_header(window_log=17) + rle_block(100 * KIB, 1) + rle_block(100 * KIB, 2, last=True)
    )
    decoder = ZstdDecoder(max_output=64 * KIB)
    decoder.feed(blob)
    sizes = []
    out = bytearray()
    while piece := decoder.read():
        sizes.append(len(piece))
        out += piece
    assert max(sizes) == 64 * KIB
    assert bytes(out) == bytes([1]) * (100 * KIB) + bytes([2]) * (100 * KIB)
    decoder.feed_eof()
    assert not decoder.finished  # the end is known once read() has said so
    assert decoder.read() == b""
    assert decoder.finished


# ------------------------------------------------------------------ identity decoder


@fast
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 10000), max_size=20),
    max_output=st.sampled_from([1, 10, 1000, 1 * MIB]),
)
def test_identity_decoder_round_trip(data: bytes, cuts: list[int], max_output: int) -> None:
    decoder = IdentityDecoder(max_output)
    out = bytearray()
    for chunk in split_at(data, cuts):
        decoder.feed(chunk)
        if len(out) % 2:
            continue
        while piece := decoder.read():
            assert len(piece) <= max_output
            out += piece
    assert not decoder.finished or not data
    decoder.feed_eof()
    while piece := decoder.read():
        assert len(piece) <= max_output
        out += piece
    assert decoder.finished
    assert bytes(out) == data
    assert decoder.bytes_in == decoder.bytes_out == len(data)


def test_identity_decoder_behaviour() -> None:
    decoder = IdentityDecoder(max_output=4)
    chunk = b"abcd"
    decoder.feed(chunk)
    assert decoder.read() is chunk  # no copy when a chunk fits
    mutable = bytearray(b"0123456789")
    decoder.feed(mutable)
    decoder.feed(memoryview(b"xy"))
    mutable[:] = b"----------"  # the decoder must have copied it
    assert decoder.read() == b"0123"
    assert decoder.read() == b"4567"
    assert decoder.read() == b"89xy"
    assert decoder.read() == b""
    assert not decoder.finished
    decoder.feed_eof()
    decoder.feed_eof()
    assert decoder.finished
    with pytest.raises(RuntimeError):
        decoder.feed(b"x")
    with pytest.raises(ValueError):
        IdentityDecoder(0)


# ------------------------------------------------------- reads, buffers and contexts


@pytest.mark.parametrize("checksum", [False, True])
@pytest.mark.parametrize("limit", [1, 999, 64 * KIB])
def test_output_held_by_libzstd_at_the_end_is_not_lost(checksum: bool, limit: int) -> None:
    # Everything is fed and ended before the first read: libzstd consumes the
    # last block while the output is still full, and must flush it afterwards.
    payload = os.urandom(100 * KIB) + b"tail" * 30_000
    blob = zstandard.ZstdCompressor(write_checksum=checksum, write_content_size=False).compress(
        payload
    )
    decoder = ZstdDecoder()
    decoder.feed(blob)
    decoder.feed_eof()
    out = bytearray()
    while piece := decoder.read(limit):
        assert len(piece) <= limit
        out += piece
    assert bytes(out) == payload
    assert decoder.finished


def _read_sizes(blob: bytes, max_output: int = 1 * MIB) -> tuple[list[int], bytes]:
    decoder = ZstdDecoder(max_output=max_output)
    decoder.feed(blob)
    decoder.feed_eof()
    sizes = []
    out = bytearray()
    while piece := decoder.read():
        sizes.append(len(piece))
        out += piece
    assert decoder.read(10) == b""
    return sizes, bytes(out)


def test_read_sizes_follow_the_frame_content_size() -> None:
    payload = bytes(range(256)) * 8 * KIB  # 2 MiB
    # Content size declared: reads of that size, up to max_output.
    sizes, out = _read_sizes(compress(payload[:300_000]))
    assert out == payload[:300_000]
    assert sizes == [300_000]
    sizes, out = _read_sizes(compress(payload))
    assert out == payload
    assert sizes == [1 * MIB, 1 * MIB]
    # Not declared (a streamed frame): small first, doubling while full.
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(payload)
    sizes, out = _read_sizes(unsized)
    assert out == payload
    assert sizes[:5] == [64 * KIB, 128 * KIB, 256 * KIB, 512 * KIB, 1 * MIB]
    assert max(sizes) == 1 * MIB


def test_fed_buffers_are_copied_and_bytes_are_not() -> None:
    data = bytearray(compress(b"abc" * 1000))
    decoder = ZstdDecoder()
    decoder.feed(data)
    data[:] = bytes(len(data))  # the caller reuses its buffer
    decoder.feed_eof()
    assert decoder.read() == b"abc" * 1000


def test_decompression_contexts_are_reused() -> None:
    blob = compress(b"x" * 5000)
    contexts = ZstdContexts()
    for _ in range(20):
        decoder = ZstdDecoder(contexts=contexts)
        decoder.feed(blob)
        decoder.feed_eof()
        assert decoder.read() == b"x" * 5000
        assert decoder.read() == b""
    assert contexts.idle() == (0, 1)  # each decoder gave back the one it took
    # A context in use is not idle: two decoders decoding at once hold two contexts
    # (each takes one when it starts to decode).
    first, second = ZstdDecoder(contexts=contexts), ZstdDecoder(contexts=contexts)
    assert first._context is None and contexts.idle() == (0, 1)
    for decoder in (first, second):
        decoder.feed(blob)
    assert first.read(100) == second.read(100) == b"x" * 100  # both inside the frame
    assert first._context is not None and first._context is not second._context
    assert contexts.idle() == (0, 0)
    # Without a pool a decoder sets up its own context and keeps nothing.
    alone = ZstdDecoder()
    alone.feed(blob)
    alone.feed_eof()
    assert alone.read() == b"x" * 5000 and alone.read() == b""
    assert contexts.idle() == (0, 0)


def test_small_payloads_are_compressed_by_reused_contexts() -> None:
    contexts = ZstdContexts()
    for payload in (b"", b"small " * 100, b"x" * REUSED_MAX):
        frame = compress(payload, contexts=contexts)
        assert frame == compress(payload)  # the same frame as a fresh compressor's
        params = zstandard.get_frame_parameters(frame)
        assert params.content_size == len(payload) and params.has_checksum
    assert contexts.idle() == (1, 0)  # one compressor did all three
    # Larger payloads, or payloads for worker threads, get a compressor of their own.
    assert decompress(compress(b"y" * (REUSED_MAX + 1), contexts=contexts)) == b"y" * (
        REUSED_MAX + 1
    )
    assert decompress(compress(b"z" * 1000, threads=2, contexts=contexts)) == b"z" * 1000
    assert contexts.idle() == (1, 0)
    # Other levels have compressors of their own.
    assert decompress(compress(b"w" * 10, level=1, contexts=contexts)) == b"w" * 10
    assert contexts.idle() == (2, 0)


def test_a_small_whole_frame_is_decoded_in_one_call() -> None:
    payload = b"small object " * 50
    decoder = ZstdDecoder()
    assert decoder.read() == b""  # asked before any input, as a download does
    decoder.feed(compress(payload)[:10])
    decoder.feed(compress(payload)[10:])
    decoder.feed_eof()
    assert decoder.read() == payload
    assert decoder._reader is None  # no stream reader was needed
    assert decoder.read() == b""
    assert decoder.finished
    # Larger than the read asks for, several frames, or no declared size: streamed.
    for blob, limit in [
        (compress(payload), 100),
        (compress(payload) + compress(payload), None),
        (zstandard.ZstdCompressor(write_content_size=False).compress(payload), None),
    ]:
        decoder = ZstdDecoder()
        decoder.feed(blob)
        decoder.feed_eof()
        out = bytearray(decoder.read(limit))
        assert decoder._reader is not None  # this one went through the stream reader
        while piece := decoder.read(limit):
            out += piece
        assert decoder.finished
        assert out in (payload, payload * 2)


def test_download_ends_when_the_announced_length_is_in() -> None:
    from objectstore_core import Download

    payload = b"announced " * 100
    stored = compress(payload)
    download = Download(decode=True, expected_length=len(stored))
    assert download.read() is None
    download.feed(stored)
    # Every byte is in: the payload comes out before the transport reports the end.
    assert download.read() == payload
    assert download.read() is None  # the end of the body itself is still to be fed
    download.feed(b"")
    assert download.read() == b""
    assert download.finished


@pytest.mark.parametrize("decode", [True, False])
def test_download_fed_its_last_bytes_ends_with_them(decode: bool) -> None:
    from objectstore_core import Download

    payload = b"last bytes " * 100
    stored = compress(payload) if decode else payload
    download = Download(decode=decode, expected_length=None)  # chunked: no length to go by
    download.feed(stored[:10])
    download.feed(stored[10:], last=True)
    received = b""
    while chunk := download.read():
        received += chunk
    assert received == payload
    assert download.finished
    with pytest.raises(RuntimeError, match="after the end"):
        download.feed(b"more")
    # Bytes known to be the last that end a frame early: truncated, at once.
    cut = Download(decode=True, expected_length=None)
    with pytest.raises(IntegrityError, match="truncated"):
        cut.feed(compress(payload)[:-5], last=True)


@pytest.mark.parametrize("content_size", [True, False])
def test_download_chunks_grow_to_the_default_size(content_size: bool) -> None:
    """Decoded chunks are DEFAULT_CHUNK (256 KiB) each while the input at hand lasts.

    Without a declared content size, reads start at 64 KiB and double while
    they come back full; a frame that declares its size gets full reads at once.
    (A read returns early when the piece of input it works on runs out.)
    """
    from objectstore_core._codec import _INPUT_PIECE
    from objectstore_core._download import DEFAULT_CHUNK, Download

    rng = random.Random(7)
    payload = b"".join(b"%d,%s\n" % (i, rng.randbytes(12).hex().encode()) for i in range(150_000))
    if content_size:
        frame = zstandard.ZstdCompressor(level=3).compress(payload)
    else:
        cobj = zstandard.ZstdCompressor(level=3).compressobj()
        frame = cobj.compress(payload) + cobj.flush()
    download = Download(decode=True, expected_length=len(frame))
    assert len(frame) < _INPUT_PIECE  # one piece of input to libzstd
    download.feed(frame)
    sizes: list[int] = []
    while chunk := download.read():
        sizes.append(len(chunk))
    assert sum(sizes) == len(payload)
    growing = [] if content_size else [64 * 1024, 128 * 1024]
    assert sizes[: len(growing)] == growing
    assert set(sizes[len(growing) : -1]) == {DEFAULT_CHUNK} == {256 * 1024}
    assert 0 < sizes[-1] <= DEFAULT_CHUNK


def test_uncompressed_chunks_are_the_pieces_received() -> None:
    from objectstore_core._download import PIECE_SIZE, Download

    pieces = [os.urandom(PIECE_SIZE), os.urandom(1000), os.urandom(PIECE_SIZE)]
    download = Download(decode=False, expected_length=sum(map(len, pieces)))
    for piece in pieces:
        download.feed(piece)
        assert download.read() is piece  # handed on, not copied or cut


def test_socket_reads_are_small_while_a_body_is_copied_and_large_while_it_expands() -> None:
    """The read size a twin asks the socket for follows what the body showed so far."""
    from objectstore_core._download import COPY_PIECE, PIECE_SIZE, Download

    raw = Download(decode=False, expected_length=None)
    assert raw.piece == COPY_PIECE
    raw.feed(os.urandom(COPY_PIECE))
    assert raw.read() is not None and raw.piece == COPY_PIECE

    random = compress(os.urandom(4 * COPY_PIECE))  # zstd that does not expand
    incompressible = Download(decode=True, expected_length=len(random))
    incompressible.feed(random[:COPY_PIECE])
    while incompressible.read():
        pass
    assert incompressible.piece == COPY_PIECE

    text = compress(b"0123456789abcdef" * 200_000)  # expands many times over
    expanding = Download(decode=True, expected_length=len(text))
    expanding.feed(text[: len(text) // 2])
    while expanding.read():
        pass
    assert expanding.piece == PIECE_SIZE == 8 * COPY_PIECE


def test_a_short_read_with_no_input_left_asks_for_input_without_starving_libzstd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After libzstd used up what was fed, the decoder says so without another
    read into libzstd; output is the same however the input is cut."""
    from objectstore_core import _codec

    starved = 0
    take = _codec._Input.read

    def counted(self: _codec._Input, size: int) -> bytes | memoryview:
        nonlocal starved
        try:
            return take(self, size)
        except _codec._Starved:
            starved += 1
            raise

    monkeypatch.setattr(_codec._Input, "read", counted)
    payload = os.urandom(300_000) + b"x" * 300_000
    frames = compress(payload[:200_000]) + compress(payload[200_000:])  # two frames
    for cut in (1000, 65_536, 131_072, 333_333):
        decoder = ZstdDecoder()
        out = bytearray()
        pieces = 0
        for start in range(0, len(frames), cut):
            decoder.feed(frames[start : start + cut])
            pieces += 1
            while chunk := decoder.read():
                out += chunk
            assert decoder.read() == b""  # asks for input again, at no cost
        decoder.feed_eof()
        while chunk := decoder.read():
            out += chunk
        assert bytes(out) == payload and decoder.finished
        # libzstd's reader asked for input it could not get at most once per piece
        # cut inside a block, never for the repeated asks above
        assert starved < pieces
        starved = 0


def test_a_body_received_whole_is_decoded_by_libzstd_alone() -> None:
    """A small frame fed with its end goes to libzstd in one call, without the walk
    over its structure; a corrupt one fails as the streaming path fails."""
    from objectstore_core._download import Download

    payload = b"event: ok\n" * 500
    frame = compress(payload)
    contexts = ZstdContexts()
    download = Download(decode=True, expected_length=len(frame), contexts=contexts)
    download.feed(frame, last=True)
    decoder = download._decoder
    assert isinstance(decoder, ZstdDecoder) and decoder._scanner._frames == 0  # never walked
    assert download.read() == payload and download.read() == b"" and download.finished
    assert download.decoded == len(payload) and download.received == len(frame)
    assert contexts.idle() == (0, 1)  # the context went back

    corrupt = bytearray(frame)
    corrupt[len(corrupt) // 2] ^= 0xFF
    messages = []
    for whole in (True, False):
        broken = Download(decode=True, expected_length=len(corrupt))
        with pytest.raises(IntegrityError) as info:
            if whole:
                broken.feed(bytes(corrupt), last=True)
            else:
                broken.feed(bytes(corrupt))
                broken.feed(b"")
            while broken.read():
                pass
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_input_views_of_bytes_are_kept_and_other_buffers_copied() -> None:
    """A view of immutable bytes (an HTTP chunk inside a received piece) is
    queued as it is; a view of a mutable buffer is copied, since its owner
    may reuse the buffer before the input is decoded."""
    payload = b"0123456789abcdef" * 10_000
    frame = compress(payload)
    kept = ZstdDecoder()
    view = memoryview(frame)[: len(frame) - 10]
    kept.feed(view)
    assert any(isinstance(c, memoryview) and c.obj is frame for c in kept._input.chunks)
    kept.feed(frame[len(frame) - 10 :])
    kept.feed_eof()
    assert b"".join(iter(kept.read, b"")) == payload

    owned = bytearray(frame)
    copied = ZstdDecoder()
    copied.feed(memoryview(owned))
    owned[:] = bytes(len(owned))  # the owner reuses its buffer
    copied.feed_eof()
    assert b"".join(iter(copied.read, b"")) == payload
