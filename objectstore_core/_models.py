"""Value types shared by both twins: usecases, scopes, expiration policies.

All of them validate when built, so an invalid ``Scope`` or ``Usecase`` never
exists and a bad name is rejected before any request is made.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, TypeAlias, cast

__all__ = [
    "EMPTY_SCOPE",
    "EMPTY_SCOPES",
    "SCOPE_VALUE_ALLOWED_CHARS",
    "Compression",
    "ExpirationPolicy",
    "Permission",
    "Scope",
    "TimeToIdle",
    "TimeToLive",
    "Usecase",
    "validate_compression",
]

Compression: TypeAlias = Literal["zstd", "none"]
"""How a payload is (to be) encoded: ``"zstd"`` or ``"none"`` (PROTOCOL §5)."""

_COMPRESSIONS = ("zstd", "none")

DEFAULT_RESUMABLE_THRESHOLD = 256 * 1024**2
"""Source size from which ``put`` switches to a resumable upload (PROTOCOL §14.1)."""


def validate_compression(value: object, what: str = "compress") -> Compression:
    """Return ``value`` as a :data:`Compression`, or raise ValueError naming it."""
    if value == "zstd":
        return "zstd"
    if value == "none":
        return "none"
    raise ValueError(f"{what}={value!r} is not supported: use one of {', '.join(_COMPRESSIONS)}")


class Permission(enum.StrEnum):
    """A permission carried by a token (PROTOCOL §10.3)."""

    OBJECT_READ = "object.read"
    OBJECT_WRITE = "object.write"
    OBJECT_DELETE = "object.delete"

    @classmethod
    def max(cls) -> list[Permission]:
        """All permissions: what a token gets when none are asked for."""
        return [cls.OBJECT_READ, cls.OBJECT_WRITE, cls.OBJECT_DELETE]


@dataclass(frozen=True, slots=True)
class TimeToLive:
    """Expire ``delta`` after the last write (PROTOCOL §7.1)."""

    delta: timedelta

    def __post_init__(self) -> None:
        _check_delta(self.delta, "TimeToLive")


@dataclass(frozen=True, slots=True)
class TimeToIdle:
    """Expire after ``delta`` without access; reads push the deadline (PROTOCOL §7.2)."""

    delta: timedelta

    def __post_init__(self) -> None:
        _check_delta(self.delta, "TimeToIdle")


ExpirationPolicy: TypeAlias = TimeToLive | TimeToIdle
"""An automatic expiry. ``None`` where a policy is expected means manual (no expiry)."""


def _check_delta(delta: object, what: str) -> None:
    if not isinstance(delta, timedelta):
        raise TypeError(f"{what} needs a datetime.timedelta, got {delta!r}")
    if delta < timedelta(0):
        raise ValueError(f"{what}({delta!r}) is invalid: the duration must not be negative")


_USECASE_RE = re.compile(r"[A-Za-z0-9_-]{3,64}")

# PROTOCOL §2.2: scope names and values are non-empty and drawn from this set.
SCOPE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-()$!+'")
EMPTY_SCOPE = "_"
"""The wire form of an empty scope list (PROTOCOL §2.2)."""
# The official client's names for the two constants above (its ``scope`` module).
EMPTY_SCOPES = EMPTY_SCOPE
SCOPE_VALUE_ALLOWED_CHARS = SCOPE_CHARS


def _scope_text(value: object, what: str) -> str:
    """Render a scope name or value as the wire text, validating its characters."""
    if isinstance(value, bool):
        text = "True" if value else "False"  # as the official client renders booleans
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        # ValueError, as the official client raises for any value it cannot use.
        raise ValueError(f"scope {what} {value!r} is invalid: it must be a str, int or bool")
    if not text:
        raise ValueError(f"scope {what} {value!r} is invalid: it must not be empty (PROTOCOL §2.2)")
    bad = sorted({c for c in text if c not in SCOPE_CHARS})
    if bad:
        raise ValueError(
            f"scope {what} {text!r} is invalid: {''.join(bad)!r} not allowed; "
            "use only A-Z a-z 0-9 and _ - ( ) $ ! + '"
        )
    return text


class Scope:
    """An ordered list of ``name=value`` components naming a namespace (PROTOCOL §2.2).

    Order matters: ``org=1;project=2`` and ``project=2;org=1`` are different
    namespaces. ``str(scope)`` is the wire form, ``_`` when empty.

    >>> str(Scope(org=42, project=1337))
    'org=42;project=1337'
    >>> str(Scope().push("org", 1))
    'org=1'
    """

    __slots__ = ("_given", "_items", "_usecase", "_wire")

    _items: tuple[tuple[str, str], ...]
    _given: tuple[tuple[str, str | int | bool], ...]
    _wire: str
    _usecase: Usecase | None

    def __init__(self, **scopes: str | int | bool) -> None:
        self._set(tuple(scopes.items()), None)

    def _set(self, items: tuple[tuple[object, object], ...], usecase: Usecase | None) -> None:
        pairs = tuple((_scope_text(k, "name"), _scope_text(v, "value")) for k, v in items)
        # The values as given (validated above), for dict(): the official client returns those.
        given = tuple(
            (name, cast("str | int | bool", value))
            for (name, _), (_, value) in zip(pairs, items, strict=True)
        )
        object.__setattr__(self, "_items", pairs)
        object.__setattr__(self, "_given", given)
        object.__setattr__(self, "_wire", _render(pairs))
        object.__setattr__(self, "_usecase", usecase)

    @classmethod
    def from_items(
        cls, items: tuple[tuple[object, object], ...], *, usecase: Usecase | None = None
    ) -> Scope:
        """Build from ``(name, value)`` pairs, keeping order (duplicates allowed).

        A scope built from a usecase (``Usecase.for_project``) remembers it, so
        ``client.session(scope)`` needs nothing else.
        """
        scope = cls.__new__(cls)
        scope._set(items, usecase)
        return scope

    @classmethod
    def parse(cls, wire: str) -> Scope:
        """Parse the wire form (``org=1;project=2`` or ``_``), validating it."""
        if wire == EMPTY_SCOPE:
            return cls()
        pairs = []
        for piece in wire.split(";"):
            name, sep, value = piece.partition("=")
            if not sep:
                raise ValueError(f"scope {wire!r} is invalid: {piece!r} must be 'name=value'")
            pairs.append((name, value))
        return cls.from_items(tuple(pairs))

    def push(self, name: str, value: str | int | bool) -> Scope:
        """Return a new scope with ``name=value`` appended (this one is unchanged)."""
        return Scope.from_items((*self._given, (name, value)), usecase=self._usecase)

    @property
    def usecase(self) -> Usecase | None:
        """The usecase this scope was derived from, if any."""
        return self._usecase

    @property
    def items(self) -> tuple[tuple[str, str], ...]:
        """The components as ``(name, value)`` text pairs, in order."""
        return self._items

    def dict(self) -> dict[str, str | int | bool]:
        """The components as a dict of the values as given (the official client's accessor).

        >>> Scope(org=42, app="mail").dict()
        {'org': 42, 'app': 'mail'}
        """
        return dict(self._given)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Scope is immutable; use push() to derive a new one")

    def __str__(self) -> str:
        return self._wire

    def __repr__(self) -> str:
        return f"Scope({self._wire!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scope) and other._items == self._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_scope, (self._given, self._usecase))

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)


def _render(items: tuple[tuple[str, str], ...]) -> str:
    if not items:
        return EMPTY_SCOPE
    return ";".join(f"{k}={v}" for k, v in items)


@dataclass(frozen=True, slots=True)
class Usecase:
    """A named class of objects with its defaults (PROTOCOL §2.1).

    ``name`` must be 3 to 64 characters of ``[A-Za-z0-9_-]``.

    >>> Usecase("attachments").for_project(42, 1337)
    Scope('org=42;project=1337')
    """

    name: str
    compression: Compression = "zstd"
    expiration_policy: ExpirationPolicy | None = None
    resumable_threshold_bytes: int | Literal["none"] = DEFAULT_RESUMABLE_THRESHOLD

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):  # a TypeError, as in the official client
            raise TypeError(f"usecase name {self.name!r} is invalid: it must be a str")
        if not _USECASE_RE.fullmatch(self.name):
            raise ValueError(
                f"usecase name {self.name!r} is invalid: it must be 3 to 64 characters "
                "from A-Z a-z 0-9 _ -"
            )
        validate_compression(self.compression, "compression")
        if self.expiration_policy is not None and not isinstance(
            self.expiration_policy, TimeToLive | TimeToIdle
        ):
            raise TypeError(
                f"expiration_policy {self.expiration_policy!r} must be TimeToLive, "
                "TimeToIdle or None"
            )
        threshold = self.resumable_threshold_bytes
        if threshold != "none" and (
            isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0
        ):
            raise ValueError(
                f"resumable_threshold_bytes={threshold!r} is invalid: use a byte count >= 0 "
                "or 'none'"
            )

    def scope(self, **components: str | int | bool) -> Scope:
        """A scope of this usecase with the given components, in keyword order."""
        return Scope.from_items(tuple(components.items()), usecase=self)

    def for_organization(self, org: str | int) -> Scope:
        """The scope ``org=<org>`` of this usecase."""
        return Scope.from_items((("org", org),), usecase=self)

    def for_project(self, org: str | int, project: str | int) -> Scope:
        """The scope ``org=<org>;project=<project>`` of this usecase."""
        return Scope.from_items((("org", org), ("project", project)), usecase=self)


def _rebuild_scope(
    items: tuple[tuple[str, str | int | bool], ...], usecase: Usecase | None
) -> Scope:
    return Scope.from_items(items, usecase=usecase)


def scope_from_mapping(components: Mapping[str, str | int | bool]) -> Scope:
    """Build a scope from a mapping, keeping its order."""
    return Scope.from_items(tuple(components.items()))
