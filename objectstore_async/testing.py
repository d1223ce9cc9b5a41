"""Testing helpers for code that uses ``objectstore_async``.

:class:`AsyncInProcessTransport` runs the emulator inside the process, no
sockets involved::

    from objectstore_async import AsyncClient, Usecase
    from objectstore_async.testing import AsyncInProcessTransport

    async def test_upload() -> None:
        client = AsyncClient("http://objectstore.test", transport=AsyncInProcessTransport())
        session = client.session(Usecase("tests"), org=1)
        key = await session.put(b"hi")
        assert await (await session.get(key)).aread() == b"hi"

:class:`LocalServer` runs it on a free loopback port (``server.url``), with
in-memory or directory storage, a fake ``clock``, auth enforcement, fault
injection (``server.faults.inject(Fault.status(503))``) and ``https``
(``LocalServer(tls=True)``, a :class:`LocalCertificate`). It serves
from a background thread, so it is entered with a plain ``with``, also
inside a coroutine::

    from objectstore_async.testing import LocalServer

    async def test_over_loopback() -> None:
        with LocalServer() as server:
            client = AsyncClient(server.url)
            ...
            await client.aclose()

Pass one :class:`Emulator` (over a :class:`MemoryStorage`) to several
in-process transports to share objects between clients, async and sync
alike. ``objectstore_sync.testing`` exports the same names, with
``InProcessTransport`` in place of ``AsyncInProcessTransport``.
"""

from objectstore_async._inprocess import AsyncInProcessTransport
from objectstore_core.emulator import Fault, FaultPlan, MemoryStorage
from objectstore_sync.emulator import Emulator, LocalCertificate, LocalServer

__all__ = [
    "AsyncInProcessTransport",
    "Emulator",
    "Fault",
    "FaultPlan",
    "LocalCertificate",
    "LocalServer",
    "MemoryStorage",
]
