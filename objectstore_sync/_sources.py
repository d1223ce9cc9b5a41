"""Reading the caller's payload for an upload: the sync half of :class:`Upload`.

The core decides what a payload is (:func:`objectstore_core.classify_payload`)
and what its size means (:func:`objectstore_core.upload_size`); this module
does the reading and the measuring, lazily and in bounded chunks, so a
payload of any size is streamed and never held whole.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Generator, Iterable, Iterator
from typing import IO, cast

from objectstore_core import (
    BinaryReader,
    Buffer,
    LengthCheck,
    PayloadKind,
    Upload,
    check_upload_chunk,
    new_encoder,
    upload_size,
)
from objectstore_core._http import UPLOAD_CHUNK, Spool, Spooled
from objectstore_core._resumable import spool_pieces
from objectstore_core._transfer import CompressPart

__all__ = ["CPUS", "compress_part", "iter_source", "iter_upload", "measure", "read_at", "spool"]

CPUS = os.cpu_count() or 1  # counted here, once: the core takes it as an argument


def _rewind(upload: Upload) -> None:
    """Prepare a file payload for one attempt (see :meth:`UploadReplay.begin`)."""
    match upload.replay.begin():
        case "note":
            upload.replay.start = _start_position(upload.source)
        case int(start):
            upload.source.seek(start)  # type: ignore[union-attr]


def _start_position(source: object) -> int | None:
    seekable = getattr(source, "seekable", None)
    try:
        if callable(seekable) and seekable():
            position = source.tell()  # type: ignore[attr-defined]
            return position if isinstance(position, int) else None
    except (OSError, ValueError):  # e.g. a pipe that claims to seek, or a closed file
        return None
    return None


def _file_size(file: object) -> int | None:
    """What ``fstat`` says an open file holds (no data is read); None if it cannot tell.

    Only a measurement: :func:`objectstore_core.upload_size` decides what it
    means (less the start position; unknown for pipes and other non-seekable
    files). The async twin takes the same one-call measurement in a worker
    thread, beside its first read; the twins share no module, so the rule
    lives in the core and each twin keeps only the call.
    """
    try:
        return os.fstat(file.fileno()).st_size  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError, TypeError):  # BytesIO, wrapped, closed
        return None


def _read(file: BinaryReader) -> Iterator[Buffer]:
    while chunk := check_upload_chunk(file.read(UPLOAD_CHUNK)):
        yield chunk


def iter_source(upload: Upload) -> Generator[Buffer, None, None]:
    """The raw chunks of the caller's payload, read lazily (files from their start position)."""
    source = upload.source
    kind = upload.kind
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), UPLOAD_CHUNK):
            yield view[start : start + UPLOAD_CHUNK]
    elif isinstance(source, os.PathLike):
        with open(os.fspath(source), "rb") as file:
            yield from _read(file)
    elif kind is PayloadKind.FILE:
        _rewind(upload)
        yield from _read(cast(BinaryReader, source))
    elif kind is PayloadKind.ITERABLE:
        upload.replay.started = True  # one-shot: never sent twice once touched
        for chunk in cast(Iterable[object], source):
            yield check_upload_chunk(chunk)
    else:
        raise TypeError(
            f"cannot upload {type(source).__name__} with the sync client: "
            "async iterables need objectstore_async"
        )


def measure(source: object) -> int | None:
    """The bytes a path or file holds from where reading would start, if known unread.

    A file by ``fstat``; a seekable stream without a file descriptor
    (:class:`io.BytesIO`, any seekable reader) by seeking to its end and back
    (PROTOCOL §14.1: a seekable stream's size can be determined).
    """
    if isinstance(source, os.PathLike):
        return os.stat(os.fspath(source)).st_size
    start = _start_position(source)
    if start is None:
        return None
    size = _file_size(source)
    if size is None:
        size = _stream_end(source, start)
    if size is None or start > size:
        return None
    return size - start


def _stream_end(source: object, start: int) -> int | None:
    """Where a seekable stream ends (``seek(0, SEEK_END)``), leaving it at ``start``."""
    try:
        end = source.seek(0, os.SEEK_END)  # type: ignore[attr-defined]
        source.seek(start)  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return end if isinstance(end, int) and not isinstance(end, bool) else None


