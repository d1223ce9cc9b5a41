"""``Client`` and ``Session``: the blocking API (API §1, §2, §6).

The constructor, configuration and session factory come from the core's
:class:`BaseClient`; the operations are the core's :class:`SessionFlows`,
each wrapped so that calling it runs its flow with the urllib3 transport.
No protocol decision is made here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

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
from objectstore_sync import _transfer
from objectstore_sync._batch import Batch
from objectstore_sync._driver import drive
from objectstore_sync._response import GetResponse, open_response
from objectstore_sync._transport import SocketTransport, SyncTransport

use_wall_clock(time.time)  # a SecretKey used on its own signs with this twin's clock
use_logger(logging.getLogger(LOGGER_NAME))  # the core writes its log lines through it

__all__ = ["Client", "MultipartUpload", "Session"]

T = TypeVar("T")
P = ParamSpec("P")
F = TypeVar("F", SessionFlows, MultipartFlows)


class Client(BaseClient[SyncTransport, "Session"]):
    """A pool of connections to one Objectstore server, safe to share across threads.

    >>> client = Client("http://127.0.0.1:8888")                              # doctest: +SKIP
    >>> session = client.session(Usecase("attachments"), org=42, project=1337)  # doctest: +SKIP
    >>> key = session.put(b"hello")                                            # doctest: +SKIP

    Use it as a context manager, or call :meth:`close`, to close the pool.
    A client created before ``fork()`` keeps working in the child (its pool
    is rebuilt there) and in the parent.
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

    def _default_transport(self, config: ClientConfig) -> SyncTransport:
        return SocketTransport(config)

    def _new_session(self, target: Target) -> Session:
        return Session(self, target)

    def close(self) -> None:
        """Close pooled connections. Bodies still being read close when released."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _blocking(
    method: Callable[Concatenate[F, P], Flow[T]], returns: str
) -> Callable[Concatenate[Any, P], T]:
    """A core flow method (of :class:`SessionFlows` or :class:`MultipartFlows`) as a
    blocking method of the session or upload holding those flows, with the same
    signature and docs."""

    def call(self: Session | MultipartUpload, /, *args: P.args, **kwargs: P.kwargs) -> T:
        client = self._client
        flow = method(self._flows, *args, **kwargs)  # type: ignore[arg-type]
        value, stream = drive(flow, client._transport, client._zstd)
        if stream is not None:  # pragma: no cover - only get flows leave a body open
            stream.close()
        return value

    with_return_annotation(call, method, returns)
    return call


def _blocking_get(
    method: Callable[Concatenate[SessionFlows, P], Flow[GetOutcome | None]],
) -> Callable[Concatenate[Session, P], GetResponse | None]:
    """``get``: run the flow, then wrap the body it left open in a GetResponse."""

    def call(self: Session, /, *args: P.args, **kwargs: P.kwargs) -> GetResponse | None:
        client = self._client
        flow = method(self._flows, *args, **kwargs)
        outcome, stream = drive(flow, client._transport, client._zstd)
        if outcome is None or stream is None:
            return None
        # Decoded with the client's zstd contexts, reused from one download to the next.
        return open_response(outcome, stream, outcome.download(client._zstd))

    with_return_annotation(call, method, "GetResponse | None")
    return call


class Session(BaseSession):
    """Operations on the objects of one usecase and scope (API §2).

    Get one from :meth:`Client.session`. Every method validates its
    arguments before any I/O and raises only :class:`ObjectstoreError`
    subclasses for failures on the wire.
    """

    __slots__ = ()
    _client: Client

    put = _blocking(SessionFlows.put, "str")
    get = _blocking_get(SessionFlows.get)
    head = _blocking(SessionFlows.head, "Metadata | None")
    delete = _blocking(SessionFlows.delete, "None")
    extend_expiry = _blocking(SessionFlows.extend_expiry, "None")

    # -- batches (API §3) --
    def many(
        self,
        max_batch_concurrency: int = 3,
        max_individual_concurrency: int = 5,
        *,
        timeout: Timeout | float | None = None,
    ) -> Batch:
        """A :class:`Batch` of operations on this session's objects, sent together.

        ``timeout`` applies to each of its requests. See :class:`Batch`.
        """
        return Batch(self, max_batch_concurrency, max_individual_concurrency, timeout=timeout)

    # Multipart uploads (API §4, PROTOCOL §9).
    _initiate_flows = _blocking(SessionFlows.initiate_multipart_upload, "MultipartFlows")

    def initiate_multipart_upload(self, *args: Any, **kwargs: Any) -> MultipartUpload:
        flows = self._initiate_flows(*args, **kwargs)
        return MultipartUpload(self, flows.key, flows.upload_id)

    def resume_multipart_upload(self, key: str, upload_id: str) -> MultipartUpload:
        return MultipartUpload(self, key, upload_id)

    # Resumable uploads (API §4, PROTOCOL §14.1).
    resume_upload = _blocking(SessionFlows.resume_upload, "str")
    upload = _blocking(SessionFlows.upload, "str")
    download = _transfer.download


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


for _flow in (SessionFlows.initiate_multipart_upload, SessionFlows.resume_multipart_upload):
    _method = getattr(Session, _flow.__name__)
    with_return_annotation(_method, _flow, "MultipartUpload")
