"""Sentry spans around operations, and trace headers on their requests.

The Sentry SDK is an optional extra (``pip install 'objectstore[sentry]'``)
and this module never imports it: an operation looks for it in
``sys.modules`` (one dict lookup, see :func:`objectstore_core._metrics.meter_for`),
so without the SDK, or with an SDK nobody imported, tracing costs nothing
more. With the SDK imported, :func:`start_trace` asks it whether a client
was initialised (``sentry_sdk.init``) and returns None when not.

Spans follow the official client 0.2.10: name ``objectstore.<op> <usecase>``,
op ``objectstore.<op>``, origin ``auto.objectstore.client``, attributes
``objectstore.usecase``, ``objectstore.scopes.<name>`` (each scope component
as given), ``objectstore.key``, ``objectstore.compression``,
``objectstore.uncompressed_size``, ``objectstore.compressed_size``,
``objectstore.found`` and ``objectstore.decompressed``. Added here:
``objectstore.scope`` (the wire form), ``objectstore.retries`` and
``objectstore.outcome`` (``ok``, the error's class name, ``closed`` for a
get whose body was closed before its end, or ``cancelled`` for an operation
whose caller gave up on it, such as a cancelled task).

The official client only uses the SDK's span streaming API, so it records
nothing (and warns) under the default transaction-based tracing. Here both
are served: with span streaming (``trace_lifecycle="stream"``) a streamed
span, else a child span of the current transaction's span (none outside a
transaction, as the SDK's own integrations do). Either way the span never
becomes the scope's current span: an operation can outlive the call that
started it (a get's span ends when its body is read or closed), and a span
left current would adopt the caller's later spans.

Span times are the SDK's: a span starts when the operation's flow is built
(just before it is driven) and ends when its :class:`Meter` records it.
Starting and ending a span is bookkeeping in the SDK, not I/O: the SDK's
transport sends the spans later, on its own thread.
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar

from objectstore_core._http import Flow, SendRequest, Sleep, Step, relayed
from objectstore_core._paths import Target

__all__ = ["SPAN_ORIGIN", "OperationTrace", "start_trace", "traced"]

T = TypeVar("T")

SPAN_ORIGIN = "auto.objectstore.client"
"""The ``sentry.origin`` of every span, the official client's."""

_modules = sys.modules

AttributeValue = str | int | float | bool

# Transaction-mode span statuses by outcome; any other outcome is an error.
_STATUSES = {"": "ok", "closed": "ok", "cancelled": "cancelled"}


class OperationTrace:
    """The Sentry span of one operation and the trace headers its requests carry.

    ``span`` is None when no span is recorded (no transaction, or tracing
    off) while headers are still propagated; ``headers`` is empty unless the
    client was made with ``propagate_traces=True``. ``retries`` counts the
    backoffs the operation waited.
    """

    __slots__ = ("attributes", "headers", "retries", "span", "streamed")

    def __init__(
        self,
        span: Any,
        streamed: bool,
        headers: tuple[tuple[str, str], ...],
        attributes: dict[str, AttributeValue],
    ) -> None:
        self.span = span
        self.streamed = streamed
        self.headers = headers
        self.attributes = attributes
        self.retries = 0

    def end(self, outcome: str | None, attributes: dict[str, AttributeValue]) -> None:
        """Set the final attributes and end the span (once; nothing without a span).

        ``outcome`` None is a success; anything else is the error's class
        name, ``closed`` for a body closed early (not an error) or
        ``cancelled`` (a streamed span has only ``ok`` and ``error``).
        """
        span, self.span = self.span, None
        if span is None:
            return
        values = self.attributes
        values.update(attributes)
        values["objectstore.retries"] = self.retries
        values["objectstore.outcome"] = outcome or "ok"
        failed = outcome is not None and outcome != "closed"
        try:
            if self.streamed:
                span.set_attributes(values)
                if failed:
                    span.status = "error"
                span.end()
            else:
                for name, value in values.items():
                    span.set_data(name, value)
                span.set_status(_STATUSES.get(outcome or "", "internal_error"))
                span.finish()
        except Exception:  # pragma: no cover - a broken SDK must not fail an operation
            return


