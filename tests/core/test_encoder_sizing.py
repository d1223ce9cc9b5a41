"""Sizing the upload encoder: payload sizes known without reading, and worker threads."""

from __future__ import annotations

import io
import os
import pathlib

from objectstore_core import (
    MULTITHREAD_MIN,
    PayloadKind,
    Upload,
    decompress,
    new_encoder,
    upload_size,
)


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
    text = b"".join(b"event %d: user=u%d status=ok\n" % (i, i % 97) for i in range(700_000))
    assert len(text) >= MULTITHREAD_MIN
    noise = os.urandom(MULTITHREAD_MIN)
    two = 2 if (os.cpu_count() or 1) > 1 else 0
    large = new_encoder(_upload(text, PayloadKind.BYTES), text[: 1 << 20])
    assert large.threads == two
    # Small, incompressible, or without a first piece: the calling thread only.
    assert new_encoder(_upload(bytes(1000), PayloadKind.BYTES), bytes(1000)).threads == 0
    assert new_encoder(_upload(noise, PayloadKind.BYTES), noise[: 1 << 20]).threads == 0
    assert new_encoder(_upload(text, PayloadKind.BYTES)).threads == 0
    assert new_encoder().threads == 0
    view = memoryview(text)
    frame = b"".join(large.encode(view[i : i + (1 << 20)]) for i in range(0, len(view), 1 << 20))
    frame += large.finish()
    assert decompress(frame) == text  # still one standard frame
