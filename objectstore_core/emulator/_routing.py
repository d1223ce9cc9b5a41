"""Route matching and path parsing (PROTOCOL §2.1–§2.4, §2.6).

Matching works in two steps, like the reference server (§1.4):

1. :func:`match_route` looks only at the **raw** path and the method. It
   finds the route (so ``objects:batch`` must be spelled with a literal
   colon) and answers 404 or 405 without decoding anything.
2. :func:`parse_object_path` percent-decodes the captured usecase, scopes
   and key and validates the scope grammar. Failures are 400 plain text
   ``Invalid URL: ...``. Authentication (:mod:`._auth`) runs between the
   two steps, as on the reference server (PROTOCOL §1.4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_to_bytes

from objectstore_core import Scope

__all__ = [
    "ObjectPath",
    "PathError",
    "Route",
    "RouteKind",
    "RouteMiss",
    "match_route",
    "parse_object_path",
    "parse_query",
    "split_target",
]


class RouteKind(enum.Enum):
    """Which endpoint family a request reached (PROTOCOL §2.4)."""

    HEALTH = "health"
    READY = "ready"
    KEDA = "keda"
    OBJECT_INSERT = "object-insert"  # POST /v1/objects/{u}/{s}[/]
    OBJECT = "object"  # GET/HEAD/PUT/DELETE/PATCH /v1/objects/{u}/{s}/{key...}
    BATCH = "batch"  # POST /v1/objects:batch/{u}/{s}/
    MULTIPART_INITIATE = "multipart-initiate"  # POST /v1/objects:multipart/{u}/{s}[/]
    MULTIPART = "multipart"  # PUT (initiate) / DELETE (abort) .../{key...}
    MULTIPART_PARTS = "multipart-parts"  # PUT (upload) / GET (list) .../{key...}
    MULTIPART_COMPLETE = "multipart-complete"  # POST .../{key...}


@dataclass(frozen=True, slots=True)
class Route:
    """A matched route: the endpoint and the still percent-encoded captures."""

    kind: RouteKind
    method: str  # the method that selects the handler (HEAD on GET routes stays HEAD)
    raw_usecase: str = ""
    raw_scopes: str = ""
    raw_key: str | None = None


@dataclass(frozen=True, slots=True)
class RouteMiss:
    """No route: 404, or 405 with the ``allow`` value when only the method is wrong."""

    status: int
    allow: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectPath:
    """Decoded and validated path parameters (PROTOCOL §2.1–§2.3)."""

    usecase: str
    scope: Scope
    key: str | None

    @property
    def scope_wire(self) -> str:
        """The canonical wire form of the scope list (``_`` when empty)."""
        return str(self.scope)


class PathError(ValueError):
    """A path parameter failed to decode or validate; the message follows ``Invalid URL: ``."""


# Methods per route shape. HEAD is served by the GET handler (framework default, §2.4).
_GET = ("GET", "HEAD")
_OBJECT_METHODS = ("GET", "HEAD", "PUT", "DELETE", "PATCH")  # PATCH: §14.2


def split_target(target: str) -> tuple[str, str]:
    """Split a request-target into ``(raw path, raw query)``.

    An absolute-form target (``http://host/path``) is reduced to its path.
    """
    if target.startswith(("http://", "https://")):
        after_scheme = target.split("//", 1)[1]
        slash = after_scheme.find("/")
        target = after_scheme[slash:] if slash >= 0 else "/"
    path, _, query = target.partition("?")
    return path, query


def _allowed(method: str, allowed: tuple[str, ...]) -> bool:
    return method in allowed


def _miss_or_route(method: str, allowed: tuple[str, ...], route: Route) -> Route | RouteMiss:
    if _allowed(method, allowed):
        return route
    return RouteMiss(405, ",".join(allowed))


def _split_captures(rest: str) -> tuple[str, str, str | None] | None:
    """Split ``{u}/{s}[/{key...}]``; None when there is no scopes segment."""
    usecase, sep, after = rest.partition("/")
    if not sep:
        return None
    scopes, sep, key = after.partition("/")
    return usecase, scopes, (key if sep else None)


def match_route(method: str, raw_path: str) -> Route | RouteMiss:
    """Match a raw (still percent-encoded) path against the routing table of §2.4.

    Parameters may be empty (the router in use accepts empty segments, §2.1,
    §2.2); a key ("catch-all") must be non-empty, so ``.../{s}/`` with nothing
    after the slash reaches the keyless route.
    """
    if raw_path in ("/health", "/ready", "/keda"):
        kind = {"/health": RouteKind.HEALTH, "/ready": RouteKind.READY, "/keda": RouteKind.KEDA}
        return _miss_or_route(method, _GET, Route(kind[raw_path], method))
    if not raw_path.startswith("/v1/"):
        return RouteMiss(404)
    resource, sep, rest = raw_path[len("/v1/") :].partition("/")
    if not sep:
        return RouteMiss(404)
    captures = _split_captures(rest)
    if captures is None:
        return RouteMiss(404)
    usecase, scopes, key = captures
    has_key = bool(key)

    def route(kind: RouteKind) -> Route:
        return Route(kind, method, usecase, scopes, key if has_key else None)

    if resource == "objects":
        if has_key:
            return _miss_or_route(method, _OBJECT_METHODS, route(RouteKind.OBJECT))
        return _miss_or_route(method, ("POST",), route(RouteKind.OBJECT_INSERT))
    if resource == "objects:batch":
        # The trailing slash is required (§2.4): `{s}` alone is 404, `{s}/` is the route.
        if key == "":
            return _miss_or_route(method, ("POST",), route(RouteKind.BATCH))
        return RouteMiss(404)
    if resource == "objects:multipart":
        if has_key:
            return _miss_or_route(method, ("PUT", "DELETE"), route(RouteKind.MULTIPART))
        return _miss_or_route(method, ("POST",), route(RouteKind.MULTIPART_INITIATE))
    if resource == "objects:multipart:parts" and has_key:
        return _miss_or_route(method, ("PUT", *_GET), route(RouteKind.MULTIPART_PARTS))
    if resource == "objects:multipart:complete" and has_key:
        return _miss_or_route(method, ("POST",), route(RouteKind.MULTIPART_COMPLETE))
    return RouteMiss(404)


def _decode(raw: str, what: str) -> str:
    """Percent-decode one path parameter to strict UTF-8 (§2.1–§2.3).

    Invalid escapes such as ``%zz`` stay literal, as with the reference
    server's decoder. ``+`` is a literal plus in paths.
    """
    if "%" not in raw and raw.isascii():
        return raw  # nothing to decode (the common case)
    try:
        data = raw.encode("latin-1")
    except UnicodeEncodeError:
        data = raw.encode("utf-8")
    try:
        return unquote_to_bytes(data).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise PathError(f"Invalid UTF-8 in `{what}`") from None


# §2.2: what scope names and values are made of.
_SCOPE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-()$!+'")
_NO_SCOPES = "_"


def _parse_scopes(wire: str) -> Scope:
    """The decoded scopes segment as the server reads it (§2.2); :class:`PathError` if invalid.

    ``_`` is the empty list; else ``name=value`` pieces split on ``;`` and at
    the first ``=``, both non-empty and of the §2.2 characters, kept in order
    (duplicate names included). Messages are the reference server's.
    """
    if wire == _NO_SCOPES:
        return Scope()
    pairs = []
    for piece in wire.split(";"):
        name, sep, value = piece.partition("=")
        if not sep or not name or not value:
            raise PathError("scope must be 'key=value'")
        for char in name + value:
            if char not in _SCOPE_CHARS:
                raise PathError(f"invalid character {char!r}")
        pairs.append((name, value))
    return Scope.from_items(tuple(pairs))


def parse_object_path(route: Route) -> ObjectPath:
    """Decode and validate the captures of an object route; raises :class:`PathError`.

    The key is everything after the scopes segment, decoded with ``/`` kept:
    ``a%2Fb`` and ``a/b`` name the same object, a trailing slash is
    significant and a leading extra slash yields ``/k`` (§2.3).
    """
    usecase = _decode(route.raw_usecase, "usecase")
    scopes = _decode(route.raw_scopes, "scopes")
    scope = _parse_scopes(scopes)
    key = None if route.raw_key is None else _decode(route.raw_key, "key")
    return ObjectPath(usecase, scope, key)


def parse_query(raw_query: str, known: tuple[str, ...]) -> dict[str, str]:
    """Decode a query string as form data (§2.6) and keep the ``known`` parameters.

    Unknown parameters are ignored; a known parameter given twice or a value
    that is not UTF-8 raises ValueError (400 ``Failed to deserialize query string``).
    """
    found: dict[str, str] = {}
    if not raw_query:
        return found  # the common case (and what parse_qsl makes of it)
    try:
        pairs = parse_qsl(raw_query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid UTF-8: {exc.reason}") from None
    for name, value in pairs:
        if name not in known:
            continue
        if name in found:
            raise ValueError(f"duplicate field `{name}`")
        found[name] = value
    return found
