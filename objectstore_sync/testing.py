"""Testing helpers for code that uses ``objectstore_sync``.

:class:`InProcessTransport` runs the emulator inside the process, no sockets
involved::

    from objectstore_sync import Client, Usecase
    from objectstore_sync.testing import InProcessTransport

    def test_upload() -> None:
        client = Client("http://objectstore.test", transport=InProcessTransport())
        session = client.session(Usecase("tests"), org=1)
        assert session.get(session.put(b"hi")).read() == b"hi"

:class:`LocalServer` runs it on a free loopback port (``server.url``), with
in-memory or directory storage, a fake ``clock``, auth enforcement, fault
injection (``server.faults.inject(Fault.status(503))``) and ``https``
(``LocalServer(tls=True)``, a :class:`LocalCertificate`; see its module)::

    from objectstore_sync.testing import LocalServer

    with LocalServer() as server, Client(server.url) as client:
        ...

Pass one :class:`Emulator` (over a :class:`MemoryStorage`) to several
in-process transports to share objects between clients, sync and async
alike. ``objectstore_async.testing`` exports the same names, with
``AsyncInProcessTransport`` in place of ``InProcessTransport``.
"""

from objectstore_core.emulator import Fault, FaultPlan, MemoryStorage
from objectstore_sync._inprocess import InProcessTransport
from objectstore_sync.emulator import Emulator, LocalCertificate, LocalServer

__all__ = [
    "Emulator",
    "Fault",
    "FaultPlan",
    "InProcessTransport",
    "LocalCertificate",
    "LocalServer",
    "MemoryStorage",
]
