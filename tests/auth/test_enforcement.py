"""Every operation, both twins, against an emulator enforcing auth (PROTOCOL §10).

A right token (a SecretKey or a static string) works; a missing token is
RequestError 400, an unknown kid or an expired token Unauthorized (401), too
few permissions or a token for another scope or usecase Forbidden (403).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from objectstore_sync import (
    Forbidden,
    Permission,
    RequestError,
    Scope,
    SecretKey,
    TimeToLive,
    Unauthorized,
    Usecase,
)
from tests.auth.conftest import KID, PRIVATE_PEM, READ_ONLY_KID, SECRET_FRAGMENTS, MakeTwin

USECASE = Usecase("attachments", expiration_policy=TimeToLive(timedelta(days=1)))
_counter = itertools.count()

Operation = Callable[[Any, str], Any]

OPERATIONS: dict[str, Operation] = {
    "put": lambda s, key: s.put(b"payload", key=key),
    "get": lambda s, key: s.get(key).read(),
    "head": lambda s, key: s.head(key),
    "extend_expiry": lambda s, key: s.extend_expiry(key, from_now=timedelta(days=3)),
    "delete": lambda s, key: s.delete(key),
}
NEEDS = {
    "put": Permission.OBJECT_WRITE,
    "get": Permission.OBJECT_READ,
    "head": Permission.OBJECT_READ,
    "extend_expiry": Permission.OBJECT_WRITE,
    "delete": Permission.OBJECT_DELETE,
}


def _scope() -> dict[str, int]:
    return {"org": 42, "test": next(_counter)}


def _key(**kwargs: Any) -> SecretKey:
    return SecretKey(KID, PRIVATE_PEM, **kwargs)


def _seed(make_twin: MakeTwin, scope: dict[str, int]) -> str:
    """An object (TTL, so extend_expiry applies) stored with a full-permission key."""
    session = make_twin(_key()).session(USECASE, **scope)
    return str(session.put(b"payload", key="object"))


def _assert_no_secret(error: BaseException, token: str | None) -> None:
    text = f"{error} {error!r} {error.args!r}"
    if token:
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature part
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in text


def test_every_operation_succeeds_with_a_secret_key(make_twin: MakeTwin) -> None:
    scope = _scope()
    session = make_twin(_key()).session(USECASE, **scope)
    assert session.put(b"payload", key="k") == "k"
    assert session.get("k").read() == b"payload"
    assert session.head("k") is not None
    session.extend_expiry("k", from_now=timedelta(days=3))
    session.delete("k")
    assert session.get("k") is None


def test_every_operation_succeeds_with_a_static_token(make_twin: MakeTwin) -> None:
    scope = _scope()
    token = _key().token_for_scope(USECASE.name, Scope(**scope), expiry_seconds=600)
    session = make_twin(token).session(USECASE, **scope)
    assert session.put(b"payload", key="k") == "k"
    assert session.get("k").read() == b"payload"
    assert session.head("k") is not None
    session.extend_expiry("k", from_now=timedelta(days=3))
    session.delete("k")
    assert session.head("k") is None


def test_a_token_with_a_wildcard_scope_value_works(make_twin: MakeTwin) -> None:
    token = _key().token_for_scope(USECASE.name, {"org": 42, "test": "*"})
    session = make_twin(token).session(USECASE, **_scope())
    assert session.get(session.put(b"x")).read() == b"x"


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_missing_token_is_request_error_400(make_twin: MakeTwin, operation: str) -> None:
    scope = _scope()
    key = _seed(make_twin, scope)
    session = make_twin(None).session(USECASE, **scope)
    with pytest.raises(RequestError) as caught:
        OPERATIONS[operation](session, key)
    assert caught.value.status == 400
    assert not isinstance(caught.value, Unauthorized | Forbidden)
    if operation != "head":  # a HEAD response has no body to carry the detail
        assert "No authorization token provided" in str(caught.value)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_unknown_kid_is_unauthorized(make_twin: MakeTwin, operation: str) -> None:
    scope = _scope()
    key = _seed(make_twin, scope)
    stranger = SecretKey("no-such-kid", PRIVATE_PEM)
    session = make_twin(stranger).session(USECASE, **scope)
    with pytest.raises(Unauthorized) as caught:
        OPERATIONS[operation](session, key)
    assert caught.value.status == 401
    if operation != "head":
        assert "unknown key" in str(caught.value)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_expired_token_is_unauthorized(make_twin: MakeTwin, operation: str) -> None:
    scope = _scope()
    key = _seed(make_twin, scope)
    # Expired 61 s ago: just beyond the server's 60 s leeway (§10.3).
    token = _key().token_for_scope(
        USECASE.name, Scope(**scope), expiry_seconds=60, now=time.time() - 122
    )
    session = make_twin(token).session(USECASE, **scope)
    with pytest.raises(Unauthorized) as caught:
        OPERATIONS[operation](session, key)
    _assert_no_secret(caught.value, token)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_too_few_permissions_is_forbidden(make_twin: MakeTwin, operation: str) -> None:
    scope = _scope()
    key = _seed(make_twin, scope)
    others = [p for p in Permission.max() if p is not NEEDS[operation]]
    session = make_twin(_key(permissions=others)).session(USECASE, **scope)
    with pytest.raises(Forbidden) as caught:
        OPERATIONS[operation](session, key)
    assert caught.value.status == 403
    if operation != "head":
        assert "operation not allowed" in str(caught.value)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_token_for_another_scope_is_forbidden(make_twin: MakeTwin, operation: str) -> None:
    scope = _scope()
    key = _seed(make_twin, scope)
    token = _key().token_for_scope(USECASE.name, Scope(org=43, test=scope["test"]))
    session = make_twin(token).session(USECASE, **scope)
    with pytest.raises(Forbidden) as caught:
        OPERATIONS[operation](session, key)
    _assert_no_secret(caught.value, token)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_token_for_another_usecase_is_forbidden(make_twin: MakeTwin, operation: str) -> None:
    scope = _scope()
    key = _seed(make_twin, scope)
    token = _key().token_for_scope("other-usecase", Scope(**scope))
    session = make_twin(token).session(USECASE, **scope)
    with pytest.raises(Forbidden):
        OPERATIONS[operation](session, key)


def test_key_max_permissions_cap_the_token(make_twin: MakeTwin) -> None:
    """Effective permissions = token ∩ the key's max_permissions (§10.3)."""
    scope = _scope()
    key = _seed(make_twin, scope)
    session = make_twin(SecretKey(READ_ONLY_KID, PRIVATE_PEM)).session(USECASE, **scope)
    assert session.get(key).read() == b"payload"
    with pytest.raises(Forbidden):
        session.put(b"x")
    with pytest.raises(Forbidden):
        session.delete(key)


