"""The async driver: runs a core flow, awaiting its I/O, its waits and its compression."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import IO, Any, TypeVar

import anyio
import anyio.to_thread

from objectstore_async._sources import CPUS, compress_part, measure, read_at, spool
from objectstore_async._transport import AsyncRawBody, AsyncTransport
from objectstore_core import (
    Clock,
    Compress,
    Flow,
    Join,
    Joined,
    Measure,
    ObjectstoreError,
    ReadAt,
    ReadBody,
    Response,
    SendRequest,
    Sleep,
    Spawn,
    WriteAt,
    ZstdContexts,
    compressible,
)
from objectstore_core._http import Spool, Spooled
from objectstore_core._transfer import CompressPart

__all__ = ["QUICK_MAX", "QUICK_SAMPLE", "THREAD_MIN", "adrive"]

T = TypeVar("T")

THREAD_MIN = 64 * 1024
"""Payloads of at least this many bytes are compressed in a worker thread, smaller ones
on the event loop.

Where a worker thread starts to pay: ``benchmarks/compress_threshold.py``
measured a round trip through ``anyio.to_thread.run_sync`` at 127-176 µs
under asyncio (157-239 µs under trio) on a 2-CPU machine, and a JSON-like
64 KiB payload compressing in 179-242 µs (16 KiB: 44-89 µs; 1 KiB puts a few
µs). Below 64 KiB, compressing on the loop takes less time than the hop
would add to the put; from 64 KiB on, the loop stays free while it runs.
"""

QUICK_MAX = 1024 * 1024
QUICK_SAMPLE = 4 * 1024
"""Incompressible payloads of up to ``QUICK_MAX`` bytes are compressed on the loop too,
judged by zstd on their first ``QUICK_SAMPLE`` bytes (a few µs).

zstd stores such data nearly as is, several times faster than it compresses
text: 1 MiB of it takes about as long as one of the streamed path's pieces
(see ``_sources``), which run on the loop as well, and less than the trip
through a worker thread adds (the "upload 1 MiB random" row of
``python benchmarks/run.py``). A payload that only begins incompressible
compresses on the loop for longer (a few ms for 1 MiB of JSON-like text).
"""


async def adrive(
    flow: Flow[T],
    transport: AsyncTransport,
    contexts: ZstdContexts | None = None,
    sink: Callable[[int | None, bytes], Awaitable[object]] | None = None,
) -> tuple[T, AsyncRawBody | None]:
    """Run ``flow`` to completion; return its value and the body it left open, if any.

    ``await sink(offset, data)`` performs a managed download's :class:`WriteAt`
    steps, one at a time.

    Only the response of the last request can stay open (a streaming GET); it
    is closed if the flow fails, is cancelled, or sends another request. A
    :class:`Compress` step uses the client's idle zstd ``contexts``. A
    :class:`Spool` step's temporary file is closed (and so deleted) when the
    flow ends, whatever the outcome.
    """
    held: AsyncRawBody | None = None
    spawned: _Spawned | None = None
    spools: list[IO[bytes]] = []
    try:
        step = next(flow)
        while True:
            reply: Response | float | bytes | Joined | Spooled | None = None
            if isinstance(step, SendRequest):  # the usual step first
                if held is not None:
                    await held.aclose()
                    held = None
                try:
                    reply, held = await transport.send(step.prepare(time.time()))
                except ObjectstoreError as error:
                    step = flow.throw(error)  # the flow decides: retry, or fail with context
                    continue
            elif isinstance(step, Compress):  # on the loop when quick (see THREAD_MIN)
                if step.size < THREAD_MIN or (
                    step.size <= QUICK_MAX and not compressible(step.data, QUICK_SAMPLE)
                ):
                    reply = step.run(CPUS, contexts)
                else:
                    reply = await anyio.to_thread.run_sync(step.run, CPUS, contexts)
            elif isinstance(step, Sleep):
                await anyio.sleep(step.seconds)
            elif isinstance(step, Clock):
                reply = time.monotonic()
            elif isinstance(step, ReadBody):  # a batch response, part by part
                try:
                    reply = bytes(await held.read()) if held is not None and not held.done else b""
                except ObjectstoreError as error:
                    step = flow.throw(error)
                    continue
            elif isinstance(step, Measure):  # before a resumable upload (PROTOCOL §14.1)
                reply = await measure(step.source)
            elif isinstance(step, ReadAt):  # the next part of a managed upload
                reply = await read_at(step.source, step.offset, step.size)
            elif isinstance(step, CompressPart):  # a part of a managed upload of a path
                try:
                    reply = await compress_part(step)
                except Exception as error:
                    step = flow.throw(error)
                    continue
            elif isinstance(step, Spawn):
                if spawned is None:
                    spawned = _Spawned(transport, contexts)
                    await spawned.open()
                spawned.spawn(step)
            elif isinstance(step, Join):
                assert spawned is not None, "Join without Spawn"
                reply = await spawned.join()
            elif isinstance(step, WriteAt):  # a managed download's bytes, in order
                assert sink is not None, "WriteAt without a destination"
                try:
                    await sink(step.offset, step.data)
                except Exception as error:
                    step = flow.throw(error)
                    continue
            elif isinstance(step, Spool):  # a compressed resumable upload (PROTOCOL §14.1)
                try:
                    reply = await spool(step, spools)
                except Exception as error:
                    step = flow.throw(error)
                    continue
            else:  # pragma: no cover - flow contract
                raise TypeError(f"flow yielded {step!r}")
            step = flow.send(reply)
    except StopIteration as done:
        if spawned is not None:
            await spawned.close(None)
        return done.value, held
    except BaseException as exc:
        if held is not None:
            with anyio.CancelScope(shield=True):
                await held.aclose()
        if spawned is not None:
            await spawned.close(exc)
        raise
    finally:
        for file in spools:  # the spooled payload is of no use once the flow ended
            file.close()


class _Spawned:
    """The flows a flow spawned, each driven in a task of one task group."""

    def __init__(self, transport: AsyncTransport, contexts: ZstdContexts | None) -> None:
        self._transport = transport
        self._contexts = contexts
        self._group = anyio.create_task_group()
        self._send, self._receive = anyio.create_memory_object_stream[Joined](math.inf)

    async def open(self) -> None:
        await self._group.__aenter__()

    def spawn(self, step: Spawn) -> None:
        self._group.start_soon(self._run, step)

    async def _run(self, step: Spawn) -> None:
        flow: Flow[Any] = step.flow  # type: ignore[assignment]
        try:
            value, held = await adrive(flow, self._transport, self._contexts)
            if held is not None:  # pragma: no cover - spawned flows leave no body open
                await held.aclose()
            joined = Joined(step.tag, value)
        except Exception as exc:
            joined = Joined(step.tag, error=exc)
        self._send.send_nowait(joined)

    async def join(self) -> Joined:
        return await self._receive.receive()

    async def close(self, exc: BaseException | None) -> None:
        """Wait for what still runs; when the flow failed or was cancelled, cancel it.

        The flow's own exception is re-raised by the caller; the group only
        absorbs the cancellation it was given.
        """
        try:
            if exc is not None:
                self._group.cancel_scope.cancel()
            await self._group.__aexit__(None, None, None)
        finally:
            self._send.close()
            self._receive.close()
