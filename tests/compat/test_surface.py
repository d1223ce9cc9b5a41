"""Drop-in compatibility: every public name of every official module exists in objectstore_sync.

For each public module ``objectstore_client.<m>`` (found by listing the
installed package, so a new module in the official client fails here) and
each of its public names (see :mod:`tests.compat.official` for what counts
as public), ``objectstore_sync.<m>`` must offer the same name with:

- the same kind (class, exception class, function, type alias, type
  variable, or value), and for values an equal value;
- for classes and functions, a compatible signature: the official
  parameters with the same names, kinds and defaults, in the same order;
  ours may add parameters only as keyword-only ones with defaults, and may
  give a default to a parameter the official one requires (so every
  official call still binds the same way);
- for exception classes, the same official base classes;
- for classes, every public member of the official class, of the same
  sort (method or attribute), methods with compatible signatures.

Value behaviour (constructors, attributes, str, equality, hashing, pickling)
is compared in ``test_values.py``.
"""

from __future__ import annotations

import enum
import inspect
import re
import typing
from types import UnionType
from typing import Any, TypeVar

import pytest

from tests.compat.official import (
    OFFICIAL,
    OURS,
    PACKAGE,
    is_official,
    load,
    official_modules,
    official_surface,
    public_names,
)

if OFFICIAL is None:  # pragma: no cover
    pytest.skip(
        "the official client (dependency group peer) is not installed", allow_module_level=True
    )

# Differences made on purpose, each asserted exactly (so a change on either side fails).
DELIBERATE = {
    # Sessions come from Client.session(). The official constructor takes the client's
    # urllib3 pool and settings, ours the client and the request target.
    "client.Session.__init__": "constructor",
    # The user agent names this client, not the official one.
    "client.USER_AGENT": "value",
}


def _id(module: str, name: str) -> str:
    return f"{module}.{name}" if module else name


NAMES = [pytest.param(module, name, id=_id(module, name)) for module, name in official_surface()]


def _official_classes() -> list[tuple[str, str]]:
    """(defining module, class name) of every official class, once each."""
    found: dict[type, tuple[str, str]] = {}
    for module, name in official_surface():
        value = getattr(load(PACKAGE, module), name)
        if inspect.isclass(value) and is_official(value) and value not in found:
            defining = value.__module__.removeprefix(PACKAGE).lstrip(".")
            found[value] = (defining, value.__qualname__)
    return sorted(found.values())


