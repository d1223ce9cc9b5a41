"""Managed uploads, ``session.upload`` (API §4), for both twins over both transports."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from objectstore_core import ServerError
from objectstore_core.emulator import Fault
from objectstore_sync import Usecase
from objectstore_sync.emulator import Emulator
from tests.behaviour.twins import Twin

MIB = 1024 * 1024
PART = 5 * MIB
# Compressible text and noise, 3.5 parts.
DATA = (b"managed upload of a large object " * 400_000)[: 2 * PART] + os.urandom(PART + MIB // 2)


@pytest.fixture
def served(request: pytest.FixtureRequest, twin: Twin) -> Iterator[Emulator]:
    """The emulator behind the ``twin`` fixture."""
    where = request.node.callspec.params["twin"][1]
    if where == "loopback":
        yield request.getfixturevalue("loopback_server").emulator
    else:
        yield request.getfixturevalue("emulator")


def _read(session: Any, key: str, **kwargs: Any) -> bytes:
    response = session.get(key, **kwargs)
    assert response is not None
    with response:
        data: bytes = response.read()
    return data


def _frames(stored: bytes) -> int:
    """How many zstd frames ``stored`` holds."""
    count, view = 0, memoryview(stored)
    while view:
        size = zstandard.frame_content_size(bytes(view[:18]))
        assert size > 0
        header = zstandard.get_frame_parameters(bytes(view[:18]))
        assert header.has_checksum
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        decompressor.decompress(bytes(view))
        view = view[len(view) - len(decompressor.unused_data) :]
        count += 1
    return count


@pytest.mark.parametrize("source", ["bytes", "path", "file"])
def test_parts_are_compressed_one_frame_each_and_read_back_as_one_object(
    twin: Twin, served: Emulator, tmp_path: Path, source: str
) -> None:
    session = twin.session(Usecase("attachments"), org=3, test=source)
    path = tmp_path / "big"
    path.write_bytes(DATA)
    seen: list[tuple[int, int | None]] = []
    with path.open("rb") as file:
        contents = {"bytes": DATA, "path": path, "file": file}[source]
        key = session.upload(
            contents,
            part_size=PART,
            concurrency=3,
            progress=lambda done, total: seen.append((done, total)),
            content_type="application/octet-stream",
            metadata={"origin": "managed"},
        )
    assert _read(session, key) == DATA
    assert _frames(_read(session, key, decompress=False)) == 4
    assert seen[0] == (0, len(DATA)) and seen[-1] == (len(DATA), len(DATA))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert session.head(key).custom == {"origin": "managed"}
    assert len(served.multipart) == 0


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_a_seekable_stream_larger_than_a_part_goes_up_in_parts_from_where_it_stands(
    twin: Twin, served: Emulator, compress: str
) -> None:
    session = twin.session(Usecase("attachments"), org=3, test=f"stream-{compress}")
    stream = io.BytesIO(b"skipped" + DATA)
    stream.seek(len(b"skipped"))
    # A second part exists only on the multipart path: its first attempt fails, once.
    before = served.faults.injected
    served.faults.inject(Fault.status(503), count=1, path="part_number=2")
    try:
        key = session.upload(stream, part_size=PART, concurrency=2, compress=compress)
    finally:
        served.faults.clear()
    assert served.faults.injected == before + 1
    assert _read(session, key) == DATA
    if compress == "zstd":
        assert _frames(_read(session, key, decompress=False)) == 4
    assert len(served.multipart) == 0


def test_raw_parts_and_a_given_key(twin: Twin) -> None:
    session = twin.session(Usecase("attachments"), org=3, test="raw")
    key = session.upload(DATA, "raw/key", part_size=PART, concurrency=2, compress="none")
    assert key == "raw/key"
    assert _read(session, key, decompress=False) == DATA
    assert session.head(key).compression is None


def test_a_small_or_unsized_source_takes_one_request(twin: Twin, served: Emulator) -> None:
    session = twin.session(Usecase("attachments"), org=3, test="small")
    seen: list[tuple[int, int | None]] = []
    key = session.upload(b"small", progress=lambda done, total: seen.append((done, total)))
    assert _read(session, key) == b"small"
    assert seen == [(5, 5)]
    streamed = session.upload(iter([DATA[:MIB], DATA[MIB : 2 * MIB]]), part_size=PART)
    assert _read(session, streamed) == DATA[: 2 * MIB]


def test_a_failing_part_is_retried(twin: Twin, served: Emulator) -> None:
    session = twin.session(Usecase("attachments"), org=3, test="retried")
    served.faults.inject(Fault.status(503), count=2, path="part_number=2")
    key = session.upload(DATA, part_size=PART, concurrency=2)
    assert _read(session, key) == DATA


def test_a_part_that_keeps_failing_aborts_the_upload(twin: Twin, served: Emulator) -> None:
    session = twin.session(Usecase("attachments"), org=3, test="aborted")
    served.faults.inject(Fault.status(500), count=50, path="part_number=3")
    try:
        with pytest.raises(ServerError):
            session.upload(DATA, "never", part_size=PART, concurrency=2)
    finally:
        served.faults.clear()
    assert session.get("never") is None
    assert len(served.multipart) == 0  # aborted: no open upload left behind


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"part_size": PART - 1}, "part_size=5242879"),
        ({"part_size": True}, "part_size=True"),
        ({"concurrency": 0}, "concurrency=0"),
        ({"compress": "gzip"}, "gzip"),
        ({"key": ""}, None),
    ],
)
def test_bad_settings_fail_before_any_request(
    twin: Twin, served: Emulator, kwargs: dict[str, Any], match: str | None
) -> None:
    session = twin.session(Usecase("attachments"), org=3, test="bad")
    if match is None:  # "" means "no key", as with put
        assert _read(session, session.upload(b"x", **kwargs)) == b"x"
        return
    before = len(served.multipart)
    with pytest.raises(ValueError, match=match):
        session.upload(DATA, **kwargs)
    assert len(served.multipart) == before


def test_a_missing_path_names_the_users_path(twin: Twin, tmp_path: Path) -> None:
    session = twin.session(Usecase("attachments"), org=3, test="missing")
    with pytest.raises(OSError, match="nowhere"):
        session.upload(tmp_path / "nowhere")


def test_progress_must_be_callable(twin: Twin) -> None:
    session = twin.session(Usecase("attachments"), org=3, test="progress")
    with pytest.raises(TypeError, match="progress"):
        session.upload(io.BytesIO(b"x"), progress="yes")