def spool(step: Spool, spools: list[IO[bytes]]) -> Spooled:
    """Perform a :class:`Spool` step: the payload, compressed whole, in a temporary file.

    PROTOCOL §14.1: a compressed resumable upload sends the compressed bytes,
    whose length must be known first. The payload is read as a streamed put
    reads it; the core compresses, counts and hashes it
    (:func:`objectstore_core._resumable.spool_pieces`), this writes it. The file
    goes into ``spools`` as soon as it exists: the driver closes it when the
    flow ends, whatever happens.
    """
    file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the driver
    spools.append(file)
    tally = spool_pieces(step, iter_source(step.upload), file.write, CPUS)
    file.seek(0)
    return tally.spooled(file)


def read_at(source: object, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes of a path from ``offset``, or the next ``size`` of a file.

    A managed upload reads its parts in order, so a file is simply read on
    from where the previous part ended.
    """
    if isinstance(source, os.PathLike):
        with open(os.fspath(source), "rb") as file:
            file.seek(offset)
            return _read_exactly(cast(BinaryReader, file), size)
    return _read_exactly(cast(BinaryReader, source), size)


def compress_part(step: CompressPart) -> bytes:
    """Perform a :class:`CompressPart` step in this thread: the part's frame."""
    with open(os.fspath(step.source), "rb", buffering=0) as file:
        file.seek(step.offset)
        return step.run(file.readinto)


def _read_exactly(file: BinaryReader, size: int) -> bytes:
    pieces = []
    left = size
    while left > 0:
        chunk = bytes(check_upload_chunk(file.read(left)))
        if not chunk:
            break
        pieces.append(chunk)
        left -= len(chunk)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _iter_range(upload: Upload, offset: int, length: int) -> Iterator[Buffer]:
    """``length`` bytes of the payload from ``offset`` (an append of PROTOCOL §14.1)."""
    source = upload.source
    if isinstance(source, bytes | bytearray | memoryview):
        yield memoryview(source).cast("B")[offset : offset + length]
        return
    if isinstance(source, os.PathLike):
        with open(os.fspath(source), "rb") as file:
            file.seek(offset)
            yield from _bounded(file, length)
        return
    _rewind(upload)
    start = upload.replay.start
    if start is None:
        raise ValueError(f"cannot read {source!r:.60} from offset {offset}: it is not seekable")
    source.seek(start + offset)  # type: ignore[union-attr]
    yield from _bounded(cast(BinaryReader, source), length)


def _bounded(file: BinaryReader, length: int) -> Iterator[Buffer]:
    left = length
    while left > 0:
        chunk = check_upload_chunk(file.read(min(UPLOAD_CHUNK, left)))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def iter_upload(upload: Upload) -> Iterator[Buffer]:
    """The request body: the payload, zstd-encoded on the fly when asked (PROTOCOL §5)."""
    if upload.length is not None:  # exactly ``length`` bytes, as announced (PROTOCOL §9.2)
        check = LengthCheck(upload.length)
        chunks: Iterator[Buffer]
        if upload.offset is None:
            chunks = iter_source(upload)
        else:
            chunks = _iter_range(upload, upload.offset, upload.length)
        for chunk in chunks:
            yield check.take(chunk)
        check.end()
    elif not upload.compress:
        yield from iter_source(upload)
    elif isinstance(upload.source, os.PathLike):
        with open(os.fspath(upload.source), "rb") as file:
            yield from _encoded(upload, _read(file), file)
    else:
        source = upload.source if upload.kind is PayloadKind.FILE else None
        yield from _encoded(upload, iter_source(upload), source)


def _encoded(upload: Upload, chunks: Iterator[Buffer], file: object) -> Iterator[Buffer]:
    """``chunks`` through the encoder, sized by the payload and its first piece.

    The size is what the payload holds from where reading started (known
    once the first piece is read), measured on the open ``file`` if there is one.
    """
    first = next(chunks, b"")
    size = upload_size(upload, None if file is None else _file_size(file))
    encoder = new_encoder(size, first, cpus=CPUS)
    if out := encoder.encode(first):
        yield out
    for chunk in chunks:
        if out := encoder.encode(chunk):
            yield out
    yield encoder.finish()
