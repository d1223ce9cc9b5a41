"""Operation metrics with the official client's names, kinds, units and tags.

Sentry's services watch the official client's ``storage.<operation>.*``
distributions; a client that switches to this library keeps its dashboards
because the same events are emitted here, from the core's flows, so both
twins emit them alike. Per operation, as the official client 0.2.10 does:

- ``storage.<op>.size`` (unit ``byte``), once per size known: the
  uncompressed payload tagged ``compression: none``, the stored (compressed)
  bytes tagged with their encoding, e.g. ``compression: zstd``;
- ``storage.<op>.latency`` in seconds, tagged with the usecase only;
- ``storage.<op>.compression_ratio`` (compressed / uncompressed), when both
  sizes are known and the payload is not empty;
- ``storage.<op>.throughput`` (bytes per second) and
  ``storage.<op>.inverse_throughput`` (seconds per byte), per non-empty size.

Every event is tagged with ``usecase``. Two differences, both additions:
a failed operation's latency carries ``outcome`` (the error's class name,
e.g. ``ServerError``; a successful one has no ``outcome`` tag, exactly as
the official client), and a get measures its whole body: latency, sizes and
throughput are recorded when the body has been read to its end (or latency
alone when it is closed early, with ``outcome: closed``), where the
official client records the latency of the head alone.

Nothing is measured with the default :class:`NoOpMetricsBackend`: flows ask
for the time (a :class:`Clock` step) only for a backend that records, or
when the Sentry SDK traces the operation (a :class:`Meter` also carries the
operation's span: see :mod:`objectstore_core._tracing`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol, TypeVar, runtime_checkable

from objectstore_core._errors import ObjectstoreError
from objectstore_core._http import (
    Compress,
    Flow,
    Request,
    SendRequest,
    Step,
    Upload,
    read_clock,
    relayed,
    upload_size,
)
from objectstore_core._paths import Target
from objectstore_core._tracing import AttributeValue, OperationTrace, start_trace, traced

__all__ = [
    "Meter",
    "MetricsBackend",
    "NoOpMetricsBackend",
    "StorageMetricEmitter",
    "measured",
    "measured_open",
    "meter_for",
    "observed",
]

T = TypeVar("T")


Tags = Mapping[str, str]


@runtime_checkable
class MetricsBackend(Protocol):
    """Receiver of client metrics (the official client's interface)."""

    def increment(self, name: str, value: int | float = 1, tags: Tags | None = None) -> None: ...

    def gauge(self, name: str, value: int | float, tags: Tags | None = None) -> None: ...

    def distribution(
        self, name: str, value: int | float, tags: Tags | None = None, unit: str | None = None
    ) -> None: ...


class NoOpMetricsBackend(MetricsBackend):
    """A metrics backend that records nothing (the default)."""

    def increment(self, name: str, value: int | float = 1, tags: Tags | None = None) -> None:
        return None

    def gauge(self, name: str, value: int | float, tags: Tags | None = None) -> None:
        return None

    def distribution(
        self, name: str, value: int | float, tags: Tags | None = None, unit: str | None = None
    ) -> None:
        return None


class StorageMetricEmitter:
    """Emits the ``storage.<operation>.*`` distributions of one operation to a backend.

    Sizes are emitted as they are recorded; :meth:`record_latency` records
    the elapsed seconds (which the caller measured), and the two ``maybe_``
    methods emit the compression ratio and the throughputs once the sizes
    and the latency they need are known (``measure_storage_operation`` in
    ``objectstore_sync.metrics`` calls them when the operation ends).
    """

    def __init__(self, backend: MetricsBackend, operation: str, usecase: str) -> None:
        self.backend = backend
        self.operation = operation
        self.usecase = usecase
        self.start: float | None = None
        self.elapsed: float | None = None
        self.size: int | None = None
        self.uncompressed_size: int | None = None
        self.compressed_size: int | None = None
        self.compression = "unknown"

    def _emit(self, metric: str, value: float, tags: Mapping[str, str], unit: str | None) -> None:
        name = f"storage.{self.operation}.{metric}"
        self.backend.distribution(name, value, tags=tags, unit=unit)

    def _tags(self, compression: str | None) -> dict[str, str]:
        tags = {"usecase": self.usecase}
        if compression is not None:
            tags["compression"] = compression
        return tags

    def record_latency(self, elapsed: float) -> None:
        """Record how many seconds the operation took."""
        self.elapsed = elapsed
        self._emit("latency", elapsed, self._tags(None), None)

    def record_uncompressed_size(self, value: int) -> None:
        """Record the payload's size before compression."""
        self.uncompressed_size = value
        self._emit("size", value, self._tags("none"), "byte")

    def record_size(self, value: int) -> None:
        """Record the payload's size where its compression does not matter."""
        self.size = value
        self._emit("size", value, self._tags(None), "byte")

    def record_compressed_size(self, value: int, compression: str = "unknown") -> None:
        """Record the payload's size as compressed with ``compression``."""
        self.compressed_size = value
        self.compression = compression
        self._emit("size", value, self._tags(compression), "byte")

    def maybe_record_compression_ratio(self) -> None:
        """Compressed over uncompressed size, when both are known (and not zero)."""
        if self.uncompressed_size and self.compressed_size is not None:
            ratio = self.compressed_size / self.uncompressed_size
            self._emit("compression_ratio", ratio, self._tags(self.compression), None)

    def maybe_record_throughputs(self) -> None:
        """Bytes per second and seconds per byte of every known size, once timed."""
        if not self.elapsed:
            return
        for size, compression in (
            (self.size, None),
            (self.uncompressed_size, "none"),
            (self.compressed_size, self.compression),
        ):
            if size:
                tags = self._tags(compression)
                self._emit("throughput", size / self.elapsed, tags, None)
                self._emit("inverse_throughput", self.elapsed / size, tags, None)


class Meter:
    """The measurements of one operation, handed to the client's backend when it ends.

    ``backend`` is None when only the operation's Sentry span (``trace``)
    is recorded.
    """

    __slots__ = ("_done", "backend", "operation", "start", "trace", "usecase")

    def __init__(
        self,
        backend: MetricsBackend | None,
        operation: str,
        usecase: str,
        trace: OperationTrace | None = None,
    ) -> None:
        self.backend = backend
        self.operation = operation
        self.usecase = usecase
        self.trace = trace
        self.start = 0.0
        self._done = False

    def note(self, name: str, value: AttributeValue) -> None:
        """Set the span attribute ``objectstore.<name>`` (nothing when not traced)."""
        if self.trace is not None:
            self.trace.attributes[f"objectstore.{name}"] = value

    def record(
        self,
        now: float,
        *,
        uncompressed: int | None = None,
        compressed: int | None = None,
        compression: str = "zstd",
        outcome: str | None = None,
        size: int | None = None,
    ) -> None:
        """Emit the operation's events and end its span, once (later calls are ignored).

        ``now``: the driver's monotonic time at the end. ``compressed`` is the
        size of the stored bytes in encoding ``compression``; ``size`` a size
        whose encoding does not matter (a multipart part, a resumable append),
        emitted without a ``compression`` tag as the official client does.
        """
        if self._done:
            return
        self._done = True
        if self.trace is not None:
            self.trace.end(outcome, _span_sizes(uncompressed, compressed))
        if self.backend is None:
            return
        emitter = StorageMetricEmitter(self.backend, self.operation, self.usecase)
        if uncompressed is not None:
            emitter.record_uncompressed_size(uncompressed)
        if compressed is not None:
            emitter.record_compressed_size(compressed, compression)
        if size is not None:
            emitter.record_size(size)
        elapsed = max(now - self.start, 0.0)
        if outcome is None:
            emitter.record_latency(elapsed)
        else:
            emitter.elapsed = elapsed
            emitter._emit("latency", elapsed, {"usecase": self.usecase, "outcome": outcome}, None)
        emitter.maybe_record_compression_ratio()
        emitter.maybe_record_throughputs()

    def failed(self, now: float, error: BaseException) -> None:
        """Emit the latency of a failed operation, tagged with the error's class."""
        self.record(now, outcome=type(error).__name__)


def _span_sizes(uncompressed: int | None, compressed: int | None) -> dict[str, AttributeValue]:
    values: dict[str, AttributeValue] = {}
    if uncompressed is not None:
        values["objectstore.uncompressed_size"] = uncompressed
    if compressed is not None:
        values["objectstore.compressed_size"] = compressed
    return values


_modules = sys.modules


def meter_for(target: Target, operation: str, key: str | None = None) -> Meter | None:
    """A meter for ``operation`` when the client's backend records or Sentry traces it;
    None otherwise.

    The checks are a type test and a lookup of ``sentry_sdk`` in
    ``sys.modules`` (the SDK is never imported here), so the default backend
    without the Sentry SDK costs next to nothing per operation. ``key``
    names the object in the span.
    """
    config = getattr(target, "config", None)  # a client's session target (ClientTarget)
    if config is None:
        return None
    trace = None
    if "sentry_sdk" in _modules:
        trace = start_trace(target, operation, key, config.propagate_traces, config.base_url)
    backend = config.metrics_backend
    if type(backend) is NoOpMetricsBackend:
        if trace is None:
            return None
        backend = None
    return Meter(backend, operation, target.usecase.name, trace)


def observed(target: Target) -> bool:
    """Whether operations on ``target`` may be measured: the client's backend records, or
    the Sentry SDK is loaded (:func:`meter_for` then tells whether it traces). Starts
    nothing, unlike :func:`meter_for`."""
    config = getattr(target, "config", None)
    if config is None:
        return False
    return type(config.metrics_backend) is not NoOpMetricsBackend or "sentry_sdk" in _modules


def measured(flow: Flow[T], meter: Meter, *, encoding: str | None = None) -> Flow[T]:
    """Run ``flow`` step by step, timing it and noting the sizes its steps reveal.

    A :class:`Compress` step gives the payload's size and, with the frame the
    driver sends back, the stored size; otherwise a request with a bytes
    body gives its size (stored as ``encoding``: ``"zstd"`` for a
    precompressed put, None for a raw one), and a streamed upload its size
    when known before reading (bytes). Transport failures the driver throws
    in are passed to ``flow``, which decides on retries; the operation's
    failure is recorded with its error.
    """
    if meter.trace is not None:
        flow = traced(flow, meter.trace)
    sizes = _Sizes(encoding)
    meter.start = yield from read_clock()
    try:
        value = yield from relayed(flow, sizes.before, sizes.after)
    except ObjectstoreError as error:
        meter.failed((yield from read_clock()), error)
        raise
    meter.record(
        (yield from read_clock()),
        uncompressed=sizes.uncompressed,
        compressed=sizes.compressed,
        compression="zstd",
    )
    return value


class _Sizes:
    """The payload sizes an operation's steps reveal (see :func:`measured`)."""

    __slots__ = ("compressed", "compressed_here", "encoding", "uncompressed")

    def __init__(self, encoding: str | None) -> None:
        self.encoding = encoding
        self.uncompressed: int | None = None
        self.compressed: int | None = None
        self.compressed_here = False

    def before(self, step: Step) -> Step:
        if isinstance(step, Compress):
            self.uncompressed, self.compressed_here = step.size, True
        elif isinstance(step, SendRequest) and not self.compressed_here:
            self.uncompressed, self.compressed = _body_sizes(step.request, self.encoding)
        return step

    def after(self, step: Step, reply: object) -> None:
        if isinstance(step, Compress) and isinstance(reply, bytes):
            self.compressed = len(reply)


def measured_open(flow: Flow[T | None], meter: Meter) -> Flow[T | None]:
    """Like :func:`measured` for a get: a found object keeps its meter open.

    The flow's value (a ``GetOutcome``) gets ``meter``, which its body's
    download records when the body has been read or closed
    (``Download.settle``); a missing object (None) is recorded at once.
    """
    if meter.trace is not None:
        flow = traced(flow, meter.trace)
    meter.start = yield from read_clock()
    try:
        value = yield from flow
    except ObjectstoreError as error:
        meter.failed((yield from read_clock()), error)
        raise
    if value is None:
        meter.record((yield from read_clock()))
        return None
    return replace(value, meter=meter)  # type: ignore[type-var]


def _body_sizes(request: Request, encoding: str | None) -> tuple[int | None, int | None]:
    body = request.body
    if body is None:
        return None, None
    if isinstance(body, Upload):  # streamed: its stored size is not known here
        size = upload_size(body)
        return (None, size) if encoding == "zstd" and not body.compress else (size, None)
    return (None, len(body)) if encoding == "zstd" else (len(body), None)
