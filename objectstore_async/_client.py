"""``AsyncClient`` and ``AsyncSession``: the asyncio/trio API, twin of the sync one.

The constructor, configuration and session factory come from the core's
:class:`BaseClient`; the operations are the core's :class:`SessionFlows`,
each wrapped so that awaiting it runs its flow with the async transport
(httpcore connections, HTTP/1.1 framed by the core's codec).
Same names, parameters and defaults as ``objectstore_sync`` by construction.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from objectstore_async import _transfer
from objectstore_async._batch import AsyncBatch
from objectstore_async._driver import adrive
from objectstore_async._response import AsyncGetResponse, open_async_response
from objectstore_async._transport import AsyncSocketTransport, AsyncTransport
from objectstore_core import (
    BaseClient,
    BaseSession,
    ClientConfig,
    Flow,
    GetOutcome,
    MultipartFlows,
    MultipartUploadBase,
    SessionFlows,
    Target,
    Timeout,
    with_return_annotation,
)
from objectstore_core._auth import use_wall_clock
from objectstore_core._log import LOGGER_NAME, use_logger

use_wall_clock(time.time)  # a SecretKey used on its own signs with this twin's clock
use_logger(logging.getLogger(LOGGER_NAME))  # the core writes its log lines through it

__all__ = ["AsyncClient", "AsyncMultipartUpload", "AsyncSession"]

T = TypeVar("T")
P = ParamSpec("P")
F = TypeVar("F", SessionFlows, MultipartFlows)


class AsyncClient(BaseClient[AsyncTransport, "AsyncSession"]):
    """A pool of connections to one Objectstore server for one event loop.

    >>> async with AsyncClient("http://127.0.0.1:8888") as client:       # doctest: +SKIP
    ...     session = client.session(Usecase("attachments"), org=42)
    ...     key = await session.put(b"hello")

    Use ``async with`` or :meth:`aclose` to close the pool. Works under
    asyncio and trio; create one client per event loop.
    """

    # The looks outside that the core leaves to the twins (see BaseClient).
    _wall_clock = staticmethod(time.time)

    @staticmethod
    def _read_key_file(path: str) -> str:
        """Read ``$OBJECTSTORE_KEY_FILE`` for :meth:`from_env` (small, read once)."""
        return Path(path).read_text(encoding="utf-8")

    @staticmethod
    def _environment() -> Mapping[str, str]:
        """The process environment, for :meth:`from_env`."""
        return os.environ

    def _default_transport(self, config: ClientConfig) -> AsyncTransport:
        return AsyncSocketTransport(config)

    def _new_session(self, target: Target) -> AsyncSession:
        return AsyncSession(self, target)

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _awaiting(
    method: Callable[Concatenate[F, P], Flow[T]], returns: str
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """A core flow method (of :class:`SessionFlows` or :class:`MultipartFlows`) as a
    coroutine method of the session or upload holding those flows, with the same
    signature and docs."""

    async def call(
        self: AsyncSession | AsyncMultipartUpload, /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        client = self._client
        flow = method(self._flows, *args, **kwargs)  # type: ignore[arg-type]
        value, stream = await adrive(flow, client._transport, client._zstd)
        if stream is not None:  # pragma: no cover - only get flows leave a body open
            await stream.aclose()
        return value

    with_return_annotation(call, method, returns)
    return call


def _awaiting_get(
    method: Callable[Concatenate[SessionFlows, P], Flow[GetOutcome | None]],
) -> Callable[Concatenate[AsyncSession, P], Coroutine[Any, Any, AsyncGetResponse | None]]:
    """``get``: run the flow, then wrap the body it left open in an AsyncGetResponse."""

    async def call(
        self: AsyncSession, /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncGetResponse | None:
        flow = method(self._flows, *args, **kwargs)
        client = self._client
        outcome, stream = await adrive(flow, client._transport, client._zstd)
        if outcome is None or stream is None:
            return None
        # Decoded with the client's zstd contexts, reused from one download to the next.
        return open_async_response(outcome, stream, outcome.download(client._zstd))

    with_return_annotation(call, method, "AsyncGetResponse | None")
    return call


class AsyncSession(BaseSession):
    """Operations on the objects of one usecase and scope; every method is awaited.

    Get one from :meth:`AsyncClient.session`. Arguments are validated before
    any I/O; failures on the wire raise only :class:`ObjectstoreError`
    subclasses.
    """

    __slots__ = ()
    _client: AsyncClient

    put = _awaiting(SessionFlows.put, "str")
    get = _awaiting_get(SessionFlows.get)
    head = _awaiting(SessionFlows.head, "Metadata | None")
    delete = _awaiting(SessionFlows.delete, "None")
    extend_expiry = _awaiting(SessionFlows.extend_expiry, "None")

    # -- batches (API §3) --
    def many(
        self,
        max_batch_concurrency: int = 3,
        max_individual_concurrency: int = 5,
        *,
        timeout: Timeout | float | None = None,
    ) -> AsyncBatch:
        """An :class:`AsyncBatch` of operations on this session's objects, sent together.

        ``timeout`` applies to each of its requests. See :class:`AsyncBatch`.
        """
        return AsyncBatch(self, max_batch_concurrency, max_individual_concurrency, timeout=timeout)

    # Multipart uploads (API §4, PROTOCOL §9).
    _initiate_flows = _awaiting(SessionFlows.initiate_multipart_upload, "MultipartFlows")

    async def initiate_multipart_upload(self, *args: Any, **kwargs: Any) -> AsyncMultipartUpload:
        flows = await self._initiate_flows(*args, **kwargs)
        return AsyncMultipartUpload(self, flows.key, flows.upload_id)

    def resume_multipart_upload(self, key: str, upload_id: str) -> AsyncMultipartUpload:
        return AsyncMultipartUpload(self, key, upload_id)

    # Resumable uploads (API §4, PROTOCOL §14.1).
    resume_upload = _awaiting(SessionFlows.resume_upload, "str")
    upload = _awaiting(SessionFlows.upload, "str")
    download = _transfer.download


class AsyncMultipartUpload(MultipartUploadBase):
    """One multipart upload: upload parts, then :meth:`complete` (or :meth:`abort`).

    Get one from :meth:`AsyncSession.initiate_multipart_upload`, or
    :meth:`AsyncSession.resume_multipart_upload` to continue one started earlier.

    >>> upload = await session.initiate_multipart_upload(key="db.tar")  # doctest: +SKIP
    >>> part = await upload.put_part(data, part_number=1, content_length=4)  # doctest: +SKIP
    >>> await upload.complete([part])  # doctest: +SKIP
    'db.tar'
    """

    __slots__ = ()
    _session: AsyncSession

    put_part = _awaiting(MultipartFlows.put_part, "CompletePart")
    list_parts = _awaiting(MultipartFlows.list_parts, "list[PartInfo]")
    complete = _awaiting(MultipartFlows.complete, "str")
    abort = _awaiting(MultipartFlows.abort, "None")


for _flow in (SessionFlows.initiate_multipart_upload, SessionFlows.resume_multipart_upload):
    _method = getattr(AsyncSession, _flow.__name__)
    with_return_annotation(_method, _flow, "AsyncMultipartUpload")
