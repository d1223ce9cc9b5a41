"""The httpx transport: the only module of the async twin that touches httpx.

Responses are read raw (``aiter_raw``): zstd is decoded by the core, never
by httpx. Every httpx exception is translated into the project's error tree
here, keeping the original as ``__cause__``. Closing a response is shielded
from cancellation, so a cancelled task still hands its connection back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any, Protocol

import anyio
import httpx

from objectstore_async._sources import aiter_upload
from objectstore_core import (
    ClientConfig,
    ConnectError,
    ConnectTimeout,
    IntegrityError,
    ObjectstoreError,
    PoolTimeout,
    ProtocolError,
    ReadError,
    ReadTimeout,
    Request,
    Response,
    Timeout,
    Upload,
    WriteError,
    WriteTimeout,
)

__all__ = ["AsyncRawBody", "AsyncRawStream", "AsyncTransport", "HttpxTransport"]

_ERROR_BODY_LIMIT = 1024 * 1024
_READ_CHUNK = 1024 * 1024


class AsyncRawBody(Protocol):
    """A response body left open for the caller: raw bytes, then ``b""`` at the end."""

    async def read(self) -> bytes: ...

    async def aclose(self) -> None: ...


class AsyncTransport(Protocol):
    """What the async driver needs: send a request, close. (In-process and httpx.)"""

    async def send(self, request: Request) -> tuple[Response, AsyncRawBody | None]: ...

    async def aclose(self) -> None: ...


def _httpx_timeout(timeout: Timeout) -> httpx.Timeout:
    return httpx.Timeout(
        connect=timeout.connect, read=timeout.read, write=timeout.write, pool=timeout.pool
    )


class AsyncRawStream:
    """An open httpx response body: raw bytes out, connection released at the end."""

    __slots__ = ("_chunks", "_done", "_response")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chunks: AsyncIterator[bytes] = response.aiter_raw(_READ_CHUNK)
        self._done = False

    async def read(self) -> bytes:
        """The next raw chunk; ``b""`` at the end (the connection is then released)."""
        if self._done:
            return b""
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            await self.aclose()
            return b""
        except BaseException as exc:
            await self.aclose()
            raise _translate(exc, reading_body=True) from exc

    async def aclose(self) -> None:
        """Release the connection (closed if the body is unfinished); safe when cancelled."""
        if self._done:
            return
        self._done = True
        with anyio.CancelScope(shield=True):
            close_chunks = getattr(self._chunks, "aclose", None)
            if close_chunks is not None:
                await close_chunks()
            await self._response.aclose()


class _SourceFailure(Exception):
    """Carries an exception raised by the caller's own payload through httpx."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


async def _guarded(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # Exceptions from the caller's payload must reach them unchanged.
    try:
        async for chunk in chunks:
            yield chunk
    except Exception as exc:
        raise _SourceFailure(exc) from exc


class HttpxTransport:
    """Sends :class:`Request` descriptions with an ``httpx.AsyncClient``.

    One client per event loop (API §6): httpx binds pooled connections to
    the loop that opened them. After ``fork()`` the child gets a new, empty
    pool on its first request; the inherited one is abandoned without being
    closed, so the child never writes to (or shuts down) a socket it shares
    with its parent.
    """

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._pid = os.getpid()
        self._client = self._new_client()

    def _new_client(self) -> httpx.AsyncClient:
        config = self._config
        limits = httpx.Limits(
            max_connections=config.max_connections,
            max_keepalive_connections=config.max_connections,
        )
        return httpx.AsyncClient(
            base_url=f"{config.scheme}://{config.host}:{config.port}",
            limits=limits,
            timeout=_httpx_timeout(config.timeout),
            follow_redirects=False,
            trust_env=False,
            **dict(config.connection_kwargs),
        )

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._client = self._new_client()

    async def aclose(self) -> None:
        """Close the connection pool."""
        self._check_fork()
        await self._client.aclose()

    async def send(self, request: Request) -> tuple[Response, AsyncRawBody | None]:
        """Perform one request; see :class:`objectstore_core.Request` for the streaming rule."""
        self._check_fork()
        content: Any = request.body
        if isinstance(content, Upload):
            content = _guarded(aiter_upload(content))
        timeout = request.timeout or self._config.timeout
        built = self._client.build_request(
            request.method,
            request.target,
            headers=list(request.headers),
            content=content,
            timeout=_httpx_timeout(timeout),
        )
        try:
            response = await self._client.send(built, stream=True)
        except _SourceFailure as failure:
            raise failure.error from None
        except BaseException as exc:
            if isinstance(exc.__cause__, _SourceFailure):
                raise exc.__cause__.error from None
            if isinstance(exc, httpx.LocalProtocolError):
                raise _translate(exc, reading_body=False) from None  # may quote a token
            raise _translate(exc, reading_body=False) from exc
        headers = {name.lower(): value for name, value in response.headers.items()}
        stream = AsyncRawStream(response)
        if request.stream and 200 <= response.status_code < 300:
            return Response(response.status_code, headers), stream
        try:
            body = await _read_limited(stream)
        finally:
            await stream.aclose()
        return Response(response.status_code, headers, body), None


async def _read_limited(stream: AsyncRawStream) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while data := await stream.read():
        size += len(data)
        if size > _ERROR_BODY_LIMIT:
            raise ProtocolError(
                f"response body exceeds {_ERROR_BODY_LIMIT} bytes where a small one was expected"
            )
        chunks.append(data)
    return b"".join(chunks)


def _translate(exc: BaseException, *, reading_body: bool) -> BaseException:
    """Map an httpx exception to our tree; anything else passes unchanged."""
    if isinstance(exc, ObjectstoreError) or not isinstance(exc, httpx.HTTPError | OSError):
        return exc
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectTimeout(f"connecting took longer than the connect timeout: {exc}")
    if isinstance(exc, httpx.ReadTimeout):
        return ReadTimeout(f"the server sent nothing within the read timeout: {exc}")
    if isinstance(exc, httpx.WriteTimeout):
        return WriteTimeout(f"the server accepted no request bytes in time: {exc}")
    if isinstance(exc, httpx.PoolTimeout):
        return PoolTimeout(f"no connection became free in time: {exc}")
    if isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol | httpx.ProxyError):
        return ConnectError(f"cannot connect: {exc}")
    if isinstance(exc, httpx.WriteError):
        return WriteError(f"sending the request failed: {exc}")
    if isinstance(exc, httpx.LocalProtocolError):
        # h11 quotes an invalid header value, and a header may carry a token:
        # the message is not passed on (API §7).
        return ProtocolError("the request could not be sent: it is invalid (details not shown)")
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc).lower()
        if reading_body and ("incomplete" in text or "complete message body" in text):
            return IntegrityError(f"response body was truncated: {exc}")
        if "without sending" in text or "disconnected" in text:
            return ReadError(f"the server closed the connection: {exc}")
        return ProtocolError(f"malformed response: {exc}")
    if isinstance(exc, httpx.ReadError | httpx.NetworkError | OSError):
        return ReadError(f"reading the response failed: {exc}")
    return ProtocolError(f"request failed: {exc!r}")
