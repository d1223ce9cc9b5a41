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

With ``tls`` it serves ``https``. ``tls=True`` makes a fresh
:class:`LocalCertificate` (a throwaway CA and a certificate for 127.0.0.1,
::1 and localhost); ``server.client_context()`` trusts it, and
``server.ca_file`` is the CA as a PEM file for options that want a path::

    with LocalServer(tls=True) as server:       # server.url == "https://127.0.0.1:<port>"
        options = {"ssl_context": server.client_context()}
        client = Client(server.url, connection_kwargs=options)         # or AsyncClient
        subprocess.run(["curl", "--cacert", server.ca_file, server.url + "/health"])

``tls`` may also be a :class:`LocalCertificate` made beforehand, or any
server-side :class:`ssl.SSLContext` (then ``certificate`` is None and the
client side is up to the caller).

``limits`` passes the server's limits and timeouts through (see
:class:`EmulatorServer`), e.g. ``LocalServer(limits={"idle_timeout": 0.5})``.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType

from objectstore_core.emulator import Emulator, FaultPlan, Storage
from objectstore_sync.emulator._keys import AuthKeySpec
from objectstore_sync.emulator._server import EmulatorServer
from objectstore_sync.emulator._tls import LocalCertificate

__all__ = ["LocalServer"]

_LIMITS = (
    "max_connections",
    "idle_timeout",
    "head_timeout",
    "body_timeout",
    "send_timeout",
    "max_headers",
    "max_head_bytes",
)  # the EmulatorServer keywords ``limits`` may set


class LocalServer:
    """A context manager running an :class:`EmulatorServer` on ``127.0.0.1``, port 0.

    ``url``, ``emulator`` and ``storage`` are available inside the ``with``
    block (or between :meth:`start` and :meth:`stop`); ``certificate``,
    :meth:`client_context` and ``ca_file`` (with ``tls``) at any time.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        auth_keys: Mapping[str, AuthKeySpec] | None = None,
        enforce_auth: bool = False,
        *,
        clock: Callable[[], datetime] | None = None,
        tls: bool | LocalCertificate | ssl.SSLContext | None = None,
        limits: Mapping[str, float | None] | None = None,
    ) -> None:
        unknown = sorted(set(limits or ()) - set(_LIMITS))
        if unknown:
            raise ValueError(
                f"limits={dict(limits or {})!r} is invalid: {', '.join(unknown)} is not one of "
                f"{', '.join(_LIMITS)}"
            )
        self.limits = dict(limits or {})
        self.data_dir = data_dir
        self.auth_keys = dict(auth_keys) if auth_keys is not None else None
        self.enforce_auth = enforce_auth
        self.clock = clock
        self.certificate: LocalCertificate | None = None
        """The certificate served with ``tls=True`` or a :class:`LocalCertificate`; else None."""
        self._context: ssl.SSLContext | None = None
        if tls is True:
            self.certificate = LocalCertificate.create()
        elif isinstance(tls, LocalCertificate):
            self.certificate = tls
        elif isinstance(tls, ssl.SSLContext):
            self._context = tls
        elif tls is not None and tls is not False:
            raise TypeError(
                f"tls={tls!r} is invalid: use True, a LocalCertificate or a server-side "
                "ssl.SSLContext"
            )
        self._ca_dir: str | None = None
        self._server: EmulatorServer | None = None

    @property
    def server(self) -> EmulatorServer:
        """The running server; RuntimeError when not started."""
        if self._server is None:
            raise RuntimeError("LocalServer is not running; use it as a context manager")
        return self._server

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (``https://`` with ``tls``)."""
        return self.server.url

    @property
    def emulator(self) -> Emulator:
        """The handler serving the requests."""
        return self.server.emulator

    @property
    def storage(self) -> Storage:
        """The store behind the emulator (memory or directory)."""
        return self.server.storage

    def client_context(self) -> ssl.SSLContext:
        """A client-side context trusting :attr:`certificate`; RuntimeError without one."""
        return self._certificate().client_context()

    @property
    def ca_file(self) -> str:
        """The CA of :attr:`certificate` as a PEM file (removed by :meth:`stop`)."""
        certificate = self._certificate()
        if self._ca_dir is None:
            self._ca_dir = tempfile.mkdtemp(prefix="objectstore-ca-")
        return str(certificate.write_ca(Path(self._ca_dir, "ca.pem")))

    def _certificate(self) -> LocalCertificate:
        if self.certificate is None:
            raise RuntimeError("this LocalServer has no certificate: pass tls=True")
        return self.certificate

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
            tls=self._tls_context(),
            **self.limits,  # type: ignore[arg-type]
        )
        server.start()
        self._server = server
        return self

    def _tls_context(self) -> ssl.SSLContext | None:
        if self._context is None and self.certificate is not None:
            self._context = self.certificate.server_context()
        return self._context

    def stop(self) -> None:
        """Shut the server down (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
        ca_dir, self._ca_dir = self._ca_dir, None
        if ca_dir is not None:
            shutil.rmtree(ca_dir, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
