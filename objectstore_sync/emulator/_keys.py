"""Key files for the emulator's key directory (PROTOCOL §10.6) and the CLI.

The emulator core verifies with keys given as PEM *text*; this module does
the file reading for ``EmulatorServer``, ``LocalServer`` and ``objectstore
serve``, and parses ``--auth-key KID=PUBLIC_KEY.pem[:perm,perm]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeAlias

from objectstore_core import Permission
from objectstore_core.emulator import AuthKey, parse_permission

__all__ = ["AuthKeySpec", "KeySource", "parse_auth_key_option", "resolve_auth_keys"]

KeySource: TypeAlias = str | bytes | os.PathLike[str]
"""A public key: PEM text (``str`` containing ``-----BEGIN``, or ``bytes``) or a PEM file path."""

AuthKeySpec: TypeAlias = (
    KeySource
    | Sequence[KeySource]
    | tuple[KeySource | Sequence[KeySource], Iterable[Permission | str]]
    | AuthKey
)
"""What ``auth_keys`` maps a ``kid`` to:

* a :data:`KeySource` (the key gets all three permissions),
* a list of them (key rotation: any version verifies, §10.6),
* ``(source_or_list, permissions)``, permissions as :class:`Permission` or
  ``"read"``/``"object.read"`` strings (``max_permissions``), or
* a ready :class:`~objectstore_core.emulator.AuthKey`.
"""

_PEM_MARKER = "-----BEGIN"


def _pem_text(source: KeySource, kid: str) -> str | bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and _PEM_MARKER in source:
        return source
    if isinstance(source, str | os.PathLike):
        try:
            return Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"public key file {str(source)!r} for kid {kid!r}: {exc}") from None
    raise TypeError(f"auth key for kid {kid!r} must be PEM text or a path, got {source!r}")


def _sources(value: object, kid: str) -> list[str | bytes]:
    if isinstance(value, str | bytes | os.PathLike):
        return [_pem_text(value, kid)]
    if isinstance(value, list | tuple) and value:
        return [_pem_text(item, kid) for item in value]
    raise TypeError(f"auth key for kid {kid!r} must be PEM text, a path or a list of them")


def _auth_key(kid: str, spec: object) -> AuthKey:
    if isinstance(spec, AuthKey):
        return spec
    permissions: Iterable[Permission | str] | None = None
    keys: object = spec
    if (
        isinstance(spec, tuple)
        and len(spec) == 2
        and not isinstance(spec[1], str | bytes | os.PathLike)
    ):
        keys, permissions = spec
    try:
        return AuthKey.from_pem(_sources(keys, kid), permissions)
    except ValueError as exc:
        raise ValueError(f"auth key for kid {kid!r}: {exc}") from None


def resolve_auth_keys(auth_keys: Mapping[str, AuthKeySpec] | None) -> dict[str, AuthKey]:
    """Build the key directory, reading key files; ValueError names the bad ``kid``.

    >>> resolve_auth_keys({"test_kid": ("keys/test.pem", ["read"])})  # doctest: +SKIP
    {'test_kid': AuthKey(...)}
    """
    if auth_keys is None:
        return {}
    directory = {}
    for kid, spec in auth_keys.items():
        if not isinstance(kid, str) or not kid:
            raise ValueError(f"kid {kid!r} is invalid: it must be a non-empty str")
        directory[kid] = _auth_key(kid, spec)
    return directory


def parse_auth_key_option(value: str) -> tuple[str, AuthKeySpec]:
    """Parse ``KID=PUBLIC_KEY.pem[:perm,perm]`` into ``(kid, path or (path, permissions))``.

    Permissions are ``read``, ``write``, ``delete`` or ``object.read``, ...;
    without them the key gets all three. The split is at the *last* ``:``
    only when what follows parses as permissions, so Windows-style or odd
    paths still work.

    >>> parse_auth_key_option("relay=keys/relay.pem:read")
    ('relay', ('keys/relay.pem', [<Permission.OBJECT_READ: 'object.read'>]))
    """
    kid, sep, rest = value.partition("=")
    if not sep or not kid or not rest:
        raise ValueError(f"--auth-key {value!r} is invalid: expected KID=PUBLIC_KEY.pem[:perm,...]")
    path, colon, perms = rest.rpartition(":")
    if colon and path:
        try:
            permissions = [parse_permission(p) for p in perms.split(",") if p.strip()]
        except ValueError:
            return kid, rest  # the colon belongs to the path
        return kid, (path, permissions)
    return kid, rest
