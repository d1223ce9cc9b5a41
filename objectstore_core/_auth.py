"""Tokens: signing keys, EdDSA JWTs and request credentials (PROTOCOL §10.3, §10.7).

A :class:`SecretKey` holds an Ed25519 private key, parsed once from its PEM
text, and signs compact JWS tokens for a usecase and scope. Sessions of a
client configured with a key carry a :class:`KeyCredentials`, which signs
at send time (the driver passes the current time to ``headers(now)``) and
caches the token until shortly before it expires.

The JWS encoding is written here with ``cryptography`` instead of PyJWT:
importing PyJWT loads ``urllib.request``, ``socket``, ``ssl`` and
``threading`` (its JWKS client), which the sans-IO core must not import
(DESIGN.md). The format is tiny: ``b64url(header).b64url(claims).b64url(sig)``.
The tests check every token with PyJWT and against the official client.

Nothing in this module ever puts a key or a token into a ``repr``, ``str``
or error message (API §5).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from objectstore_core._models import Permission, Scope, Usecase

__all__ = [
    "DEFAULT_EXPIRY_SECONDS",
    "KeyCredentials",
    "SecretKey",
    "TokenGenerator",
    "TokenProvider",
    "b64url_decode",
    "b64url_encode",
    "encode_jwt",
    "token_claims",
    "validate_permissions",
]

DEFAULT_EXPIRY_SECONDS = 60
"""Lifetime of a token when nothing else is asked for (PROTOCOL §10.7)."""

# KeyCredentials re-signs when less than this share of a token's lifetime, or less
# than _REFRESH_MARGIN seconds, remains: a cached token is never close to expiry
# when it leaves the client, even with some clock skew or a slow upload start.
_REFRESH_SHARE = 0.25
_REFRESH_MARGIN = 10.0
_CACHE_LIMIT = 256  # (usecase, scope, permissions) combinations remembered per key

_JWT_HEADER_FIELDS = ("alg", "kid", "typ")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2), as JWTs and ``os_sig`` use it.

    >>> b64url_encode(b"\\xfb\\xff")
    '-_8'
    """
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict inverse of :func:`b64url_encode`; ValueError for anything else.

    Padding, the standard alphabet's ``+``/``/`` and whitespace are refused.
    """
    if not isinstance(text, str) or len(text) % 4 == 1:
        raise ValueError("invalid base64url text")
    if any(not (c.isascii() and (c.isalnum() or c in "-_")) for c in text):
        raise ValueError("invalid base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
        raise ValueError("invalid base64url text") from None


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_jwt(private_key: Ed25519PrivateKey, kid: str, claims: Mapping[str, Any]) -> str:
    """A compact EdDSA JWS over ``claims`` with header ``{"alg","kid","typ"}`` (§10.3)."""
    header = {"alg": "EdDSA", "kid": kid, "typ": "JWT"}
    signing_input = f"{b64url_encode(_json(header))}.{b64url_encode(_json(claims))}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def validate_permissions(value: object, what: str = "permissions") -> tuple[Permission, ...]:
    """Return ``value`` (an iterable of :class:`Permission` or their strings) as a tuple.

    Order is kept and duplicates dropped; anything else raises ValueError naming it.

    >>> validate_permissions(["object.read", Permission.OBJECT_WRITE])
    (<Permission.OBJECT_READ: 'object.read'>, <Permission.OBJECT_WRITE: 'object.write'>)
    """
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(
            f"{what}={value!r} is invalid: use a list of Permission values "
            "(object.read, object.write, object.delete)"
        )
    found: list[Permission] = []
    for item in value:
        try:
            permission = Permission(item)
        except ValueError:
            raise ValueError(
                f"{what} contains {item!r}, which is not a permission: use "
                "object.read, object.write or object.delete (PROTOCOL §10.3)"
            ) from None
        if permission not in found:
            found.append(permission)
    return tuple(found)


def _validate_expiry(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}={value!r} is invalid: use a whole number of seconds >= 1")
    return value


def _usecase_name(usecase: object) -> str:
    if isinstance(usecase, Usecase):
        return usecase.name
    if not isinstance(usecase, str) or not usecase:
        raise ValueError(f"usecase {usecase!r} is invalid: use a Usecase or its non-empty name")
    return usecase


def _scope_items(scope: object) -> tuple[tuple[str, str], ...]:
    """Scope components as text pairs, validated like a :class:`Scope`.

    Also accepts a mapping, where a value may be the wildcard ``"*"``
    (any value, PROTOCOL §10.3), or any object with ``dict()`` such as the
    official client's Scope.
    """
    if isinstance(scope, Scope):
        return scope.items
    as_dict = getattr(scope, "dict", None)
    if not isinstance(scope, Mapping) and callable(as_dict):
        scope = as_dict()
    if not isinstance(scope, Mapping):
        raise TypeError(f"scope {scope!r} must be a Scope or a mapping of names to values")
    pairs: list[tuple[str, str]] = []
    for name, value in scope.items():
        if value == "*":
            (checked,) = Scope.from_items(((name, "x"),)).items  # validates the name
            pairs.append((checked[0], "*"))
        else:
            pairs.extend(Scope.from_items(((name, value),)).items)
    return tuple(pairs)


def token_claims(
    usecase: str, scope: Iterable[tuple[str, str]], permissions: Iterable[Permission], exp: int
) -> dict[str, Any]:
    """The claims of a token for ``usecase``/``scope`` (PROTOCOL §10.3, §10.7).

    ``res`` holds the usecase and the exact (stringified) scope values; no
    ``aud``, ``iss``, ``iat`` or ``nbf`` are set, as in the official clients.

    >>> token_claims("attachments", [("org", "42")], [Permission.OBJECT_READ], 1782907260)
    {'res': {'os:usecase': 'attachments', 'org': '42'}, 'permissions': ['object.read'], \
'exp': 1782907260}
    """
    res = {"os:usecase": usecase, **dict(scope)}
    return {"res": res, "permissions": [str(p) for p in permissions], "exp": exp}


def _load_private_key(secret_key: object) -> Ed25519PrivateKey:
    """Parse PEM text into an Ed25519 key; errors never echo the key material."""
    if isinstance(secret_key, str):
        data = secret_key.encode("utf-8", errors="replace")
    elif isinstance(secret_key, bytes):
        data = secret_key
    else:
        raise TypeError(
            f"secret_key must be the PEM text of an Ed25519 private key (a str), "
            f"got {type(secret_key).__name__}"
        )
    rule = (
        "secret_key is invalid: expected the PEM text of an unencrypted Ed25519 private key "
        "('-----BEGIN PRIVATE KEY-----' ...)"
    )
    try:
        key = load_pem_private_key(data, password=None)
    except Exception:  # ValueError, TypeError (encrypted), UnsupportedAlgorithm
        # `from None`: the library's message may quote parts of the input.
        raise ValueError(rule) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{rule}; this PEM holds a {type(key).__name__.lstrip('_')}")
    return key


_wall_clock: Callable[[], float] | None = None


def use_wall_clock(clock: Callable[[], float]) -> None:
    """Give the core the clock a key used on its own signs with; each twin calls it at import.

    :class:`SecretKey` is a value shared by both twins (API §0.3), and the
    official client's ``key.token_for_scope(usecase, scope)`` signs for the
    current time, so a key used on its own needs a clock. The core reads
    none: importing ``objectstore_sync`` or ``objectstore_async`` hands it
    theirs. Everything a client does passes the time its twin read instead:
    drivers give it to :meth:`KeyCredentials.headers`, sessions to
    ``token_for_scope(now=...)``.
    """
    global _wall_clock
    _wall_clock = clock


def _standalone_clock() -> float:
    """The signing time of a token asked for without ``now`` (see :func:`use_wall_clock`)."""
    if _wall_clock is None:
        raise RuntimeError(
            "no clock to sign with: pass now= (seconds since the epoch), or import "
            "objectstore_sync or objectstore_async, which give the core their clock"
        )
    return _wall_clock()


class SecretKey:
    """An Ed25519 signing key for Objectstore tokens and pre-signed URLs (API §5).

    ``kid`` names the key on the server; ``secret_key`` is the PEM text of the
    private key, parsed once here (an invalid key raises ValueError at once).
    Tokens live ``expiry_seconds`` and carry ``permissions`` (default: all
    three) unless a call asks for others.

    >>> from pathlib import Path
    >>> pem = Path("tests/data/ed25519.private.pem").read_text()      # doctest: +SKIP
    >>> key = SecretKey("test_kid", pem)                                # doctest: +SKIP
    >>> client = Client("http://127.0.0.1:8888", token=key)            # doctest: +SKIP
    >>> key                                                             # doctest: +SKIP
    SecretKey(kid='test_kid', expiry_seconds=60, permissions=[...], secret_key=<redacted>)

    Its ``repr`` never shows the key; it cannot be pickled.
    """

    __slots__ = ("_cache", "_private_key", "expiry_seconds", "kid", "permissions")

    kid: str
    expiry_seconds: int
    permissions: list[Permission]
    _private_key: Ed25519PrivateKey
    _cache: dict[tuple[str, tuple[tuple[str, str], ...], tuple[Permission, ...]], KeyCredentials]

    def __init__(
        self,
        kid: str,
        secret_key: str,
        expiry_seconds: int = DEFAULT_EXPIRY_SECONDS,
        permissions: list[Permission] | None = None,
    ) -> None:
        if not isinstance(kid, str) or not kid:
            raise ValueError(f"kid={kid!r} is invalid: it must be a non-empty str")
        self.kid = kid
        self.expiry_seconds = _validate_expiry(expiry_seconds, "expiry_seconds")
        chosen = Permission.max() if permissions is None else permissions
        self.permissions = list(validate_permissions(chosen))
        self._private_key = _load_private_key(secret_key)
        self._cache = {}

    def token_for_scope(
        self,
        usecase: str | Usecase,
        scope: Scope | Mapping[str, str | int | bool],
        permissions: list[Permission] | None = None,
        expiry_seconds: int | None = None,
        *,
        now: float | None = None,
    ) -> str:
        """A signed JWT for ``usecase`` and ``scope`` (PROTOCOL §10.3).

        ``scope`` may also be a mapping, whose values may be ``"*"`` (any
        value). ``permissions`` and ``expiry_seconds`` default to the key's. ``now``
        (seconds since the epoch) is the signing time, the current time when
        None (see :func:`_standalone_clock`); the token expires
        ``expiry_seconds`` after it.

        >>> token = key.token_for_scope("attachments", Scope(org=42))     # doctest: +SKIP
        """
        perms = self._granted(permissions)
        expiry = self.expiry_seconds if expiry_seconds is None else expiry_seconds
        _validate_expiry(expiry, "expiry_seconds")
        issued = _standalone_clock() if now is None else now
        claims = token_claims(
            _usecase_name(usecase), _scope_items(scope), perms, math.floor(issued) + expiry
        )
        return encode_jwt(self._private_key, self.kid, claims)

    def _granted(self, permissions: object) -> tuple[Permission, ...]:
        """``permissions`` (the key's when None), refusing any the key does not hold.

        A key limited to some permissions never signs a token for more: asking
        for others is a ValueError naming them, raised before any request.
        """
        if permissions is None:
            return tuple(self.permissions)
        asked = validate_permissions(permissions)
        beyond = [str(p) for p in asked if p not in self.permissions]
        if beyond:
            held = [str(p) for p in self.permissions]
            raise ValueError(
                f"permissions {beyond!r} are not granted to key {self.kid!r}, which holds "
                f"{held!r}: a key cannot sign a token for more than its own permissions"
            )
        return asked

    def sign_for_scope(
        self,
        usecase: str,
        scope: Scope,
        permissions: list[Permission] | None = None,
        expiry_seconds: int | None = None,
    ) -> str:
        """Deprecated spelling of :meth:`token_for_scope`."""
        warnings.warn(
            "SecretKey.sign_for_scope is deprecated; use token_for_scope",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.token_for_scope(usecase, scope, permissions, expiry_seconds)

    def signature_for_canonical_form(self, canonical_form: str) -> str:
        """The Ed25519 signature of a pre-signed request, base64url without padding (§11.2).

        >>> key.signature_for_canonical_form("GET\\n/v1/objects/test/org=1/k\\n")  # doctest: +SKIP
        """
        if not isinstance(canonical_form, str):
            raise TypeError(f"canonical_form must be a str, got {type(canonical_form).__name__}")
        return b64url_encode(self._private_key.sign(canonical_form.encode("utf-8")))

    def credentials(
        self, usecase: str | Usecase, scope: Scope, permissions: list[Permission] | None = None
    ) -> KeyCredentials:
        """The (shared, caching) credentials for requests on ``usecase``/``scope``.

        One :class:`KeyCredentials` per (usecase, scope, permissions), so
        sessions created per request still reuse a cached token.
        """
        cache_key = (_usecase_name(usecase), _scope_items(scope), self._granted(permissions))
        found = self._cache.get(cache_key)
        if found is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()  # rare; dropping cached tokens only costs a signature each
            found = KeyCredentials(self, *cache_key)
            self._cache[cache_key] = found
        return found

    def __repr__(self) -> str:
        permissions = [str(p) for p in self.permissions]
        return (
            f"{type(self).__name__}(kid={self.kid!r}, expiry_seconds={self.expiry_seconds}, "
            f"permissions={permissions!r}, secret_key=<redacted>)"
        )

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError(f"{type(self).__name__} cannot be pickled: it holds a private key")


class TokenGenerator(SecretKey):
    """Deprecated name of :class:`SecretKey` (the official client's older spelling)."""

    __slots__ = ()

    def __init__(
        self,
        kid: str,
        secret_key: str,
        expiry_seconds: int = DEFAULT_EXPIRY_SECONDS,
        permissions: list[Permission] | None = None,
    ) -> None:
        warnings.warn(
            "TokenGenerator is deprecated; use SecretKey", DeprecationWarning, stacklevel=2
        )
        super().__init__(kid, secret_key, expiry_seconds, permissions)


TokenProvider: TypeAlias = SecretKey | str
"""What ``Client(token=...)`` accepts: a :class:`SecretKey`, or a pre-made JWT sent as-is."""


class KeyCredentials:
    """Signs requests on one usecase and scope with a :class:`SecretKey` (PROTOCOL §10.2).

    Implements :class:`objectstore_core.Credentials`. The token is cached and
    re-signed once less than a quarter of its lifetime (or less than 10 s)
    remains, so an expired token is never sent. Concurrent callers may both
    re-sign at the boundary; each gets a valid token and one of them is kept
    (the cache is one tuple, replaced atomically).

    >>> credentials = key.credentials("attachments", Scope(org=42))   # doctest: +SKIP
    >>> credentials.headers(now=1782907200.0)                         # doctest: +SKIP
    (('x-os-auth', 'Bearer eyJ...'),)
    """

    __slots__ = ("_cached", "_key", "_permissions", "_scope", "_usecase")

    def __init__(
        self,
        key: SecretKey,
        usecase: str,
        scope: tuple[tuple[str, str], ...],
        permissions: tuple[Permission, ...],
    ) -> None:
        self._key = key
        self._usecase = usecase
        self._scope = scope
        self._permissions = permissions
        self._cached: tuple[tuple[tuple[str, str], ...], float, float] | None = None

    @property
    def key(self) -> SecretKey:
        """The signing key."""
        return self._key

    def _fresh(self, now: float) -> tuple[tuple[str, str], ...]:
        lifetime = self._key.expiry_seconds
        exp = math.floor(now) + lifetime
        claims = token_claims(self._usecase, self._scope, self._permissions, exp)
        token = encode_jwt(self._key._private_key, self._key.kid, claims)
        headers = (("x-os-auth", f"Bearer {token}"),)
        refresh_at = exp - max(lifetime * _REFRESH_SHARE, _REFRESH_MARGIN)
        self._cached = (headers, math.floor(now), refresh_at)
        return headers

    def headers(self, now: float) -> tuple[tuple[str, str], ...]:
        """``x-os-auth: Bearer <jwt>`` valid at ``now`` (seconds since the epoch)."""
        cached = self._cached  # one read: another thread may replace it meanwhile
        # A clock that went backwards past the signing time also re-signs.
        if cached is None or not cached[1] <= now < cached[2]:
            return self._fresh(now)
        return cached[0]

    def __repr__(self) -> str:
        scope = ";".join(f"{k}={v}" for k, v in self._scope) or "_"
        return f"KeyCredentials(kid={self._key.kid!r}, usecase={self._usecase!r}, scope={scope!r})"
