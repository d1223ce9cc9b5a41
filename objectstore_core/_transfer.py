"""Managed transfers (API §4): uploads split into parts sent side by side, and downloads.

:func:`upload_flow` keeps up to ``concurrency`` part uploads running at once
(:class:`Spawn`, :class:`Join`); each part is compressed as its own zstd
frame (concatenated frames read back as one zstd stream, PROTOCOL §5) in the
flow that uploads it, and retried by the client's retry policy like any PUT
of bytes. A part of a path is read where it is compressed, into a buffer
reused from part to part (:class:`CompressPart`), so its raw bytes are never
copied or allocated again; a part of a file object is read in order by the
upload's own flow (:class:`ReadAt`), then compressed (:class:`Compress`).
When every part is stored the upload is completed; when one fails for good
the others are waited for and the upload is aborted, leaving no object and
no open upload behind. Sources that fit in one part, and sources of unknown
size, take the single-request path of ``put``.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import secrets
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeAlias

from objectstore_core._codec import compress, zstd_plan
from objectstore_core._download import Download
from objectstore_core._errors import IntegrityError, ObjectNotFound, ObjectstoreError
from objectstore_core._http import (
    Compress,
    Flow,
    Join,
    Joined,
    Measure,
    Payload,
    PayloadKind,
    ReadAt,
    ReadBody,
    Response,
    Spawn,
    Spooled,
    Step,
    WriteAt,
    classify_payload,
    read_clock,
    relayed,
)
from objectstore_core._metadata import Metadata
from objectstore_core._metered import measured_transfer
from objectstore_core._metrics import meter_for
from objectstore_core._models import Compression, ExpirationPolicy
from objectstore_core._multipart import CompletePart, MultipartFlows, initiate_multipart_flow
from objectstore_core._operations import (
    GetOutcome,
    get_flow,
    head_flow,
    put_flow,
    resolve_compression,
)
from objectstore_core._paths import Target, validate_key
from objectstore_core._timeout import Timeout

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "CompressPart",
    "DownloadTarget",
    "PartBuffers",
    "Progress",
    "check_unchanged",
    "download_flow",
    "not_found",
    "plan_ranges",
    "upload_flow",
    "validate_download",
]

MIN_PART_SIZE = 5 * 1024 * 1024
"""The smallest part the production store accepts, but for the last (PROTOCOL §9.2)."""

DEFAULT_PART_SIZE = 16 * 1024 * 1024
WRITE_SIZE = 4 * 1024 * 1024
"""A streamed download writes its destination in pieces of about this size."""
DEFAULT_CONCURRENCY = 4

Progress = Callable[[int, "int | None"], object]
"""``progress(done_bytes, total_bytes_or_None)``, called as bytes move."""


def validate_transfer(part_size: object, concurrency: object, progress: object) -> None:
    """Raise ValueError/TypeError for bad managed-transfer settings (before any I/O)."""
    if isinstance(part_size, bool) or not isinstance(part_size, int) or part_size < MIN_PART_SIZE:
        raise ValueError(
            f"part_size={part_size!r} is invalid: use a byte count of at least {MIN_PART_SIZE} "
            "(5 MiB, the store's minimum part size)"
        )
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r} is invalid: use an integer >= 1")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress={progress!r} must be callable as progress(done, total)")


def upload_flow(
    target: Target,
    source: Payload,
    key: str | None = None,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
    compress: Compression | None = None,
    content_type: str | None = None,
    metadata: Mapping[str, str] | None = None,
    expiration_policy: ExpirationPolicy | None = None,
    origin: str | None = None,
    filename: str | None = None,
    timeout: Timeout | None = None,
) -> Flow[str]:
    """Upload ``source`` (bytes, a path or a binary file) as one object; returns its key."""
    validate_transfer(part_size, concurrency, progress)
    if isinstance(source, str):
        source = source.encode("utf-8")
    kind = classify_payload(source)
    do_compress, encoding = resolve_compression(target, compress, None, None)
    options = {
        "content_type": content_type,
        "metadata": metadata,
        "expiration_policy": expiration_policy,
        "origin": origin,
        "filename": filename,
    }
    # Both are built now, so their arguments are validated before any I/O.
    single = put_flow(target, source, key, compress=compress, timeout=timeout, **options)  # type: ignore[arg-type]
    flow: Flow[str]
    if kind in (PayloadKind.ITERABLE, PayloadKind.ASYNC_ITERABLE):
        flow = single  # of unknown size: one streamed request
    else:
        initiate = initiate_multipart_flow(
            target,
            key=key,
            compression=encoding or "none",
            timeout=timeout,
            **options,  # type: ignore[arg-type]
        )
        plan = _Plan(source, part_size, concurrency, progress, do_compress, timeout)
        flow = _upload_steps(plan, single, initiate)
    # One storage.upload.* set for the whole upload; its requests (a put, or the
    # multipart calls) report their own.
    meter = meter_for(target, "upload")
    if meter is None:
        return flow
    total = None
    if isinstance(source, bytes | bytearray | memoryview):
        total = memoryview(source).nbytes
    return measured_transfer(flow, meter, total=total)


class PartBuffers:
    """The read buffers of one managed upload's parts, each reused from part to part.

    A part of a path is read into a buffer taken here and handed back once
    it is compressed, so an upload holds at most one buffer per part being
    compressed at once (never more than ``concurrency``), not one per part:
    no fresh pages to fault in for every part. The buffers are anonymous
    memory maps, not heap objects, so :meth:`close` gives their memory back
    to the system at once, whatever the allocator made of the heap
    meanwhile. Parts are compressed in several threads at once;
    ``list.pop`` and ``list.append`` are atomic, so the threads may share
    the idle list.
    """

    __slots__ = ("_closed", "_idle", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[mmap.mmap] = []
        self._closed = False

    def take(self) -> mmap.mmap:
        try:
            return self._idle.pop()
        except IndexError:
            return mmap.mmap(-1, self.size)

    def give(self, buffer: mmap.mmap) -> None:
        if self._closed:
            buffer.close()  # handed back after the upload ended (a cancelled part)
        else:
            self._idle.append(buffer)

    def close(self) -> None:
        """Unmap the idle buffers; any handed back later is unmapped then."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()


