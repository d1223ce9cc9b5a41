"""Hypothesis over what tests/core/test_fuzz.py does not reach: the zstd decoder and the
download state with arbitrary bytes, the emulator's request entry point with arbitrary
targets, headers and bodies, and the retry decision with arbitrary responses.

Only our exceptions, never a crash or a hang (issue #5, §7).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from objectstore_core import (
    Download,
    IntegrityError,
    Request,
    Response,
    RetryPolicy,
    ZstdDecoder,
    compress,
)
from objectstore_core._retry import retry_delay
from objectstore_core.emulator import MemoryStorage, ServerRequest
from objectstore_sync.emulator import Emulator

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

chunkings = st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=8)


def _feed_in_chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i, n = [], 0, 0
    while i < len(data):
        size = sizes[n % len(sizes)]
        out.append(data[i : i + size])
        i += size
        n += 1
    return out


@FUZZ
@given(st.binary(max_size=400), chunkings)
def test_zstd_decoder_arbitrary_bytes(data: bytes, sizes: list[int]) -> None:
    decoder = ZstdDecoder(max_output=1024)
    try:
        for chunk in _feed_in_chunks(data, sizes):
            decoder.feed(chunk)
            for _ in range(10_000):
                if not decoder.read():
                    break
        decoder.feed_eof()
        for _ in range(10_000):
            if not decoder.read():
                break
    except IntegrityError:
        pass


@FUZZ
@given(st.binary(min_size=1, max_size=300), st.integers(0, 299), st.integers(1, 255), chunkings)
def test_zstd_decoder_flipped_byte_in_a_valid_stream(
    payload: bytes, at: int, mask: int, sizes: list[int]
) -> None:
    """A checksummed frame with one byte changed never decodes to different data silently."""
    frame = bytearray(compress(payload))
    at %= len(frame)
    frame[at] ^= mask
    decoder = ZstdDecoder()
    out = b""
    try:
        for chunk in _feed_in_chunks(bytes(frame), sizes):
            decoder.feed(chunk)
            while piece := decoder.read():
                out += piece
        decoder.feed_eof()
        while piece := decoder.read():
            out += piece
    except IntegrityError:
        return
    assert out == payload  # accepted only if the change did not matter (e.g. skippable bits)


@FUZZ
@given(
    st.binary(max_size=300),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 400)),
    chunkings,
    st.one_of(st.none(), st.integers(1, 100)),
)
def test_download_arbitrary_bodies(
    data: bytes, decode: bool, expected: int | None, sizes: list[int], limit: int | None
) -> None:
    download = Download(decode=decode, expected_length=expected, max_output=512)
    chunks = [*_feed_in_chunks(data, sizes), b""]
    received = b""
    try:
        for _ in range(100_000):
            piece = download.read(limit)
            if piece is None:
                download.feed(chunks.pop(0))
            elif piece == b"":
                break
            else:
                received += piece
        else:  # pragma: no cover - the assertion of this test
            raise AssertionError("download never finished")
    except IntegrityError:
        return
    if not decode:
        assert received == data
        assert expected is None or expected == len(data)


header_names = st.sampled_from(
    [
        "content-type",
        "content-encoding",
        "content-length",
        "transfer-encoding",
        "range",
        "x-sn-expiration",
        "x-sn-origin",
        "x-sn-filename",
        "x-snme-note",
        "x-os-auth",
        "authorization",
        "upload-length",
        "upload-offset",
        "expect",
    ]
)
header_values = st.text(st.characters(max_codepoint=0x2FF), max_size=40)
targets = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda parts, query: "/v1/" + "/".join(parts) + query,
        st.lists(st.text(max_size=12), max_size=6),
        st.sampled_from(
            ["", "?", "?upload_type=resumable", "?session=x", "?os_auth=%zz", "?a=b&&"]
        ),
    ),
)


@FUZZ
@given(
    st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "BREW", ""]),
    targets,
    st.lists(st.tuples(header_names, header_values), max_size=6),
    st.binary(max_size=200),
)
def test_emulator_handle_always_answers(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    emulator = Emulator(MemoryStorage())
    response, payload = emulator.handle(ServerRequest(method, target, tuple(headers)), body)
    assert 100 <= response.status <= 599
    assert isinstance(payload, bytes)


@FUZZ
@given(
    st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]),
    st.integers(100, 599),
    st.dictionaries(st.just("retry-after"), st.text(max_size=20)),
    st.integers(1, 10),
)
def test_retry_delay_is_bounded(
    method: str, status: int, headers: dict[str, str], attempt: int
) -> None:
    policy = RetryPolicy(max_retry_after=3.0, max_backoff=2.0)
    delay = retry_delay(policy, Request(method, "/x"), attempt, Response(status, headers))
    assert delay is None or 0 <= delay <= 3.0
    if method == "POST":
        assert delay is None
