"""Pytest fixtures for testing code that uses Objectstore, with no network.

Installed with the package and loaded automatically by pytest:

``objectstore_emulator``
    A fresh in-memory :class:`~objectstore_core.emulator.Emulator` per test.
``objectstore_client``
    An ``objectstore_sync.Client`` served by that emulator in-process.
``objectstore_async_client``
    An ``objectstore_async.AsyncClient`` served by the same emulator, so
    objects written through one client are visible through the other.
``objectstore_server``
    The emulator on a loopback port (a
    :class:`~objectstore_sync.emulator.LocalServer`), for code that needs a
    real URL, such as a subprocess or another HTTP library.

::

    def test_report_upload(objectstore_client):
        session = objectstore_client.session(Usecase("reports"), org=1)
        key = upload_report(session)                 # your code
        assert session.head(key).content_type == "application/pdf"

pytest loads this module at the start of every session of every project
that has the package installed, so it imports only pytest (and the
``objectstore_sync`` package it lives in): the async twin, httpcore, httpx
and the emulator are imported when a test first asks for a fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from objectstore_async import AsyncClient
    from objectstore_core.emulator import Emulator
    from objectstore_sync import Client
    from objectstore_sync.emulator import LocalServer

__all__ = [
    "objectstore_async_client",
    "objectstore_client",
    "objectstore_emulator",
    "objectstore_server",
]

IN_PROCESS_URL = "http://objectstore.test"


@pytest.fixture
def objectstore_emulator() -> Emulator:
    """A fresh in-memory emulator (safe to call from several threads at once)."""
    import threading

    from objectstore_core.emulator import MemoryStorage
    from objectstore_sync.emulator import Emulator as WallClockEmulator

    return WallClockEmulator(MemoryStorage(lock=threading.RLock()))


@pytest.fixture
def objectstore_client(objectstore_emulator: Emulator) -> Iterator[Client]:
    """A sync client served in-process by ``objectstore_emulator``."""
    from objectstore_sync import Client
    from objectstore_sync.testing import InProcessTransport

    with Client(IN_PROCESS_URL, transport=InProcessTransport(objectstore_emulator)) as client:
        yield client


@pytest.fixture
def objectstore_async_client(objectstore_emulator: Emulator) -> AsyncClient:
    """An async client served in-process by ``objectstore_emulator`` (nothing to close)."""
    from objectstore_async import AsyncClient
    from objectstore_async.testing import AsyncInProcessTransport

    return AsyncClient(IN_PROCESS_URL, transport=AsyncInProcessTransport(objectstore_emulator))


@pytest.fixture
def objectstore_server() -> Iterator[LocalServer]:
    """The emulator on a free loopback port; ``.url`` is its address."""
    from objectstore_sync.emulator import LocalServer

    with LocalServer() as server:
        yield server