@dataclass(frozen=True, slots=True)
class CompressPart:
    """Flow step: part ``offset``/``size`` of the path ``source`` as one zstd frame; the
    driver sends back the frame.

    The twin opens the path and calls :meth:`run` with the opened file's
    ``readinto`` where a part may block and use a core: the sync twin in the
    thread driving the part, the async twin in one worker-thread call. The
    part is read into one of ``buffers`` and compressed there (level 3 with a
    checksum, in the calling thread only: parts compress side by side, one
    per core, and libzstd workers would add memory, not speed).
    """

    source: os.PathLike[str]
    offset: int
    size: int
    buffers: PartBuffers

    def run(self, readinto: Callable[[memoryview], int | None]) -> bytes:
        """Fill a buffer by ``readinto`` (the file positioned at :attr:`offset`) and return
        its frame; IntegrityError when the file ends before the part does."""
        buffer = self.buffers.take()
        try:
            with memoryview(buffer) as whole, whole[: self.size] as view:
                got = 0
                while got < self.size:
                    with view[got:] as rest:
                        count = readinto(rest)
                    if not count:
                        raise _source_changed(self.offset, got, self.size)
                    got += count
                return compress(view, zstd_plan(self.size, view, 1)[0], threads=0)
        finally:
            self.buffers.give(buffer)


PartStep: TypeAlias = Step | CompressPart
PartFlow: TypeAlias = Generator[
    PartStep, Response | float | bytes | Joined | Spooled | None, CompletePart
]
"""The flow of one part: the steps of any flow, and :class:`CompressPart`."""


class _Plan:
    __slots__ = (
        "buffers",
        "compress",
        "concurrency",
        "part_size",
        "progress",
        "source",
        "timeout",
    )

    def __init__(
        self,
        source: Payload,
        part_size: int,
        concurrency: int,
        progress: Progress | None,
        compress: bool,
        timeout: Timeout | None,
    ) -> None:
        self.source = source
        self.part_size = part_size
        self.concurrency = concurrency
        self.progress = progress
        self.compress = compress
        self.timeout = timeout
        self.buffers = PartBuffers(part_size)


