"""The core against a broken or hostile server: bounded reads, declared sizes, heads, keys.

No sockets: bodies are fed to the download state as a transport would, and
response heads to the codec. The same behaviours are proven for both twins
over loopback in ``tests/behaviour/test_hostile_server.py``.
"""

from __future__ import annotations

import pytest

from objectstore_core import IntegrityError, ProtocolError
from objectstore_core._codec import ZstdDecoder, compress
from objectstore_core._download import DEFAULT_CHUNK, Download
from objectstore_core._h1 import _MAX_HEAD, END, ResponseHead, ResponseParser
from objectstore_core._metadata import (
    MAX_REQUEST_HEAD,
    MAX_REQUEST_HEADERS,
    check_head_limits,
    metadata_headers,
)
from objectstore_core._paths import split_base_url
from tests.zstd_frames import RLE_BLOCK, rle_frame

KIB = 1024
MIB = 1024 * KIB


def read_whole(download: Download, body: bytes, piece: int = 64 * KIB) -> bytes:
    """What a twin's ``read()`` does: whole-body pieces, raw bytes fed as needed."""
    parts: list[bytes] = []
    offset = 0
    while True:
        while (chunk := download.read(whole=True)) is None:
            data = body[offset : offset + piece]
            offset += len(data)
            download.feed(data)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


# ------------------------------------------------------------- max_read_size


