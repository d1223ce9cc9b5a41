"""The packages' public surfaces: importable, sorted, and the twins in parity.

The parity test compares names, parameters and defaults of every public
class and method of ``objectstore_sync`` with its ``objectstore_async``
twin (API §0.2) and fails on any drift.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

PACKAGES = [
    "objectstore_core",
    "objectstore_core.emulator",
    "objectstore_core.shared",
    "objectstore_sync",
    "objectstore_sync.emulator",
    "objectstore_sync.testing",
    # The official client's module layout (API §9), for code that imports from it.
    *(
        f"objectstore_sync.{name}"
        for name in ("auth", "client", "errors", "metadata", "metrics", "multipart")
    ),
    *(f"objectstore_sync.{name}" for name in ("presign", "scope", "tracing", "utils")),
    "objectstore_async",
    "objectstore_async.testing",
]

# sync name -> async name, for classes and for methods that must differ (API §0.2).
CLASS_TWINS = {
    "Batch": "AsyncBatch",
    "Client": "AsyncClient",
    "Session": "AsyncSession",
    "GetResponse": "AsyncGetResponse",
    "Payload": "AsyncPayload",
    "MultipartUpload": "AsyncMultipartUpload",
}
METHOD_TWINS = {
    "close": "aclose",
    "__enter__": "__aenter__",
    "__exit__": "__aexit__",
    "iter_bytes": "aiter_bytes",
    "__iter__": "__aiter__",
}
# GetResponse.read becomes aread: there a sync-named read would clash with the tuple API.
READ_RENAMED = {"GetResponse"}
# Members of the sync Payload that exist only because it is an io.BufferedIOBase.
FILE_ONLY = {"readinto", "read1", "readable", "__next__"}
OUR_PACKAGES = ("objectstore_core", "objectstore_sync", "objectstore_async")


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)

    # isort-style order, as ruff keeps it: CONSTANTS, then Classes, then functions.
    def order(item: str) -> tuple[int, str]:
        constant = item.isupper() and len(item) > 1  # ruff sorts a lone capital as a class
        return (0 if constant else 1 if item[0].isupper() else 2, item)

    if name in ("objectstore_sync", "objectstore_async"):
        # A twin exports its own classes, then objectstore_core.shared's names.
        from objectstore_core import shared

        own = exported[: len(exported) - len(shared.__all__)]
        assert exported[len(own) :] == shared.__all__
        exported = own
    assert exported == sorted(exported, key=order), f"{name}.__all__ is not sorted"
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute} is in __all__ but missing"


def test_shared_models_are_the_same_objects() -> None:
    core = importlib.import_module("objectstore_core")
    sync = importlib.import_module("objectstore_sync")
    asyn = importlib.import_module("objectstore_async")
    shared = set(sync.__all__) - set(CLASS_TWINS)
    for name in shared:
        assert getattr(sync, name) is getattr(core, name), name
        assert getattr(asyn, name) is getattr(core, name), name
    assert set(asyn.__all__) == shared | set(CLASS_TWINS.values())


def test_testing_modules_are_twins() -> None:
    """An async test author finds in objectstore_async.testing what a sync one finds in sync's."""
    sync = importlib.import_module("objectstore_sync.testing")
    asyn = importlib.import_module("objectstore_async.testing")
    twins = {"InProcessTransport": "AsyncInProcessTransport"}
    assert sorted(twins.get(name, name) for name in sync.__all__) == sorted(asyn.__all__)
    for name in set(sync.__all__) - set(twins):
        assert getattr(sync, name) is getattr(asyn, name), name


def _public_members(cls: type) -> dict[str, Any]:
    members = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.split(".")[0] not in OUR_PACKAGES:
            continue
        for name, value in vars(klass).items():
            twin_dunder = name in METHOD_TWINS or name in METHOD_TWINS.values()
            if name.startswith("_") and not twin_dunder:
                continue
            if name.startswith("_") and not callable(value):
                continue
            members[name] = value
    return members


def _signature(member: Any) -> inspect.Signature | None:
    if isinstance(member, property):
        return None
    try:
        return inspect.signature(member)
    except (TypeError, ValueError):
        return None


