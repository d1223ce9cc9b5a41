"""``LocalServer``: the emulator on a free loopback port, for tests of any client.

Example::

    from objectstore_sync.testing import LocalServer   # or objectstore_async.testing

    with LocalServer() as server:               # in-memory storage
        client = Client(server.url)             # any Objectstore client
        ...
        assert server.storage is server.emulator.storage

    with LocalServer(data_dir=tmp_path) as server:   # objects persist in tmp_path
        ...

A fake clock makes expiry testable::

    now = [datetime(2026, 7, 1, tzinfo=UTC)]
    with LocalServer(clock=lambda: now[0]) as server:
        ...
        now[0] += timedelta(days=2)             # TTL/TTI objects expire accordingly

With ``enforce_auth`` the server checks tokens and pre-signed URLs
(PROTOCOL §10, §11) against ``auth_keys``, which maps a ``kid`` to a public
key (PEM text or file path) or to ``(key, permissions)``::

    with LocalServer(auth_keys={"test_kid": "tests/data/ed25519.public.pem"},
                     enforce_auth=True) as server:
        client = Client(server.url, token=SecretKey("test_kid", private_pem))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType

from objectstore_core.emulator import Emulator, FaultPlan, Storage
from objectstore_sync.emulator._keys import AuthKeySpec
from objectstore_sync.emulator._server import EmulatorServer

__all__ = ["LocalServer"]


class LocalServer:
    """A context manager running an :class:`EmulatorServer` on ``127.0.0.1``, port 0.

    ``url``, ``emulator`` and ``storage`` are available inside the ``with``
    block (or between :meth:`start` and :meth:`stop`).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        auth_keys: Mapping[str, AuthKeySpec] | None = None,
        enforce_auth: bool = False,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.auth_keys = dict(auth_keys) if auth_keys is not None else None
        self.enforce_auth = enforce_auth
        self.clock = clock
        self._server: EmulatorServer | None = None

    @property
    def server(self) -> EmulatorServer:
        """The running server; RuntimeError when not started."""
        if self._server is None:
            raise RuntimeError("LocalServer is not running; use it as a context manager")
        return self._server

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return self.server.url

    @property
    def emulator(self) -> Emulator:
        """The handler serving the requests."""
        return self.server.emulator

    @property
    def storage(self) -> Storage:
        """The store behind the emulator (memory or directory)."""
        return self.server.storage

    @property
    def faults(self) -> FaultPlan:
        """The fault plan of the emulator: ``server.faults.inject(Fault.status(503))``."""
        return self.server.faults

    def start(self) -> LocalServer:
        """Bind a free port and start serving in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("LocalServer is already running")
        server = EmulatorServer(
            "127.0.0.1",
            0,
            data_dir=self.data_dir,
            clock=self.clock,
            auth_keys=self.auth_keys,
            enforce_auth=self.enforce_auth,
        )
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Shut the server down (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
