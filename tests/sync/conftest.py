"""Fixtures: the emulator on loopback and a client/session against it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from objectstore_sync import Client, Session, Usecase
from objectstore_sync.testing import LocalServer

_counter = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture
def client(server: LocalServer) -> Iterator[Client]:
    with Client(server.url) as made:
        yield made


@pytest.fixture
def session(client: Client) -> Session:
    # A scope of its own per test keeps tests independent on a shared server.
    return client.session(Usecase("attachments"), org=42, test=next(_counter))
