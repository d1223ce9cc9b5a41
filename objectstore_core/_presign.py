"""Object URLs and pre-signed URLs (PROTOCOL §10.7, §11), built without I/O.

Both functions take the signing time ``now`` (seconds since the epoch);
sessions pass the current time (``BaseSession.object_url`` and
``BaseSession.presigned_object_url``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from objectstore_core._auth import SecretKey
from objectstore_core._models import Permission
from objectstore_core._paths import Target, validate_key

__all__ = [
    "MAX_PRESIGN_DURATION",
    "SUPPORTED_METHODS",
    "build_canonical_form",
    "object_url",
    "presigned_url",
]

MAX_PRESIGN_DURATION = timedelta(days=7)
"""The longest validity the server accepts for a pre-signed URL (PROTOCOL §11.1)."""

SUPPORTED_METHODS = ("GET", "HEAD")
"""Methods a pre-signed URL can be made for (PROTOCOL §11)."""

PARAM_KID = "os_kid"
PARAM_TIMESTAMP = "os_timestamp"
PARAM_DURATION = "os_duration"
PARAM_SIG = "os_sig"

# A query *value*: the query set of PROTOCOL §2.5 minus the separators `&`, `=`,
# `+` (a space in form decoding) and `#`, so an odd kid cannot break the query.
_VALUE_SAFE = "-._~/:@!$'()*,;?"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def build_canonical_form(method: str, encoded_path: str, encoded_query: str) -> str:
    """The string a pre-signed request's signature covers (PROTOCOL §11.2).

    ``encoded_path`` and ``encoded_query`` are exactly as transmitted. The
    query pieces get lower-cased names, ``os_sig`` is dropped, and they are
    sorted bytewise; HEAD is signed as GET.

    >>> build_canonical_form("HEAD", "/v1/objects/test/org=1/k", "os_kid=a&OS_Duration=60&os_sig=x")
    'GET\\n/v1/objects/test/org=1/k\\nos_duration=60&os_kid=a'
    """
    verb = method.upper()
    if verb == "HEAD":
        verb = "GET"
    pieces = []
    for piece in encoded_query.split("&"):
        if not piece:
            continue
        name, sep, value = piece.partition("=")
        name = name.translate(_ASCII_LOWER)  # ASCII only: other characters stay
        if name == PARAM_SIG:
            continue
        pieces.append(f"{name}={value}" if sep else name)
    pieces.sort()  # code point order is UTF-8 byte order ("bytewise", §11.2)
    return f"{verb}\n{encoded_path}\n{'&'.join(pieces)}"


def format_timestamp(now: float) -> str:
    """``os_timestamp``: whole seconds in UTC with ``Z`` (PROTOCOL §11.1)."""
    return datetime.fromtimestamp(math.floor(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _origin(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host  # IPv6 literals are bracketed (§11.5)
    return f"{scheme}://{shown}:{port}"  # the port is always explicit, as the official client


def _validity_seconds(value: object, what: str, maximum: timedelta | None = None) -> int:
    if not isinstance(value, timedelta):
        raise TypeError(f"{what} must be a datetime.timedelta, got {value!r}")
    if value <= timedelta(0):
        raise ValueError(f"{what}={value} is invalid: it must be longer than zero")
    if maximum is not None and value > maximum:
        raise ValueError(f"{what}={value} is invalid: it exceeds the maximum of {maximum}")
    return math.ceil(value.total_seconds())


def _secret_key(token: object, what: str) -> SecretKey:
    if isinstance(token, SecretKey):
        return token
    given = "a static token" if isinstance(token, str) else "no token"
    raise ValueError(
        f"{what} needs a SecretKey: this client has {given} "
        "(pass Client(token=SecretKey(kid, pem)))"
    )


def object_url(
    scheme: str,
    host: str,
    port: int,
    target: Target,
    key: str,
    token: object,
    token_validity: timedelta | None,
    now: float,
) -> str:
    """The URL of an object, with a read-only ``os_auth`` token when asked (§10.7).

    Without ``token_validity`` it is the plain URL (whatever the token), as
    the official client. With it, ``token`` must be a :class:`SecretKey`: a
    token allowing only ``object.read`` and valid ``ceil(validity)`` seconds
    from ``now`` is appended as ``?os_auth=<jwt>`` (JWTs need no escaping, §2.5).
    """
    validate_key(key)
    url = _origin(scheme, host, port) + target.object(key)
    if token_validity is None:
        return url
    secret = _secret_key(token, "object_url(token_validity=...)")
    seconds = _validity_seconds(token_validity, "token_validity")
    jwt = secret.token_for_scope(
        target.usecase.name, target.scope, [Permission.OBJECT_READ], seconds, now=now
    )
    return f"{url}?os_auth={jwt}"


def presigned_url(
    scheme: str,
    host: str,
    port: int,
    target: Target,
    method: str,
    key: str,
    token: object,
    duration: timedelta,
    now: float,
) -> str:
    """A pre-signed URL for one GET or HEAD of ``key`` (PROTOCOL §11.5).

    ``{scheme}://{host}:{port}{path}?os_kid=..&os_timestamp=..&os_duration=..&os_sig=..``
    with the path exactly as the client would send it. It must be used
    verbatim: re-encoding the path or query breaks the signature.
    """
    if not isinstance(method, str) or method.upper() not in SUPPORTED_METHODS:
        raise ValueError(
            f"method {method!r} is invalid: pre-signed URLs support only "
            f"{', '.join(SUPPORTED_METHODS)}"
        )
    validate_key(key)
    seconds = _validity_seconds(duration, "duration", MAX_PRESIGN_DURATION)
    secret = _secret_key(token, "presigned_object_url")
    path = target.object(key)
    query = "&".join(
        f"{name}={quote(value, safe=_VALUE_SAFE)}"
        for name, value in (
            (PARAM_KID, secret.kid),
            (PARAM_TIMESTAMP, format_timestamp(now)),
            (PARAM_DURATION, str(seconds)),
        )
    )
    signature = secret.signature_for_canonical_form(build_canonical_form(method, path, query))
    return f"{_origin(scheme, host, port)}{path}?{query}&{PARAM_SIG}={signature}"
