"""What the compatibility tests know about the official client: its modules and public names.

The official package is only ever imported and introspected (``dir``,
``inspect.signature``, calling it); its source is never read.

A *public name* of an official module is one that does not start with an
underscore and that the module provides rather than merely imports:
submodules are left out, and so are classes and functions defined outside
the ``objectstore_client`` package (``datetime``, ``typing.Any``, urllib3
...) and values that are the very object a module outside the package
holds under that name (``UTC``, ``TYPE_CHECKING``, ``annotations``).
Nothing else is left out.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

OFFICIAL: ModuleType | None
try:
    OFFICIAL = importlib.import_module("objectstore_client")
except ImportError:  # pragma: no cover - the peer dependency group is not installed
    OFFICIAL = None

PACKAGE = "objectstore_client"
OURS = "objectstore_sync"


def official_modules() -> list[str]:
    """The official package's public modules ("" is the package itself)."""
    if OFFICIAL is None:
        return []
    found = [m.name for m in pkgutil.iter_modules(OFFICIAL.__path__) if not m.name.startswith("_")]
    return ["", *sorted(found)]


def load(package: str, module: str) -> ModuleType:
    return importlib.import_module(f"{package}.{module}" if module else package)


def _foreign_object(name: str, value: object) -> bool:
    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] == PACKAGE or module is None:
            continue
        if getattr(module, name, None) is value:
            return True
    return False


def provides(module: ModuleType, name: str) -> bool:
    """Whether ``name`` is a public name the official ``module`` provides (see above)."""
    value = getattr(module, name)
    if isinstance(value, ModuleType):
        return False
    if inspect.isclass(value) or inspect.isroutine(value):
        return str(getattr(value, "__module__", "")).split(".")[0] == PACKAGE
    return not _foreign_object(name, value)


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    return sorted(n for n in names if provides(module, n))


def official_surface() -> list[tuple[str, str]]:
    """Every (module, name) pair the official client offers."""
    return [
        (module, name)
        for module in official_modules()
        for name in public_names(load(PACKAGE, module))
    ]


def is_ours(value: Any) -> bool:
    return str(getattr(value, "__module__", "")).split(".")[0] in (
        "objectstore_core",
        "objectstore_sync",
    )


def is_official(value: Any) -> bool:
    return str(getattr(value, "__module__", "")).split(".")[0] == PACKAGE


def outcome(case: Callable[[Any], Any], side: Any) -> tuple[str, Any]:
    """``("ok", value)`` or ``("raises", exception class name)`` of ``case(side)``."""
    try:
        return ("ok", case(side))
    except Exception as error:  # the outcome under test
        # Builtins, our own and the official classes by name; the standard library's as the
        # builtin they are (dataclasses' FrozenInstanceError is an AttributeError, as
        # ``except`` sees it); anything else (a urllib3 error) by its full name.
        cls = type(error)
        top = cls.__module__.split(".")[0]
        if top in ("builtins", PACKAGE, "objectstore_core", "objectstore_sync"):
            return ("raises", cls.__name__)
        if top in sys.stdlib_module_names:
            return ("raises", next(c for c in cls.__mro__ if c.__module__ == "builtins").__name__)
        return ("raises", f"{cls.__module__}.{cls.__name__}")
