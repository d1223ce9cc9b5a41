"""objectstore_async: the asyncio/trio twin of ``objectstore_sync``, on httpx.

Same classes with an ``Async`` prefix, same methods, parameters and
defaults; I/O methods are awaited.

>>> from objectstore_async import AsyncClient, Usecase
>>> async def main() -> None:                                          # doctest: +SKIP
...     async with AsyncClient("http://127.0.0.1:8888") as client:
...         session = client.session(Usecase("attachments"), org=42)
...         key = await session.put(b"hello")
...         async with await session.get(key) as obj:
...             print(await obj.aread())
"""

from objectstore_async._client import AsyncClient, AsyncSession
from objectstore_async._response import AsyncGetResponse, AsyncPayload
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

__all__ = [
    "AsyncClient",
    "AsyncGetResponse",
    "AsyncPayload",
    "AsyncSession",
    "Compression",
    "ConnectError",
    "ConnectTimeout",
    "ExpirationPolicy",
    "ExpiryExtensionRejected",
    "Forbidden",
    "IntegrityError",
    "Metadata",
    "MetricsBackend",
    "MultipartCompleteError",
    "NoOpMetricsBackend",
    "ObjectNotFound",
    "ObjectstoreError",
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