def _members(cls: type) -> list[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if is_official(klass):
            names.update(n for n in vars(klass) if not n.startswith("_"))
    return sorted(names)


MEMBERS = [
    pytest.param(
        module,
        cls,
        member,
        id=f"{module}.{cls}.{member}",
    )
    for module, cls in _official_classes()
    for member in _members(getattr(load(PACKAGE, module), cls))
]


# -- kinds, shapes and signatures --------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, TypeVar):
        return "type variable"
    if inspect.isclass(value):
        return "exception class" if issubclass(value, BaseException) else "class"
    if inspect.isroutine(value):
        return "function"
    if typing.get_origin(value) is not None or isinstance(value, UnionType):
        return "type alias"
    return "value"


def _shape(value: Any) -> Any:
    """A type alias as comparable data: unions and literals as sets, classes by name."""
    origin = typing.get_origin(value)
    if origin is typing.Literal:
        return frozenset(("literal", arg) for arg in typing.get_args(value))
    if origin is typing.Union or isinstance(value, UnionType):
        atoms: set[Any] = set()
        for arg in typing.get_args(value):
            shape = _shape(arg)
            atoms.update(shape if isinstance(shape, frozenset) else {shape})
        return frozenset(atoms)
    if origin is not None:
        return (_shape(origin), tuple(_shape(arg) for arg in typing.get_args(value)))
    if inspect.isclass(value):
        return ("class", value.__name__)
    return ("value", repr(value))


def _default(value: Any) -> Any:
    if inspect.isclass(value) or inspect.isroutine(value):
        return ("named", value.__qualname__)
    return value


def _signature_problems(theirs: Any, ours: Any) -> list[str]:
    """How ``ours`` fails to accept every call ``theirs`` accepts, the same way."""
    their_params = list(inspect.signature(theirs).parameters.values())
    their_names = {p.name for p in their_params}
    our_params = []
    problems = []
    for param in inspect.signature(ours).parameters.values():
        if param.name in their_names:
            our_params.append(param)
        elif param.kind is not param.KEYWORD_ONLY or param.default is param.empty:
            problems.append(f"extra parameter {param} is not keyword-only with a default")
    for theirs_param, our_param in zip(their_params, our_params, strict=False):
        their_view = (theirs_param.name, theirs_param.kind, _default(theirs_param.default))
        our_view = (our_param.name, our_param.kind, _default(our_param.default))
        if theirs_param.default is theirs_param.empty:
            our_view = (our_param.name, our_param.kind, _default(theirs_param.empty))
        if their_view != our_view:
            problems.append(
                f"parameter {our_param} ({our_param.kind.description}) differs from the "
                f"official {theirs_param} ({theirs_param.kind.description})"
            )
    missing = [p.name for p in their_params[len(our_params) :]]
    if missing:
        problems.append(f"missing parameters {missing}")
    return problems


def _same_value(theirs: Any, ours: Any) -> bool:
    if isinstance(theirs, re.Pattern):
        return isinstance(ours, re.Pattern) and (ours.pattern, ours.flags) == (
            theirs.pattern,
            theirs.flags,
        )
    if isinstance(theirs, set | frozenset):
        return isinstance(ours, set | frozenset) and set(ours) == set(theirs)
    return type(ours) is type(theirs) and bool(ours == theirs)


# -- the tests ---------------------------------------------------------------------------


def test_every_official_module_has_a_counterpart() -> None:
    modules = official_modules()
    assert {"", "auth", "client", "errors", "metadata", "multipart", "scope"} <= set(modules)
    for module in modules:
        load(OURS, module)  # ImportError here is the failure


@pytest.mark.parametrize(("module", "name"), NAMES)
def test_name(module: str, name: str) -> None:
    theirs = getattr(load(PACKAGE, module), name)
    ours_module = load(OURS, module)
    assert hasattr(ours_module, name), f"{OURS}.{_id(module, name)} is missing"
    ours = getattr(ours_module, name)
    assert name in getattr(ours_module, "__all__", [name]), f"{name} is not in __all__"
    kind = _kind(theirs)
    assert _kind(ours) == kind, f"{_id(module, name)}: {_kind(ours)}, official {kind}"
    if kind == "function":  # constructors: test_constructor, once per class
        assert _signature_problems(theirs, ours) == []
    if kind == "exception class":
        for base in theirs.__mro__[1:]:
            if is_official(base):
                assert base.__name__ in {b.__name__ for b in ours.__mro__}, base
    if kind == "type alias":
        assert _shape(ours) == _shape(theirs)
    if kind == "type variable":
        assert ours.__name__ == theirs.__name__
    if kind == "value":
        same = _same_value(theirs, ours)
        assert same != (DELIBERATE.get(_id(module, name)) == "value"), (theirs, ours)


@pytest.mark.parametrize(("module", "name"), official_surface())
def test_names_shared_between_official_modules_are_shared_here(module: str, name: str) -> None:
    """Where two official modules export one object, ours export one object too."""
    theirs = getattr(load(PACKAGE, module), name)
    ours = getattr(load(OURS, module), name, None)
    for other in official_modules():
        if other != module and getattr(load(PACKAGE, other), name, None) is theirs:
            if not (inspect.isclass(theirs) or inspect.isroutine(theirs)):
                continue  # equal constants need not be one object
            other_ours = getattr(load(OURS, other), name, None)
            if ours is not None and other_ours is not None:
                assert other_ours is ours, f"{_id(other, name)} is not {_id(module, name)}"


def _sort(member: Any) -> str:
    if isinstance(member, classmethod | staticmethod) or inspect.isfunction(member):
        return "method"
    return "attribute"  # properties, slots, fields, enum members, class attributes


@pytest.mark.parametrize(("module", "cls", "member"), MEMBERS)
def test_member(module: str, cls: str, member: str) -> None:
    theirs_cls = getattr(load(PACKAGE, module), cls)
    ours_cls = getattr(load(OURS, module), cls)
    theirs = inspect.getattr_static(theirs_cls, member)
    assert hasattr(ours_cls, member), f"{cls}.{member} is missing"
    ours = inspect.getattr_static(ours_cls, member)
    assert _sort(ours) == _sort(theirs), f"{cls}.{member}: {_sort(ours)}, official {_sort(theirs)}"
    if _sort(theirs) == "method":
        assert _signature_problems(getattr(theirs_cls, member), getattr(ours_cls, member)) == []
    elif isinstance(theirs, enum.Enum):
        assert ours.value == theirs.value


CLASSES = [pytest.param(module, cls, id=f"{module}.{cls}") for module, cls in _official_classes()]


@pytest.mark.parametrize(("module", "cls"), CLASSES)
def test_constructor(module: str, cls: str) -> None:
    theirs = getattr(load(PACKAGE, module), cls)
    ours = getattr(load(OURS, module), cls)
    problems = _signature_problems(theirs, ours)
    if DELIBERATE.get(f"{module}.{cls}.__init__") == "constructor":
        assert problems, "the deliberate difference is gone: remove it from DELIBERATE"
    else:
        assert problems == []


def test_the_tables_name_only_official_names() -> None:
    """Every table entry names something the official client has (no stale entries)."""
    known = {_id(m, n) for m, n in official_surface()}
    known |= {
        f"{m}.{c}.{member}"
        for m, c in _official_classes()
        for member in _members(getattr(load(PACKAGE, m), c))
    }
    known |= {f"{m}.{c}.__init__" for m, c in _official_classes()}
    assert set(DELIBERATE) <= known
    assert public_names(load(PACKAGE, "")) == sorted(load(PACKAGE, "").__all__)
