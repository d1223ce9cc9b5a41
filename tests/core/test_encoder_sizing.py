"""Sizing the upload encoder: payload sizes known without reading, and worker threads."""

from __future__ import annotations

import io
import os
import pathlib

import pytest
import zstandard

from objectstore_core import (
    MULTITHREAD_MIN,
    Compress,
    PayloadKind,
    Upload,
    compress,
    decompress,
    new_encoder,
    upload_size,
    zstd_workers,
)
from objectstore_core._operations import _body

TWO = 2 if (os.cpu_count() or 1) > 1 else 0
TEXT = b"".join(b"event %d: user=u%d status=ok\n" % (i, i % 97) for i in range(40_000))


def _upload(source: object, kind: PayloadKind) -> Upload:
    return Upload(source=source, kind=kind, compress=True)


def test_sizes_known_without_reading(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "payload.bin"
    path.write_bytes(b"x" * 1000)
    assert upload_size(_upload(b"abc", PayloadKind.BYTES)) == 3
    assert upload_size(_upload(memoryview(bytes(10)), PayloadKind.BYTES)) == 10
    assert upload_size(_upload(path, PayloadKind.PATH)) == 1000
    with path.open("rb") as file:
        file.seek(100)
        assert upload_size(_upload(file, PayloadKind.FILE)) == 900
        assert file.tell() == 100  # nothing was read
    # Unknown: in-memory files have no descriptor, iterables no size, paths may vanish.
    assert upload_size(_upload(io.BytesIO(b"abc"), PayloadKind.FILE)) is None
    assert upload_size(_upload(iter([b"a"]), PayloadKind.ITERABLE)) is None
    assert upload_size(_upload(tmp_path / "gone", PayloadKind.PATH)) is None


def test_large_compressible_payloads_get_worker_threads() -> None:
    text = TEXT * 16  # about 18 MiB: several 4 MiB jobs
    noise = os.urandom(MULTITHREAD_MIN)
    large = new_encoder(_upload(text, PayloadKind.BYTES), text[: 1 << 20])
    assert large.threads == TWO
    # Small, incompressible, or without a first piece: the calling thread only.
    assert new_encoder(_upload(TEXT[:1000], PayloadKind.BYTES), TEXT[:1000]).threads == 0
    assert new_encoder(_upload(noise, PayloadKind.BYTES), noise[: 1 << 20]).threads == 0
    assert new_encoder(_upload(text, PayloadKind.BYTES)).threads == 0
    assert new_encoder().threads == 0
    view = memoryview(text)
    frame = b"".join(large.encode(view[i : i + (1 << 20)]) for i in range(0, len(view), 1 << 20))
    frame += large.finish()
    assert decompress(frame) == text  # still one standard frame


def test_worker_rule() -> None:
    assert MULTITHREAD_MIN == 1 << 20
    noise = os.urandom(1 << 16)
    assert zstd_workers(MULTITHREAD_MIN, TEXT) == TWO
    assert zstd_workers(1 << 30, TEXT) == TWO
    assert zstd_workers(MULTITHREAD_MIN - 1, TEXT) == 0  # too small to split in two jobs
    assert zstd_workers(None, TEXT) == 0  # size unknown
    assert zstd_workers(MULTITHREAD_MIN, None) == 0  # nothing to judge by
    assert zstd_workers(MULTITHREAD_MIN, noise) == 0  # incompressible
    assert zstd_workers(MULTITHREAD_MIN, b"") == 0


def test_single_core_machines_compress_in_the_calling_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert zstd_workers(1 << 30, TEXT) == 0
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert zstd_workers(1 << 30, TEXT) == 0


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
    frame = step.run()
    assert decompress(frame) == payload
    assert zstandard.get_frame_parameters(frame).content_size == len(payload)
    # Small and incompressible payloads take the same path, in the calling thread.
    noise = os.urandom(MULTITHREAD_MIN)
    step = _body(noise, compress=True)
    assert isinstance(step, Compress)
    assert decompress(step.run()) == noise
