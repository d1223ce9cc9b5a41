"""What the core leaves to the twins: the clock and the environment.

The core takes the time and the environment as arguments; these tests check
that each twin reads them.
"""

from __future__ import annotations

import pathlib

import pytest

from objectstore_async import AsyncClient
from objectstore_sync import Client, SecretKey, Usecase

DATA = pathlib.Path(__file__).parent / "data"


@pytest.mark.parametrize("twin", [Client, AsyncClient])
def test_tokens_without_now_use_the_twins_wall_clock(
    twin: type[Client] | type[AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SecretKey("test_kid", (DATA / "ed25519.private.pem").read_text())
    client = twin("http://objectstore.test", token=key)
    session = client.session(Usecase("measure"), org=1)
    monkeypatch.setattr(twin, "_wall_clock", staticmethod(lambda: 1_000_000.0))
    assert session.mint_token() == session.mint_token(now=1_000_000.0)
    url = session.presigned_object_url("GET", "k")
    assert url == session.presigned_object_url("GET", "k", now=1_000_000.0)


@pytest.mark.parametrize("twin", [Client, AsyncClient])
def test_from_env_reads_the_environment_through_the_twin(
    twin: type[Client] | type[AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        twin, "_environment", staticmethod(lambda: {"OBJECTSTORE_URL": "http://from.env:1"})
    )
    assert twin.from_env().config.base_url == "http://from.env:1"
    given = twin.from_env({"OBJECTSTORE_URL": "http://given:2"})
    assert given.config.base_url == "http://given:2"
