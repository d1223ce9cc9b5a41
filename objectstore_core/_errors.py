"""The one exception tree of the project, and the pure mapping from responses to it.

::

    ObjectstoreError
    ├── RequestError(message, status, response)   HTTP status >= 400 (official name)
    │   ├── ObjectNotFound                404 where an object must exist
    │   ├── Unauthorized                  401: bad, unknown or expired credentials
    │   ├── Forbidden                     403: valid credentials, operation not allowed
    │   ├── ExpiryExtensionRejected       409 on extend_expiry
    │   ├── RateLimited                   429, with ``retry_after`` in seconds or None
    │   ├── MultipartCompleteError        failure reported in a multipart-complete body
    │   └── ServerError                   5xx
    ├── TransportError                    connection refused/reset, TLS, DNS
    │   ├── ConnectError
    │   ├── ReadError
    │   ├── WriteError
    │   └── TimeoutError                  (also a builtin ``TimeoutError``)
    │       ├── ConnectTimeout
    │       ├── ReadTimeout
    │       ├── WriteTimeout
    │       └── PoolTimeout
    ├── ProtocolError                     malformed response from the server
    └── IntegrityError                    truncated or corrupt body, length/checksum mismatch

Every error can carry the context of the operation that failed (``operation``,
``usecase``, ``scope``, ``key``); none ever carries a token or a key secret.
Foreign exceptions (urllib3, httpcore, sockets) are translated at the transport edge only,
keeping the original as ``__cause__``.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ExpiryExtensionRejected",
    "Forbidden",
    "IntegrityError",
    "MultipartCompleteError",
    "ObjectNotFound",
    "ObjectstoreError",
    "PoolTimeout",
    "ProtocolError",
    "RateLimited",
    "ReadError",
    "ReadTimeout",
    "RequestError",
    "ServerError",
    "TimeoutError",
    "TransportError",
    "Unauthorized",
    "WriteError",
    "WriteTimeout",
    "error_for_response",
]


class ObjectstoreError(Exception):
    """Base class of every error raised by this library.

    ``operation``, ``usecase``, ``scope`` and ``key`` describe the failed call
    where known (``None`` otherwise).
    """

    operation: str | None = None
    usecase: str | None = None
    scope: str | None = None
    key: str | None = None

    def with_context(
        self,
        *,
        operation: str | None = None,
        usecase: str | None = None,
        scope: str | None = None,
        key: str | None = None,
    ) -> ObjectstoreError:
        """Fill in missing context fields and return ``self`` (for ``raise e.with_context()``)."""
        if self.operation is None:
            self.operation = operation
        if self.usecase is None:
            self.usecase = usecase
        if self.scope is None:
            self.scope = scope
        if self.key is None:
            self.key = key
        return self

    def _context_suffix(self) -> str:
        parts = [
            f"{name}={value!r}"
            for name, value in (
                ("operation", self.operation),
                ("usecase", self.usecase),
                ("scope", self.scope),
                ("key", self.key),
            )
            if value is not None
        ]
        return f" [{', '.join(parts)}]" if parts else ""

    def __str__(self) -> str:
        return super().__str__() + self._context_suffix()


class RequestError(ObjectstoreError):
    """The server answered with an error status (the official client's name).

    ``status`` is the HTTP status (or None where there was none), ``response``
    the response body as text (error bodies are small JSON or plain text).
    """

    def __init__(self, message: str, status: int | None, response: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.response = response


class ObjectNotFound(RequestError):
    """The object does not exist (404) where the operation needs it to."""


class Unauthorized(RequestError):
    """401: the credential is malformed, signed by an unknown key, or expired (PROTOCOL §10.5)."""


class Forbidden(RequestError):
    """403: the credential is valid but does not allow this operation (PROTOCOL §10.5)."""


class ExpiryExtensionRejected(RequestError):
    """409 on ``extend_expiry``: the object has no expiry to extend (PROTOCOL §14.2)."""


class RateLimited(RequestError):
    """429: the server is rate limiting or out of capacity (PROTOCOL §12)."""

    def __init__(
        self,
        message: str,
        status: int | None,
        response: str | None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status, response)
        self.retry_after = retry_after


class MultipartCompleteError(RequestError):
    """Completing a multipart upload failed; the outcome is in the 200 body (PROTOCOL §9.4)."""

    def __init__(self, code: str, message: str) -> None:
        # Text and attributes as the official client's (``response`` is the server's message).
        super().__init__(f"Multipart upload completion failed ({code}): {message}", 200, message)
        self.code = code
        self.message = message


class ServerError(RequestError):
    """5xx: the server failed or is overloaded."""


class TransportError(ObjectstoreError):
    """The request could not be carried out at the connection level."""


class ConnectError(TransportError):
    """The connection could not be established (refused, DNS, TLS)."""


class ReadError(TransportError):
    """The connection failed while reading the response."""


class WriteError(TransportError):
    """The connection failed while sending the request."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """A timeout expired."""


class ConnectTimeout(TimeoutError):
    """Establishing the connection took longer than the connect timeout."""


class ReadTimeout(TimeoutError):
    """The server sent nothing for longer than the read timeout."""


class WriteTimeout(TimeoutError):
    """The server accepted no body bytes for longer than the write timeout."""


class PoolTimeout(TimeoutError):
    """No pooled connection became free in time."""


class ProtocolError(ObjectstoreError):
    """The server's response does not follow the protocol."""


class IntegrityError(ObjectstoreError):
    """A body is truncated or corrupt: short data, bad zstd, length or checksum mismatch."""


def _detail(body: bytes) -> tuple[str | None, str]:
    """Return (detail, text) for an error body: JSON ``detail`` if present (PROTOCOL §1.3)."""
    text = body.decode("utf-8", errors="replace")
    if body[:1] == b"{":
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            return None, text
        if isinstance(parsed, dict) and isinstance(parsed.get("detail"), str):
            return parsed["detail"], text
    return None, text


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Parse a ``retry-after`` header given in seconds; dates and junk are ignored."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


_REASONS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    408: "request timeout",
    409: "conflict",
    413: "payload too large",
    416: "range not satisfiable",
    429: "too many requests",
    500: "internal server error",
    501: "not implemented",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def error_for_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    operation: str | None = None,
    usecase: str | None = None,
    scope: str | None = None,
    key: str | None = None,
) -> RequestError:
    """Map an error response to the exception that every transport raises for it.

    Pure: the same (status, headers, body) always gives the same class. Header
    names must be lower case. Clients rely on the status, never on the text
    (PROTOCOL §1.3); the server's ``detail`` only improves the message.
    """
    detail, text = _detail(body)
    reason = _REASONS.get(status, "error")
    message = f"{operation or 'request'} failed with status {status} ({reason})"
    if detail:
        message += f": {detail}"
    error: RequestError
    if status == 401:
        error = Unauthorized(message, status, text)
    elif status == 403:
        error = Forbidden(message, status, text)
    elif status == 404:
        error = ObjectNotFound(message, status, text)
    elif status == 409 and operation == "extend_expiry":
        error = ExpiryExtensionRejected(message, status, text)
    elif status == 429:
        error = RateLimited(message, status, text, _retry_after(headers))
    elif status >= 500:
        error = ServerError(message, status, text)
    else:
        error = RequestError(message, status, text)
    error.with_context(operation=operation, usecase=usecase, scope=scope, key=key)
    return error
