"""The official client's per-operation metrics, for sessions of a client with a metrics backend.

Every session operation (``put``, ``get``, ``head``, ``delete``,
``extend_expiry``) reports ``storage.<operation>.latency`` to the client's
``metrics_backend``, also when it fails, as the official client does; a put
of an in-memory payload also reports its sizes (``storage.put.size``
uncompressed and compressed), the compression ratio and the throughputs.
Streamed payloads (files, iterables, paths, and bytes over 4 MiB) are sized
by the transport as it sends them, so they report the latency only.

A client with the default :class:`NoOpMetricsBackend` runs its flows
unwrapped: measuring costs nothing unless it is asked for. The time comes
from the driver (a :class:`Clock` step); the core never reads a clock.
"""

from __future__ import annotations

from typing import Any, TypeVar

from objectstore_core._config import ClientTarget, NoOpMetricsBackend
from objectstore_core._http import Compress, Flow
from objectstore_core._official import StorageMetricEmitter
from objectstore_core._operations import _now
from objectstore_core._paths import Target

__all__ = ["measured"]

T = TypeVar("T")


def measured(
    target: Target,
    operation: str,
    flow: Flow[T],
    contents: object = None,
    precompressed: str | None = None,
) -> Flow[T]:
    """``flow``, reporting the operation's metrics to the client's backend if it has one.

    ``contents`` and ``precompressed`` are a put's arguments: an in-memory
    payload's size is known before anything is sent.
    """
    config = target.config if isinstance(target, ClientTarget) else None
    if config is None or isinstance(config.metrics_backend, NoOpMetricsBackend):
        return flow
    emitter = StorageMetricEmitter(config.metrics_backend, operation, target.usecase.name)
    if isinstance(contents, str):
        contents = contents.encode("utf-8")
    if isinstance(contents, bytes | bytearray | memoryview):
        size = memoryview(contents).nbytes
        if precompressed is not None and precompressed != "none":
            emitter.record_compressed_size(size, precompressed)
        else:
            emitter.record_uncompressed_size(size)
    return _measure(flow, emitter)


def _measure(flow: Flow[T], emitter: StorageMetricEmitter) -> Flow[T]:
    emitter.start = yield from _now()
    try:
        result = yield from _observe(flow, emitter)
    except Exception:
        yield from _finish(emitter)
        raise
    yield from _finish(emitter)
    return result


def _finish(emitter: StorageMetricEmitter) -> Flow[None]:
    end = yield from _now()
    emitter.record_latency(end - (emitter.start or end))
    emitter.maybe_record_compression_ratio()
    emitter.maybe_record_throughputs()


def _observe(flow: Flow[T], emitter: StorageMetricEmitter) -> Flow[T]:
    """Run ``flow`` step by step (as ``yield from`` would), noting the compressed size.

    The driver's answer to a :class:`Compress` step is the frame that will be
    sent, so its length is the stored size.
    """
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        error = None
        try:
            reply = yield step
        except GeneratorExit:
            flow.close()
            raise
        except BaseException as thrown:  # the driver's failure for this step: the flow decides
            error = thrown
            continue
        if isinstance(step, Compress) and isinstance(reply, bytes):
            emitter.record_compressed_size(len(reply), "zstd")
