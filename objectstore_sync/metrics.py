"""The metrics interface and per-operation metrics, as the official ``metrics`` module.

>>> from objectstore_sync.metrics import MetricsBackend, NoOpMetricsBackend
>>> isinstance(NoOpMetricsBackend(), MetricsBackend)
True
"""

from objectstore_core import MetricsBackend, NoOpMetricsBackend
from objectstore_core._metrics import StorageMetricEmitter, Tags
from objectstore_sync._official import measure_storage_operation

__all__ = [
    "MetricsBackend",
    "NoOpMetricsBackend",
    "StorageMetricEmitter",
    "Tags",
    "measure_storage_operation",
]
