"""The pytest plugin's fixtures, used the way a user's test suite would use them."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from objectstore_async import AsyncClient
from objectstore_core.emulator import Emulator
from objectstore_sync import Client, Usecase
from objectstore_sync.testing import LocalServer


def test_sync_and_async_clients_share_the_emulator(
    objectstore_client: Client,
    objectstore_async_client: AsyncClient,
    objectstore_emulator: Emulator,
) -> None:
    session = objectstore_client.session(Usecase("plugin"), org=1)
    key = session.put(b"written by the sync client")

    async def read_back() -> bytes:
        response = await objectstore_async_client.session(Usecase("plugin"), org=1).get(key)
        assert response is not None
        async with response:
            return await response.aread()

    assert asyncio.run(read_back()) == b"written by the sync client"
    assert objectstore_emulator.storage is not None


def test_each_test_gets_a_fresh_emulator(objectstore_client: Client) -> None:
    session = objectstore_client.session(Usecase("plugin"), org=1)
    assert session.get("left-over") is None
    session.put(b"x", key="left-over")


def test_server_fixture_serves_over_loopback(objectstore_server: LocalServer) -> None:
    assert objectstore_server.url.startswith("http://127.0.0.1:")
    with Client(objectstore_server.url) as client:
        session = client.session(Usecase("plugin"))
        assert session.put(b"x", key="k") == "k"


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    """pytest loads the plugin in every session; the fixtures import what they need."""
    heavy = [
        "objectstore_async",
        "httpcore",
        "httpx",
        "anyio",
        "h11",
        "objectstore_core.emulator",
        "objectstore_sync.emulator",
        "objectstore_sync.testing",
    ]
    code = (
        "import sys\n"
        "import objectstore_sync.pytest_plugin\n"
        f"heavy = {heavy!r}\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy or "
        "any(m.startswith(h + '.') for h in heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
