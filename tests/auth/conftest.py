"""Fixtures for the auth suite: the test key pair and both twins against an enforcing emulator.

The key pair is the upstream test pair of PROTOCOL §11.4 (kid ``test_kid``),
copied to ``tests/data``. ``make_twin`` is parametrised like the behavioural
suite ({sync, asyncio, trio} x {in-process, loopback}); every emulator has
enforcement on, so each auth behaviour is proven for both twins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core.emulator import Authenticator, AuthKey, MemoryStorage
from objectstore_sync import Permission
from objectstore_sync._inprocess import InProcessTransport
from objectstore_sync.emulator import AuthKeySpec, Emulator, LocalServer
from tests.behaviour.twins import COMBOS, Twin

DATA = Path(__file__).parent.parent / "data"
PRIVATE_PEM_PATH = DATA / "ed25519.private.pem"
PUBLIC_PEM_PATH = DATA / "ed25519.public.pem"
PRIVATE_PEM = PRIVATE_PEM_PATH.read_text()
PUBLIC_PEM = PUBLIC_PEM_PATH.read_text()
KID = "test_kid"
READ_ONLY_KID = "reader"  # same key pair, but the directory grants it object.read only

# Parts of the private key that must never show up anywhere (repr, errors, logs).
SECRET_FRAGMENTS = [line for line in PRIVATE_PEM.splitlines() if line and "-----" not in line]


def key_directory() -> dict[str, AuthKey]:
    return {
        KID: AuthKey.from_pem(PUBLIC_PEM),
        READ_ONLY_KID: AuthKey.from_pem(PUBLIC_PEM, [Permission.OBJECT_READ]),
    }


class TokenTwin(Twin):
    """A :class:`Twin` whose client carries ``token``."""

    def __init__(self, kind: str, url: str, transport: Any, token: Any) -> None:
        super().__init__(kind, url, transport, timeout=10, token=token)


@pytest.fixture(scope="module")
def auth_server() -> Iterator[LocalServer]:
    keys: dict[str, AuthKeySpec] = {KID: PUBLIC_PEM_PATH, READ_ONLY_KID: (PUBLIC_PEM, ["read"])}
    with LocalServer(auth_keys=keys, enforce_auth=True) as running:
        yield running


@pytest.fixture(scope="module")
def auth_emulator() -> Emulator:
    return Emulator(MemoryStorage(), authorize=Authenticator(key_directory()))


MakeTwin = Callable[[Any], Twin]


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def make_twin(request: pytest.FixtureRequest) -> Iterator[MakeTwin]:
    """``make_twin(token)``: a client of this parameter's twin and transport with ``token``."""
    kind, where = request.param
    made: list[Twin] = []

    def make(token: Any) -> Twin:
        if where == "loopback":
            server: LocalServer = request.getfixturevalue("auth_server")
            twin = TokenTwin(kind, server.url, None, token)
        else:
            emulator: Emulator = request.getfixturevalue("auth_emulator")
            transport = (
                InProcessTransport(emulator)
                if kind == "sync"
                else AsyncInProcessTransport(emulator)
            )
            twin = TokenTwin(kind, "http://objectstore.test", transport, token)
        made.append(twin)
        return twin

    yield make
    for twin in made:
        twin.close()
