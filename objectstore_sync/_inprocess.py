"""A sync transport that runs the emulator in this process, without sockets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from objectstore_core import Request, Response, Upload
from objectstore_core.emulator import Emulator, MemoryStorage, Storage
from objectstore_core.emulator._bridge import InProcessBody, server_request, split_response
from objectstore_sync._sources import iter_upload

__all__ = ["InProcessTransport"]


class InProcessTransport:
    """Serve a client's requests with an in-process emulator (for tests).

    >>> from objectstore_sync import Client, Usecase
    >>> client = Client("http://objectstore.test", transport=InProcessTransport())
    >>> session = client.session(Usecase("tests"), org=1)
    >>> session.get(session.put(b"hi")).read()
    b'hi'

    Pass ``emulator`` to share one emulator between clients (or with an
    async in-process transport), or ``storage``/``clock`` to build one.
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

    def send(self, request: Request) -> tuple[Response, InProcessBody | None]:
        """Hand the request to the emulator; see :class:`objectstore_core.Request`."""
        exchange = self.emulator.begin(server_request(request))
        if exchange.response is None:
            try:
                if isinstance(request.body, Upload):
                    for chunk in iter_upload(request.body):
                        exchange.feed(chunk)
                elif request.body:
                    exchange.feed(request.body)
            except BaseException:
                exchange.abort()  # nothing half-written becomes visible
                raise
            response = exchange.finish()
        else:
            response = exchange.response
        return split_response(request, response)

    def close(self) -> None:
        """Nothing to release: there are no connections."""
