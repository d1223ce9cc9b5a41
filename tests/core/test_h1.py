"""The sans-IO HTTP/1.1 client codec: fed whole, byte by byte, and at random boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objectstore_core._errors import IntegrityError, ProtocolError
from objectstore_core._h1 import (
    END,
    LAST_CHUNK,
    NEED_DATA,
    ResponseHead,
    ResponseParser,
    chunk_header,
    request_head,
)


def _parse(
    method: str, wire: bytes, pieces: list[int] | None = None
) -> tuple[ResponseHead, bytes, bool]:
    """Feed ``wire`` (split at ``pieces`` offsets), then EOF; return head, body, reusable."""
    parser = ResponseParser(method)
    cuts = [*sorted(set(pieces or [])), len(wire)]
    start = 0
    head: ResponseHead | None = None
    body = b""
    finished = False

    def drain() -> None:
        nonlocal head, body, finished
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                return
            if event is END:
                finished = True
                return
            if isinstance(event, ResponseHead):
                head = event
            else:
                assert isinstance(event, bytes | memoryview)
                body += event

    for cut in cuts:
        if cut > start:
            parser.feed(wire[start:cut])
            start = cut
            drain()
            if finished:
                break
    reusable = parser.reusable
    if not finished:
        parser.feed(b"")
        drain()
    assert finished and head is not None
    return head, body, reusable


CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nTransfer-Encoding: chunked\r\n"
    b"X-Twice: a\r\nx-twice: b\r\n\r\n"
    b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: y\r\n\r\n"
)
LENGTH = b'HTTP/1.1 201 Created\r\ncontent-length: 11\r\n\r\n{"key":"k"}'


@pytest.mark.parametrize("body_apart", [False, True])
def test_chunked_response(body_apart: bool) -> None:
    head, body, reusable = _parse("GET", CHUNKED, _after_head(CHUNKED) if body_apart else None)
    assert head.status == 200 and head.reason == "OK"
    assert head.headers["content-type"] == "text/plain"
    assert head.headers["x-twice"] == "a, b"
    assert body == b"hello world"
    assert reusable


def test_content_length_response() -> None:
    head, body, reusable = _parse("POST", LENGTH)
    assert (head.status, body, reusable) == (201, b'{"key":"k"}', True)


@pytest.mark.parametrize("wire", [CHUNKED, LENGTH])
def test_byte_by_byte(wire: bytes) -> None:
    assert _parse("GET", wire, list(range(len(wire))))[1] == _parse("GET", wire)[1]


@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_random_boundaries(data: st.DataObject) -> None:
    for wire in (CHUNKED, LENGTH):
        cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=20))
        assert _parse("GET", wire, cuts)[1] == _parse("GET", wire)[1]


def test_head_and_204_have_no_body() -> None:
    head, body, reusable = _parse("HEAD", b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n")
    assert (head.status, body, reusable) == (200, b"", True)
    head, body, _ = _parse("DELETE", b"HTTP/1.1 204 No Content\r\n\r\n")
    assert (head.status, body) == (204, b"")


def test_informational_responses_are_skipped() -> None:
    wire = b"HTTP/1.1 100 Continue\r\n\r\n" + LENGTH
    assert _parse("PUT", wire)[0].status == 201


def test_close_delimited_body_is_not_reusable() -> None:
    head, body, reusable = _parse("GET", b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
    assert body == b"until the end"
    assert not reusable and not head.keep_alive


def test_connection_close_is_not_reusable() -> None:
    wire = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
    assert _parse("GET", wire)[2] is False
    wire = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert _parse("GET", wire)[2] is False


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello",
    ],
)
@pytest.mark.parametrize("body_apart", [False, True])
def test_truncated_bodies_raise_integrity_error(wire: bytes, body_apart: bool) -> None:
    with pytest.raises(IntegrityError):
        _parse("GET", wire, _after_head(wire) if body_apart else None)


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1x\r\nc\r\n0\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nabc",
        b"HTTP/1.1 200 OK",
        b"",
    ],
)
@pytest.mark.parametrize("body_apart", [False, True])
def test_malformed_responses_raise_protocol_error(wire: bytes, body_apart: bool) -> None:
    with pytest.raises(ProtocolError):
        _parse("GET", wire, _after_head(wire) if body_apart else None)


def _after_head(wire: bytes) -> list[int]:
    """A cut right after the head: the body then arrives in a piece of its own,
    which the parser holds as received and reads its framing in place."""
    end = wire.find(b"\r\n\r\n")
    return [end + 4] if end >= 0 else []


def test_parser_refuses_reuse_after_an_error() -> None:
    parser = ResponseParser("GET")
    parser.feed(b"nonsense\r\n\r\n")
    with pytest.raises(ProtocolError):
        parser.next_event()
    with pytest.raises(ProtocolError):
        parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=200)
def test_arbitrary_bytes_only_raise_our_errors(wire: bytes) -> None:
    parser = ResponseParser("GET")
    parser.feed(wire)
    parser.feed(b"")
    try:
        for _ in range(1000):
            if parser.next_event() is END:
                break
    except (ProtocolError, IntegrityError):
        pass


def test_request_head() -> None:
    head = request_head(
        "PUT", "/v1/objects/u/_/k", "h:1", [("x-a", "1")], content_length=None, chunked=True
    )
    assert head == (
        b"PUT /v1/objects/u/_/k HTTP/1.1\r\nhost: h:1\r\nx-a: 1\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    head = request_head("GET", "/", "h", [], content_length=None, chunked=False)
    assert head == b"GET / HTTP/1.1\r\nhost: h\r\n\r\n"
    head = request_head("POST", "/", "h", [], content_length=0, chunked=False)
    assert head.endswith(b"content-length: 0\r\n\r\n")
    assert chunk_header(255) == b"ff\r\n" and LAST_CHUNK == b"0\r\n\r\n"


@pytest.mark.parametrize("value", ["a\r\nx-evil: 1", "a\nb", "a\0b"])
def test_request_head_refuses_line_breaks(value: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        request_head("GET", "/", "h", [("x-a", value)], content_length=None, chunked=False)