def _upload_steps(plan: _Plan, single: Flow[str], initiate: Flow[MultipartFlows]) -> Flow[str]:
    source = plan.source
    if isinstance(source, bytes | bytearray | memoryview):
        total: int | None = memoryview(source).nbytes
    else:
        measured = yield Measure(source)
        total = measured if isinstance(measured, int) else None
    if total is None or total <= plan.part_size:
        single_key = yield from single  # one request is best where it suffices
        if plan.progress is not None:
            plan.progress(total or 0, total)
        return single_key
    single.close()
    upload = yield from initiate
    try:
        try:
            parts = yield from _parts(plan, upload, total)
        finally:
            plan.buffers.close()
        return (yield from upload.complete(parts, timeout=plan.timeout))
    except Exception:
        with contextlib.suppress(ObjectstoreError):  # the original error wins
            yield from upload.abort(timeout=plan.timeout)  # no open upload left behind (§9.5)
        raise


def _source_changed(offset: int, got: object, size: int) -> IntegrityError:
    return IntegrityError(
        f"the source changed while it was uploaded: part at offset {offset} has {got!r} "
        f"bytes, expected {size}"
    )


def _read_exactly(source: Payload, offset: int, size: int) -> Flow[bytes]:
    data = yield ReadAt(source, offset, size)
    if not isinstance(data, bytes) or len(data) != size:
        raise _source_changed(offset, len(data) if isinstance(data, bytes) else data, size)
    return data


def _put_part(
    plan: _Plan, upload: MultipartFlows, number: int, offset: int, size: int, body: object
) -> PartFlow:
    """Read the part (unless the upload's flow read it: ``body``), compress it when the
    upload compresses, and upload it."""
    source = plan.source
    if body is None and isinstance(source, bytes | bytearray | memoryview):
        body = memoryview(source).cast("B")[offset : offset + size]  # no copy
    if body is None and isinstance(source, os.PathLike):
        if plan.compress:
            body = yield CompressPart(source, offset, size, plan.buffers)
        else:
            body = yield from _read_exactly(source, offset, size)
    elif plan.compress:
        assert isinstance(body, bytes | memoryview)
        body = yield Compress(body, size, alone=True)
    if not isinstance(body, bytes | memoryview):  # pragma: no cover - driver contract
        raise TypeError(f"driver sent {body!r:.60} for a part")
    flow = upload.put_part(body, part_number=number, content_length=len(body), timeout=plan.timeout)
    return (yield from flow)


def _parts(plan: _Plan, upload: MultipartFlows, total: int) -> Flow[list[CompletePart]]:
    """Upload every part, at most ``concurrency`` at once; the parts stored, in order.

    Bytes and paths are read by the part's own flow, side by side; a file
    object is read here, in order (it has one position), one part at a time.
    """
    in_order = not isinstance(plan.source, bytes | bytearray | memoryview | os.PathLike)
    sizes: dict[int, int] = {}  # in flight: part number -> raw bytes
    stored: list[CompletePart] = []
    failure: BaseException | None = None
    offset, number, done = 0, 0, 0
    if plan.progress is not None:
        plan.progress(0, total)
    while True:
        while offset < total and len(sizes) < plan.concurrency and failure is None:
            size = min(plan.part_size, total - offset)
            body = None
            if in_order:
                try:
                    body = yield from _read_exactly(plan.source, offset, size)
                except Exception as exc:  # let the parts in flight finish, then abort
                    failure = exc
                    break
            number += 1
            step = Spawn(_put_part(plan, upload, number, offset, size, body), number)  # type: ignore[arg-type]
            del body  # the spawned flow holds the part; none is kept here meanwhile
            yield step
            del step
            sizes[number] = size
            offset += size
        if not sizes:
            break
        joined = yield Join()
        if not isinstance(joined, Joined):  # pragma: no cover - driver contract
            raise TypeError(f"driver sent {joined!r} for a Join step")
        size = sizes.pop(joined.tag)
        if joined.error is not None:
            failure = failure or joined.error  # let the others finish, then abort
            continue
        assert isinstance(joined.value, CompletePart)
        stored.append(joined.value)
        done += size
        if plan.progress is not None:
            plan.progress(done, total)
    if failure is not None:
        raise failure
    return sorted(stored, key=lambda part: part.part_number)


# ---------------------------------------------------------------- downloads


