"""An async transport that runs the emulator in this process, without sockets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from objectstore_async._sources import aiter_upload
from objectstore_core import Request, Response, Upload
from objectstore_core.emulator import Emulator, MemoryStorage, Storage
from objectstore_core.emulator._bridge import InProcessBody, server_request, split_response

__all__ = ["AsyncInProcessTransport"]


class _AsyncBody:
    """An in-process body read with ``await``; the emulator answers without waiting."""

    __slots__ = ("_body",)

    def __init__(self, body: InProcessBody) -> None:
        self._body = body

    async def read(self) -> bytes:
        return self._body.read()

    async def aclose(self) -> None:
        self._body.close()


class AsyncInProcessTransport:
    """Serve an async client's requests with an in-process emulator (for tests).

    Pass ``emulator`` to share one emulator with other clients, or
    ``storage``/``clock`` to build one.
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        storage: Storage | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if emulator is None:
            storage = storage if storage is not None else MemoryStorage()
            emulator = Emulator(storage) if clock is None else Emulator(storage, clock=clock)
        self.emulator = emulator

    async def send(self, request: Request) -> tuple[Response, _AsyncBody | None]:
        """Hand the request to the emulator; see :class:`objectstore_core.Request`."""
        exchange = self.emulator.begin(server_request(request))
        if exchange.response is None:
            try:
                if isinstance(request.body, Upload):
                    async for chunk in aiter_upload(request.body):
                        exchange.feed(chunk)
                elif request.body:
                    exchange.feed(request.body)
            except BaseException:
                exchange.abort()  # a cancelled or failed upload leaves no object
                raise
            response = exchange.finish()
        else:
            response = exchange.response
        reply, body = split_response(request, response)
        return reply, None if body is None else _AsyncBody(body)

    async def aclose(self) -> None:
        """Nothing to release: there are no connections."""
