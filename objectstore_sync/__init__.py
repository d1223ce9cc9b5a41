"""objectstore_sync: the blocking Objectstore client, on urllib3.

Drop-in for the official ``objectstore_client``: change the import and the
same code works. Everything shared with the async twin comes from
``objectstore_core`` and is re-exported here.

>>> from objectstore_sync import Client, Usecase
>>> client = Client("http://127.0.0.1:8888")                   # doctest: +SKIP
>>> session = client.session(Usecase("attachments"), org=42)    # doctest: +SKIP
>>> key = session.put(b"hello")                                 # doctest: +SKIP
>>> session.get(key).read()                                     # doctest: +SKIP
b'hello'
"""

from objectstore_core import (
    Compression,
    ConnectError,
    ConnectTimeout,
    ExpirationPolicy,
    ExpiryExtensionRejected,
    Forbidden,
    IntegrityError,
    Metadata,
    MetricsBackend,
    MultipartCompleteError,
    NoOpMetricsBackend,
    ObjectNotFound,
    ObjectstoreError,
    Permission,
    PoolTimeout,
    ProtocolError,
    RateLimited,
    ReadError,
    ReadTimeout,
    RequestError,
    RetryPolicy,
    Scope,
    SecretKey,
    ServerError,
    Timeout,
    TimeoutError,
    TimeToIdle,
    TimeToLive,
    TokenGenerator,
    TokenProvider,
    TransportError,
    Unauthorized,
    Usecase,
    WriteError,
    WriteTimeout,
    parse_accept_encoding,
)
from objectstore_sync._client import Client, Session
from objectstore_sync._response import GetResponse, Payload

__all__ = [
    "Client",
    "Compression",
    "ConnectError",
    "ConnectTimeout",
    "ExpirationPolicy",
    "ExpiryExtensionRejected",
    "Forbidden",
    "GetResponse",
    "IntegrityError",
    "Metadata",
    "MetricsBackend",
    "MultipartCompleteError",
    "NoOpMetricsBackend",
    "ObjectNotFound",
    "ObjectstoreError",
    "Payload",
    "Permission",
    "PoolTimeout",
    "ProtocolError",
    "RateLimited",
    "ReadError",
    "ReadTimeout",
    "RequestError",
    "RetryPolicy",
    "Scope",
    "SecretKey",
    "ServerError",
    "Session",
    "TimeToIdle",
    "TimeToLive",
    "Timeout",
    "TimeoutError",
    "TokenGenerator",
    "TokenProvider",
    "TransportError",
    "Unauthorized",
    "Usecase",
    "WriteError",
    "WriteTimeout",
    "parse_accept_encoding",
]
