"""The async driver: runs a core flow, awaiting its I/O, its waits and its compression."""

from __future__ import annotations

import time
from typing import TypeVar

import anyio
import anyio.to_thread

from objectstore_async._sources import CPUS, measure
from objectstore_async._transport import AsyncRawBody, AsyncTransport
from objectstore_core import (
    Clock,
    Compress,
    Flow,
    Measure,
    ObjectstoreError,
    Response,
    SendRequest,
    Sleep,
    ZstdContexts,
)

__all__ = ["THREAD_MIN", "adrive"]

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


async def adrive(
    flow: Flow[T], transport: AsyncTransport, contexts: ZstdContexts | None = None
) -> tuple[T, AsyncRawBody | None]:
    """Run ``flow`` to completion; return its value and the body it left open, if any.

    Only the response of the last request can stay open (a streaming GET); it
    is closed if the flow fails, is cancelled, or sends another request. A
    :class:`Compress` step uses the client's idle zstd ``contexts``.
    """
    held: AsyncRawBody | None = None
    try:
        step = next(flow)
        while True:
            reply: Response | float | bytes | None = None
            if isinstance(step, SendRequest):  # the usual step first
                if held is not None:
                    await held.aclose()
                    held = None
                try:
                    reply, held = await transport.send(step.prepare(time.time()))
                except ObjectstoreError as error:
                    step = flow.throw(error)  # the flow decides: retry, or fail with context
                    continue
            elif isinstance(step, Compress):  # on the loop when small (see THREAD_MIN)
                if step.size < THREAD_MIN:
                    reply = step.run(CPUS, contexts)
                else:
                    reply = await anyio.to_thread.run_sync(step.run, CPUS, contexts)
            elif isinstance(step, Sleep):
                await anyio.sleep(step.seconds)
            elif isinstance(step, Clock):
                reply = time.monotonic()
            elif isinstance(step, Measure):  # before a resumable upload (PROTOCOL §14.1)
                reply = await measure(step.source)
            else:  # pragma: no cover - flow contract
                raise TypeError(f"flow yielded {step!r}")
            step = flow.send(reply)
    except StopIteration as done:
        return done.value, held
    except BaseException:
        if held is not None:
            with anyio.CancelScope(shield=True):
                await held.aclose()
        raise