def start_trace(
    target: Target, operation: str, key: str | None, propagate: bool, base_url: str
) -> OperationTrace | None:
    """Start the span of ``operation`` when the Sentry SDK records one, else None.

    Call it only with ``sentry_sdk`` in ``sys.modules``. ``propagate``: the
    client's ``propagate_traces``; the headers then also honour the SDK's
    ``trace_propagation_targets`` for ``base_url``. Any failure inside the
    SDK (an unexpected version) means no tracing, never a failed operation.
    """
    sdk = _modules.get("sentry_sdk")
    if sdk is None:
        return None
    try:
        client = sdk.get_client()
        if not client.is_active():
            return None
        return _start(sdk, client, target, operation, key, propagate, base_url)
    except Exception:  # pragma: no cover - a broken SDK must not fail an operation
        return None


def _start(
    sdk: Any,
    client: Any,
    target: Target,
    operation: str,
    key: str | None,
    propagate: bool,
    base_url: str,
) -> OperationTrace | None:
    # The SDK is loaded already: these imports only look it up.
    from sentry_sdk.tracing_utils import has_tracing_enabled, should_propagate_trace

    options = client.options
    tracing = has_tracing_enabled(options)
    propagate = propagate and should_propagate_trace(client, base_url)
    if not tracing and not propagate:
        return None
    attributes = _attributes(target, key)
    name = f"objectstore.{operation} {target.usecase.name}"
    op = f"objectstore.{operation}"
    span: Any = None
    try:
        from sentry_sdk.tracing_utils import has_span_streaming_enabled
    except ImportError:  # pragma: no cover - an SDK 2.x from before span streaming
        streamed = False
    else:
        streamed = has_span_streaming_enabled(options)
    scope = sdk.get_current_scope()
    if tracing and streamed:
        first = {"sentry.op": op, "sentry.origin": SPAN_ORIGIN, **attributes}
        span = sdk.traces.start_span(name=name, attributes=first, active=False)
    elif tracing and scope.span is not None:
        span = scope.span.start_child(op=op, name=name, origin=SPAN_ORIGIN)
    headers: tuple[tuple[str, str], ...] = ()
    if propagate:
        headers = tuple(scope.iter_trace_propagation_headers(span=span))
    return OperationTrace(span, streamed, headers, attributes)


def _attributes(target: Target, key: str | None) -> dict[str, AttributeValue]:
    usecase, scope = target.usecase, target.scope
    values: dict[str, AttributeValue] = {"objectstore.usecase": usecase.name}
    for name, value in scope.dict().items():
        values[f"objectstore.scopes.{name}"] = value
    values["objectstore.scope"] = str(scope)
    if key is not None:
        values["objectstore.key"] = key
    return values


def traced(flow: Flow[T], trace: OperationTrace) -> Flow[T]:
    """Relay ``flow``'s steps for a traced operation.

    Each request gets the trace headers (the same for every attempt: they
    name the operation's span as the parent), each :class:`Sleep` (a
    backoff before a retry) counts as a retry, a value that is a string (the
    key a put returns) becomes ``objectstore.key``, and a flow closed before
    it finished (its caller was cancelled) ends its span as ``cancelled``.
    Whatever the driver throws in goes to ``flow``, as with ``yield from``.
    """
    headers = trace.headers

    def before(step: Step) -> Step:
        if isinstance(step, SendRequest):
            # An inner operation's span (a multipart call within an upload) is the
            # closer parent: a request that carries trace headers already keeps them.
            if headers and not _has_trace_headers(step.request.headers):
                return SendRequest(step.request.with_headers(headers), step.credentials)
        elif isinstance(step, Sleep):
            trace.retries += 1
        return step

    try:
        value = yield from relayed(flow, before)
    except GeneratorExit:
        trace.end("cancelled", {})
        raise
    if isinstance(value, str):
        trace.attributes["objectstore.key"] = value
    return value


def _has_trace_headers(headers: tuple[tuple[str, str], ...]) -> bool:
    return any(name == "sentry-trace" for name, _ in headers)
