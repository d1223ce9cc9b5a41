"""Reading the caller's payload for an upload: the sync half of :class:`Upload`.

The core decides what a payload is (:func:`objectstore_core.classify_payload`);
this module does the reading, lazily and in bounded chunks, so a payload of
any size is streamed and never held whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from objectstore_core import PayloadKind, Upload, new_encoder

__all__ = ["CHUNK_SIZE", "iter_source", "iter_upload"]

CHUNK_SIZE = 1024 * 1024


def _check_chunk(chunk: object) -> bytes | bytearray | memoryview:
    if isinstance(chunk, bytes | bytearray | memoryview):
        return chunk
    raise TypeError(
        f"upload payload produced {type(chunk).__name__} {chunk!r:.40}: chunks must be bytes"
    )


def _rewind(upload: Upload) -> None:
    """Prepare a file payload for one attempt: every attempt starts where the first did.

    The first attempt notes the position of a seekable file with ``tell()``
    (nothing is read); later ones seek back there. ``replay.started`` tells
    the core's retry decision that the payload was touched (see
    :func:`objectstore_core._retry.body_replayable`).
    """
    replay = upload.replay
    source = upload.source
    if replay.start is not None:
        source.seek(replay.start)
    elif not replay.started:
        replay.start = _start_position(source)
    replay.started = True


def _start_position(source: object) -> int | None:
    seekable = getattr(source, "seekable", None)
    try:
        if callable(seekable) and seekable():
            position = source.tell()  # type: ignore[attr-defined]
            return position if isinstance(position, int) else None
    except (OSError, ValueError):  # e.g. a pipe that claims to seek, or a closed file
        return None
    return None


def iter_source(upload: Upload) -> Iterator[bytes | bytearray | memoryview]:
    """The raw chunks of the caller's payload, read lazily (files from their start position)."""
    source = upload.source
    kind = upload.kind
    if kind is PayloadKind.BYTES:
        view = memoryview(source).cast("B")
        for start in range(0, len(view), CHUNK_SIZE):
            yield view[start : start + CHUNK_SIZE]
    elif kind is PayloadKind.PATH:
        with open(os.fspath(source), "rb") as file:
            while data := file.read(CHUNK_SIZE):
                yield data
    elif kind is PayloadKind.FILE:
        _rewind(upload)
        while chunk := _check_chunk(source.read(CHUNK_SIZE)):
            yield chunk
    elif kind is PayloadKind.ITERABLE:
        upload.replay.started = True  # one-shot: never sent twice once touched
        for chunk in source:
            yield _check_chunk(chunk)
    else:
        raise TypeError(
            f"cannot upload {type(source).__name__} with the sync client: "
            "async iterables need objectstore_async"
        )


def iter_upload(upload: Upload) -> Iterator[bytes | bytearray | memoryview]:
    """The request body: the payload, zstd-encoded on the fly when asked (PROTOCOL §5)."""
    if not upload.compress:
        yield from iter_source(upload)
        return
    chunks = iter_source(upload)
    first = next(chunks, b"")
    encoder = new_encoder(upload, first)  # sized by the payload and its first piece
    if out := encoder.encode(first):
        yield out
    for chunk in chunks:
        if out := encoder.encode(chunk):
            yield out
    yield encoder.finish()
