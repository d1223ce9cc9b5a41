"""An async transport that runs the emulator in this process, without sockets."""

from __future__ import annotations

import threading

from objectstore_async._sources import aiter_upload
from objectstore_core import Request, Response
from objectstore_core.emulator._bridge import InProcessBase, InProcessBody, InProcessCall
from objectstore_sync.emulator._clock import wall_clock

__all__ = ["AsyncInProcessTransport"]


class _AsyncBody:
    """An in-process body read with ``await``; the emulator answers without waiting."""

    __slots__ = ("_body",)

    def __init__(self, body: InProcessBody) -> None:
        self._body = body

    @property
    def done(self) -> bool:
        return self._body.done

    async def read(self, amount: int = 1 << 20) -> bytes:
        return self._body.read(amount)

    def read_now(self, amount: int) -> None:
        return None  # each read is a turn for other tasks, as over a network

    async def aclose(self) -> None:
        self._body.close()


class AsyncInProcessTransport(InProcessBase):
    """Serve an async client's requests with an in-process emulator (for tests).

    Pass ``emulator`` to share one emulator with other clients, or
    ``storage``/``clock`` to build one.
    """

    default_clock = staticmethod(wall_clock)
    new_lock = staticmethod(threading.RLock)

    async def send(self, request: Request) -> tuple[Response, _AsyncBody | None]:
        """Hand the request to the emulator; see :class:`objectstore_core.Request`."""
        call = InProcessCall(self.emulator, request)
        with call.receiving():  # a cancelled or failed upload leaves no object
            if call.upload is not None:
                async for chunk in aiter_upload(call.upload):
                    call.feed(chunk)
        reply, body = call.finish()
        return reply, None if body is None else _AsyncBody(body)

    async def aclose(self) -> None:
        """Nothing to release: there are no connections."""
