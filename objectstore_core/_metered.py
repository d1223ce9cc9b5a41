"""Metrics of the operations beyond put/get/head/delete: multipart, resumable, batch, transfers.

The names, kinds and units follow :mod:`objectstore_core._metrics` (the
official client's ``storage.<operation>.*``); where the official client
0.2.10 emits an event for the same call, the event here is the same.

- Multipart calls: ``storage.multipart.initiate``, ``storage.multipart.put_part``
  (with the part's ``size``), ``storage.multipart.complete`` as the official
  client emits them; ``storage.multipart.list_parts`` and
  ``storage.multipart.abort`` in addition.
- A resumable put: ``storage.resumable.create`` per session created and
  ``storage.resumable.put`` per append (with its ``size``), as the official
  client; ``storage.resumable.probe`` and ``storage.resumable.cancel`` in
  addition; the whole put is ``storage.put.*`` with the payload's size (and,
  compressed by the client, the spooled compressed size).
  ``resume_upload`` is ``storage.resume_upload.*`` as a whole.
- A managed transfer is one ``storage.upload.*`` or ``storage.download.*``
  set for the whole transfer, besides what its requests emit (the
  download's in :func:`objectstore_core.download_flow`).
- A batch request: ``storage.batch.latency``, ``storage.batch.operations``,
  ``storage.batch.request_size`` and ``storage.batch.response_size``, and
  the counter ``storage.batch.results`` per kind and outcome.

Everything is wrapped around a flow only when :func:`meter_for` gives a
meter, so the no-op backend costs one type test per operation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from objectstore_core._errors import ObjectstoreError, error_for_response
from objectstore_core._http import (
    Compress,
    Flow,
    Measure,
    Response,
    Spawn,
    Spooled,
    Step,
    read_clock,
    relayed,
)
from objectstore_core._metrics import Meter, meter_for
from objectstore_core._paths import Target
from objectstore_core._tracing import traced

__all__ = [
    "BatchTally",
    "finish_request",
    "measured_transfer",
    "metered",
    "outcome_name",
    "start_request",
    "timed",
]

T = TypeVar("T")


def timed(flow: Flow[T], meter: Meter, *, size: int | None = None) -> Flow[T]:
    """Run ``flow``, recording its latency (and ``size``, untagged) or its failure.

    Transport failures thrown in by the driver pass through to ``flow``
    (``yield from``), which decides on its retries.
    """
    if meter.trace is not None:
        flow = traced(flow, meter.trace)
    meter.start = yield from read_clock()
    try:
        value = yield from flow
    except ObjectstoreError as error:
        meter.failed((yield from read_clock()), error)
        raise
    meter.record((yield from read_clock()), size=size)
    return value


def metered(target: Target, operation: str, flow: Flow[T], *, size: int | None = None) -> Flow[T]:
    """``flow`` timed as ``storage.<operation>.*``, or ``flow`` itself for the no-op backend."""
    meter = meter_for(target, operation)
    return flow if meter is None else timed(flow, meter, size=size)


def measured_transfer(
    flow: Flow[T], meter: Meter, *, total: int | None = None, encoding: str | None = None
) -> Flow[T]:
    """Run a flow moving a whole payload (a resumable put, a managed upload) as one operation.

    The payload's size is ``total`` or what the driver answers to the
    flow's first :class:`Measure`; it is recorded as stored in ``encoding``
    (``"zstd"``: precompressed) or else as uncompressed, and then the zstd
    frames the driver returns for :class:`Compress` steps add up to the
    stored size, or the compressed spool a :class:`Spool` step gives is that
    size (a compressed resumable put, PROTOCOL §14.1). Unlike
    :func:`objectstore_core._metrics.measured`, sizes do not come from the
    requests: a transfer sends its payload in several.
    """
    if meter.trace is not None:
        flow = traced(flow, meter.trace)
    frames: list[int] = []  # the stored frames' sizes (spawned flows append from threads)
    measured = [total]

    def before(step: Step) -> Step:
        if isinstance(step, Spawn):  # a managed upload's part, compressed where it runs
            return Spawn(relayed(step.flow, after=frame_sizes), step.tag)  # type: ignore[arg-type]
        return step

    def after(step: Step, reply: object) -> None:
        if isinstance(step, Measure) and measured[0] is None:
            if isinstance(reply, int) and not isinstance(reply, bool):
                measured[0] = reply
        else:
            frame_sizes(step, reply)

    def frame_sizes(step: Step, reply: object) -> None:
        if isinstance(step, Compress) and isinstance(reply, bytes):
            frames.append(len(reply))
        elif isinstance(reply, Spooled):  # the whole payload, compressed ahead of the upload
            frames.append(reply.size)
            if measured[0] is None:
                measured[0] = reply.source_size

    meter.start = yield from read_clock()
    try:
        value = yield from relayed(flow, before, after)
    except ObjectstoreError as error:
        meter.failed((yield from read_clock()), error)
        raise
    now = yield from read_clock()
    compressed = sum(frames) if frames else None
    if encoding == "zstd":  # precompressed: the payload is the stored bytes
        meter.record(now, compressed=measured[0], compression="zstd")
    else:
        meter.record(now, uncompressed=measured[0], compressed=compressed, compression="zstd")
    return value


def outcome_name(outcome: Response | ObjectstoreError) -> str | None:
    """The ``outcome`` tag of one request's result: None for a success, else the
    class of the error it is or maps to (``ServerError`` for a 503)."""
    if isinstance(outcome, ObjectstoreError):
        return type(outcome).__name__
    if outcome.status < 400:
        return None
    return type(error_for_response(outcome.status, outcome.headers, outcome.body)).__name__


def start_request(meter: Meter) -> Flow[None]:
    """Start timing one request of a multi-request flow."""
    meter.start = yield from read_clock()


def finish_request(
    meter: Meter, outcome: Response | ObjectstoreError, *, size: int | None = None
) -> Flow[None]:
    """Record the request ``meter`` timed: ``size`` on success, else the outcome."""
    now = yield from read_clock()
    failure = outcome_name(outcome)
    if failure is None:
        meter.record(now, size=size)
    else:
        meter.record(now, outcome=failure)


# ------------------------------------------------------------------- batches


class BatchTally:
    """What one batch request moved, noted by the batch flow while it is metered.

    ``sent``: bytes of the request body; ``received``: bytes of the response
    body read (None: no response came); ``failure``: the error that failed
    the request as a whole or broke its response off.
    """

    __slots__ = ("failure", "received", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.received: int | None = None
        self.failure: ObjectstoreError | None = None

    def got(self, size: int) -> None:
        self.received = (self.received or 0) + size

    def record(self, meter: Meter, now: float, results: Iterable[tuple[str, str | None]]) -> None:
        """Emit the request's events; ``results``: (kind, outcome) of each of its operations.

        ``storage.batch.latency`` (with ``outcome`` when the request failed as
        a whole or its response broke off), ``storage.batch.operations`` (how
        many it carried), ``storage.batch.request_size`` and
        ``storage.batch.response_size`` (unit ``byte``; the response's only
        when one came), and the counter ``storage.batch.results`` per
        operation kind and outcome (no ``outcome`` tag: succeeded).
        """
        counts: dict[tuple[str, str | None], int] = {}
        for pair in results:
            counts[pair] = counts.get(pair, 0) + 1
        if self.failure is None:
            meter.record(now)
        else:
            meter.failed(now, self.failure)
        backend, usecase = meter.backend, meter.usecase
        if backend is None:  # only a Sentry span records this request
            return
        tags = {"usecase": usecase}
        backend.distribution("storage.batch.operations", sum(counts.values()), tags=tags)
        backend.distribution("storage.batch.request_size", self.sent, tags=tags, unit="byte")
        if self.received is not None:
            backend.distribution(
                "storage.batch.response_size", self.received, tags=tags, unit="byte"
            )
        for (kind, outcome), count in counts.items():
            counted = {"usecase": usecase, "kind": kind}
            if outcome is not None:
                counted["outcome"] = outcome
            backend.increment("storage.batch.results", count, tags=counted)
