"""The sync driver: runs a core flow, doing its I/O, its waits and its compression."""

from __future__ import annotations

import time
from typing import TypeVar

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
from objectstore_sync._sources import CPUS, measure
from objectstore_sync._transport import RawBody, SyncTransport

__all__ = ["drive"]

T = TypeVar("T")


def drive(
    flow: Flow[T], transport: SyncTransport, contexts: ZstdContexts | None = None
) -> tuple[T, RawBody | None]:
    """Run ``flow`` to completion; return its value and the body it left open, if any.

    Only the response of the last request can stay open (a streaming GET); it
    is closed if the flow fails or sends another request. A :class:`Compress`
    step runs in the calling thread (the caller is blocked either way), with
    the client's idle zstd ``contexts``.
    """
    held: RawBody | None = None
    try:
        step = next(flow)
        while True:
            reply: Response | float | bytes | None = None
            if isinstance(step, SendRequest):  # the usual step first
                if held is not None:
                    held.close()
                    held = None
                try:
                    reply, held = transport.send(step.prepare(time.time()))
                except ObjectstoreError as error:
                    step = flow.throw(error)  # the flow decides: retry, or fail with context
                    continue
            elif isinstance(step, Compress):  # the first step of most puts
                reply = step.run(CPUS, contexts)
            elif isinstance(step, Sleep):
                time.sleep(step.seconds)
            elif isinstance(step, Clock):
                reply = time.monotonic()
            elif isinstance(step, Measure):  # before a resumable upload (PROTOCOL §14.1)
                reply = measure(step.source)
            else:  # pragma: no cover - flow contract
                raise TypeError(f"flow yielded {step!r}")
            step = flow.send(reply)
    except StopIteration as done:
        return done.value, held
    except BaseException:
        if held is not None:
            held.close()
        raise
