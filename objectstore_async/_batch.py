"""``AsyncBatch``: many operations in few requests, in tasks (API §3, PROTOCOL §8).

The twin of ``objectstore_sync.Batch``. The core decides everything
(:mod:`objectstore_core._batch_flow`); this module only runs the core's
jobs as tasks within the two concurrency limits, over the client's pool,
and binds :class:`AsyncGetResponse` as what a fetched object becomes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from objectstore_async._driver import adrive
from objectstore_async._response import AsyncGetResponse, AsyncPayload
from objectstore_core import BatchBase, BatchJob, BatchResult, BatchResults
from objectstore_core._batch_api import BodyInHand
from objectstore_core._batch_results import HELD_SLOTS, HeldBody, held_responses

if TYPE_CHECKING:
    from objectstore_async._client import AsyncSession

__all__ = ["AsyncBatch"]


class _InHand(BodyInHand):
    """The raw body under a batch get's payload: nothing (see :class:`BodyInHand`)."""

    __slots__ = ()

    async def read(self, amount: int = 0) -> bytes:
        return b""

    def read_now(self, amount: int) -> bytes:
        return b""

    async def aclose(self) -> None:
        pass


class _HeldPayload(HeldBody, AsyncPayload):
    """A batch get's payload, holding the object's stored bytes (see :class:`HeldBody`).

    A whole read first takes the held bytes in one step: one frame of at most
    a chunk, decoded in one call, so there is no turn to give.
    """

    __slots__ = HELD_SLOTS
    _IN_HAND = _InHand()

    async def _pull(self, limit: int | None, whole: bool = False) -> bytes:
        out = self._from_hand(whole)
        return await super()._pull(limit, whole) if out is None else out

    def _pull_now(self) -> bytes | None:
        self._from_hand(False)
        return super()._pull_now()


class AsyncBatch(BatchBase):
    """Operations collected for one :meth:`send` (from :meth:`AsyncSession.many`).

    >>> batch = session.many()                      # doctest: +SKIP
    >>> batch.put(b"a", key="k1"); batch.get("k2")  # doctest: +SKIP
    >>> results = await batch.send()                # doctest: +SKIP

    Adding operations does no I/O, so ``put``, ``get``, ``head`` and
    ``delete`` are plain methods that raise ValueError for invalid input at
    once. Small operations go through the batch endpoint, up to
    ``max_batch_concurrency`` requests at a time; large or unsized puts as
    individual requests, up to ``max_individual_concurrency`` at a time.
    ``async with session.many() as batch:`` sends on exit; the results are
    then in :attr:`results`.
    """

    __slots__ = ()
    _session: AsyncSession

    async def send(self) -> BatchResults:
        """Send every operation added; one result each, in submission order."""
        return self._collected([result async for result in self.iter_results()])

    async def iter_results(self) -> AsyncIterator[BatchResult]:
        """Send every operation added, yielding results as their requests complete.

        A request's task hands its results over only when the caller takes
        them, and at most the concurrency's worth of tasks exist at once, so
        memory is bounded by the concurrency, not by the size of the batch.
        """
        send, receive = anyio.create_memory_object_stream[list[BatchResult]](0)
        async with anyio.create_task_group() as group:
            async with send:
                for jobs, limit in zip(self._plan(), self._limits, strict=True):
                    group.start_soon(self._feed, jobs, limit, send.clone())
            try:
                async with receive:
                    async for results in receive:
                        for result in results:
                            yield result
            except GeneratorExit:
                # The caller stopped early (break, aclose): cancel the requests in
                # flight and start no more, without the group reporting the exit.
                group.cancel_scope.cancel()

    async def _feed(
        self,
        jobs: Sequence[BatchJob],
        limit: int,
        send: MemoryObjectSendStream[list[BatchResult]],
    ) -> None:
        """Start ``jobs`` as tasks, never more than ``limit`` at a time."""
        slots = anyio.Semaphore(limit)
        async with send, anyio.create_task_group() as group:
            for job in jobs:
                await slots.acquire()
                group.start_soon(self._run, job, slots, send.clone())

    async def _run(
        self,
        job: BatchJob,
        slots: anyio.Semaphore,
        send: MemoryObjectSendStream[list[BatchResult]],
    ) -> None:
        try:
            async with send:
                client = self._session._client
                results, held = await adrive(self._job_flow(job), client._transport, client._zstd)
                if held is not None:  # pragma: no cover - batch flows read every body whole
                    await held.aclose()
                await send.send(results)
        finally:
            slots.release()

    async def __aenter__(self) -> AsyncBatch:
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None:
            await self.send()

    def __repr__(self) -> str:
        return f"AsyncBatch({len(self._builder)} operations, session={self._session!r})"


AsyncBatch._held = staticmethod(held_responses(AsyncGetResponse, _HeldPayload))
