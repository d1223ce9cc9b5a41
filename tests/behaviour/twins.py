"""Blocking views of both twins, so one test body can exercise either.

The sync session is used as it is; the async session is driven through an
anyio blocking portal (asyncio or trio) and its responses are wrapped to
speak the sync twin's vocabulary (``read``, ``iter_bytes``, ``close``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import anyio.from_thread

from objectstore_async import AsyncClient, AsyncGetResponse, AsyncPayload
from objectstore_sync import Client, Usecase

COMBOS = [
    ("sync", "inprocess"),
    ("sync", "loopback"),
    ("asyncio", "inprocess"),
    ("asyncio", "loopback"),
    ("trio", "loopback"),
]


class AsyncPayloadView:
    """An AsyncPayload read through the portal."""

    def __init__(self, payload: AsyncPayload, portal: anyio.from_thread.BlockingPortal) -> None:
        self._payload = payload
        self._portal = portal

    def read(self, size: int = -1) -> bytes:
        return self._portal.call(self._payload.read, size)

    def close(self) -> None:
        self._portal.call(self._payload.aclose)


class AsyncResponseView:
    """An AsyncGetResponse used with the sync twin's vocabulary."""

    def __init__(
        self, response: AsyncGetResponse, portal: anyio.from_thread.BlockingPortal
    ) -> None:
        self._response = response
        self._portal = portal
        self.metadata = response.metadata
        self.payload = AsyncPayloadView(response.payload, portal)

    def read(self) -> bytes:
        return self._portal.call(self._response.aread)

    def iter_bytes(self, chunk_size: int | None = None) -> list[bytes]:
        async def collect() -> list[bytes]:
            return [chunk async for chunk in self._response.aiter_bytes(chunk_size)]

        return self._portal.call(collect)

    def close(self) -> None:
        self._portal.call(self._response.aclose)

    def __enter__(self) -> AsyncResponseView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        return iter((self.metadata, self.payload))


class AsyncSessionView:
    """An AsyncSession whose methods block until done (run in the portal's loop)."""

    def __init__(self, session: Any, portal: anyio.from_thread.BlockingPortal) -> None:
        self._session = session
        self._portal = portal
        self.usecase = session.usecase
        self.scope = session.scope

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method: Callable[..., Any] = getattr(self._session, name)
        return self._portal.call(functools.partial(method, *args, **kwargs))

    def put(self, *args: Any, **kwargs: Any) -> str:
        key: str = self._call("put", *args, **kwargs)
        return key

    def get(self, *args: Any, **kwargs: Any) -> AsyncResponseView | None:
        response = self._call("get", *args, **kwargs)
        return None if response is None else AsyncResponseView(response, self._portal)

    def head(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("head", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> None:
        self._call("delete", *args, **kwargs)

    def extend_expiry(self, *args: Any, **kwargs: Any) -> None:
        self._call("extend_expiry", *args, **kwargs)

    def many(self, *args: Any, **kwargs: Any) -> AsyncBatchView:
        return AsyncBatchView(self._session.many(*args, **kwargs), self._portal)


class AsyncBatchView:
    """An AsyncBatch whose ``send`` blocks; fetched objects come back as AsyncResponseViews."""

    def __init__(self, batch: Any, portal: anyio.from_thread.BlockingPortal) -> None:
        self._batch = batch
        self._portal = portal
        self.put, self.get = batch.put, batch.get
        self.head, self.delete = batch.head, batch.delete

    def __len__(self) -> int:
        return len(self._batch)

    def send(self) -> Any:
        results = self._portal.call(self._batch.send)
        for result in results:
            if isinstance(result.value, AsyncGetResponse):
                object.__setattr__(result, "value", AsyncResponseView(result.value, self._portal))
        return results

    def iter_results(self) -> list[Any]:
        async def collect() -> list[Any]:
            return [result async for result in self._batch.iter_results()]

        return self._portal.call(collect)


class AsyncMultipartView:
    """An AsyncMultipartUpload whose methods block until done."""

    def __init__(self, upload: Any, portal: anyio.from_thread.BlockingPortal) -> None:
        self._upload = upload
        self._portal = portal
        self.key = upload.key
        self.upload_id = upload.upload_id

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._upload, name)
        return lambda *args, **kwargs: self._portal.call(functools.partial(method, *args, **kwargs))


def _view_multipart(cls: type[AsyncSessionView]) -> type[AsyncSessionView]:
    """Large-object calls (API §4) on the async session view."""

    def initiate(self: AsyncSessionView, **kwargs: Any) -> AsyncMultipartView:
        return AsyncMultipartView(self._call("initiate_multipart_upload", **kwargs), self._portal)

    def resume(self: AsyncSessionView, key: str, upload_id: str) -> AsyncMultipartView:
        upload = self._session.resume_multipart_upload(key, upload_id)
        return AsyncMultipartView(upload, self._portal)

    def resume_upload(self: AsyncSessionView, *args: Any, **kwargs: Any) -> str:
        key: str = self._call("resume_upload", *args, **kwargs)
        return key

    def upload(self: AsyncSessionView, *args: Any, **kwargs: Any) -> str:
        key: str = self._call("upload", *args, **kwargs)
        return key

    def download(self: AsyncSessionView, *args: Any, **kwargs: Any) -> Any:
        return self._call("download", *args, **kwargs)

    cls.download = download  # type: ignore[attr-defined]
    cls.upload = upload  # type: ignore[attr-defined]
    cls.resume_upload = resume_upload  # type: ignore[attr-defined]
    cls.initiate_multipart_upload = initiate  # type: ignore[attr-defined]
    cls.resume_multipart_upload = resume  # type: ignore[attr-defined]
    return cls


_view_multipart(AsyncSessionView)


class Twin:
    """A client of either twin, with a blocking ``session()``; extra kwargs go to the client."""

    def __init__(self, kind: str, url: str, transport: Any = None, **client_kwargs: Any) -> None:
        self.kind = kind
        self._portal_cm: Any = None
        self.portal: anyio.from_thread.BlockingPortal | None = None
        if kind == "sync":
            self.client: Any = Client(url, transport=transport, **client_kwargs)
        else:
            self._portal_cm = anyio.from_thread.start_blocking_portal(backend=kind)
            self.portal = self._portal_cm.__enter__()
            try:
                self.client = AsyncClient(url, transport=transport, **client_kwargs)
            except BaseException:
                # A client refused (a test of bad options): stop the portal now. Left to
                # the garbage collector, its thread would be joined from whichever event
                # loop thread happened to collect it, and that loop would hang.
                self._portal_cm.__exit__(None, None, None)
                raise

    def session(self, usecase: Usecase | Any, **scopes: Any) -> Any:
        made = self.client.session(usecase, **scopes)
        return made if self.portal is None else AsyncSessionView(made, self.portal)

    def close(self) -> None:
        if self.portal is None:
            self.client.close()
        else:
            self.portal.call(self.client.aclose)
            self._portal_cm.__exit__(None, None, None)
