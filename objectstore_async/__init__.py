"""objectstore_async: the asyncio/trio twin of ``objectstore_sync``.

Connections come from httpcore's network backend (the layer beneath httpx,
so asyncio and trio both work); HTTP/1.1 is framed by the core's codec.

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

from objectstore_async._batch import AsyncBatch
from objectstore_async._client import AsyncClient, AsyncMultipartUpload, AsyncSession
from objectstore_async._response import AsyncGetResponse, AsyncPayload
from objectstore_core import shared
from objectstore_core.shared import *  # noqa: F403  (the names both twins share)

__all__ = [
    "AsyncBatch",
    "AsyncClient",
    "AsyncGetResponse",
    "AsyncMultipartUpload",
    "AsyncPayload",
    "AsyncSession",
]
__all__ += shared.__all__
