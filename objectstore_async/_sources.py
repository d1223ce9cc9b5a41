"""Reading the caller's payload for an upload without blocking the event loop.

The async half of :class:`objectstore_core.Upload`: sync files are read (and
measured) in a worker thread, paths are opened lazily through anyio, async
iterables and async files are awaited. The core decides what a payload is
and what its size means (:func:`objectstore_core.upload_size`); this module
reads and measures. Works under asyncio and trio.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Generator, Iterable
from typing import IO, Any, cast

import anyio
import anyio.to_thread

from objectstore_core import (
    LengthCheck,
    PayloadKind,
    Upload,
    ZstdEncoder,
    check_upload_chunk,
    compressible,
    new_encoder,
    upload_size,
)
from objectstore_core._http import UPLOAD_CHUNK, Spool, Spooled
from objectstore_core._resumable import spool_pieces
from objectstore_core._transfer import CompressPart

__all__ = [
    "CPUS",
    "aiter_source",
    "aiter_upload",
    "compress_part",
    "maybe_await",
    "measure",
    "read_at",
    "spool",
    "start_position",
]

CPUS = os.cpu_count() or 1  # counted here, once: the core takes it as an argument


def _check_chunk(chunk: object) -> bytes:
    """The chunk as bytes: it is held across awaits, so a reused buffer is copied."""
    chunk = check_upload_chunk(chunk)
    return chunk if isinstance(chunk, bytes) else bytes(chunk)


async def maybe_await(value: object) -> Any:
    return await value if inspect.isawaitable(value) else value


async def start_position(source: object) -> int | None:
    seekable = getattr(source, "seekable", None)
    try:
        if callable(seekable) and await maybe_await(seekable()):
            position = await maybe_await(source.tell())  # type: ignore[attr-defined]
            return position if isinstance(position, int) else None
    except (OSError, ValueError):  # e.g. a pipe that claims to seek, or a closed file
        return None
    return None


async def _rewind(upload: Upload) -> None:
    """Prepare a sync or async file payload for one attempt (see :meth:`UploadReplay.begin`)."""
    match upload.replay.begin():
        case "note":
            upload.replay.start = await start_position(upload.source)
        case int(start):
            await maybe_await(upload.source.seek(start))  # type: ignore[union-attr]


async def _read_file(source: object) -> AsyncGenerator[bytes, None]:
    read = source.read  # type: ignore[attr-defined]
    if inspect.iscoroutinefunction(read):
        while chunk := _check_chunk(await read(UPLOAD_CHUNK)):
            yield chunk
        return
    while True:
        result = await anyio.to_thread.run_sync(read, UPLOAD_CHUNK)
        if inspect.isawaitable(result):  # an async file whose read is not a coroutine function
            result = await result
        if not (chunk := _check_chunk(result)):
            return
        yield chunk


async def aiter_source(upload: Upload) -> AsyncGenerator[bytes, None]:
    """The raw chunks of the caller's payload, read lazily (files from their start position)."""
    source = upload.source
    kind = upload.kind
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), UPLOAD_CHUNK):
            yield bytes(view[start : start + UPLOAD_CHUNK])
    elif isinstance(source, os.PathLike):
        async with await anyio.open_file(os.fspath(source), "rb") as file:
            while data := await file.read(UPLOAD_CHUNK):
                yield data
    elif kind is PayloadKind.FILE:
        await _rewind(upload)
        async with contextlib.aclosing(_read_file(source)) as chunks:  # also when stopped early
            async for chunk in chunks:
                yield chunk
    elif kind is PayloadKind.ASYNC_ITERABLE:
        upload.replay.started = True  # one-shot: never sent twice once touched
        async for item in cast(AsyncIterable[object], source):
            yield _check_chunk(item)
    else:
        upload.replay.started = True
        for item in cast(Iterable[object], source):
            yield _check_chunk(item)


async def measure(source: object) -> int | None:
    """The bytes a path or file holds from where reading would start, if known unread.

    Measured in a worker thread: a file by ``fstat``, a seekable stream
    without a file descriptor (:class:`io.BytesIO`, any blocking seekable
    reader) by seeking to its end and back (PROTOCOL §14.1: a seekable
    stream's size can be determined). Async files are not measured (None).
    """
    if isinstance(source, os.PathLike):
        return (await anyio.Path(os.fspath(source)).stat()).st_size
    if not _seekable_reader(source):
        return None
    file = cast(IO[bytes], source)

    def sizes() -> tuple[int | None, int | None]:
        start = _blocking_start(file)
        if start is None:
            return None, None
        size = _file_size(file)
        return start, _stream_end(file, start) if size is None else size

    start, size = await anyio.to_thread.run_sync(sizes)
    if start is None or size is None or start > size:
        return None
    return size - start


def _blocking_start(file: IO[bytes]) -> int | None:
    try:
        position = file.tell() if file.seekable() else None
    except (OSError, ValueError):  # e.g. a pipe that claims to seek, or a closed file
        return None
    return position if isinstance(position, int) and not isinstance(position, bool) else None


