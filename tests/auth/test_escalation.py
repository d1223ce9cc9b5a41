"""A key limited to some permissions never signs a token for more (issue: permission escalation).

``SecretKey(permissions=...)`` bounds every token it signs: asking
``token_for_scope``, ``mint_token`` (or an object URL's read token) for a
permission outside that set is a ValueError naming the permissions, raised
before anything is sent.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from objectstore_async import AsyncClient
from objectstore_core import Request, Response
from objectstore_core.emulator._bridge import InProcessBody
from objectstore_sync import Client, Permission, Scope, SecretKey, Usecase
from objectstore_sync.testing import InProcessTransport
from tests.auth.conftest import KID, PRIVATE_PEM

READ = Permission.OBJECT_READ
WRITE = Permission.OBJECT_WRITE
DELETE = Permission.OBJECT_DELETE


class CountingTransport(InProcessTransport):
    """The in-process emulator, counting the requests that reach it."""

    sent = 0

    def send(self, request: Request) -> tuple[Response, InProcessBody | None]:
        self.sent += 1
        return super().send(request)


def _key(permissions: list[Permission] | None) -> SecretKey:
    return SecretKey(KID, PRIVATE_PEM, permissions=permissions)


@pytest.mark.parametrize(
    ("held", "asked", "beyond"),
    [
        ([READ], [READ, WRITE], ["object.write"]),
        ([READ], [DELETE], ["object.delete"]),
        ([READ, WRITE], ["object.delete", "object.read"], ["object.delete"]),
        ([], [READ], ["object.read"]),
    ],
)
def test_token_for_more_than_the_key_holds_is_refused(
    held: list[Permission], asked: list[Permission], beyond: list[str]
) -> None:
    key = _key(held)
    with pytest.raises(ValueError, match="not granted") as info:
        key.token_for_scope("attachments", Scope(org=1), asked)
    message = str(info.value)
    assert repr(beyond) in message
    assert repr([str(p) for p in held]) in message
    assert KID in message


def test_a_subset_or_the_defaults_are_signed() -> None:
    key = _key([READ, WRITE])
    assert key.token_for_scope("attachments", Scope(org=1), [WRITE])
    assert key.token_for_scope("attachments", Scope(org=1))
    assert key.token_for_scope("attachments", Scope(org=1), [])
    # A key made without permissions holds all three.
    assert _key(None).token_for_scope("attachments", Scope(org=1), [READ, WRITE, DELETE])


def test_mint_token_and_deprecated_spelling_refuse_escalation() -> None:
    transport = CountingTransport()
    with Client("http://objectstore:8888", token=_key([READ]), transport=transport) as client:
        session = client.session(Usecase("attachments"), org=1)
        with pytest.raises(ValueError, match=r"\['object.write'\] are not granted"):
            session.mint_token([READ, WRITE])
        assert session.mint_token([READ])
        session.put(b"x", key="k")  # the client's own requests carry the key's permissions
        assert transport.sent == 1
        with (
            pytest.warns(DeprecationWarning),
            pytest.raises(ValueError, match=r"\['object.delete'\] are not granted"),
        ):
            _key([READ]).sign_for_scope("attachments", Scope(org=1), [DELETE])
    assert transport.sent == 1  # the refusals sent nothing


def test_object_url_token_needs_the_read_permission() -> None:
    client = Client("http://objectstore:8888", token=_key([WRITE]))
    session = client.session(Usecase("attachments"), org=1)
    with pytest.raises(ValueError, match=r"\['object.read'\] are not granted"):
        session.object_url("k", token_validity=timedelta(minutes=1))
    assert session.object_url("k") == "http://objectstore:8888/v1/objects/attachments/org=1/k"


def test_the_async_twin_refuses_the_same() -> None:
    client = AsyncClient("http://objectstore:8888", token=_key([READ]))
    session = client.session(Usecase("attachments"), org=1)
    with pytest.raises(ValueError, match=r"\['object.write'\] are not granted"):
        session.mint_token([WRITE])