def _comparable(signature: inspect.Signature | None) -> list[tuple[str, Any, Any]] | None:
    if signature is None:
        return None
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(("sync_name", "async_name"), sorted(CLASS_TWINS.items()))
def test_twins_have_the_same_surface(sync_name: str, async_name: str) -> None:
    sync_cls = getattr(importlib.import_module("objectstore_sync"), sync_name)
    async_cls = getattr(importlib.import_module("objectstore_async"), async_name)
    sync_members = _public_members(sync_cls)
    async_members = _public_members(async_cls)
    renames = dict(METHOD_TWINS)
    if sync_name in READ_RENAMED:
        renames["read"] = "aread"
    expected = set()
    for name in sync_members:
        if sync_name == "Payload" and name in FILE_ONLY:
            continue
        expected.add(renames.get(name, name))
    only_sync = expected - set(async_members)
    # The sync payload inherits some members (``closed``) from io.BufferedIOBase.
    only_async = {n for n in async_members if n not in expected and not hasattr(sync_cls, n)}
    assert not only_sync and not only_async, (
        f"{sync_name} and {async_name} differ: only sync {sorted(only_sync)}, "
        f"only async {sorted(only_async)}"
    )
    for name, member in sync_members.items():
        if sync_name == "Payload" and name in FILE_ONLY:
            continue
        twin = async_members[renames.get(name, name)]
        assert _comparable(_signature(member)) == _comparable(_signature(twin)), (
            f"{sync_name}.{name} and {async_name}.{renames.get(name, name)} have different "
            "parameters or defaults"
        )
        if callable(member) and not name.startswith("__"):
            coroutine = inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
            assert not coroutine, f"{sync_name}.{name} must be blocking"


def test_async_session_methods_are_coroutines() -> None:
    from objectstore_async import AsyncSession

    for name in ("put", "get", "head", "delete", "extend_expiry"):
        assert inspect.iscoroutinefunction(getattr(AsyncSession, name)), name


def test_official_client_names_are_importable_from_sync() -> None:
    official = pytest.importorskip("objectstore_client")
    sync = importlib.import_module("objectstore_sync")
    # Names whose capability arrives with its own work item (auth tokens, multipart).
    pending: set[str] = set()
    missing = [n for n in official.__all__ if n not in pending and not hasattr(sync, n)]
    assert missing == []


@pytest.mark.parametrize("method", ["put", "get", "head", "delete", "extend_expiry"])
def test_session_methods_accept_the_official_parameters(method: str) -> None:
    official = pytest.importorskip("objectstore_client")
    from objectstore_sync import Session

    theirs = inspect.signature(getattr(official.Session, method))
    ours = inspect.signature(getattr(Session, method))
    their_params = list(theirs.parameters.values())
    our_params = list(ours.parameters.values())
    # Same positional order and defaults for every official parameter.
    for index, param in enumerate(their_params):
        mine = our_params[index]
        assert (mine.name, mine.kind, mine.default) == (param.name, param.kind, param.default)


def test_client_accepts_the_official_parameters() -> None:
    official = pytest.importorskip("objectstore_client")
    from objectstore_sync import Client

    theirs = list(inspect.signature(official.Client).parameters.values())
    ours = list(inspect.signature(Client).parameters.values())
    for index, param in enumerate(theirs):
        assert (ours[index].name, ours[index].default) == (param.name, param.default)


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        ("Session", "initiate_multipart_upload"),
        ("Session", "resume_multipart_upload"),
        ("MultipartUpload", "__init__"),
        ("MultipartUpload", "put_part"),
        ("MultipartUpload", "list_parts"),
        ("MultipartUpload", "complete"),
        ("MultipartUpload", "abort"),
    ],
)
def test_multipart_methods_accept_the_official_parameters(cls: str, method: str) -> None:
    official = pytest.importorskip("objectstore_client")
    multipart = importlib.import_module("objectstore_client.multipart")
    sync = importlib.import_module("objectstore_sync")
    theirs = inspect.signature(
        getattr(getattr(official, cls, None) or getattr(multipart, cls), method)
    )
    ours = inspect.signature(getattr(getattr(sync, cls), method))
    our_params = list(ours.parameters.values())
    for index, param in enumerate(theirs.parameters.values()):
        mine = our_params[index]
        assert (mine.name, mine.kind, mine.default) == (param.name, param.kind, param.default)
