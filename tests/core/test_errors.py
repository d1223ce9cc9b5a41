"""Tests for objectstore_core._errors: the exception tree and error_for_response.

API §7, PROTOCOL §1.3 (error bodies), §10.5 (auth statuses), §12 (429), §14.2 (409).
"""

from __future__ import annotations

import builtins
import json
import math
import pickle

import pytest

from objectstore_core import (
    ConnectError,
    ConnectTimeout,
    ExpiryExtensionRejected,
    Forbidden,
    IntegrityError,
    MultipartCompleteError,
    ObjectNotFound,
    ObjectstoreError,
    PoolTimeout,
    ProtocolError,
    RateLimited,
    ReadError,
    ReadTimeout,
    RequestError,
    ServerError,
    TimeoutError,
    TransportError,
    Unauthorized,
    WriteError,
    WriteTimeout,
    error_for_response,
)

CONTEXT = {"operation": "get", "usecase": "attachments", "scope": "org=1", "key": "k"}

# ------------------------------------------------------------------------- tree


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (RequestError, ObjectstoreError),
        (ObjectNotFound, RequestError),
        (Unauthorized, RequestError),
        (Forbidden, RequestError),
        (ExpiryExtensionRejected, RequestError),
        (RateLimited, RequestError),
        (MultipartCompleteError, RequestError),
        (ServerError, RequestError),
        (TransportError, ObjectstoreError),
        (ConnectError, TransportError),
        (ReadError, TransportError),
        (WriteError, TransportError),
        (TimeoutError, TransportError),
        (ConnectTimeout, TimeoutError),
        (ReadTimeout, TimeoutError),
        (WriteTimeout, TimeoutError),
        (PoolTimeout, TimeoutError),
        (ProtocolError, ObjectstoreError),
        (IntegrityError, ObjectstoreError),
        (ObjectstoreError, Exception),
    ],
)
def test_tree(cls: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(cls, parent)


@pytest.mark.parametrize(
    "cls", [TimeoutError, ConnectTimeout, ReadTimeout, WriteTimeout, PoolTimeout]
)
def test_timeouts_are_builtin_timeouts(cls: type[TimeoutError]) -> None:
    assert TimeoutError is not builtins.TimeoutError
    assert issubclass(cls, builtins.TimeoutError)
    with pytest.raises(builtins.TimeoutError):
        raise cls("slow")
    with pytest.raises(TransportError):
        raise cls("slow")


@pytest.mark.parametrize(
    "cls", [ConnectError, ReadError, WriteError, ProtocolError, IntegrityError]
)
def test_other_errors_are_not_timeouts(cls: type[ObjectstoreError]) -> None:
    assert not issubclass(cls, builtins.TimeoutError)


def test_branches_are_disjoint() -> None:
    assert not issubclass(ProtocolError, RequestError | TransportError | IntegrityError)
    assert not issubclass(IntegrityError, RequestError | TransportError | ProtocolError)
    assert not issubclass(ObjectNotFound, ServerError)


def test_request_error_signature() -> None:
    error = RequestError("boom", 418, "teapot")
    assert (error.message, error.status, error.response) == ("boom", 418, "teapot")
    assert str(error) == "boom"
    assert error.args == ("boom",)


def test_rate_limited_signature() -> None:
    assert RateLimited("m", 429, None).retry_after is None
    assert RateLimited("m", 429, None, 2.5).retry_after == 2.5


def test_multipart_complete_error() -> None:
    error = MultipartCompleteError("InvalidPart", "part number 2 was not uploaded")
    assert isinstance(error, RequestError)
    assert error.status == 200
    assert error.code == "InvalidPart"
    assert error.message == "part number 2 was not uploaded"
    assert str(error) == (
        "Multipart upload completion failed (InvalidPart): part number 2 was not uploaded"
    )
    # As the official client: the server's message is also the error's ``response``.
    assert error.response == "part number 2 was not uploaded"
    keywords = MultipartCompleteError(code="InvalidPart", message="m")
    assert (keywords.code, keywords.response) == ("InvalidPart", "m")


@pytest.mark.parametrize(
    "error",
    [
        RequestError("m", 400, "body"),
        RateLimited("slow down", 429, None, 2.5),
        MultipartCompleteError("InvalidPart", "m"),
        ObjectNotFound("gone", 404, "").with_context(operation="get", key="k"),
    ],
)
def test_request_errors_pickle(error: RequestError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_with_context_fills_only_missing_fields() -> None:
    error = ProtocolError("bad")
    assert str(error) == "bad"
    assert error.with_context(operation="put", key="k") is error
    error.with_context(operation="get", usecase="u", scope="_", key="other")
    assert (error.operation, error.usecase, error.scope, error.key) == ("put", "u", "_", "k")
    assert str(error).startswith("bad")
    for part in ("operation='put'", "usecase='u'", "scope='_'", "key='k'"):
        assert part in str(error)


def test_context_is_per_instance() -> None:
    ProtocolError("a").with_context(operation="put")
    assert ProtocolError("b").operation is None
    assert ObjectstoreError.operation is None


# ---------------------------------------------------------- error_for_response


@pytest.mark.parametrize(
    ("status", "operation", "cls"),
    [
        (401, "get", Unauthorized),
        (403, "put", Forbidden),
        (404, "head", ObjectNotFound),
        (404, "extend_expiry", ObjectNotFound),
        (409, "extend_expiry", ExpiryExtensionRejected),
        (409, "put", RequestError),
        (429, "get", RateLimited),
        (500, "get", ServerError),
        (501, "put", ServerError),
        (502, "get", ServerError),
        (503, "delete", ServerError),
        (504, "get", ServerError),
        (599, "get", ServerError),
        (400, "put", RequestError),
        (405, "extend_expiry", RequestError),
        (408, "get", RequestError),
        (413, "put", RequestError),
        (416, "get", RequestError),
        (418, "get", RequestError),
        (431, "put", RequestError),
    ],
)
def test_status_mapping(status: int, operation: str, cls: type[RequestError]) -> None:
    body = b'{"detail":"client error: something","causes":["something"]}'
    error = error_for_response(
        status, {}, body, operation=operation, usecase="u_c", scope="org=1", key="k"
    )
    assert type(error) is cls
    assert isinstance(error, ObjectstoreError)
    assert error.status == status
    assert error.response == body.decode()
    assert str(status) in str(error)
    assert "client error: something" in str(error)
    assert (error.operation, error.usecase, error.scope, error.key) == (
        operation,
        "u_c",
        "org=1",
        "k",
    )
    for part in (f"operation={operation!r}", "usecase='u_c'", "scope='org=1'", "key='k'"):
        assert part in str(error)


def test_detail_and_plain_text_bodies() -> None:
    error = error_for_response(
        403, {}, b'{"detail":"auth error: operation not allowed"}', **CONTEXT
    )
    assert "auth error: operation not allowed" in error.message
    text = b"Object access is disabled for this scope through killswitches"
    error = error_for_response(403, {}, text, **CONTEXT)
    assert error.response == text.decode()
    empty = error_for_response(404, {}, b"", **CONTEXT)
    assert empty.response == ""
    assert "404" in empty.message


@pytest.mark.parametrize(
    "body",
    [
        b'{"causes":["x"]}',
        b'{"detail": 5}',
        b'{"detail": null}',
        b'{"detail": ["x"]}',
        b"[1, 2]",
        b'"detail"',
        b"{not json",
        b'{"detail": "x"',
        b"\xff\xfe{",
        b'{"detail":"' + b"\xff" + b'"}',
    ],
)
def test_bodies_without_usable_detail(body: bytes) -> None:
    error = error_for_response(500, {}, body, **CONTEXT)
    assert isinstance(error, ServerError)
    assert error.response == body.decode("utf-8", errors="replace")


def test_non_utf8_detail_is_replaced_not_raised() -> None:
    body = json.dumps({"detail": "caf\u00e9"}).encode()
    error = error_for_response(400, {}, body, **CONTEXT)
    assert "caf\u00e9" in str(error)


def test_without_context() -> None:
    error = error_for_response(500, {}, b"")
    assert (error.operation, error.usecase, error.scope, error.key) == (None, None, None, None)
    assert "500" in str(error)
    assert "[" not in str(error)


def test_is_pure() -> None:
    headers, body = {"retry-after": "3"}, b'{"detail":"slow down"}'
    first = error_for_response(429, headers, body, **CONTEXT)
    second = error_for_response(429, headers, body, **CONTEXT)
    assert first is not second
    assert type(first) is type(second)
    assert str(first) == str(second)
    assert isinstance(first, RateLimited) and isinstance(second, RateLimited)
    assert first.retry_after == second.retry_after == 3.0
    assert (first.status, first.response) == (second.status, second.response)


def test_never_shows_credentials() -> None:
    headers = {"x-os-auth": "Bearer sekrit-token", "authorization": "Bearer sekrit-token"}
    error = error_for_response(401, headers, b"", **CONTEXT)
    assert "sekrit" not in str(error)
    assert "sekrit" not in repr(error)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        ("0", 0.0),
        (" 2.5 ", 2.5),
        ("120", 120.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("-1", None),
        ("", None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after(value: str, seconds: float | None) -> None:
    error = error_for_response(429, {"retry-after": value}, b"Object access is rate limited")
    assert isinstance(error, RateLimited)
    assert error.retry_after == seconds
    assert error.response == "Object access is rate limited"


def test_retry_after_missing() -> None:
    error = error_for_response(429, {}, b"")
    assert isinstance(error, RateLimited)
    assert error.retry_after is None


# Regression (bug found by this suite, since fixed): _errors._retry_after uses float(), so
#   'inf'/'1e999' give an infinite retry_after (a driver honouring it would wait forever)
@pytest.mark.parametrize("value", ["inf", "Infinity", "1e999"])
def test_retry_after_is_finite(value: str) -> None:
    error = error_for_response(429, {"retry-after": value}, b"")
    assert isinstance(error, RateLimited)
    assert error.retry_after is None or math.isfinite(error.retry_after)


# Regression (bug found by this suite, since fixed): _errors._detail catches only ValueError
#   around json.loads; a deeply nested JSON error body raises RecursionError out of
#   error_for_response
def test_deeply_nested_json_body_does_not_escape() -> None:
    body = b'{"detail":' + b"[" * 100_000
    error = error_for_response(500, {}, body, **CONTEXT)
    assert isinstance(error, ServerError)
