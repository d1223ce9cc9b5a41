"""Managed downloads, ``session.download`` (API §4), for both twins over both transports."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import objectstore_core._transfer as transfer
from objectstore_core import IntegrityError, Metadata, ObjectNotFound
from objectstore_core.emulator import ServerRequest
from objectstore_sync import Usecase
from objectstore_sync.emulator import Emulator
from tests.behaviour.twins import Twin

PART = 64 * 1024
RAW = Usecase("raw_things", compression="none")
DATA = os.urandom(5 * PART + 123)


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "DEFAULT_PART_SIZE", PART)


@pytest.fixture
def served(request: pytest.FixtureRequest, twin: Twin) -> Iterator[Emulator]:
    """The emulator behind the ``twin`` fixture."""
    where = request.node.callspec.params["twin"][1]
    if where == "loopback":
        yield request.getfixturevalue("loopback_server").emulator
    else:
        yield request.getfixturevalue("emulator")


def _same(got: bytes, want: bytes) -> None:
    """Assert equal bytes, naming the first difference (a diff of random bytes is unreadable
    and, on a CI runner where pytest prints it in full, takes minutes)."""
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
        pytest.fail(f"{len(got)} bytes, expected {len(want)}; first difference at {first}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("concurrency", [1, 3])
@pytest.mark.parametrize("usecase", [Usecase("attachments"), RAW], ids=["zstd", "raw"])
def test_a_download_to_a_path_is_renamed_into_place(
    twin: Twin, tmp_path: Path, concurrency: int, usecase: Usecase
) -> None:
    session = twin.session(usecase, org=5, test=f"{usecase.name}-{concurrency}")
    key = session.put(DATA, key="obj", content_type="application/x-test")
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "copy.bin"
    metadata = session.download(
        key, dest, concurrency=concurrency, progress=lambda d, t: seen.append((d, t))
    )
    assert isinstance(metadata, Metadata) and metadata.content_type == "application/x-test"
    _same(dest.read_bytes(), DATA)
    assert [p.name for p in tmp_path.iterdir()] == ["copy.bin"]  # no temp file left
    assert dest.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert seen[-1][0] == len(DATA)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    if usecase is RAW:
        assert all(total == len(DATA) for _, total in seen)


def test_a_download_into_a_file_object_in_parallel_ranges(twin: Twin) -> None:
    session = twin.session(RAW, org=5, test="file")
    key = session.put(DATA)
    out = io.BytesIO(b"head:")
    out.seek(5)
    session.download(key, out, concurrency=4)
    _same(out.getvalue(), b"head:" + DATA)


def test_an_object_changed_between_ranges_is_an_integrity_error(
    twin: Twin, served: Emulator, tmp_path: Path
) -> None:
    session = twin.session(RAW, org=5, test="changed")
    key = session.put(DATA, key="moving")
    path = f"/v1/objects/raw_things/{session.scope}/moving"
    changed: list[bool] = []

    def overwrite(done: int, total: int | None) -> None:
        if not changed:  # after the first range: a new version, as another writer would
            served.handle(ServerRequest("PUT", path, ()), os.urandom(len(DATA) + 1))
            changed.append(True)

    dest = tmp_path / "moving.bin"
    with pytest.raises(IntegrityError, match="changed during the download"):
        session.download(key, dest, concurrency=2, progress=overwrite)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temp file


def test_a_missing_object_raises_and_leaves_nothing(twin: Twin, tmp_path: Path) -> None:
    session = twin.session(RAW, org=5, test="missing")
    for concurrency in (1, 2):
        with pytest.raises(ObjectNotFound):
            session.download("nope", tmp_path / "x", concurrency=concurrency)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_fail_before_any_request(
    twin: Twin, served: Emulator, tmp_path: Path
) -> None:
    session = twin.session(RAW, org=5, test="bad")
    before = served._requests_total
    with pytest.raises(OSError, match="no/such/dir"):
        session.download("k", tmp_path / "no" / "such" / "dir" / "f")
    with pytest.raises(ValueError, match="concurrency=0"):
        session.download("k", tmp_path / "f", concurrency=0)
    with pytest.raises(TypeError, match="dest"):
        session.download("k", 42)
    with pytest.raises(ValueError, match="key"):
        session.download("", tmp_path / "f")
    assert served._requests_total == before
    assert list(tmp_path.iterdir()) == []


def test_uploaded_then_downloaded_large_objects_match(twin: Twin, tmp_path: Path) -> None:
    session = twin.session(Usecase("attachments"), org=5, test="roundtrip")
    data: Any = (b"round trip " * 1_200_000)[: 12 * 1024 * 1024]
    key = session.upload(data, part_size=5 * 1024 * 1024, concurrency=3)
    session.download(key, tmp_path / "back")
    _same((tmp_path / "back").read_bytes(), data)
