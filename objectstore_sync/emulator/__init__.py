"""The Objectstore emulator as a server: sockets, threads and files around the pure handler.

The protocol lives in :mod:`objectstore_core.emulator` (the sans-IO
:class:`~objectstore_core.emulator.Emulator`, the storage interface and the
in-memory store); this package gives it what needs I/O:

* :class:`EmulatorServer`: HTTP/1.1 on a socket, one thread per connection
  (``objectstore serve`` runs it);
* :class:`LocalServer`: an ``EmulatorServer`` on a free loopback port, as a
  context manager for tests (also re-exported by ``objectstore_sync.testing``
  and ``objectstore_async.testing``);
* :class:`DirectoryStorage`: objects as files, surviving restarts;
* :class:`Emulator`: the pure handler with the wall clock (:func:`wall_clock`)
  as its default, since the core never reads the time;
* :class:`LocalCertificate`: a throwaway CA and a loopback server
  certificate, for serving ``https`` in tests (``LocalServer(tls=True)``);
* the key directory read from PEM files (:func:`resolve_auth_keys`,
  :data:`AuthKeySpec`, :func:`parse_auth_key_option` for ``--auth-key``).

::

    from objectstore_sync.emulator import LocalServer

    with LocalServer() as server:
        ...  # point any Objectstore client at server.url

Like the handler, it uses only the public names of ``objectstore_core``.
"""

from objectstore_sync.emulator._clock import Emulator, wall_clock
from objectstore_sync.emulator._dirstore import DirectoryStorage
from objectstore_sync.emulator._keys import (
    AuthKeySpec,
    KeySource,
    parse_auth_key_option,
    resolve_auth_keys,
)
from objectstore_sync.emulator._local import LocalServer
from objectstore_sync.emulator._server import EmulatorServer
from objectstore_sync.emulator._tls import (
    LOOPBACK_NAMES,
    LocalCertificate,
    server_context_from_files,
)

__all__ = [
    "LOOPBACK_NAMES",
    "AuthKeySpec",
    "DirectoryStorage",
    "Emulator",
    "EmulatorServer",
    "KeySource",
    "LocalCertificate",
    "LocalServer",
    "parse_auth_key_option",
    "resolve_auth_keys",
    "server_context_from_files",
    "wall_clock",
]