class DownloadTarget:
    """Where a managed download goes, decided without I/O; the twin opens and writes.

    A path ``dest`` is written to :attr:`temp`, a new file beside it (created
    exclusively with :attr:`TEMP_FLAGS` and :attr:`TEMP_MODE`, so its mode is
    what the umask gives), renamed to :attr:`final` when the download is
    complete and removed when it fails; a missing directory is
    :meth:`missing_directory`, naming the user's path, never the temp file.
    A file object is written from where it stood (:attr:`start`, when it
    can seek) and flushed at the end.
    """

    TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    TEMP_MODE = 0o666

    __slots__ = ("final", "start", "temp")

    def __init__(self, dest: str | os.PathLike[str] | IO[bytes]) -> None:
        self.start = 0
        self.final: Path | None = None
        self.temp: Path | None = None
        if isinstance(dest, str | os.PathLike):
            self.final = Path(dest)
            self.temp = self.final.parent / f".{self.final.name}.{secrets.token_hex(4)}.part"

    def missing_directory(self) -> FileNotFoundError:
        directory = "" if self.final is None else str(self.final.parent)
        return FileNotFoundError(
            errno.ENOENT, "the destination directory does not exist", directory
        )

    def position(self, offset: int | None) -> int | None:
        """Where to seek before writing the bytes of ``offset`` (None: write on)."""
        return None if offset is None else self.start + offset


