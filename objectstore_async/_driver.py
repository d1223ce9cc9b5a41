"""The async driver: runs a core flow, awaiting its I/O and its waits."""

from __future__ import annotations

import time
from typing import TypeVar

import anyio

from objectstore_async._transport import AsyncRawBody, AsyncTransport
from objectstore_core import Clock, Flow, ObjectstoreError, Response, SendRequest, Sleep

__all__ = ["adrive"]

T = TypeVar("T")


async def adrive(flow: Flow[T], transport: AsyncTransport) -> tuple[T, AsyncRawBody | None]:
    """Run ``flow`` to completion; return its value and the body it left open, if any.

    Only the response of the last request can stay open (a streaming GET); it
    is closed if the flow fails, is cancelled, or sends another request.
    """
    held: AsyncRawBody | None = None
    try:
        step = next(flow)
        while True:
            reply: Response | float | None = None
            if isinstance(step, SendRequest):  # the usual step first
                if held is not None:
                    await held.aclose()
                    held = None
                try:
                    reply, held = await transport.send(step.prepare(time.time()))
                except ObjectstoreError as error:
                    step = flow.throw(error)  # the flow decides: retry, or fail with context
                    continue
            elif isinstance(step, Sleep):
                await anyio.sleep(step.seconds)
            elif isinstance(step, Clock):
                reply = time.monotonic()
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
