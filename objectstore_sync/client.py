"""``Client``, ``Session`` and what they use, where the official ``client`` module has them.

>>> from objectstore_sync.client import Client, Usecase
"""

from objectstore_core import (
    Compression,
    ExpirationPolicy,
    ExpiryExtensionRejected,
    Metadata,
    MetricsBackend,
    NoOpMetricsBackend,
    ObjectNotFound,
    Permission,
    RequestError,
    Scope,
    SecretKey,
    TokenProvider,
    Usecase,
    format_expiration,
)
from objectstore_core import format_duration as format_timedelta
from objectstore_core._metadata import (
    HEADER_EXPIRATION,
    HEADER_FILENAME,
    HEADER_META_PREFIX,
    HEADER_ORIGIN,
)
from objectstore_core._official import DEFAULT_CONNECT_TIMEOUT, PARAM_AUTH, USER_AGENT
from objectstore_sync._client import Client, MultipartUpload, Session
from objectstore_sync._official import measure_storage_operation, raise_for_status, storage_span
from objectstore_sync._response import GetResponse

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "HEADER_EXPIRATION",
    "HEADER_FILENAME",
    "HEADER_META_PREFIX",
    "HEADER_ORIGIN",
    "PARAM_AUTH",
    "USER_AGENT",
    "Client",
    "Compression",
    "ExpirationPolicy",
    "ExpiryExtensionRejected",
    "GetResponse",
    "Metadata",
    "MetricsBackend",
    "MultipartUpload",
    "NoOpMetricsBackend",
    "ObjectNotFound",
    "Permission",
    "RequestError",
    "Scope",
    "SecretKey",
    "Session",
    "TokenProvider",
    "Usecase",
    "format_expiration",
    "format_timedelta",
    "measure_storage_operation",
    "raise_for_status",
    "storage_span",
]
