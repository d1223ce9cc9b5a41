"""Every single-object operation, for both twins over both transports (see conftest)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zstandard

from objectstore_core import (
    ExpiryExtensionRejected,
    IntegrityError,
    ObjectNotFound,
    RequestError,
    TimeToIdle,
    TimeToLive,
    Usecase,
)
from tests.behaviour.twins import Twin

PAYLOAD = b"hello objectstore " * 1000


def _read(session: Any, key: str, **kwargs: object) -> bytes:
    response = session.get(key, **kwargs)
    assert response is not None
    with response:
        data: bytes = response.read()
    return data


# ------------------------------------------------------------------ payloads


@pytest.mark.parametrize(
    "contents",
    [
        PAYLOAD,
        bytearray(PAYLOAD),
        memoryview(PAYLOAD),
        PAYLOAD.decode(),
        b"",
    ],
    ids=["bytes", "bytearray", "memoryview", "str", "empty"],
)
def test_put_get_in_memory_payloads(session: Any, contents: object) -> None:
    key = session.put(contents)
    expected = contents.encode() if isinstance(contents, str) else bytes(contents)  # type: ignore[call-overload]
    assert _read(session, key) == expected


def test_put_binary_file(session: Any) -> None:
    key = session.put(io.BytesIO(PAYLOAD), key="file")
    assert _read(session, key) == PAYLOAD


def test_put_file_error_reaches_caller_unchanged(session: Any) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        session.put(Broken(), key="broken")
    assert session.head("broken") is None
    # The client is still usable afterwards.
    assert _read(session, session.put(b"x")) == b"x"


def test_put_iterable_of_chunks(session: Any) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield PAYLOAD

    key = session.put(chunks(), key="iter")
    assert _read(session, key) == PAYLOAD * 10


def test_put_path_is_opened_lazily(session: Any, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(PAYLOAD)
    key = session.put(path, key="path")
    assert _read(session, key) == PAYLOAD


def test_put_large_payload_streams_and_round_trips(session: Any) -> None:
    data = os.urandom(1024 * 1024) * 6  # larger than the one-shot limit
    key = session.put(data, key="large")
    assert _read(session, key) == data


def test_put_rejects_non_bytes_chunks_and_unknown_types(session: Any) -> None:
    with pytest.raises(TypeError, match="chunks must be bytes"):
        session.put(iter(["text"]), key="bad")
    with pytest.raises(TypeError, match="cannot upload"):
        session.put(12345, key="bad")
    assert session.head("bad") is None


# ------------------------------------------------------------- compression


def test_default_upload_is_zstd_and_get_decompresses(session: Any) -> None:
    key = session.put(PAYLOAD)
    metadata = session.head(key)
    assert metadata is not None and metadata.compression == "zstd"
    response = session.get(key)
    assert response is not None
    with response:
        assert response.metadata.compression is None
        assert response.read() == PAYLOAD


def test_decompress_false_returns_stored_zstd(session: Any) -> None:
    key = session.put(PAYLOAD)
    raw = _read(session, key, decompress=False)
    assert zstandard.ZstdDecompressor().decompress(raw) == PAYLOAD


@pytest.mark.parametrize("accept", [["zstd"], ["*"], ["gzip", "zstd"]])
def test_accept_encoding_passthrough(session: Any, accept: list[str]) -> None:
    key = session.put(PAYLOAD)
    response = session.get(key, accept_encoding=accept)
    assert response is not None
    with response:
        assert response.metadata.compression == "zstd"
        raw = response.read()
    assert zstandard.ZstdDecompressor().decompress(raw) == PAYLOAD


def test_compress_none_stores_raw(session: Any) -> None:
    key = session.put(PAYLOAD, compress="none")
    metadata = session.head(key)
    assert metadata is not None and metadata.compression is None
    assert metadata.size == len(PAYLOAD)
    assert _read(session, key, decompress=False) == PAYLOAD


def test_precompressed_is_sent_verbatim(session: Any) -> None:
    frame = zstandard.ZstdCompressor().compress(PAYLOAD)
    key = session.put(frame, precompressed="zstd")
    assert _read(session, key, decompress=False) == frame
    assert _read(session, key) == PAYLOAD


def test_multi_frame_objects_decode_whole(session: Any) -> None:
    frames = b"".join(zstandard.ZstdCompressor().compress(PAYLOAD) for _ in range(3))
    key = session.put(frames, precompressed="zstd")
    assert _read(session, key) == PAYLOAD * 3


def test_deprecated_compression_argument_warns(session: Any) -> None:
    with pytest.warns(DeprecationWarning, match="compress"):
        key = session.put(PAYLOAD, compression="none")
    metadata = session.head(key)
    assert metadata is not None and metadata.compression is None


def test_truncated_zstd_body_raises_integrity_error(session: Any) -> None:
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(os.urandom(50_000))
    key = session.put(frame[:-10], precompressed="zstd")
    response = session.get(key)
    assert response is not None
    with response, pytest.raises(IntegrityError) as info:
        response.read()
    # Errors raised while reading a payload still say which object failed.
    assert (info.value.operation, info.value.key) == ("get", key)
    assert info.value.usecase == "attachments"


def test_corrupt_zstd_body_raises_integrity_error(session: Any) -> None:
    frame = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(PAYLOAD))
    frame[-1] ^= 0xFF  # breaks the content checksum
    key = session.put(bytes(frame), precompressed="zstd")
    response = session.get(key)
    assert response is not None
    with response, pytest.raises(IntegrityError):
        response.read()


# -------------------------------------------------------------- get shapes


def test_get_missing_is_none_and_head_missing_is_none(session: Any) -> None:
    assert session.get("missing") is None
    assert session.head("missing") is None


def test_iter_bytes_with_chunk_size(session: Any) -> None:
    key = session.put(PAYLOAD)
    response = session.get(key)
    assert response is not None
    with response:
        chunks = list(response.iter_bytes(1000))
    assert all(len(c) == 1000 for c in chunks[:-1])
    assert b"".join(chunks) == PAYLOAD


def test_byte_range_reads_stored_bytes(session: Any) -> None:
    data = bytes(range(256)) * 4
    key = session.put(data, compress="none")
    response = session.get(key, byte_range=(10, 19))
    assert response is not None
    with response:
        assert response.read() == data[10:20]
    assert _read(session, key, byte_range=(1000, None)) == data[1000:]


def test_byte_range_beyond_end_raises_416(session: Any) -> None:
    key = session.put(b"short", compress="none")
    with pytest.raises(RequestError) as info:
        session.get(key, byte_range=(100, 200))
    assert info.value.status == 416


def test_byte_range_of_compressed_object_returns_stored_bytes(session: Any) -> None:
    key = session.put(PAYLOAD)
    stored = _read(session, key, decompress=False)
    assert _read(session, key, byte_range=(0, 9)) == stored[:10]


# ------------------------------------------------------------------- keys


KEYS = [
    "with space",
    "100%literal",
    "%20",
    "what?",
    "hash#tag",
    "plus+sign",
    "café/ünïcødé/日本",
    "a/b/c",
    "trailing/",
    "sub!$'()*+,=delims",
    "[x]^|",
    "a/../b",  # dot segments are escaped so no HTTP layer normalizes them away
    "./x/.",
    "/leading",
    "a//b",
]


@pytest.mark.parametrize("key", KEYS)
def test_keys_round_trip(session: Any, key: str) -> None:
    assert session.put(key.encode(), key=key) == key
    assert _read(session, key) == key.encode()
    metadata = session.head(key)
    assert metadata is not None
    session.delete(key)
    assert session.get(key) is None


def test_trailing_slash_is_significant(session: Any) -> None:
    session.put(b"plain", key="k")
    session.put(b"slash", key="k/")
    assert _read(session, "k") == b"plain"
    assert _read(session, "k/") == b"slash"


def test_empty_key_means_generated_key(session: Any) -> None:
    key = session.put(b"x", key="")
    assert len(key) == 36 and key.count("-") == 4


# --------------------------------------------------------------- metadata


def test_metadata_round_trips_including_non_ascii(session: Any) -> None:
    key = session.put(
        PAYLOAD,
        key="meta",
        content_type="application/json; charset=utf-8",
        metadata={"source": "svc", "note": "naïve café ☕", "percent": "100%", "crlf": "a\r\nb"},
        origin="203.0.113.42 (Zürich)",
        filename="résumé final.pdf",
    )
    metadata = session.head(key)
    assert metadata is not None
    assert metadata.content_type == "application/json; charset=utf-8"
    assert metadata.origin == "203.0.113.42 (Zürich)"
    assert metadata.filename == "résumé final.pdf"
    assert metadata.custom == {
        "source": "svc",
        "note": "naïve café ☕",
        "percent": "100%",
        "crlf": "a\r\nb",
    }
    assert metadata.time_created is not None
    response = session.get(key)
    assert response is not None
    with response:
        assert response.metadata.custom == metadata.custom


@pytest.mark.parametrize(
    "policy",
    [
        TimeToLive(timedelta(days=1)),
        TimeToLive(timedelta(days=90)),
        TimeToIdle(timedelta(days=30, hours=2)),
        TimeToIdle(timedelta(days=400, seconds=90)),
    ],
)
def test_expiration_of_a_day_or_more_reads_back(session: Any, policy: TimeToLive) -> None:
    key = session.put(b"x", expiration_policy=policy)
    metadata = session.head(key)
    assert metadata is not None
    assert metadata.expiration_policy == policy
    assert metadata.time_expires is not None and metadata.time_created is not None
    assert metadata.time_expires - metadata.time_created == policy.delta


def test_usecase_default_expiration_applies(twin: Twin) -> None:
    usecase = Usecase("short-lived", expiration_policy=TimeToLive(timedelta(hours=2)))
    session = twin.session(usecase, org=1)
    key = session.put(b"x")
    metadata = session.head(key)
    assert metadata is not None
    assert metadata.expiration_policy == TimeToLive(timedelta(hours=2))


def test_overwrite_replaces_metadata(session: Any) -> None:
    session.put(b"one", key="k", metadata={"a": "1"}, expiration_policy=TimeToLive(timedelta(1)))
    session.put(b"two", key="k")
    metadata = session.head("k")
    assert metadata is not None
    assert metadata.custom == {}
    assert metadata.expiration_policy is None
    assert _read(session, "k") == b"two"


# --------------------------------------------------------- delete / expiry


def test_delete_is_idempotent(session: Any) -> None:
    key = session.put(b"x")
    session.delete(key)
    session.delete(key)
    assert session.get(key) is None


def test_extend_expiry(session: Any) -> None:
    key = session.put(b"x", expiration_policy=TimeToLive(timedelta(hours=1)))
    session.extend_expiry(key, from_now=timedelta(days=30))
    metadata = session.head(key)
    assert metadata is not None and metadata.time_expires is not None
    assert metadata.time_expires > datetime.now(UTC) + timedelta(days=29)
    deadline = datetime.now(UTC) + timedelta(days=60)
    session.extend_expiry(key, at=deadline)
    metadata = session.head(key)
    assert metadata is not None and metadata.time_expires is not None
    assert metadata.time_expires >= deadline.replace(microsecond=0)


def test_extend_expiry_errors(session: Any) -> None:
    with pytest.raises(ObjectNotFound):
        session.extend_expiry("missing", from_now=timedelta(days=1))
    key = session.put(b"manual")
    with pytest.raises(ExpiryExtensionRejected):
        session.extend_expiry(key, from_now=timedelta(days=1))
    with pytest.raises(ValueError, match="exactly one"):
        session.extend_expiry(key)


# ------------------------------------------------------------ connections