def test_a_decompression_bomb_stops_one_byte_past_the_bound() -> None:
    """A 1 MiB body that decodes to 32 GiB: refused after decoding limit + 1 bytes."""
    body = rle_frame(32 * 1024 * MIB // RLE_BLOCK)
    assert len(body) < MIB + 16
    download = Download(decode=True, expected_length=len(body), max_read_size=MIB)

    with pytest.raises(IntegrityError, match=r"max_read_size=1048576"):
        read_whole(download, body)
    assert download.decoded <= MIB + 1


def test_an_endless_body_stops_one_byte_past_the_bound() -> None:
    """No length announced and no end: the read fails once the bound is passed."""
    download = Download(decode=False, expected_length=None, max_read_size=300 * KIB)
    fed = 0
    with pytest.raises(IntegrityError, match=r"max_read_size=307200"):
        for _ in range(1000):  # far more than the bound; the loop ends by the error
            while (chunk := download.read(whole=True)) is None:
                download.feed(b"x" * 64 * KIB)
                fed += 64 * KIB
            assert chunk
    assert download.decoded <= 300 * KIB + 64 * KIB
    assert fed <= 300 * KIB + 64 * KIB


def test_an_announced_body_over_the_bound_is_refused_before_reading() -> None:
    download = Download(decode=False, expected_length=10 * MIB, max_read_size=MIB)
    with pytest.raises(IntegrityError, match=r"max_read_size=1048576.*announced 10485760"):
        download.read(whole=True)
    assert download.received == 0


@pytest.mark.parametrize("decode", [True, False])
def test_a_body_at_the_bound_reads_whole(decode: bool) -> None:
    payload = bytes(range(256)) * 4 * KIB  # 1 MiB
    body = compress(payload) if decode else payload
    download = Download(decode=decode, expected_length=len(body), max_read_size=len(payload))
    assert read_whole(download, body) == payload


def test_streaming_reads_are_not_bounded_and_decode_only_what_is_asked() -> None:
    """The same bomb, read in pieces: every piece small, nothing decoded ahead."""
    body = rle_frame(32 * 1024 * MIB // RLE_BLOCK)
    download = Download(decode=True, expected_length=len(body), max_read_size=MIB)
    download.feed(body)
    handed_out = 0
    for _ in range(40):  # 40 reads of up to 100 KiB: past the bound, which streaming ignores
        chunk = download.read(100 * KIB)
        assert chunk is not None and 0 < len(chunk) <= 100 * KIB
        handed_out += len(chunk)
        assert download.decoded == handed_out
    assert handed_out > MIB
    chunk = download.read()
    assert chunk is not None and len(chunk) <= DEFAULT_CHUNK


@pytest.mark.parametrize("value", [-1, 1.5, "1", True])
def test_max_read_size_is_validated(value: object) -> None:
    with pytest.raises(ValueError, match=r"max_read_size=.*byte count"):
        Download(decode=False, expected_length=None, max_read_size=value)  # type: ignore[arg-type]


# ------------------------------------------------------ declared content size


def decode_all(decoder: ZstdDecoder, body: bytes) -> bytes:
    decoder.feed(body)
    decoder.feed_eof()
    parts = []
    while chunk := decoder.read():
        parts.append(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("declared", [KIB, 2 * MIB])
def test_a_frame_holding_more_than_it_declares_is_refused_at_once(declared: int) -> None:
    """It declares 1 KiB (decoded in one call) or 2 MiB (streamed) and holds 32 GiB:
    at most one byte past the declared size is decoded."""
    body = rle_frame(32 * 1024 * MIB // RLE_BLOCK, declared=declared)
    decoder = ZstdDecoder(max_output=256 * KIB)
    with pytest.raises(IntegrityError, match="zstd data is corrupt"):
        decode_all(decoder, body)
    assert decoder.bytes_out <= declared + 1


def test_streamed_frames_holding_more_than_they_declare_are_named() -> None:
    body = rle_frame(8, declared=MIB) + rle_frame(1 << 15, declared=2 * MIB)
    decoder = ZstdDecoder(max_output=256 * KIB)
    with pytest.raises(IntegrityError, match=r"declare 3145728 decoded bytes but hold more"):
        decode_all(decoder, body)
    assert decoder.bytes_out <= 3 * MIB + 1


@pytest.mark.parametrize("max_output", [256 * KIB, 2 * MIB])
def test_a_frame_holding_less_than_it_declares_is_refused(max_output: int) -> None:
    body = rle_frame(8, declared=8 * RLE_BLOCK + 1)
    with pytest.raises(IntegrityError, match="zstd data is corrupt"):
        decode_all(ZstdDecoder(max_output=max_output), body)


def test_frames_holding_what_they_declare_decode() -> None:
    body = rle_frame(8, declared=8 * RLE_BLOCK, byte=7) + compress(b"tail" * 1000)
    assert decode_all(ZstdDecoder(), body) == bytes([7]) * 8 * RLE_BLOCK + b"tail" * 1000


def test_a_small_single_frame_declaring_a_wrong_size_is_refused() -> None:
    """The one-call path for small frames checks the size as well."""
    body = rle_frame(1, declared=RLE_BLOCK - 1)
    with pytest.raises(IntegrityError):
        decode_all(ZstdDecoder(max_output=MIB), body)


# ------------------------------------------------------------------- heads


def parse(raw: bytes, method: str = "GET") -> ResponseHead:
    parser = ResponseParser(method)
    parser.feed(raw)
    event = parser.next_event()
    assert isinstance(event, ResponseHead)
    return event


@pytest.mark.parametrize("name", ["x-snme-build", "x-sn-origin", "x-sn-expiration", "content-type"])
def test_a_repeated_metadata_header_is_a_protocol_error(name: str) -> None:
    raw = f"HTTP/1.1 204 No Content\r\n{name}: b\r\n{name.upper()}: b\r\n\r\n".encode()
    with pytest.raises(ProtocolError, match=f"repeats header {name!r}"):
        parse(raw, "HEAD")


def test_other_repeated_headers_are_still_joined() -> None:
    raw = b"HTTP/1.1 204 No Content\r\nvia: a\r\nvia: b\r\nx-snme-a: 1\r\nx-snme-b: 2\r\n\r\n"
    head = parse(raw, "HEAD")
    assert head.headers["via"] == "a, b"
    assert (head.headers["x-snme-a"], head.headers["x-snme-b"]) == ("1", "2")


def test_nul_in_a_metadata_value_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="control character"):
        parse(b"HTTP/1.1 204 No Content\r\nx-snme-a: b\x00c\r\n\r\n", "HEAD")


def test_a_head_as_large_as_accepted_metadata_is_read() -> None:
    """Metadata a server accepted comes back: here 350 KiB of it, and the filename twice."""
    value = "v" * 350 * KIB
    raw = (
        f"HTTP/1.1 200 OK\r\nx-sn-filename: {value}\r\n"
        f'content-disposition: attachment; filename="{value}"\r\ncontent-length: 2\r\n\r\nok'
    ).encode()
    parser = ResponseParser("GET")
    parser.feed(raw)
    head = parser.next_event()
    assert isinstance(head, ResponseHead) and head.headers["x-sn-filename"] == value
    assert bytes(parser.next_event()) == b"ok"  # type: ignore[arg-type]
    assert parser.next_event() is END


# ---------------------------------------------------------------- metadata

SESSION_HEADERS = (("user-agent", "objectstore-client/test"), ("accept-encoding", "identity"))
PATH = "/v1/objects/attachments/org=1/key"


def test_too_many_metadata_entries_are_refused() -> None:
    headers = metadata_headers(custom={f"k{i}": "v" for i in range(3000)})
    with pytest.raises(ValueError, match=r"3000 custom entries is too many.*at most 100 headers"):
        check_head_limits(PATH, SESSION_HEADERS, headers)


def test_metadata_entries_up_to_the_server_limit_are_accepted() -> None:
    room = MAX_REQUEST_HEADERS - len(SESSION_HEADERS) - 8
    fits = metadata_headers(custom={f"k{i}": "v" for i in range(room)})
    check_head_limits(PATH, SESSION_HEADERS, fits)
    more = metadata_headers(custom={f"k{i}": "v" for i in range(room + 1)})
    with pytest.raises(ValueError, match=rf"room for {room} custom entries"):
        check_head_limits(PATH, SESSION_HEADERS, more)


def test_a_value_over_the_head_limit_is_refused_naming_it() -> None:
    headers = metadata_headers(custom={"small": "v", "big": "x" * MAX_REQUEST_HEAD})
    expected = r"over the 409600 bytes.*'x-snme-big' with a value of 409600"
    with pytest.raises(ValueError, match=expected):
        check_head_limits(PATH, SESSION_HEADERS, headers)


def test_percent_encoding_counts_toward_the_limit() -> None:
    # 150,000 characters that are sent as 3 bytes each (%0A): 450 KB on the wire.
    headers = metadata_headers(origin="\n" * 150_000)
    with pytest.raises(ValueError, match="'x-sn-origin' with a value of 450000 bytes"):
        check_head_limits(PATH, SESSION_HEADERS, headers)


def test_a_300_kb_value_fits() -> None:
    check_head_limits(PATH, SESSION_HEADERS, metadata_headers(custom={"big": "x" * 300_000}))


# -------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@host",
        "https://user:secret@host:8443/prefix",
        "http://user@h",
        "http://user:secret@",  # no host either: still not shown
        "ftp://user:secret@h",
    ],
)
def test_userinfo_in_the_base_url_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(ValueError, match="must not contain a user name or password") as info:
        split_base_url(url)
    message = str(info.value)
    assert "secret" not in message and "user" not in message.split("must")[0]
    assert "***@" in message


def test_the_client_reads_every_head_a_server_can_answer_with_accepted_metadata() -> None:
    """A GET answers with the metadata once and the filename again (content-disposition)."""
    assert _MAX_HEAD >= 2 * MAX_REQUEST_HEAD + 64 * KIB