def _stream_end(file: IO[bytes], start: int) -> int | None:
    """Where a seekable stream ends (``seek(0, SEEK_END)``), leaving it at ``start``."""
    try:
        end = file.seek(0, os.SEEK_END)
        file.seek(start)
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return end if isinstance(end, int) and not isinstance(end, bool) else None


async def spool(step: Spool, spools: list[IO[bytes]]) -> Spooled:
    """Perform a :class:`Spool` step: the payload, compressed whole, in a temporary file.

    PROTOCOL §14.1: a compressed resumable upload sends the compressed bytes,
    whose length must be known first. Reading, compressing (with the step's
    encoder: the settings of a plain put) and writing all block, so the whole
    spool runs in one worker thread. The file goes into ``spools`` as soon as
    it exists: the driver closes it when the flow ends, whatever happens.
    """
    upload = step.upload
    source = upload.source
    if not isinstance(source, bytes | bytearray | memoryview | os.PathLike) and not (
        _seekable_reader(source)
    ):
        raise ValueError(
            f"cannot compress {type(source).__name__} ahead of a resumable upload: "
            "pass bytes, a path or a seekable blocking file"
        )
    if not isinstance(source, bytes | bytearray | memoryview | os.PathLike):
        await _rewind(upload)  # as for every reading: from where the first one started
    return await anyio.to_thread.run_sync(_spool_blocking, step, spools)


def _spool_blocking(step: Spool, spools: list[IO[bytes]]) -> Spooled:
    file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the driver
    spools.append(file)
    tally = spool_pieces(step, _blocking_chunks(step.upload), file.write, CPUS)
    file.seek(0)
    return tally.spooled(file)


def _blocking_chunks(upload: Upload) -> Generator[bytes | memoryview, None, None]:
    """The payload's chunks as :func:`aiter_source` reads them, in the calling (worker)
    thread: bytes, a path, or a blocking file from where :func:`_rewind` left it."""
    source = upload.source
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), UPLOAD_CHUNK):
            yield view[start : start + UPLOAD_CHUNK]
        return
    if isinstance(source, os.PathLike):
        with open(os.fspath(source), "rb") as opened:
            while data := opened.read(UPLOAD_CHUNK):
                yield data
        return
    file = cast(IO[bytes], source)
    while chunk := _check_chunk(file.read(UPLOAD_CHUNK)):
        yield chunk


