"""``Batch``: many operations in few requests, in threads (API §3, PROTOCOL §8).

The core decides everything (validation, splitting, retries, correlation:
:mod:`objectstore_core._batch_flow`); this module only runs the core's jobs
in worker threads within the two concurrency limits, over the client's
pool, and binds :class:`GetResponse` as what a fetched object becomes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from typing import TYPE_CHECKING

from objectstore_core import BatchBase, BatchJob, BatchResult, BatchResults
from objectstore_core._batch_api import BodyInHand
from objectstore_core._batch_results import HELD_SLOTS, HeldBody, held_responses
from objectstore_sync._driver import drive
from objectstore_sync._response import GetResponse, Payload

if TYPE_CHECKING:
    from objectstore_sync._client import Session

__all__ = ["Batch"]


class _InHand(BodyInHand):
    """The raw body under a batch get's payload: nothing (see :class:`BodyInHand`)."""

    __slots__ = ()

    def read(self, amount: int = 0) -> bytes:
        return b""

    def close(self) -> None:
        pass


class _HeldPayload(HeldBody, Payload):
    """A batch get's payload, holding the object's stored bytes (see :class:`HeldBody`)."""

    __slots__ = HELD_SLOTS
    _IN_HAND = _InHand()

    def _pull(self, limit: int | None, whole: bool = False) -> bytes:
        if (out := self._from_hand(whole)) is not None:
            return out
        return super()._pull(limit, whole)


class Batch(BatchBase):
    """Operations collected for one :meth:`send` (from :meth:`Session.many`).

    >>> batch = session.many()                      # doctest: +SKIP
    >>> batch.put(b"a", key="k1"); batch.get("k2")  # doctest: +SKIP
    >>> results = batch.send()                      # doctest: +SKIP

    ``put``, ``get``, ``head`` and ``delete`` take the options of the
    session's methods and raise ValueError for invalid input at once. Small
    operations go through the batch endpoint, up to ``max_batch_concurrency``
    requests at a time; large or unsized puts as individual requests, up to
    ``max_individual_concurrency`` at a time. ``with session.many() as
    batch:`` sends on exit; the results are then in :attr:`results`.
    """

    __slots__ = ()
    _session: Session

    def send(self) -> BatchResults:
        """Send every operation added; one result each, in submission order."""
        return self._collected(self.iter_results())

    def iter_results(self) -> Iterator[BatchResult]:
        """Send every operation added, yielding results as their requests complete.

        Requests are started only as results are consumed, so memory is
        bounded by the concurrency, not by the size of the batch.
        """
        batched, individual = self._plan()
        queues = {True: deque(batched), False: deque(individual)}
        limits = {True: self._limits[0], False: self._limits[1]}
        running: dict[Future[list[BatchResult]], bool] = {}
        with ThreadPoolExecutor(sum(self._limits), thread_name_prefix="objectstore-batch") as pool:

            def fill() -> None:
                for batched, queue in queues.items():
                    busy = sum(1 for kind in running.values() if kind is batched)
                    while queue and busy < limits[batched]:
                        running[pool.submit(copy_context().run, self._run, queue.popleft())] = (
                            batched
                        )
                        busy += 1

            fill()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                fill()  # keep the limits busy while the caller handles these results
                for future in done:
                    yield from future.result()

    def _run(self, job: BatchJob) -> list[BatchResult]:
        client = self._session._client
        results, held = drive(self._job_flow(job), client._transport, client._zstd)
        if held is not None:  # pragma: no cover - batch flows read every body whole
            held.close()
        return results

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None:
            self.send()

    def __repr__(self) -> str:
        return f"Batch({len(self._builder)} operations, session={self._session!r})"


Batch._held = staticmethod(held_responses(GetResponse, _HeldPayload))
