"""Multipart upload values and errors, where the official ``multipart`` module has them (§9).

>>> from objectstore_sync.multipart import CompletePart, MultipartCompleteError
"""

from objectstore_core import CompletePart, MultipartCompleteError, PartInfo, RequestError
from objectstore_sync._client import MultipartUpload
from objectstore_sync._official import measure_storage_operation, raise_for_status, storage_span

__all__ = [
    "CompletePart",
    "MultipartCompleteError",
    "MultipartUpload",
    "PartInfo",
    "RequestError",
    "measure_storage_operation",
    "raise_for_status",
    "storage_span",
]
