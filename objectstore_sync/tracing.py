"""Sentry spans for storage operations, where the official client's ``tracing`` module has them.

>>> from objectstore_sync.tracing import storage_span
"""

from objectstore_core import Scope
from objectstore_sync._official import SPAN_ORIGIN, SpanAttributeValue, storage_span

__all__ = ["SPAN_ORIGIN", "Scope", "SpanAttributeValue", "storage_span"]
