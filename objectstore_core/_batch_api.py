"""What a batch is before and after it is sent, for both twins (API §3).

:class:`BatchBase` holds everything of ``Batch`` / ``AsyncBatch`` that
needs no I/O: the concurrency limits checked against the client's pool,
the operations collected (validated when added, by :class:`BatchBuilder`),
the plan of jobs, how a fetched object becomes the twin's ``GetResponse``
(its payload over a :class:`BodyInHand`) and the results in submission
order. Each twin adds only how the jobs run (threads or tasks), and binds
what a fetched object becomes (:attr:`BatchBase._held`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Concatenate, ParamSpec

from objectstore_core._batch_flow import (
    BatchBuilder,
    BatchJob,
    validate_concurrency,
)
from objectstore_core._batch_results import (
    BatchResult,
    BatchResults,
    FetchedObject,
    Fetcher,
    new_result,
)
from objectstore_core._codec import ZstdContexts
from objectstore_core._download import Download
from objectstore_core._http import Flow
from objectstore_core._metadata import Metadata
from objectstore_core._paths import Target
from objectstore_core._timeout import Timeout

__all__ = ["BatchBase", "BodyInHand", "wrap_fetched"]

P = ParamSpec("P")


def _adder(
    method: Callable[Concatenate[BatchBuilder, P], None],
) -> Callable[Concatenate[BatchBase, P], None]:
    """A :class:`BatchBuilder` method as a batch method (validates now, sends later)."""

    def add(self: BatchBase, /, *args: P.args, **kwargs: P.kwargs) -> None:
        method(self._builder, *args, **kwargs)

    functools.update_wrapper(add, method)
    return add


class BodyInHand:
    """The raw body under a batch get's payload: already over, as its bytes are in hand.

    The payload holds the bytes (itself, or in a :class:`LazyDownload`), so the
    twins' batch gets share one of these (adding the ``read`` and ``close`` of their
    connections' bodies, which give nothing and do nothing).
    """

    __slots__ = ()

    @property
    def done(self) -> bool:
        return True


class BatchBase:
    """Operations collected for one ``send()``; the twins' batches run them.

    ``max_batch_concurrency`` batch requests and ``max_individual_concurrency``
    individual ones may run at once; together they must fit the client's
    pool of connections, else ValueError before anything is added.
    ``session`` is the twin's session (its client's pool size, zstd contexts
    and target are read here). A twin sets :attr:`_held`.
    """

    __slots__ = ("_builder", "_fetch", "_limits", "_session", "_timeout", "results")

    _held: Callable[[ZstdContexts | None, Metadata, bytes, bool, Any, int, str | None], Any]
    """The twin's ``GetResponse`` of a fetched object: called with the client's zstd
    contexts, then what a :data:`Fetcher` is called with. Its payload holds the
    stored bytes itself (see :func:`read_held`)."""

    def __init__(
        self,
        session: Any,
        max_batch_concurrency: int = 3,
        max_individual_concurrency: int = 5,
        *,
        timeout: Timeout | float | None = None,
    ) -> None:
        client = session._client
        pool_size = client.config.max_connections
        batches = validate_concurrency(max_batch_concurrency, "max_batch_concurrency")
        singles = validate_concurrency(max_individual_concurrency, "max_individual_concurrency")
        if batches + singles > pool_size:
            raise ValueError(
                f"max_batch_concurrency + max_individual_concurrency = {batches + singles} "
                f"exceeds the client's pool of {pool_size} connections: raise max_connections"
            )
        target: Target = session._flows.target
        self._builder = BatchBuilder(target)
        self._limits = (batches, singles)
        self._timeout = Timeout.coerce(timeout)
        self._session = session
        # A partial, not a closure: no Python frame of its own per get.
        self._fetch: Fetcher = functools.partial(type(self)._held, client._zstd)
        self.results: BatchResults | None = None
        """What the last ``send()`` returned (set on leaving a ``with`` block)."""

    put = _adder(BatchBuilder.put)

    # The small operations spelled out rather than forwarded with *args and
    # **kwargs: a batch adds them by the thousand, and this costs a quarter as much.
    def get(
        self, key: str, decompress: bool = True, accept_encoding: Sequence[str] | None = None
    ) -> None:
        self._builder.get(key, decompress, accept_encoding)

    def head(self, key: str) -> None:
        self._builder.head(key)

    def delete(self, key: str) -> None:
        self._builder.delete(key)

    def __len__(self) -> int:
        """Operations waiting to be sent."""
        return len(self._builder)

    def _plan(self) -> tuple[list[BatchJob], list[BatchJob]]:
        """The jobs to run: those for the batch endpoint, then the individual ones."""
        jobs = self._builder.plan(self._timeout)
        return [job for job in jobs if job.batched], [job for job in jobs if not job.batched]

    def _job_flow(self, job: BatchJob) -> Flow[list[BatchResult]]:
        """The flow of ``job``, whose gets' found objects become the twin's responses."""
        return job.flow(self._fetch)

    def _collected(self, results: Iterable[BatchResult]) -> BatchResults:
        """``results`` in submission order, kept as :attr:`results`."""
        self.results = BatchResults(sorted(results, key=lambda result: result.index))
        return self.results


def wrap_fetched(
    result: BatchResult,
    wrap: Callable[[Metadata, Download], Any],
    contexts: ZstdContexts | None = None,
) -> BatchResult:
    """A batch get's fetched object handed out as ``wrap(metadata, download)``.

    Other results are returned as they are. The download decodes the body
    only once it is read, so a batch of thousands of objects holds no
    decoder until then.
    """
    value = result.value
    if not isinstance(value, FetchedObject):
        return result
    wrapped = wrap(value.metadata, value.download(contexts))
    # Built directly: dataclasses.replace costs more than the rest of the wrapping.
    return new_result(result.index, result.kind, result.key, wrapped, result.error)
