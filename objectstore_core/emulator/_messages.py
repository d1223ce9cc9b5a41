"""The plain values that cross the emulator's boundary, and response builders.

A transport turns bytes from a socket (or an in-process call) into a
:class:`ServerRequest`, hands it to the handler, and writes the resulting
:class:`ServerResponse` back. Nothing here performs I/O; a response body is
either ``bytes`` or a :class:`BodyStream` that the transport pulls from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

__all__ = [
    "BodyStream",
    "BytesLike",
    "ServerRequest",
    "ServerResponse",
    "empty_response",
    "json_error",
    "json_response",
    "text_response",
]

BytesLike: TypeAlias = bytes | bytearray | memoryview
"""Request body chunks as transports receive them (h11 hands out ``bytearray``)."""

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


@runtime_checkable
class BodyStream(Protocol):
    """A response body produced lazily: ``read(n)`` returns ``b""`` at the end.

    The transport MUST call ``close()`` exactly once, also when the client went
    away mid-response, so storage handles are released.
    """

    def read(self, n: int) -> bytes:
        """Return up to ``n`` bytes (at least one unless the body is exhausted)."""
        ...

    def close(self) -> None:
        """Release the underlying resources; further reads are not allowed."""
        ...


@dataclass(frozen=True, slots=True)
class ServerRequest:
    """One HTTP request head as the emulator sees it.

    ``target`` is the raw request-target (path plus optional ``?query``),
    still percent-encoded. Header names are lower-cased when built; values are the raw
    bytes decoded as Latin-1, so a byte >= 0x80 shows up as a character
    above U+007F and can be rejected like the reference server does (§4.2).
    """

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # Header names are case-insensitive (§1.2); normalize once so lookups are exact.
        names = "\0".join([name for name, _ in self.headers])
        if names != names.lower():
            lowered = tuple((name.lower(), value) for name, value in self.headers)
            object.__setattr__(self, "headers", lowered)

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (lower case), or None."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found


@dataclass(frozen=True, slots=True)
class ServerResponse:
    """A response for a transport to send.

    ``headers`` have lower-case names (PROTOCOL §1.2) and never contain
    framing headers (``content-length``, ``transfer-encoding``); the
    transport derives those from ``content_length``: a number is sent as
    ``content-length``; None means "length unknown", sent chunked (GET 200,
    PROTOCOL §1.1), except for 204/304 and HEAD, which carry no body and no
    length header. For HEAD the body is empty and ``content_length`` is what
    the GET would have announced.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | BodyStream = b""
    content_length: int | None = 0

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


# The most common empty responses, shared (they are immutable).
_EMPTY = {204: ServerResponse(204, (), b"", None), 404: ServerResponse(404, (), b"", 0)}


def empty_response(status: int, headers: Iterable[tuple[str, str]] = ()) -> ServerResponse:
    """A response with an empty body (PROTOCOL §1.3 "Empty body" shape).

    204 responses carry no length header at all; others send ``content-length: 0``.
    """
    if not headers:
        common = _EMPTY.get(status)
        if common is not None:
            return common  # immutable, so one will do
    return ServerResponse(status, tuple(headers), b"", None if status == 204 else 0)


def text_response(
    status: int, text: str, headers: Iterable[tuple[str, str]] = ()
) -> ServerResponse:
    """A plain-text response (PROTOCOL §1.3 "Plain text" shape)."""
    body = text.encode("utf-8")
    return ServerResponse(status, (("content-type", TEXT_TYPE), *headers), body, len(body))


def json_response(status: int, value: object) -> ServerResponse:
    """A compact JSON response, UTF-8 without escaping non-ASCII (as serde_json)."""
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return ServerResponse(status, (("content-type", JSON_TYPE),), body, len(body))


def json_error(status: int, detail: str, causes: Iterable[str] = ()) -> ServerResponse:
    """The JSON error shape of PROTOCOL §1.3; ``causes`` is omitted when empty."""
    value: dict[str, object] = {"detail": detail}
    cause_list = list(causes)
    if cause_list:
        value["causes"] = cause_list
    return json_response(status, value)
