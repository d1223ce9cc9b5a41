"""Multipart upload values and errors, where the official ``multipart`` module has them (§9).

>>> from objectstore_sync.multipart import CompletePart, MultipartCompleteError
"""

# MultipartUpload (the upload handle) joins this module with the large-objects work.
from objectstore_core import CompletePart, MultipartCompleteError, PartInfo, RequestError
from objectstore_sync._official import measure_storage_operation, raise_for_status, storage_span

__all__ = [
    "CompletePart",
    "MultipartCompleteError",
    "PartInfo",
    "RequestError",
    "measure_storage_operation",
    "raise_for_status",
    "storage_span",
]
