"""A sync transport that runs the emulator in this process, without sockets."""

from __future__ import annotations

import threading

from objectstore_core import Request, Response
from objectstore_core.emulator._bridge import InProcessBase, InProcessBody, InProcessCall
from objectstore_sync._sources import iter_upload
from objectstore_sync.emulator._clock import wall_clock

__all__ = ["InProcessTransport"]


class InProcessTransport(InProcessBase):
    """Serve a client's requests with an in-process emulator (for tests).

    >>> from objectstore_sync import Client, Usecase
    >>> client = Client("http://objectstore.test", transport=InProcessTransport())
    >>> session = client.session(Usecase("tests"), org=1)
    >>> session.get(session.put(b"hi")).read()
    b'hi'

    Pass ``emulator`` to share one emulator between clients (or with an
    async in-process transport), or ``storage``/``clock`` to build one.
    """

    default_clock = staticmethod(wall_clock)
    new_lock = staticmethod(threading.RLock)

    def send(self, request: Request) -> tuple[Response, InProcessBody | None]:
        """Hand the request to the emulator; see :class:`objectstore_core.Request`."""
        call = InProcessCall(self.emulator, request)
        with call.receiving():
            for chunk in iter_upload(call.upload) if call.upload else ():
                call.feed(chunk)
        return call.finish()

    def close(self) -> None:
        """Nothing to release: there are no connections."""
