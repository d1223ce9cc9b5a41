"""The sans-IO HTTP/1.1 client codec: fed whole, byte by byte, and at random boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objectstore_core._errors import IntegrityError, ProtocolError
from objectstore_core._h1 import (
    _MAX_HEAD,
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


def test_request_head_reuses_a_sessions_header_lines_but_never_a_token() -> None:
    from objectstore_core import _h1

    session = (("user-agent", "ua/1"), ("accept-encoding", "zstd"))
    first = request_head("GET", "/a", "h", session, content_length=None, chunked=False)
    kept: tuple[object, str] = _h1._last_block
    assert kept == (session, "user-agent: ua/1\r\naccept-encoding: zstd\r\n")
    again = request_head("DELETE", "/b", "h", session, content_length=None, chunked=False)
    assert (
        first == b"GET /a HTTP/1.1\r\nhost: h\r\nuser-agent: ua/1\r\naccept-encoding: zstd\r\n\r\n"
    )
    assert again == first.replace(b"GET /a", b"DELETE /b")
    # Another tuple with equal contents is checked on its own, a list never kept.
    other = (("user-agent", "ua/2"),)
    assert b"ua/2" in request_head("GET", "/", "h", other, content_length=0, chunked=False)
    assert b"x-l: 1" in request_head(
        "GET", "/", "h", [("x-l", "1")], content_length=None, chunked=False
    )
    kept = _h1._last_block
    assert kept[0] is other
    token = (("authorization", "Bearer secret"),)
    assert b"Bearer secret" in request_head(
        "GET", "/", "h", token, content_length=None, chunked=False
    )
    kept = _h1._last_block
    assert kept[0] is other  # the token's lines were not kept
    with pytest.raises(ValueError, match="line break"):
        request_head("GET", "/", "h", (("x-a", "a\nb"),), content_length=None, chunked=False)


@pytest.mark.parametrize("value", ["a\r\nx-evil: 1", "a\nb", "a\0b"])
def test_request_head_refuses_line_breaks(value: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        request_head("GET", "/", "h", [("x-a", value)], content_length=None, chunked=False)


# -- bad input (issue 12): every case whole, byte by byte and at random splits --


def _feed(
    method: str, wire: bytes, cuts: list[int]
) -> tuple[ResponseHead | None, bytes, bool, bool]:
    """Feed ``wire`` split at ``cuts``, never EOF: head, body, whether END came, reusable."""
    parser = ResponseParser(method)
    head: ResponseHead | None = None
    body = b""
    start = 0
    for cut in [*sorted(set(cuts)), len(wire)]:
        if cut <= start:
            continue
        parser.feed(wire[start:cut])
        start = cut
        while (event := parser.next_event()) is not NEED_DATA:
            if event is END:
                assert start == len(wire)  # nothing left over
                return head, body, True, parser.reusable
            if isinstance(event, ResponseHead):
                head = event
            else:
                assert isinstance(event, bytes | memoryview)
                body += event
    return head, body, False, False


def _splits(data: st.DataObject, wire: bytes) -> list[list[int]]:
    """Whole, byte by byte, and one random split drawn by hypothesis."""
    random_cuts = data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=12))
    return [[], list(range(1, len(wire))), random_cuts]


def _ok(status: bytes, headers: bytes, body: bytes = b"") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\n" + headers + b"\r\n" + body


# (wire, body, reusable): each is read to its end before any EOF.
GOOD = {
    "identical repeated content-length": (
        _ok(b"200 OK", b"content-length: 5\r\nContent-Length: 5\r\n", b"hello"),
        b"hello",
        True,
    ),
    "content-length list of one number": (
        _ok(b"200 OK", b"content-length: 5 ,5\r\n", b"hello"),
        b"hello",
        True,
    ),
    "transfer-encoding wins over content-length, not reused": (
        _ok(
            b"200 OK",
            b"content-length: 3\r\ntransfer-encoding: Chunked\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
        ),
        b"hello",
        False,
    ),
    "16 informational responses": (
        b"HTTP/1.1 100 Continue\r\n\r\n" * 8
        + b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" * 8
        + _ok(b"200 OK", b"content-length: 2\r\n", b"ok"),
        b"ok",
        True,
    ),
    "bare LF head": (b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok", b"ok", True),
    "mixed line ends in a head": (
        b"HTTP/1.1 200 OK\r\nx-a: 1\ncontent-length: 2\r\nx-b: 2\n\r\nok",
        b"ok",
        True,
    ),
    "bare LF then CRLF ends a head": (b"HTTP/1.1 200 OK\ncontent-length: 2\n\r\nok", b"ok", True),
    "CRLF then bare LF ends a head": (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\nok", b"ok", True),
    "bare LF 100 Continue": (
        b"HTTP/1.1 100 Continue\n\n" + _ok(b"201 Created", b"content-length: 2\r\n", b"ok"),
        b"ok",
        True,
    ),
    "bare LF chunk lines and trailers": (
        _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b"5\nhello\r\n1;a=b\n \r\n0\nx-t: 1\n\n"),
        b"hello ",
        True,
    ),
    "chunk lines with CRLF and bare LF mixed": (
        _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b"5\r\nhello\r\n2 ;x\nab\r\n0\n\r\n"),
        b"helloab",
        True,
    ),
    "folded trailer": (
        _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b"1\r\na\r\n0\r\nx-t: 1\r\n 2\r\n\r\n"),
        b"a",
        True,
    ),
    "a long header line inside the head bound": (
        _ok(b"200 OK", b"x-long: " + b"v" * 100_000 + b"\r\ncontent-length: 2\r\n", b"ok"),
        b"ok",
        True,
    ),
    "256 header lines": (
        _ok(b"200 OK", b"x-a: b\r\n" * 255 + b"content-length: 2\r\n", b"ok"),
        b"ok",
        True,
    ),
    "status line without a reason": (b"HTTP/1.1 204\r\n\r\n", b"", True),
}


@pytest.mark.parametrize("name", GOOD)
@given(data=st.data())
@settings(max_examples=10, deadline=None)
def test_good_responses_are_read_to_the_end_at_once(name: str, data: st.DataObject) -> None:
    wire, body, reusable = GOOD[name]
    if len(wire) > 10_000:  # byte by byte only where that stays cheap
        cuts_list = [[], data.draw(st.lists(st.integers(1, len(wire) - 1), max_size=12))]
    else:
        cuts_list = _splits(data, wire)
    for cuts in cuts_list:
        head, got, ended, reused = _feed("GET", wire, cuts)
        assert head is not None and head.status in (200, 201, 204)
        assert (got, ended, reused) == (body, True, reusable)


def test_bare_lf_and_folded_heads_read_as_h11_does() -> None:
    head, *_ = _feed("GET", b"HTTP/1.1 200 OK\nx-a: 1\n  2\t\nx-a: 3\ncontent-length: 0\n\n", [])
    assert head is not None and head.headers == {"x-a": "1 2, 3", "content-length": "0"}
    assert head.reason == "OK"


BAD_AT_ONCE = {
    # content-length: ASCII digits only, the same number if repeated
    "control character before the length": _ok(b"200 OK", b"content-length:\x1e2\r\n", b"ok"),
    "latin-1 superscript digit": _ok(b"200 OK", b"content-length: \xb2\r\n", b"ok"),
    "no-break space": _ok(b"200 OK", b"content-length: \xa02\r\n", b"ok"),
    "fullwidth digit": _ok(b"200 OK", "content-length: ２\r\n".encode(), b"ok"),
    "sign": _ok(b"200 OK", b"content-length: +2\r\n", b"ok"),
    "negative": _ok(b"200 OK", b"content-length: -1\r\n", b"ok"),
    "underscore": _ok(b"200 OK", b"content-length: 1_0\r\n", b"ok"),
    "empty length": _ok(b"200 OK", b"content-length: \r\n", b"ok"),
    "twenty digits": _ok(b"200 OK", b"content-length: " + b"9" * 20 + b"\r\n", b"ok"),
    "conflicting list": _ok(b"200 OK", b"content-length: 5, 6\r\n", b"hello"),
    "conflicting repeats": _ok(b"200 OK", b"content-length: 5\r\ncontent-length: 6\r\n", b"hello"),
    "empty list element": _ok(b"200 OK", b"content-length: 5,,5\r\n", b"hello"),
    "bad length on a 204": _ok(b"204 No Content", b"content-length: x\r\n"),
    "bad length on a 100": b"HTTP/1.1 100 Continue\r\ncontent-length: x\r\n\r\n",
    # transfer-encoding: chunked only, once
    "unknown coding": _ok(b"200 OK", b"transfer-encoding: gzip\r\n", b"0\r\n\r\n"),
    "chunked twice": _ok(b"200 OK", b"transfer-encoding: chunked, chunked\r\n", b"0\r\n\r\n"),
    "non-ASCII space in the coding": _ok(b"200 OK", b"transfer-encoding: \xa0chunked\r\n"),
    # informational responses: bounded, and no upgrade
    "17 informational responses": b"HTTP/1.1 100 Continue\r\n\r\n" * 17 + _ok(b"200 OK", b""),
    "101 Switching Protocols": b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n",
    # heads
    "257 header lines": _ok(b"200 OK", b"x-a: b\r\n" * 256 + b"content-length: 0\r\n"),
    "status code below 100": b"HTTP/1.1 099 Odd\r\n\r\n",
    "non-ASCII status digit": b"HTTP/1.1 \xb200 OK\r\n\r\n",
    "bare CR in a value": _ok(b"200 OK", b"x-a: b\rc\r\ncontent-length: 0\r\n"),
    "NUL in a value": _ok(b"200 OK", b"x-a: b\x00c\r\ncontent-length: 0\r\n"),
    "DEL in a reason": b"HTTP/1.1 200 O\x7fK\r\ncontent-length: 0\r\n\r\n",
    "a folded first header": b"HTTP/1.1 200 OK\r\n x-a: b\r\ncontent-length: 0\r\n\r\n",
    "space before the colon": _ok(b"200 OK", b"x-a : b\r\ncontent-length: 0\r\n"),
    "not HTTP (a TLS record)": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "a blank line first": b"\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    # chunk-size lines: hex digits only
    "chunk size with a sign": _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b"+5\r\nhello\r\n"),
    "chunk size 0x": _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b"0x5\r\nhello\r\n"),
    "chunk size underscore": _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b"1_0\r\n"),
    "space before a chunk size": _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b" 5\r\n"),
    "non-ASCII chunk digit": _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b"\xb2\r\n"),
    "seventeen hex digits": _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b"1" * 17 + b"\r\n"),
    "chunk line over the bound": _ok(
        b"200 OK", b"transfer-encoding: chunked\r\n", b"5;" + b"x" * 5000
    ),
    "bare LF after chunk data": _ok(
        b"200 OK", b"transfer-encoding: chunked\r\n", b"1\r\na\n0\r\n\r\n"
    ),
    "a chunk one byte short, its data a CR": _ok(
        b"200 OK", b"transfer-encoding: chunked\r\n", b"1\r\n\r\n0\r\n\r\n"
    ),
    "junk after chunk data": _ok(b"200 OK", b"transfer-encoding: chunked\r\n", b"1\r\naX\r\n"),
    # trailers: header lines, bounded
    "trailer without a colon": _ok(
        b"200 OK", b"transfer-encoding: chunked\r\n", b"0\r\nnot a field\r\n\r\n"
    ),
    "folded first trailer": _ok(
        b"200 OK", b"transfer-encoding: chunked\r\n", b"0\r\n x: 1\r\n\r\n"
    ),
    "control character in a trailer": _ok(
        b"200 OK", b"transfer-encoding: chunked\r\n", b"0\r\nx: \x01\r\n\r\n"
    ),
    "endless trailers": _ok(
        b"200 OK",
        b"transfer-encoding: chunked\r\n",
        b"0\r\n" + b"x: yyyy\r\n" * (_MAX_HEAD // 9 + 100),
    ),
}


@pytest.mark.parametrize("name", BAD_AT_ONCE)
@given(data=st.data())
@settings(max_examples=10, deadline=None)
def test_bad_responses_raise_protocol_error_at_once(name: str, data: st.DataObject) -> None:
    """The error comes from the bytes alone: no EOF (no read timeout) is needed."""
    wire = BAD_AT_ONCE[name]
    if len(wire) > 10_000:
        cuts_list = [[], data.draw(st.lists(st.integers(1, len(wire) - 1), max_size=12))]
    else:
        cuts_list = _splits(data, wire)
    for cuts in cuts_list:
        with pytest.raises(ProtocolError):
            _feed("GET", wire, cuts)


def test_a_head_over_the_bound_fails_as_the_bound_is_crossed() -> None:
    parser = ResponseParser("GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nx-a: " + b"a" * (_MAX_HEAD - 30))
    assert parser.next_event() is NEED_DATA
    with pytest.raises(ProtocolError, match="exceeds"):
        for _ in range(100):  # byte by byte up to the bound, and one more
            parser.feed(b"a")
            assert parser.next_event() is NEED_DATA


def test_a_head_dripped_in_small_pieces_is_searched_once() -> None:
    """The search for the end of a head resumes where it stopped: feeding a
    head of 200 KiB 16 bytes at a time stays linear, not quadratic."""
    wire = _ok(b"200 OK", b"x-a: " + b"v" * 200_000 + b"\r\ncontent-length: 0\r\n")
    parser = ResponseParser("GET")
    for start in range(0, len(wire), 16):
        parser.feed(wire[start : start + 16])
        event = parser.next_event()
    assert isinstance(event, ResponseHead)


@pytest.mark.parametrize(
    ("connection", "version", "reusable"),
    [
        (b"keep-alive, Close", b"1.1", False),
        (b"closed", b"1.1", True),  # a token, not a substring
        (b"keep-alive", b"1.0", True),  # RFC 9112 §9.3 (h11 never reuses 1.0: see test_h1_vs_h11)
        (b"x-keep-alive-not", b"1.0", False),
    ],
)
def test_connection_options_are_tokens(connection: bytes, version: bytes, reusable: bool) -> None:
    wire = b"HTTP/%s 200 OK\r\nconnection: %s\r\ncontent-length: 2\r\n\r\nok" % (
        version,
        connection,
    )
    assert _feed("GET", wire, [])[3] is reusable


def test_http10_chunked_is_read_but_never_reused() -> None:
    wire = b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n"
    head, body, ended, reusable = _feed("GET", wire + b"2\r\nok\r\n0\r\n\r\n", [])
    assert head is not None and not head.keep_alive
    assert (body, ended, reusable) == (b"ok", True, False)


def _head_of(data: bytes) -> ResponseHead:
    parser = ResponseParser("GET")
    parser.feed(data)
    head = parser.next_event()
    assert isinstance(head, ResponseHead)
    return head


def test_parsed_header_lines_are_remembered_within_bounds() -> None:
    from objectstore_core import _h1

    data = b"HTTP/1.1 200 OK\r\nServer:  emu \r\nx-sn-size: 3\r\ncontent-length: 0\r\n\r\n"
    first, again = _head_of(data), _head_of(data)  # the second from remembered lines
    assert first == again and again.headers == {
        "server": "emu",
        "x-sn-size": "3",
        "content-length": "0",
    }
    assert _h1._LINES["Server:  emu "] == ("server", "emu")
    assert _h1._STATUS_LINES["HTTP/1.1 200 OK"] == ("HTTP/1.1", 200, "OK")
    # A server sending ever new lines cannot grow them past their bound; a long line
    # is parsed but not kept.
    for n in range(_h1._LINES_LIMIT + 10):
        head = _head_of(b"HTTP/1.1 204 No Content\r\nx-n: %d\r\n\r\n" % n)
        assert head.headers == {"x-n": str(n)}
    assert len(_h1._LINES) <= _h1._LINES_LIMIT
    long = "v" * (_h1._CACHED_LINE + 1)
    assert _head_of(f"HTTP/1.1 204 No Content\r\nx-long: {long}\r\n\r\n".encode()).headers == {
        "x-long": long
    }
    assert f"x-long: {long}" not in _h1._LINES
    # Remembered lines still follow the head's rules: a repeat of a metadata header fails.
    with pytest.raises(ProtocolError, match="repeats header"):
        _head_of(b"HTTP/1.1 200 OK\r\nx-sn-size: 3\r\nx-sn-size: 3\r\n\r\n")
    for status in range(_h1._STATUS_LINES_LIMIT + 5):
        assert _head_of(b"HTTP/1.1 %d X\r\n\r\n" % (200 + status)).status == 200 + status
    assert len(_h1._STATUS_LINES) <= _h1._STATUS_LINES_LIMIT
