"""The directory store after a crash: torn sidecars, durable writes, stale temp files.

Served over real sockets on 127.0.0.1 where the wire answer matters: a torn
sidecar must read as an absent object (404), and the key must stay writable
and deletable, never a 500 for ever.
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectstore_core.emulator import ObjectId
from objectstore_sync.emulator import DirectoryStorage, EmulatorServer, LocalServer

OBJ = "/v1/objects/test/org=1"


def _request(server: LocalServer, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, body=body if method in ("PUT", "POST") else None)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _sidecars(root: Path) -> list[Path]:
    return sorted(root.glob("objects/*/*.json"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    with LocalServer(data_dir=tmp_path) as running:
        yield running


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # torn mid-write
        lambda text: "",  # created, never written
        lambda text: "\udcff",  # not UTF-8 at all
        lambda text: '{"version": 1}',  # JSON, but not a sidecar
    ],
    ids=["truncated", "empty", "binary", "wrong-shape"],
)
def test_a_torn_sidecar_is_an_absent_object_and_the_key_stays_usable(
    server: LocalServer, tmp_path: Path, damage: object
) -> None:
    assert _request(server, "PUT", f"{OBJ}/k", b"first")[0] == 200
    (sidecar,) = _sidecars(tmp_path)
    text = sidecar.read_text()
    sidecar.write_bytes(damage(text).encode("utf-8", "surrogateescape"))  # type: ignore[operator]
    assert _request(server, "GET", f"{OBJ}/k") == (404, b"")
    assert _request(server, "HEAD", f"{OBJ}/k")[0] == 404
    assert _request(server, "PUT", f"{OBJ}/k", b"second")[0] == 200  # overwritable
    assert _request(server, "GET", f"{OBJ}/k") == (200, b"second")


def test_a_torn_sidecar_can_be_deleted(server: LocalServer, tmp_path: Path) -> None:
    assert _request(server, "PUT", f"{OBJ}/k", b"first")[0] == 200
    (sidecar,) = _sidecars(tmp_path)
    sidecar.write_text(sidecar.read_text()[:10])
    assert _request(server, "DELETE", f"{OBJ}/k")[0] == 204
    assert _sidecars(tmp_path) == []  # the key is free again
    assert _request(server, "GET", f"{OBJ}/k")[0] == 404


def test_a_sidecar_whose_body_is_gone_is_an_absent_object(
    server: LocalServer, tmp_path: Path
) -> None:
    assert _request(server, "PUT", f"{OBJ}/k", b"first")[0] == 200
    (body,) = tmp_path.glob("objects/*/*.body")
    body.unlink()
    assert _request(server, "GET", f"{OBJ}/k") == (404, b"")
    assert _request(server, "HEAD", f"{OBJ}/k")[0] == 404
    assert _request(server, "PUT", f"{OBJ}/k", b"again")[0] == 200
    assert _request(server, "GET", f"{OBJ}/k") == (200, b"again")


@pytest.mark.parametrize("fsync", [True, False])
def test_fsync_flushes_files_and_the_directory_before_answering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    flushed: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the flushed files")
    root = tmp_path / "store"
    with LocalServer(data_dir=root) as server:
        server.server.storage.fsync = fsync  # type: ignore[attr-defined]
        monkeypatch.setattr(os, "fsync", recording_fsync)
        assert _request(server, "PUT", f"{OBJ}/k", b"payload")[0] == 200
        monkeypatch.setattr(os, "fsync", real_fsync)
    if not fsync:
        assert flushed == []
        return
    (shard,) = (root / "objects").iterdir()
    # The body's temp file, the sidecar's temp file, then the directory holding both.
    assert len(flushed) == 3
    assert all(Path(name).name.startswith(".tmp-") for name in flushed[:2])
    assert flushed[2] == str(shard.resolve())


def test_fsync_is_a_server_parameter(tmp_path: Path) -> None:
    with LocalServer(data_dir=tmp_path) as plain:
        assert plain.server.storage.fsync is False  # type: ignore[attr-defined]
    with EmulatorServer("127.0.0.1", 0, data_dir=tmp_path, fsync=True) as server:
        assert server.storage.fsync is True  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="fsync"):
        EmulatorServer("127.0.0.1", 0, fsync=True)  # nothing to flush in memory


def test_stale_temp_files_are_swept_when_the_store_opens(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    shard = tmp_path / "objects" / "ab"
    shard.mkdir()
    old = time.time() - 3600
    stale_upload = shard / ".tmp-0123"
    stale_sidecar = shard / ".tmp-4567.json"
    for path in (stale_upload, stale_sidecar):
        path.write_bytes(b"left by a killed process")
        os.utime(path, (old, old))
    fresh = shard / ".tmp-89ab"  # maybe another process's upload starting right now
    fresh.write_bytes(b"")
    # A live upload of this process, however old.
    held = store.writer(ObjectId("test", "org=1", "k"))
    held.write(b"partial")
    (held_path,) = [p for p in tmp_path.glob("objects/*/.tmp-*") if p.parent != shard]
    os.utime(held_path, (old, old))
    reopened = DirectoryStorage(tmp_path)
    assert reopened.swept == 2
    assert not stale_upload.exists() and not stale_sidecar.exists()
    assert fresh.exists() and held_path.exists()
    held.abort()
