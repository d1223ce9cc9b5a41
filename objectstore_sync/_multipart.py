"""``MultipartUpload``: a multipart upload with blocking calls (API §4, PROTOCOL §9).

The requests and their parsing are the core's :class:`MultipartFlows`; each
method here runs one of its flows with the client's transport.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from objectstore_core import (
    Flow,
    MultipartFlows,
    MultipartUploadBase,
    SessionFlows,
    with_return_annotation,
)
from objectstore_sync._driver import drive

if TYPE_CHECKING:
    from objectstore_sync._client import Session

__all__ = ["MultipartUpload", "initiate_multipart_upload", "resume_multipart_upload"]

T = TypeVar("T")
P = ParamSpec("P")


def _blocking(
    method: Callable[Concatenate[MultipartFlows, P], Flow[T]], returns: str
) -> Callable[Concatenate[MultipartUpload, P], T]:
    """A core upload method as a blocking one, with the same signature and docs."""

    def call(self: MultipartUpload, /, *args: P.args, **kwargs: P.kwargs) -> T:
        client = self._session._client
        value, _ = drive(method(self._flows, *args, **kwargs), client._transport, client._zstd)
        return value

    functools.update_wrapper(call, method)
    with_return_annotation(call, method, returns)
    return call


class MultipartUpload(MultipartUploadBase):
    """One multipart upload: upload parts, then :meth:`complete` (or :meth:`abort`).

    Get one from :meth:`Session.initiate_multipart_upload`, or
    :meth:`Session.resume_multipart_upload` to continue one started earlier.

    >>> upload = session.initiate_multipart_upload(key="t", compression="none")  # doctest: +SKIP
    >>> parts = [upload.put_part(data, part_number=1, content_length=len(data))]  # doctest: +SKIP
    >>> upload.complete(parts)  # doctest: +SKIP
    't'
    """

    __slots__ = ()
    _session: Session

    put_part = _blocking(MultipartFlows.put_part, "CompletePart")
    list_parts = _blocking(MultipartFlows.list_parts, "list[PartInfo]")
    complete = _blocking(MultipartFlows.complete, "str")
    abort = _blocking(MultipartFlows.abort, "None")


def _initiate(self: Session, /, *args: Any, **kwargs: Any) -> MultipartUpload:
    client = self._client
    flow = SessionFlows.initiate_multipart_upload(self._flows, *args, **kwargs)
    flows, _ = drive(flow, client._transport, client._zstd)
    return MultipartUpload(self, flows.key, flows.upload_id)


def _resume(self: Session, key: str, upload_id: str) -> MultipartUpload:
    return MultipartUpload(self, key, upload_id)


functools.update_wrapper(_initiate, SessionFlows.initiate_multipart_upload)
with_return_annotation(_initiate, SessionFlows.initiate_multipart_upload, "MultipartUpload")
functools.update_wrapper(_resume, SessionFlows.resume_multipart_upload)
with_return_annotation(_resume, SessionFlows.resume_multipart_upload, "MultipartUpload")

initiate_multipart_upload: Callable[..., MultipartUpload] = _initiate
resume_multipart_upload: Callable[..., MultipartUpload] = _resume
