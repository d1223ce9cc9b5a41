"""Shortcuts the core takes on the common path give exactly the general path's results.

The HTTP/1.1 parser finishes a small chunked body in one event and caches
validated header names; metadata for a ``get`` is built in one step; paths
that need no escaping skip ``quote``. Each is checked against the long way.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from objectstore_core._errors import ProtocolError
from objectstore_core._h1 import END, NEED_DATA, ResponseHead, ResponseParser
from objectstore_core._metadata import Metadata, read_metadata
from objectstore_core._paths import _PATH_SAFE, encode_path

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"


def _events(parser: ResponseParser, *pieces: bytes) -> list[object]:
    events: list[object] = []
    for piece in pieces:
        parser.feed(piece)
        while (event := parser.next_event()) is not NEED_DATA:
            events.append(event)
            if event is END:
                return events
    return events


def test_a_whole_single_chunk_body_is_one_event_then_the_end() -> None:
    parser = ResponseParser("GET")
    events = _events(parser, HEAD + b"5\r\nhello\r\n0\r\n\r\n")
    assert isinstance(events[0], ResponseHead)
    assert events[1:] == [b"hello", END]
    assert parser.reusable


@pytest.mark.parametrize("cut", range(1, 21))
def test_the_same_body_split_anywhere_gives_the_same_bytes(cut: int) -> None:
    wire = b"5\r\nhello\r\n0\r\n\r\n"
    parser = ResponseParser("GET")
    events = _events(parser, HEAD, wire[:cut], wire[cut:])
    assert b"".join(e for e in events if isinstance(e, bytes | memoryview)) == b"hello"
    assert events[-1] is END and parser.reusable


def test_chunks_inside_a_received_piece_are_views_of_it_not_copies() -> None:
    """Chunk framing found inside received bytes is read in place; the data
    comes out as views of those bytes, and the same bytes arrive."""
    parser = ResponseParser("GET")
    assert isinstance(_events(parser, HEAD)[0], ResponseHead)
    first, second = b"a" * 70_000, b"b" * 50_000
    piece = b"%x\r\n%s\r\n%x\r\n%s" % (len(first), first, len(second), second[:20_000])
    events = _events(parser, piece)
    assert [bytes(event) for event in events] == [first, second[:20_000]]  # type: ignore[call-overload]
    for event in events:
        assert isinstance(event, memoryview) and event.obj is piece
    rest = second[20_000:] + b"\r\n0\r\n\r\n"
    data, end = _events(parser, rest)
    assert isinstance(data, memoryview) and data.obj is rest and data == second[20_000:]
    assert end is END and parser.reusable


def test_a_single_chunk_with_trailers_or_more_bytes_takes_the_long_way() -> None:
    parser = ResponseParser("GET")
    events = _events(parser, HEAD + b"5\r\nhello\r\n0\r\nx-trailer: y\r\n\r\n")
    assert events[1:] == [b"hello", END] and parser.reusable
    parser = ResponseParser("GET")
    events = _events(parser, HEAD + b"5\r\nhello\r\n0\r\n\r\nHTTP/1.1")  # pipelined junk
    assert events[1:] == [b"hello", END] and not parser.reusable


def test_a_cached_header_name_without_a_colon_is_still_malformed() -> None:
    _events(ResponseParser("GET"), HEAD + b"0\r\n\r\n")  # caches "Content-Type"
    parser = ResponseParser("GET")
    with pytest.raises(ProtocolError, match="malformed header line"):
        _events(parser, b"HTTP/1.1 200 OK\r\nContent-Type\r\n\r\n")


def test_header_names_are_lowered_and_repeats_joined_with_the_cache_warm() -> None:
    wire = b"HTTP/1.1 204 No Content\r\nX-A: 1\r\nx-a: 2\r\nConnection: Close\r\n\r\n"
    for _ in range(2):
        (head, end) = _events(ResponseParser("GET"), wire)
        assert isinstance(head, ResponseHead) and end is END
        assert head.headers == {"x-a": "1, 2", "connection": "Close"}
        assert not head.keep_alive


HEADERS = {
    "content-type": "text/plain",
    "content-encoding": "zstd",
    "x-sn-size": "12",
    "x-sn-origin": "caf%C3%A9",
    "x-snme-owner": "a%20b",
    "x-sn-time-created": "2026-01-02T03:04:05.123456Z",
}


def test_read_metadata_matches_from_headers_and_replace() -> None:
    plain = Metadata.from_headers(HEADERS)
    assert read_metadata(HEADERS) == plain
    assert read_metadata(HEADERS, decoded=True).compression is None
    without_size = {k: v for k, v in HEADERS.items() if k != "x-sn-size"}
    assert read_metadata(without_size, default_size=7).size == 7
    assert read_metadata(HEADERS, default_size=7).size == 12
    assert plain.custom == {"owner": "a b"} and plain.origin == "café"


@pytest.mark.parametrize("path", ["plain/key-1_~.x", "café", "a b", "100%", "x?y#z", "", "\x7f"])
def test_paths_without_escapes_skip_quote_with_the_same_result(path: str) -> None:
    assert encode_path(path) == quote(path, safe=_PATH_SAFE)
