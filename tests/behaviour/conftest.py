"""One behavioural suite for both twins.

The ``session`` fixture is parametrised over {sync, async on asyncio, async
on trio} x {in-process emulator, emulator on loopback}; tests are written
against the blocking views of ``twins.py``. Every behaviour is therefore
proven for both twins against both transports.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core.emulator import MemoryStorage
from objectstore_sync import Usecase
from objectstore_sync._inprocess import InProcessTransport
from objectstore_sync.emulator import Emulator
from objectstore_sync.testing import LocalServer
from tests.behaviour.twins import COMBOS, Twin

_counter = itertools.count()


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return Emulator(MemoryStorage(lock=threading.RLock()))  # the sync twin calls from threads


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def twin(request: pytest.FixtureRequest) -> Iterator[Twin]:
    kind, where = request.param
    if where == "loopback":
        server: LocalServer = request.getfixturevalue("loopback_server")
        made = Twin(kind, server.url, None, timeout=10)
    else:
        emulator: Emulator = request.getfixturevalue("emulator")
        transport = (
            InProcessTransport(emulator) if kind == "sync" else AsyncInProcessTransport(emulator)
        )
        made = Twin(kind, "http://objectstore.test", transport, timeout=10)
    yield made
    made.close()


@pytest.fixture
def session(twin: Twin) -> Any:
    # A scope of its own per test keeps tests independent on a shared server.
    return twin.session(Usecase("attachments"), org=42, test=next(_counter))
