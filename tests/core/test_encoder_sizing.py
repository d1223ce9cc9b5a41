"""Sizing the upload encoder: payload sizes known without reading, and worker threads.

The core decides from figures the twins measure (a file's size, the CPU
count); the measuring itself is tested with each twin's source reader.
"""

from __future__ import annotations

import io
import os
import pathlib

import pytest
import zstandard

from objectstore_core import (
    MULTITHREAD_MIN,
    Compress,
    Payload,
    PayloadKind,
    Upload,
    ZstdEncoder,
    compress,
    decompress,
    new_encoder,
    upload_size,
    zstd_plan,
    zstd_workers,
)
from objectstore_core._operations import _body

TEXT = b"".join(b"event %d: user=u%d status=ok\n" % (i, i % 97) for i in range(40_000))


def _upload(source: Payload, kind: PayloadKind, start: int | None = None) -> Upload:
    upload = Upload(source=source, kind=kind, compress=True)
    upload.replay.start = start
    return upload


def test_sizes_from_what_the_twins_measured(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "payload.bin"
    assert upload_size(_upload(b"abc", PayloadKind.BYTES)) == 3
    assert upload_size(_upload(memoryview(bytes(10)), PayloadKind.BYTES)) == 10
    assert upload_size(_upload(path, PayloadKind.PATH), 1000) == 1000
    file = io.BytesIO()
    # A file: its size less the position reading started at (noted before reading).
    assert upload_size(_upload(file, PayloadKind.FILE, start=100), 1000) == 900
    assert upload_size(_upload(file, PayloadKind.FILE, start=0), 1000) == 1000
    # Unknown: nothing measured, no start position (a pipe), a start past the end, iterables.
    assert upload_size(_upload(path, PayloadKind.PATH)) is None
    assert upload_size(_upload(file, PayloadKind.FILE, start=0)) is None
    assert upload_size(_upload(file, PayloadKind.FILE), 1000) is None
    assert upload_size(_upload(file, PayloadKind.FILE, start=2000), 1000) is None
    assert upload_size(_upload(iter([b"a"]), PayloadKind.ITERABLE), 1000) is None


def test_large_compressible_payloads_get_worker_threads() -> None:
    text = TEXT * 16  # about 18 MiB: several 4 MiB jobs
    noise = os.urandom(MULTITHREAD_MIN)
    large = new_encoder(len(text), text[: 1 << 20], cpus=2)
    assert large.threads == 2
    # Small, incompressible, without a first piece or a second CPU: the calling thread only.
    assert new_encoder(1000, TEXT[:1000], cpus=2).threads == 0
    assert new_encoder(len(noise), noise[: 1 << 20], cpus=2).threads == 0
    assert new_encoder(len(text), cpus=2).threads == 0
    assert new_encoder(len(text), text[: 1 << 20]).threads == 0  # cpus defaults to one
    assert new_encoder().threads == 0
    view = memoryview(text)
    frame = b"".join(large.encode(view[i : i + (1 << 20)]) for i in range(0, len(view), 1 << 20))
    frame += large.finish()
    assert decompress(frame) == text  # still one standard frame


def test_worker_rule() -> None:
    assert MULTITHREAD_MIN == 1 << 20
    noise = os.urandom(1 << 16)
    assert zstd_workers(MULTITHREAD_MIN, TEXT, 2) == 2
    assert zstd_workers(1 << 30, TEXT, 64) == 2
    assert zstd_workers(MULTITHREAD_MIN - 1, TEXT, 2) == 0  # too small to split in two jobs
    assert zstd_workers(None, TEXT, 2) == 0  # size unknown
    assert zstd_workers(MULTITHREAD_MIN, None, 2) == 0  # nothing to judge by
    assert zstd_workers(MULTITHREAD_MIN, noise, 2) == 0  # incompressible
    assert zstd_workers(MULTITHREAD_MIN, b"", 2) == 0


def test_single_core_machines_compress_in_the_calling_thread() -> None:
    assert zstd_workers(1 << 30, TEXT, 1) == 0
    assert zstd_workers(1 << 30, TEXT, 0) == 0


@pytest.mark.parametrize("size", [MULTITHREAD_MIN, MULTITHREAD_MIN + 12_345, 3 << 20])
def test_threaded_one_shot_frames_are_standard(size: int) -> None:
    payload = (TEXT * (size // len(TEXT) + 1))[:size]
    frame = compress(payload, threads=2)
    params = zstandard.get_frame_parameters(frame)
    assert params.content_size == size  # declared, as single-thread frames declare it
    assert params.has_checksum
    assert decompress(frame) == payload
    assert zstandard.ZstdDecompressor().decompress(frame) == payload


def test_one_shot_uploads_use_workers_when_they_pay() -> None:
    payload = TEXT[: MULTITHREAD_MIN + 1000]
    step = _body(payload, compress=True)
    assert isinstance(step, Compress) and step.size == len(payload)
    for cpus in (1, 2):
        frame = step.run(cpus)
        assert decompress(frame) == payload
        assert zstandard.get_frame_parameters(frame).content_size == len(payload)
    # Small and incompressible payloads take the same path, in the calling thread.
    noise = os.urandom(MULTITHREAD_MIN)
    step = _body(noise, compress=True)
    assert isinstance(step, Compress)
    assert decompress(step.run(2)) == noise


def test_large_data_that_does_not_compress_is_compressed_at_level_one() -> None:
    noise = os.urandom(2 * MULTITHREAD_MIN)
    assert zstd_plan(len(noise), noise, 2) == (1, 0)
    assert zstd_plan(len(TEXT) * 1000, TEXT, 2) == (3, 2)
    assert zstd_plan(len(TEXT) * 1000, TEXT, 1) == (3, 0)
    assert zstd_plan(MULTITHREAD_MIN - 1, noise, 2) == (3, 0)  # small: not judged
    assert zstd_plan(None, noise, 2) == (3, 0)
    assert zstd_plan(len(noise), None, 2) == (3, 0)
    level_one = zstandard.ZstdCompressor(level=1, write_checksum=True)
    # A put's one-shot frame and a streamed put's frame: level 1, checksummed, standard.
    step = _body(noise, compress=True)
    assert isinstance(step, Compress)
    frame = step.run(2)
    assert frame == level_one.compress(noise) and decompress(frame) == noise
    encoder = new_encoder(len(noise), noise[: 1 << 20], cpus=2)
    streamed = encoder.encode(noise) + encoder.finish()
    assert zstandard.get_frame_parameters(streamed).has_checksum
    assert decompress(streamed) == noise
    # A resumable upload's spool stays at level 3: a resume must reproduce its bytes.
    from objectstore_core._http import Spool

    spool = Spool(Upload(noise, PayloadKind.BYTES, True), len(noise)).encoder(noise, 2)

    def encoded(level: int) -> bytes:
        encoder = ZstdEncoder(level=level, checksum=True, size=len(noise))
        return encoder.encode(noise) + encoder.finish()

    assert streamed == encoded(1) != encoded(3)
    assert spool.encode(noise) + spool.finish() == encoded(3)
