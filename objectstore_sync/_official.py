"""The I/O halves of the official client's helpers: reading a file, the clock, urllib3, Sentry.

Each one gathers what it needs and hands it to the core (``objectstore_core._official``),
where the logic lives.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol

import urllib3

from objectstore_core import ReadError, RequestError, Scope, Usecase
from objectstore_core._config import MetricsBackend
from objectstore_core._official import (
    MIME_SNIFF_BYTES,
    StorageMetricEmitter,
    error_for_status,
    sniff_mime_type,
)
from objectstore_core._tracing import SPAN_ORIGIN  # the origin of the sessions' spans too

__all__ = [
    "SPAN_ORIGIN",
    "SpanAttributeValue",
    "guess_mime_type",
    "measure_storage_operation",
    "raise_for_status",
    "storage_span",
]


SpanAttributeValue = str | int | float | bool | list[str] | list[int] | list[float]
"""What a span attribute may hold."""


def guess_mime_type(contents: bytes | bytearray | memoryview | IO[bytes]) -> str | None:
    """The media type announced by the first bytes of ``contents``, or None.

    ``contents`` is bytes or a binary file; a file is read from its current
    position and put back there (a file that cannot seek gives None).

    >>> guess_mime_type(b"\\x89PNG\\r\\n\\x1a\\n...")
    'image/png'
    """
    if isinstance(contents, bytes | bytearray | memoryview):
        return sniff_mime_type(bytes(contents[:MIME_SNIFF_BYTES]))
    if not callable(getattr(contents, "seekable", None)):
        raise TypeError(f"contents must be bytes or a binary file, got {type(contents).__name__}")
    if not contents.seekable():
        return None
    position = contents.tell()
    try:
        head = contents.read(MIME_SNIFF_BYTES)
    finally:
        contents.seek(position)
    return sniff_mime_type(bytes(head or b""))


class _Response(Protocol):
    status: int

    @property
    def data(self) -> bytes: ...


def raise_for_status(response: _Response, *, error_type: type[RequestError] = RequestError) -> None:
    """Raise ``error_type`` if a urllib3 response has a status of 400 or more.

    The message is ``Objectstore request failed with status <status>``;
    ``response`` of the error is the body as text. A body that cannot be
    read raises :class:`ReadError` (never a urllib3 error).
    """
    if response.status < 400:
        return
    try:
        body = response.data or b""
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # the body could not be read
        raise ReadError(f"reading the error body failed: {exc}") from exc
    error = error_for_status(response.status, body, error_type)
    if error is not None:
        raise error


@contextmanager
def measure_storage_operation(
    backend: MetricsBackend,
    operation: str,
    usecase: str,
    uncompressed_size: int | None = None,
    compressed_size: int | None = None,
    compression: str = "unknown",
) -> Iterator[StorageMetricEmitter]:
    """Time the enclosed block and emit the ``storage.<operation>.*`` metrics to ``backend``.

    Yields the :class:`StorageMetricEmitter`, so sizes known only inside the
    block (a download's) can be recorded there. Latency, compression ratio
    and throughputs are emitted when the block ends, also when it raises.

    >>> with measure_storage_operation(backend, "get", "attachments") as metric:  # doctest: +SKIP
    ...     metric.record_uncompressed_size(len(data))
    """
    emitter = StorageMetricEmitter(backend, operation, usecase)
    emitter.compression = compression
    if uncompressed_size is not None:
        emitter.record_uncompressed_size(uncompressed_size)
    if compressed_size is not None:
        emitter.record_compressed_size(compressed_size, compression)
    emitter.start = time.monotonic()
    try:
        yield emitter
    finally:
        emitter.record_latency(time.monotonic() - emitter.start)
        emitter.maybe_record_compression_ratio()
        emitter.maybe_record_throughputs()


class _NoSpan:
    """What :func:`storage_span` yields when the Sentry SDK is not installed."""

    def set_attribute(self, key: str, value: object) -> None:
        return None

    def set_attributes(self, attributes: dict[str, object]) -> None:
        return None


@contextmanager
def storage_span(
    operation: str, usecase: Usecase, scope: Scope, **attributes: SpanAttributeValue | None
) -> Iterator[Any]:
    """A Sentry span ``objectstore.<operation> <usecase>`` around the enclosed block.

    Its ``sentry.op`` is ``objectstore.<operation>``; its attributes are
    ``objectstore.usecase``, ``objectstore.scopes.<name>`` for each scope
    component (its value as given) and ``objectstore.<name>`` for each
    keyword argument that is not None. Attributes known only later can be
    set on the yielded span. With the Sentry SDK absent or not initialised,
    the span records nothing.
    """
    try:
        from sentry_sdk import traces
    except ImportError:
        yield _NoSpan()
        return
    values: dict[str, Any] = {
        "sentry.op": f"objectstore.{operation}",
        "sentry.origin": SPAN_ORIGIN,
        "objectstore.usecase": usecase.name,
    }
    values.update({f"objectstore.scopes.{k}": v for k, v in scope.dict().items()})
    values.update({f"objectstore.{k}": v for k, v in attributes.items() if v is not None})
    name = f"objectstore.{operation} {usecase.name}"
    with traces.start_span(name=name, attributes=values) as span:
        yield span