def test_scope_subset_rule(make_twin: MakeTwin) -> None:
    """A token for org=1, project=2 also reaches org=1 alone and `_` (§10.4)."""
    project = next(_counter)
    writer = make_twin(_key())
    for scope in ({"org": 1, "project": project}, {"org": 1}, {}):
        writer.session(USECASE, **scope).put(b"seed", key=f"k{project}")
    token = _key().token_for_scope(USECASE.name, Scope(org=1, project=project))
    reader = make_twin(token)
    for scope in ({"org": 1, "project": project}, {"org": 1}, {}):
        assert reader.session(USECASE, **scope).get(f"k{project}").read() == b"seed"
    for scope in ({"org": 2}, {"org": 1, "project": project + 1}, {"org": 1, "other": 3}):
        with pytest.raises(Forbidden):
            reader.session(USECASE, **scope).get(f"k{project}")
    # Scope order in the token is irrelevant.
    reordered = _key().token_for_scope(USECASE.name, Scope(project=project, org=1))
    session = make_twin(reordered).session(USECASE, org=1, project=project)
    assert session.head(f"k{project}") is not None


def test_errors_never_contain_the_token(make_twin: MakeTwin) -> None:
    scope = _scope()
    token = _key().token_for_scope(USECASE.name, Scope(org=1), [Permission.OBJECT_READ])
    session = make_twin(token).session(USECASE, **scope)
    with pytest.raises(Forbidden) as caught:
        session.put(b"x", key="k")
    _assert_no_secret(caught.value, token)
    broken = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthorized) as unauthorized:
        make_twin(broken).session(USECASE, **scope).head("k")
    _assert_no_secret(unauthorized.value, broken)
    keyed = make_twin(SecretKey("no-such-kid", PRIVATE_PEM)).session(USECASE, **scope)
    with pytest.raises(Unauthorized) as by_key:
        keyed.get("k")
    _assert_no_secret(by_key.value, None)
