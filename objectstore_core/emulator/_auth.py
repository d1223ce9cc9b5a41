"""Authentication and authorization for the emulator (PROTOCOL §10, §11), without I/O.

An :class:`Authenticator` is the emulator's ``authorize`` hook. It runs
after routing and before the path is parsed (§1.4 step 3) and either
refuses the request (400/401/403 JSON, §10.5) or returns a :class:`Permit`.
The handler asks the permit for the operation's permission later, where the
reference server checks it (§1.4 step 6: after metadata parsing for writes).

Keys come from a key directory (§10.6) built from PEM *text*; reading key
files is left to the caller (``objectstore_sync`` does it), so this module
stays sans-IO. JWTs are checked by hand with ``cryptography``, exactly as
§10.3 describes (PyJWT would also validate ``nbf``/``iat``, which the
reference server ignores, and importing it loads socket modules).

>>> from objectstore_core.emulator import Emulator, MemoryStorage
>>> keys = {"test_kid": AuthKey.from_pem(public_pem)}           # doctest: +SKIP
>>> emulator = Emulator(MemoryStorage(), authorize=Authenticator(keys))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from objectstore_core import Permission, Scope
from objectstore_core.emulator._messages import ServerRequest, ServerResponse, json_error
from objectstore_core.emulator._routing import Route, parse_query, split_target
from objectstore_core.emulator._wire import b64url_decode, canonical_form

__all__ = [
    "ALLOW_ALL",
    "AuthKey",
    "Authenticator",
    "Permit",
    "load_public_key",
    "parse_permission",
]

LEEWAY_SECONDS = 60  # on `exp` (§10.3) and before `os_timestamp` (§11.3)
# §11.1: the query parameters of a pre-signed URL, and the longest validity (7 days).
PARAM_KID = "os_kid"
PARAM_TIMESTAMP = "os_timestamp"
PARAM_DURATION = "os_duration"
PARAM_SIG = "os_sig"
_MAX_DURATION = 7 * 86_400
_PRESIGNED_METHODS = ("GET", "HEAD")  # §11.3 step 1
_AUTH_QUERY = ("os_auth", PARAM_SIG, PARAM_KID, PARAM_TIMESTAMP, PARAM_DURATION)
_BEARER = "bearer "
_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|\+00:00)?", re.ASCII
)
_PERMISSION_ALIASES = {"read": "object.read", "write": "object.write", "delete": "object.delete"}


def parse_permission(text: str) -> Permission:
    """``object.read`` or its short form ``read`` (likewise write, delete); else ValueError."""
    value = _PERMISSION_ALIASES.get(text.strip(), text.strip())
    try:
        return Permission(value)
    except ValueError:
        raise ValueError(
            f"permission {text!r} is invalid: use read, write, delete or "
            "object.read, object.write, object.delete"
        ) from None


def _permission(value: object) -> Permission:
    if isinstance(value, Permission):
        return value
    if isinstance(value, str):
        return parse_permission(value)
    raise ValueError(
        f"max_permissions contains {value!r}, which is not a permission: use "
        "read, write, delete or object.read, object.write, object.delete"
    )


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """Parse a PEM ``PUBLIC KEY`` holding an Ed25519 key (§10.6); ValueError otherwise."""
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    rule = "expected the PEM text of an Ed25519 public key ('-----BEGIN PUBLIC KEY-----' ...)"
    try:
        key = load_pem_public_key(data)
    except Exception:  # ValueError, UnsupportedAlgorithm
        raise ValueError(f"public key is invalid: {rule}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"public key is invalid: {rule}; got {type(key).__name__.lstrip('_')}")
    return key


@dataclass(frozen=True, slots=True)
class AuthKey:
    """One ``kid`` of the key directory: its key versions and ``max_permissions`` (§10.6).

    Tokens signed by this key get at most ``max_permissions``; the
    reference server's default is none, ours (for convenience) all three.
    """

    public_keys: tuple[Ed25519PublicKey, ...]
    max_permissions: frozenset[Permission] = frozenset(Permission)

    def __post_init__(self) -> None:
        if not self.public_keys:
            raise ValueError("an AuthKey needs at least one public key")

    @classmethod
    def from_pem(
        cls,
        pems: str | bytes | Sequence[str | bytes],
        max_permissions: Iterable[Permission | str] | None = None,
    ) -> AuthKey:
        """Build from PEM text (or several, for rotation) and permission names."""
        texts = [pems] if isinstance(pems, str | bytes) else list(pems)
        keys = tuple(load_public_key(text) for text in texts)
        if max_permissions is None:
            return cls(keys)
        return cls(keys, frozenset(_permission(p) for p in max_permissions))

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """Whether any version of the key made ``signature`` over ``message``."""
        for key in self.public_keys:
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            return True
        return False


class Permit(Protocol):
    """What an authenticated request may do; asked once the path is parsed."""

    def check(self, usecase: str, scope: Scope, permission: Permission) -> ServerResponse | None:
        """None when allowed, else the 403 response to send (§10.4)."""
        ...


class _AllowAll:
    def check(self, usecase: str, scope: Scope, permission: Permission) -> ServerResponse | None:
        return None

    def __repr__(self) -> str:
        return "ALLOW_ALL"


ALLOW_ALL: Permit = _AllowAll()
"""The permit of an emulator without enforcement: everything is allowed."""


def _not_allowed() -> ServerResponse:
    return json_error(403, "auth error: operation not allowed", ["operation not allowed"])


@dataclass(frozen=True, slots=True)
class _TokenPermit:
    """A verified JWT: its ``res`` claim and effective permissions (§10.3, §10.4)."""

    res: Mapping[str, str]
    permissions: frozenset[Permission]

    def check(self, usecase: str, scope: Scope, permission: Permission) -> ServerResponse | None:
        allowed = (
            permission in self.permissions
            and self.res.get("os:usecase") == usecase  # literal: no usecase wildcard
            # every request scope must be granted; token entries not in the path are ignored
            and all(self.res.get(name) in (value, "*") for name, value in scope.items)
        )
        return None if allowed else _not_allowed()


@dataclass(frozen=True, slots=True)
class _PresignedPermit:
    """A verified pre-signed request: reads only, bound to its path by the signature (§11.3)."""

    def check(self, usecase: str, scope: Scope, permission: Permission) -> ServerResponse | None:
        return None if permission is Permission.OBJECT_READ else _not_allowed()


def _bad_request(message: str) -> ServerResponse:
    cause = f"bad request: {message}"  # one cause, as in the examples of §1.3 and §16.7
    return json_error(400, f"auth error: {cause}", [cause])


def _unauthorized(message: str) -> ServerResponse:
    return json_error(401, f"auth error: {message}", [message])


def _decode_failure(reason: str) -> ServerResponse:
    # Reasons name the failed rule only: never any part of the token.
    return _unauthorized(f"failed to decode token: {reason}")


class Authenticator:
    """The emulator's ``authorize`` hook for a key directory (PROTOCOL §10, §11).

    ``keys`` maps ``kid`` to an :class:`AuthKey`. With an empty directory
    every request needs a credential but none verifies (§10.1). Use
    ``Emulator(storage, authorize=Authenticator(keys))``; without an
    authenticator the emulator enforces nothing (``enforce = false``).
    """

    def __init__(self, keys: Mapping[str, AuthKey]) -> None:
        for kid, key in keys.items():
            if not isinstance(kid, str) or not isinstance(key, AuthKey):
                raise TypeError(f"keys must map a kid (str) to an AuthKey, got {kid!r}")
        self.keys: dict[str, AuthKey] = dict(keys)

    def __call__(
        self, request: ServerRequest, route: Route, now: datetime
    ) -> ServerResponse | Permit:
        """Authenticate ``request`` at time ``now`` (§10.2 order of credentials)."""
        raw_path, raw_query = split_target(request.target)
        # §10.2 (1): a parameter named exactly `os_sig` (raw, case-sensitive) means
        # pre-signed mode; any token is then ignored.
        if any(piece.partition("=")[0] == PARAM_SIG for piece in raw_query.split("&")):
            return self._presigned(route.method, raw_path, raw_query, now)
        try:
            query = parse_query(raw_query, _AUTH_QUERY)
        except ValueError:
            return _bad_request("invalid query string")
        token = self._header_token(request)
        if token is None:
            token = query.get("os_auth")  # §10.2 (3): form-decoded, no Bearer prefix
        if token is None:
            return _bad_request("No authorization token provided")
        return self._verify_jwt(token, now)

    @staticmethod
    def _header_token(request: ServerRequest) -> str | None:
        """§10.2 (2): ``x-os-auth``, else ``Authorization``; ``Bearer `` (any case) required."""
        value = request.header("x-os-auth")
        if value is None:
            value = request.header("authorization")
        if value is None or value[: len(_BEARER)].lower() != _BEARER:
            return None  # an unusable x-os-auth does not fall back to Authorization
        return value[len(_BEARER) :]

    # -- JWT (§10.3) ----------------------------------------------------------------------

    def _verify_jwt(self, token: str, now: datetime) -> ServerResponse | Permit:
        parts = token.split(".")
        if len(parts) != 3:
            return _decode_failure("InvalidToken")
        try:
            header = json.loads(b64url_decode(parts[0]))
            signature = b64url_decode(parts[2])
        except ValueError:  # includes JSON and UTF-8 errors
            return _decode_failure("InvalidToken")
        if not isinstance(header, dict):
            return _decode_failure("InvalidToken")
        kid = header.get("kid")
        if kid is None:
            return _bad_request("JWT header is missing `kid` field")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            return _unauthorized("unknown key")
        if header.get("alg") != "EdDSA":
            return _decode_failure("InvalidAlgorithm")
        if not key.verifies(signature, f"{parts[0]}.{parts[1]}".encode("ascii", "replace")):
            return _unauthorized("failed to verify token")
        try:
            claims = json.loads(b64url_decode(parts[1]))
        except ValueError:
            return _decode_failure("InvalidToken")
        return self._check_claims(claims, key, now)

    @staticmethod
    def _check_claims(claims: object, key: AuthKey, now: datetime) -> ServerResponse | Permit:
        if not isinstance(claims, dict):
            return _decode_failure("InvalidClaims")
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            return _decode_failure("MissingRequiredClaim(exp)")
        if not math.isfinite(exp):
            # §10.3: a finite number. Python's JSON reads NaN, Infinity and 1e999 as
            # floats the comparison below would accept (NaN) or accept for ever.
            return _decode_failure("InvalidClaims(exp)")
        if exp < now.timestamp() - LEEWAY_SECONDS:  # accepted until exp + 60 s
            return _decode_failure("ExpiredSignature")
        if "aud" in claims:
            aud = claims["aud"]
            audiences = aud if isinstance(aud, list) else [aud]
            if "objectstore" not in audiences:
                return _decode_failure("InvalidAudience")
        if "iss" in claims and claims["iss"] not in ("sentry", "relay"):
            return _decode_failure("InvalidIssuer")
        res = claims.get("res")
        if (
            not isinstance(res, dict)
            or not isinstance(res.get("os:usecase"), str)
            or not all(isinstance(value, str) for value in res.values())
        ):
            return _decode_failure("InvalidClaims(res)")
        names = claims.get("permissions")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return _decode_failure("InvalidClaims(permissions)")
        try:
            granted = frozenset(Permission(name) for name in names)
        except ValueError:  # any unknown permission invalidates the whole token
            return _decode_failure("InvalidClaims(permissions)")
        return _TokenPermit(dict(res), granted & key.max_permissions)

    # -- pre-signed URLs (§11.3) ----------------------------------------------------------

    def _presigned(
        self, method: str, raw_path: str, raw_query: str, now: datetime
    ) -> ServerResponse | Permit:
        if method not in _PRESIGNED_METHODS:  # 1. before anything else
            return json_error(
                403,
                "auth error: presigned URLs are not supported for this method",
                ["presigned URLs are not supported for this method"],
            )
        params = _presign_params(raw_query)  # 2.
        if params is None:
            return _bad_request("presigned URL has missing or invalid parameters")
        kid, signed_at, duration, signature = params
        key = self.keys.get(kid)
        if key is None:  # 3.
            return _unauthorized("unknown key")
        if duration > _MAX_DURATION:  # 4.
            return _bad_request("presigned URL validity exceeds the maximum of 1 week")
        # 5. tolerance for a signer clock ahead of ours; none at the end
        instant = now.timestamp()
        if not signed_at - LEEWAY_SECONDS <= instant <= signed_at + duration:
            return _unauthorized("presigned URL is expired or not yet valid")
        canonical = canonical_form(method, raw_path, raw_query)  # 6.
        try:
            raw_signature = b64url_decode(signature)
        except ValueError:
            return _unauthorized("failed to verify token")
        if len(raw_signature) != 64 or not key.verifies(raw_signature, canonical.encode()):
            return _unauthorized("failed to verify token")
        if Permission.OBJECT_READ not in key.max_permissions:  # 7.
            return _not_allowed()
        return _PresignedPermit()


def _presign_params(raw_query: str) -> tuple[str, float, int, str] | None:
    """``(kid, timestamp, duration, signature)``, or None when missing or invalid (§11.1)."""
    try:
        query = parse_query(raw_query, _AUTH_QUERY)
    except ValueError:  # duplicates or bad UTF-8
        return None
    kid = query.get(PARAM_KID)
    stamp = query.get(PARAM_TIMESTAMP)
    duration = query.get(PARAM_DURATION)
    signature = query.get(PARAM_SIG)
    if kid is None or stamp is None or duration is None or signature is None:
        return None
    signed_at = _parse_timestamp(stamp)
    if signed_at is None or not duration.isascii() or not duration.isdigit():
        return None
    seconds = int(duration)
    if seconds >= 2**64:  # u64 on the reference server
        return None
    return kid, signed_at, seconds, signature


def _parse_timestamp(text: str) -> float | None:
    """RFC 3339-like UTC timestamps as the reference server accepts them (§11.1)."""
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    fraction = match.group(7)
    return moment.timestamp() + (float(fraction) if fraction else 0.0)
