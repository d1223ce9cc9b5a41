"""The sync driver: runs a core flow, doing its I/O, its waits and its compression."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from typing import IO, Any, TypeVar

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
)
from objectstore_core._http import Spool, Spooled
from objectstore_core._transfer import CompressPart
from objectstore_sync._sources import CPUS, compress_part, measure, read_at, spool
from objectstore_sync._transport import RawBody, SyncTransport

__all__ = ["drive"]

T = TypeVar("T")


def drive(
    flow: Flow[T],
    transport: SyncTransport,
    contexts: ZstdContexts | None = None,
    sink: Callable[[int | None, bytes], object] | None = None,
) -> tuple[T, RawBody | None]:
    """Run ``flow`` to completion; return its value and the body it left open, if any.

    ``sink(offset, data)`` performs a managed download's :class:`WriteAt` steps.

    Only the response of the last request can stay open (a streaming GET); it
    is closed if the flow fails or sends another request. A :class:`Compress`
    step runs in the calling thread (the caller is blocked either way), with
    the client's idle zstd ``contexts``. A :class:`Spool` step's temporary
    file is closed (and so deleted) when the flow ends, whatever the outcome.
    """
    held: RawBody | None = None
    spawned: _Spawned | None = None
    spools: list[IO[bytes]] = []
    try:
        step = next(flow)
        while True:
            reply: Response | float | bytes | Joined | Spooled | None = None
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
            elif isinstance(step, ReadBody):  # a batch response, part by part
                try:
                    reply = bytes(held.read()) if held is not None and not held.done else b""
                except ObjectstoreError as error:
                    step = flow.throw(error)
                    continue
            elif isinstance(step, Measure):  # before a resumable upload (PROTOCOL §14.1)
                reply = measure(step.source)
            elif isinstance(step, ReadAt):  # the next part of a managed upload
                reply = read_at(step.source, step.offset, step.size)
            elif isinstance(step, CompressPart):  # a part of a managed upload of a path
                try:
                    reply = compress_part(step)
                except Exception as error:
                    step = flow.throw(error)
                    continue
            elif isinstance(step, Spawn):
                spawned = spawned or _Spawned(transport, contexts)
                spawned.spawn(step)
            elif isinstance(step, Join):
                assert spawned is not None, "Join without Spawn"
                reply = spawned.join()
            elif isinstance(step, WriteAt):  # a managed download's bytes, in order
                assert sink is not None, "WriteAt without a destination"
                try:
                    sink(step.offset, step.data)
                except Exception as error:
                    step = flow.throw(error)
                    continue
            elif isinstance(step, Spool):  # a compressed resumable upload (PROTOCOL §14.1)
                try:
                    reply = spool(step, spools)
                except Exception as error:
                    step = flow.throw(error)
                    continue
            else:  # pragma: no cover - flow contract
                raise TypeError(f"flow yielded {step!r}")
            step = flow.send(reply)
    except StopIteration as done:
        return done.value, held
    except BaseException:
        if held is not None:
            held.close()
        raise
    finally:
        if spawned is not None:
            spawned.close()
        for file in spools:  # the spooled payload is of no use once the flow ended
            file.close()


class _Spawned:
    """The flows a flow spawned, each driven in a worker thread of its own."""

    def __init__(self, transport: SyncTransport, contexts: ZstdContexts | None) -> None:
        self._transport = transport
        self._contexts = contexts
        self._executor = ThreadPoolExecutor(thread_name_prefix="objectstore-flow")
        self._running: dict[Future[Any], int] = {}

    def spawn(self, step: Spawn) -> None:
        flow: Flow[Any] = step.flow  # type: ignore[assignment]
        future = self._executor.submit(
            copy_context().run, drive, flow, self._transport, self._contexts
        )
        self._running[future] = step.tag

    def join(self) -> Joined:
        finished, _ = wait(self._running, return_when=FIRST_COMPLETED)
        future = next(iter(finished))
        tag = self._running.pop(future)
        error = future.exception()
        if error is not None:
            return Joined(tag, error=error)
        value, held = future.result()
        if held is not None:  # pragma: no cover - spawned flows leave no body open
            held.close()
        return Joined(tag, value)

    def close(self) -> None:
        """Wait for what still runs (a failed upload aborts only once its parts stopped)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