def validate_download(dest: object, concurrency: object, progress: object) -> None:
    """Raise ValueError/TypeError for bad ``download`` arguments (before any I/O)."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r} is invalid: use an integer >= 1")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress={progress!r} must be callable as progress(done, total)")
    if not isinstance(dest, str | os.PathLike) and not callable(getattr(dest, "write", None)):
        raise TypeError(f"dest={dest!r:.80} must be a path or a binary file opened for writing")


def plan_ranges(
    metadata: Metadata, concurrency: int, part_size: int | None = None
) -> list[tuple[int, int]] | None:
    """The inclusive byte ranges of a parallel download, or None for one streamed GET.

    Ranges address stored bytes and are never decompressed (PROTOCOL §6), so
    only an object stored raw, of a known size above one part, is split.
    """
    size = metadata.size
    part_size = part_size or DEFAULT_PART_SIZE
    if concurrency < 2 or metadata.compression is not None or size is None or size <= part_size:
        return None
    return [(first, min(first + part_size, size) - 1) for first in range(0, size, part_size)]


def check_unchanged(expected: Metadata, seen: Metadata, key: str) -> None:
    """Raise IntegrityError when a range came from another version of the object."""
    if (seen.size, seen.time_created) != (expected.size, expected.time_created):
        raise IntegrityError(
            f"object {key!r} changed during the download: size {expected.size} created "
            f"{expected.time_created} became size {seen.size} created {seen.time_created}"
        ).with_context(operation="download", key=key)


def not_found(key: str) -> ObjectNotFound:
    """The error of a download of a missing object."""
    error = ObjectNotFound(f"download failed: object {key!r} does not exist", 404, None)
    error.with_context(operation="download", key=key)
    return error


def download_flow(
    target: Target,
    key: str,
    *,
    concurrency: int = 1,
    seekable: bool = False,
    progress: Progress | None = None,
) -> Flow[Metadata]:
    """Fetch object ``key`` into the twin's destination (:class:`WriteAt` steps); its metadata.

    With ``concurrency > 1``, a ``seekable`` destination and an object
    stored raw of more than one part (:func:`plan_ranges`), byte ranges are
    fetched side by side (:class:`Spawn`, at most ``concurrency`` at once),
    each checked to come from the version the first head saw; otherwise one
    get streams the (decoded) body in order. ``progress(done, total)`` is
    called from the flow as bytes are written (``total``: None while a
    compressed object's decoded size is unknown). A missing object raises
    ObjectNotFound. Reported as one ``storage.download.*`` set (the bytes
    written), besides the metrics of its own requests.
    """
    validate_key(key)
    flow = _download_steps(target, key, concurrency, seekable, progress)
    meter = meter_for(target, "download", key)
    if meter is None:
        return (yield from flow)
    meter.start = yield from read_clock()
    written = [0]
    try:
        metadata = yield from _counting(flow, written)
    except Exception as error:  # a file's OSError too; an interrupt records nothing
        meter.failed((yield from read_clock()), error)
        raise
    meter.record((yield from read_clock()), uncompressed=written[0])
    return metadata


def _counting(flow: Flow[Metadata], written: list[int]) -> Flow[Metadata]:
    """Relay ``flow``, adding up the bytes of its :class:`WriteAt` steps in ``written``."""

    def count(step: Step, reply: object) -> None:
        if isinstance(step, WriteAt):
            written[0] += len(step.data)

    return (yield from relayed(flow, after=count))


def _download_steps(
    target: Target, key: str, concurrency: int, seekable: bool, progress: Progress | None
) -> Flow[Metadata]:
    if concurrency > 1 and seekable:
        expected = yield from head_flow(target, key)
        if expected is None:
            raise not_found(key)
        ranges = plan_ranges(expected, concurrency)
        if ranges is not None:
            return (yield from _ranges(target, key, expected, ranges, concurrency, progress))
    outcome = yield from get_flow(target, key)
    if outcome is None:
        raise not_found(key)
    metadata = outcome.metadata
    total = metadata.size if metadata.compression is None else None
    done = 0
    pending: list[bytes] = []
    held = 0

    def flush() -> Flow[None]:
        nonlocal done, held
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        held = 0
        yield WriteAt(None, data)
        done += len(data)
        if progress is not None:
            progress(done, total)

    def write(piece: bytes) -> Flow[None]:
        # Decoded pieces are small (256 KiB); a write each would cost the async twin
        # a worker-thread hop each, so they go out a few MiB at a time.
        nonlocal held
        pending.append(piece)
        held += len(piece)
        if held >= WRITE_SIZE:
            yield from flush()

    yield from _read_body(outcome, write)
    if pending:
        yield from flush()
    return metadata


def _ranges(
    target: Target,
    key: str,
    expected: Metadata,
    ranges: list[tuple[int, int]],
    concurrency: int,
    progress: Progress | None,
) -> Flow[Metadata]:
    """Fetch ``ranges`` side by side, writing each where it belongs as it arrives."""
    pending = list(reversed(ranges))
    running = 0
    done, total = 0, expected.size
    failure: BaseException | None = None
    while True:
        while pending and running < concurrency and failure is None:
            first, last = pending.pop()
            yield Spawn(_range(target, key, expected, first, last), first)  # type: ignore[arg-type]
            running += 1
        if not running:
            break
        joined = yield Join()
        if not isinstance(joined, Joined):  # pragma: no cover - driver contract
            raise TypeError(f"driver sent {joined!r} for a Join step")
        running -= 1
        if joined.error is not None:
            failure = failure or joined.error  # let the others finish, then raise
            continue
        if failure is not None:
            continue
        data = joined.value
        assert isinstance(data, bytes)
        try:
            yield WriteAt(joined.tag, data)
        except Exception as error:  # the destination failed: stop, once the others end
            failure = error
            continue
        done += len(data)
        if progress is not None:
            progress(done, total)
    if failure is not None:
        raise failure
    return expected


def _range(target: Target, key: str, expected: Metadata, first: int, last: int) -> Flow[bytes]:
    """One range of a parallel download, read whole (its body is at most one part)."""
    outcome = yield from get_flow(target, key, byte_range=(first, last))
    if outcome is None:
        raise not_found(key)
    check_unchanged(expected, outcome.metadata, key)
    pieces: list[bytes] = []

    def keep(piece: bytes) -> Flow[None]:
        pieces.append(piece)
        return
        yield  # a flow that yields nothing

    yield from _read_body(outcome, keep)
    return b"".join(pieces)


def _read_body(outcome: GetOutcome, take: Callable[[bytes], Flow[None]]) -> Flow[None]:
    """Read the body ``outcome`` left open (:class:`ReadBody`), decoding it as a get's
    payload is decoded, and hand each piece to ``take``; its metrics and log line are
    settled at the end, or when it fails (with the error named by the get's context)."""
    download = outcome.download()
    try:
        while True:
            piece = download.read()
            if piece is None:
                raw = yield ReadBody()
                if not isinstance(raw, bytes):  # pragma: no cover - driver contract
                    raise TypeError(f"driver sent {raw!r} for a ReadBody step")
                download.feed(raw, last=not raw)
                continue
            if not piece:
                break
            yield from take(piece)
    except ObjectstoreError as error:
        annotated = download.annotate(error)
        yield from _settle(download)
        raise annotated from error.__cause__
    except Exception:  # the destination failed: the body is closed unfinished
        yield from _settle(download)
        raise
    yield from _settle(download)


def _settle(download: Download) -> Flow[None]:
    if download.unsettled:
        download.settle((yield from read_clock()))
