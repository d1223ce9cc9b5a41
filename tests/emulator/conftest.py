"""Fixtures for the emulator tests: a fake clock and a socket-free handler."""

from __future__ import annotations

import pytest

from objectstore_core.emulator import Emulator, MemoryStorage
from tests.emulator.emulator_helpers import Client, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def emulator(storage: MemoryStorage, clock: FakeClock) -> Emulator:
    return Emulator(storage, clock=clock)


@pytest.fixture
def client(emulator: Emulator) -> Client:
    return Client(emulator)