async def read_at(source: object, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes of a path from ``offset``, or the next ``size`` of a file.

    A managed upload reads its parts in order, so a file is simply read on
    from where the previous part ended. Blocking reads run in a worker thread.
    """
    if isinstance(source, os.PathLike):

        def from_path() -> bytes:
            with open(os.fspath(source), "rb") as file:  # buffered: short only at the end
                file.seek(offset)
                return _check_chunk(file.read(size))

        return await anyio.to_thread.run_sync(from_path)
    read = source.read  # type: ignore[attr-defined]
    blocking = not inspect.iscoroutinefunction(read)
    pieces = []
    left = size
    while left > 0:
        # A blocking read in a worker thread: one hop per read (a short read takes more).
        result = await (anyio.to_thread.run_sync(read, left) if blocking else read(left))
        if not (chunk := _check_chunk(await maybe_await(result))):
            break
        pieces.append(chunk)
        left -= len(chunk)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


async def compress_part(step: CompressPart) -> bytes:
    """Perform a :class:`CompressPart` step: the part read and compressed in one
    worker-thread call, the event loop free meanwhile."""
    return await anyio.to_thread.run_sync(_compress_part, step)


def _compress_part(step: CompressPart) -> bytes:
    with open(os.fspath(step.source), "rb", buffering=0) as file:
        file.seek(step.offset)
        return step.run(file.readinto)


async def _aiter_range(upload: Upload, offset: int, length: int) -> AsyncGenerator[bytes, None]:
    """``length`` bytes of the payload from ``offset`` (an append of PROTOCOL §14.1)."""
    source = upload.source
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")[offset : offset + length]
        for start in range(0, len(view), UPLOAD_CHUNK):
            yield bytes(view[start : start + UPLOAD_CHUNK])
        return
    if isinstance(source, os.PathLike):
        async with await anyio.open_file(os.fspath(source), "rb") as opened:
            await opened.seek(offset)
            left = length
            while left > 0 and (data := await opened.read(min(UPLOAD_CHUNK, left))):
                left -= len(data)
                yield data
        return
    await _rewind(upload)
    begin = upload.replay.start
    if begin is None or not _seekable_reader(source):
        raise ValueError(f"cannot read {source!r:.60} from offset {offset}: it is not seekable")
    file = cast(IO[bytes], source)
    await anyio.to_thread.run_sync(file.seek, begin + offset)
    left = length
    while left > 0:
        data = _check_chunk(await anyio.to_thread.run_sync(file.read, min(UPLOAD_CHUNK, left)))
        if not data:
            return
        left -= len(data)
        yield data


async def aiter_upload(upload: Upload) -> AsyncIterator[bytes]:
    """The request body: the payload, zstd-encoded on the fly when asked (PROTOCOL §5).

    Paths, blocking files and bytes are read and compressed in a worker
    thread (see :func:`_encoded_in_thread`); other sources are compressed on
    the loop in pieces of at most 1 MiB, so one encoding step stays in the
    low milliseconds and the event loop is never starved for long.
    """
    if upload.length is not None:  # exactly ``length`` bytes, as announced (PROTOCOL §9.2)
        check = LengthCheck(upload.length)
        if upload.offset is None:
            source = aiter_source(upload)
        else:
            source = _aiter_range(upload, upload.offset, upload.length)
        async with contextlib.aclosing(source) as chunks:  # closed on a mismatch
            async for chunk in chunks:
                yield bytes(check.take(chunk))
        check.end()
        return
    if upload.compress and isinstance(upload.source, os.PathLike):
        file = await anyio.to_thread.run_sync(open, os.fspath(upload.source), "rb")
        try:
            async for out in _encoded_in_thread(upload, file):
                yield out
        finally:
            file.close()
        return
    if upload.compress and (
        upload.kind is PayloadKind.BYTES
        or (upload.kind is PayloadKind.FILE and _plain_reader(upload.source))
    ):
        async for out in _encoded_in_thread(upload):
            yield out
        return
    encoder = new_encoder() if upload.compress else None  # size unknown: one thread
    async for chunk in aiter_source(upload):
        out = encoder.encode(chunk) if encoder else chunk
        if out:
            yield out
    if encoder:
        yield encoder.finish()


async def _encoded_in_thread(
    upload: Upload, opened: IO[bytes] | None = None
) -> AsyncIterator[bytes]:
    """Read and compress a blocking file, bytes, or a path's ``opened`` file, in
    worker-thread calls when it pays.

    Reading and zstd both release the GIL. Compressible data costs
    milliseconds per piece, so each piece is read and compressed in one
    worker-thread call and the event loop stays free. Incompressible data is
    stored by zstd nearly as is, in well under a millisecond per piece,
    faster than a thread round trip: it is encoded on the loop. The encoder
    and the choice are made in a worker thread with the first piece in hand
    (see :func:`objectstore_core.new_encoder`), the file measured there too.
    """
    file = opened
    if upload.kind is PayloadKind.FILE:
        await _rewind(upload)
        file = cast(IO[bytes], upload.source)
    if file is not None:
        read = file.read

        def next_piece() -> bytes | memoryview:
            return _check_chunk(read(UPLOAD_CHUNK))

    else:
        view = memoryview(cast(bytes, upload.source)).cast("B")
        offsets = iter(range(0, len(view), UPLOAD_CHUNK))

        def next_piece() -> bytes | memoryview:
            start = next(offsets, len(view))
            return view[start : start + UPLOAD_CHUNK]  # no copy: the encoder takes buffers

    def begin() -> tuple[bytes | memoryview, ZstdEncoder, bool]:
        first = next_piece()
        size = upload_size(upload, None if file is None else _file_size(file))
        return first, new_encoder(size, first, cpus=CPUS), compressible(first)

    first, encoder, threaded = await anyio.to_thread.run_sync(begin)

    def step(piece: bytes | memoryview | None = None) -> tuple[bytes, bool]:
        piece = next_piece() if piece is None else piece
        if not piece:
            return encoder.finish(), True
        return encoder.encode(piece), False

    out, done = await anyio.to_thread.run_sync(step, first) if threaded else step(first)
    while True:
        if out:
            yield out
        if done:
            return
        if threaded:
            out, done = await anyio.to_thread.run_sync(step)
        elif file is not None:
            piece = await anyio.to_thread.run_sync(next_piece)
            out, done = step(piece)
        else:
            out, done = step()


def _file_size(file: IO[bytes]) -> int | None:
    """What ``fstat`` says an open file holds (no data is read); None if it cannot tell.

    Only a measurement, taken in a worker thread beside the first read (as
    the sync twin takes it in the calling thread):
    :func:`objectstore_core.upload_size` decides what it means (less the
    start position; unknown for pipes).
    """
    try:
        return os.fstat(file.fileno()).st_size
    except (OSError, ValueError, AttributeError, TypeError):  # BytesIO, wrapped, closed
        return None


def _plain_reader(source: object) -> bool:
    """True for a blocking file object (``open()``, ``BytesIO``, ...), not an async one."""
    return isinstance(source, io.IOBase)


_SEEKING = ("read", "seek", "tell", "seekable")


def _seekable_reader(source: object) -> bool:
    """True for a blocking reader that may seek: a file object, or any object whose
    ``read``, ``seek``, ``tell`` and ``seekable`` are plain (not coroutine) methods."""
    if _plain_reader(source):
        return True
    methods = [getattr(source, name, None) for name in _SEEKING]
    return all(callable(m) and not inspect.iscoroutinefunction(m) for m in methods)
