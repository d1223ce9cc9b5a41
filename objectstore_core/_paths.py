"""Request targets: how usecase, scope and key become a path (PROTOCOL §2.4, §2.5)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from objectstore_core._models import Scope, Usecase

if TYPE_CHECKING:
    from objectstore_core._http import Credentials

__all__ = ["Target", "encode_path", "encode_query", "split_base_url", "validate_key"]

# PROTOCOL §2.5: unreserved characters plus these stay literal; every other
# UTF-8 byte becomes %XX with upper-case hex. '%' itself is always escaped:
# keys are literal strings, never pre-encoded.
_PATH_SAFE = "-._~/:@!$&'()*+,;="
_QUERY_SAFE = _PATH_SAFE + "?"
_LITERAL_PATH_RE = re.compile(r"[A-Za-z0-9_.~/:@!$&'()*+,;=-]*")


def encode_path(path: str) -> str:
    """Percent-encode a path the way the official clients do (PROTOCOL §2.5).

    >>> encode_path("caf\u00e9/100%literal?x#y")
    'caf%C3%A9/100%25literal%3Fx%23y'
    """
    if _LITERAL_PATH_RE.fullmatch(path):
        return path  # nothing to escape (most keys): skip quote()'s encode and scan
    return quote(path, safe=_PATH_SAFE, encoding="utf-8", errors="strict")


def encode_query(query: str) -> str:
    """Percent-encode a query string: the path set plus ``?`` (PROTOCOL §2.5)."""
    return quote(query, safe=_QUERY_SAFE, encoding="utf-8", errors="strict")


def validate_key(key: object) -> str:
    """Return ``key`` if it can name an object, else raise ValueError naming it (§2.3)."""
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {key!r}")
    if key == "":
        raise ValueError("key '' is invalid: a key must not be empty")
    try:
        if not key.isascii():
            key.encode("utf-8")  # lone surrogates cannot be sent
    except UnicodeEncodeError:
        raise ValueError(f"key {key!r} is invalid: it must be encodable as UTF-8") from None
    return key


def split_base_url(base_url: str) -> tuple[str, str, int, str]:
    """Split a base URL into (scheme, host, port, base_path without trailing slash)."""
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {base_url!r}")
    parts = urlsplit(base_url)
    if "@" in parts.netloc:
        # Userinfo would never reach the server as a credential (it reads a
        # Bearer token or os_auth, PROTOCOL §10.2), yet would show in every
        # repr and error: refused, and the message shows the URL without it.
        host = parts.netloc.rpartition("@")[2]
        shown = f"{parts.scheme}://***@{host}{parts.path}"
        raise ValueError(
            f"base_url {shown!r} is invalid: it must not contain a user name or password; "
            "pass credentials as token= instead"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"base_url {base_url!r} is invalid: expected http://host[:port][/prefix] or https://..."
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url {base_url!r} is invalid: it must not have a query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"base_url {base_url!r} is invalid: bad port") from None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    elif port == 0:
        raise ValueError(f"base_url {base_url!r} is invalid: port 0 cannot be connected to")
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


@dataclass(frozen=True, slots=True)
class Target:
    """What a session addresses (a base path, a usecase and a scope), and the
    headers every request carries (User-Agent, a static token: never shown)."""

    base_path: str
    usecase: Usecase
    scope: Scope
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    credentials: Credentials | None = field(default=None, repr=False, compare=False)
    # The encoded collection path of objects, made once: every object request starts with it.
    _objects: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_objects", self.collection())

    def collection(self, resource: str = "objects") -> str:
        """``{base}/v1/{resource}/{usecase}/{scope}/`` (keyless POST form, §2.4)."""
        return _collection_path(self.base_path, resource, self.usecase.name, str(self.scope))

    def object(self, key: str, resource: str = "objects") -> str:
        """``{base}/v1/{resource}/{usecase}/{scope}/{key}``, percent-encoded (§2.5).

        Key segments that are exactly ``.`` or ``..`` are sent as ``%2E``
        escapes: the server decodes them to the same key (§2.3), while HTTP
        libraries would otherwise remove them as dot segments and address
        another object.
        """
        prefix = self._objects if resource == "objects" else self.collection(resource)
        if "." not in key:
            return prefix + encode_path(key)
        return prefix + "/".join(_encode_segment(segment) for segment in key.split("/"))


@functools.lru_cache(maxsize=256)
def _collection_path(base_path: str, resource: str, usecase: str, scope: str) -> str:
    # Sessions address the same few collections over and over: encode each once.
    return encode_path(f"{base_path}/v1/{resource}/{usecase}/{scope}/")


def _encode_segment(segment: str) -> str:
    if segment in (".", ".."):
        return "%2E" * len(segment)
    return encode_path(segment)
