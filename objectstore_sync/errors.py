"""The exception tree, where the official client's ``errors`` module has its part of it.

``RequestError``, ``ObjectNotFound`` and ``ExpiryExtensionRejected`` are the
official names; the rest of the tree (API §7) is here too.

>>> from objectstore_sync.errors import ObjectNotFound, RequestError
>>> issubclass(ObjectNotFound, RequestError)
True
"""

from objectstore_core import (
    ConnectError,
    ConnectTimeout,
    ExpiryExtensionRejected,
    Forbidden,
    IntegrityError,
    MultipartCompleteError,
    ObjectNotFound,
    ObjectstoreError,
    PoolTimeout,
    ProtocolError,
    RateLimited,
    ReadError,
    ReadTimeout,
    RequestError,
    ServerError,
    TimeoutError,
    TransportError,
    Unauthorized,
    WriteError,
    WriteTimeout,
)
from objectstore_sync._official import raise_for_status

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ExpiryExtensionRejected",
    "Forbidden",
    "IntegrityError",
    "MultipartCompleteError",
    "ObjectNotFound",
    "ObjectstoreError",
    "PoolTimeout",
    "ProtocolError",
    "RateLimited",
    "ReadError",
    "ReadTimeout",
    "RequestError",
    "ServerError",
    "TimeoutError",
    "TransportError",
    "Unauthorized",
    "WriteError",
    "WriteTimeout",
    "raise_for_status",
]
