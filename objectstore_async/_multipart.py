"""``AsyncMultipartUpload``: a multipart upload with awaited calls (API §4, PROTOCOL §9).

The requests and their parsing are the core's :class:`MultipartFlows`; each
method here awaits one of its flows on the client's transport.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from objectstore_async._driver import adrive
from objectstore_core import (
    Flow,
    MultipartFlows,
    MultipartUploadBase,
    SessionFlows,
    with_return_annotation,
)

if TYPE_CHECKING:
    from objectstore_async._client import AsyncSession

__all__ = ["AsyncMultipartUpload", "initiate_multipart_upload", "resume_multipart_upload"]

T = TypeVar("T")
P = ParamSpec("P")


def _awaiting(
    method: Callable[Concatenate[MultipartFlows, P], Flow[T]], returns: str
) -> Callable[Concatenate[AsyncMultipartUpload, P], Coroutine[Any, Any, T]]:
    """A core upload method as a coroutine method, with the same signature and docs."""

    async def call(self: AsyncMultipartUpload, /, *args: P.args, **kwargs: P.kwargs) -> T:
        client = self._session._client
        flow = method(self._flows, *args, **kwargs)
        value, _ = await adrive(flow, client._transport, client._zstd)
        return value

    functools.update_wrapper(call, method)
    with_return_annotation(call, method, returns)
    return call


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


async def _initiate(self: AsyncSession, /, *args: Any, **kwargs: Any) -> AsyncMultipartUpload:
    client = self._client
    flow = SessionFlows.initiate_multipart_upload(self._flows, *args, **kwargs)
    flows, _ = await adrive(flow, client._transport, client._zstd)
    return AsyncMultipartUpload(self, flows.key, flows.upload_id)


def _resume(self: AsyncSession, key: str, upload_id: str) -> AsyncMultipartUpload:
    return AsyncMultipartUpload(self, key, upload_id)


functools.update_wrapper(_initiate, SessionFlows.initiate_multipart_upload)
with_return_annotation(_initiate, SessionFlows.initiate_multipart_upload, "AsyncMultipartUpload")
functools.update_wrapper(_resume, SessionFlows.resume_multipart_upload)
with_return_annotation(_resume, SessionFlows.resume_multipart_upload, "AsyncMultipartUpload")

initiate_multipart_upload: Callable[..., Coroutine[Any, Any, AsyncMultipartUpload]] = _initiate
resume_multipart_upload: Callable[..., AsyncMultipartUpload] = _resume
