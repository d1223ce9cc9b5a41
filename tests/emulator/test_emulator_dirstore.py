"""DirectoryStorage: persistence, weird keys, atomic overwrite, abort, threads."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from objectstore_core import TimeToIdle, TimeToLive
from objectstore_core.emulator import Emulator, ObjectId, ObjectRecord, read_body
from objectstore_sync.emulator import DirectoryStorage
from tests.emulator.emulator_helpers import Client, FakeClock

NOW = datetime(2026, 7, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _record(size: int, **fields: object) -> ObjectRecord:
    return ObjectRecord(size=size, time_created=NOW, **fields)  # type: ignore[arg-type]


def _write(store: DirectoryStorage, oid: ObjectId, body: bytes, **fields: object) -> None:
    writer = store.writer(oid)
    for start in range(0, len(body), 3):
        writer.write(body[start : start + 3])
    writer.commit(_record(len(body), **fields))


def _read(store: DirectoryStorage, oid: ObjectId) -> bytes:
    opened = store.open(oid)
    assert opened is not None
    return _drain(opened.read_range(0, opened.record.size))


def _drain(stream: object) -> bytes:
    from objectstore_core.emulator import ServerResponse

    return read_body(ServerResponse(200, (), stream, None))  # type: ignore[arg-type]


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def test_objects_survive_a_restart(tmp_path: Path) -> None:
    oid = ObjectId("test", "org=1;project=2", "a/b")
    record_fields = {
        "content_type": "text/plain; charset=utf-8",
        "content_encoding": "zstd",
        "expiration": TimeToLive(timedelta(days=400, microseconds=7)),
        "time_expires": NOW + timedelta(days=400, microseconds=7),
        "origin": "203.0.113.42",
        "filename": "caf%C3%A9.txt",
        "custom": (("a", "1"), ("b", "")),
    }
    _write(DirectoryStorage(tmp_path), oid, b"persisted", **record_fields)
    reopened = DirectoryStorage(tmp_path)
    assert reopened.lookup(oid) == _record(9, **record_fields)
    assert _read(reopened, oid) == b"persisted"


def test_sidecars_written_with_wire_timestamps_still_read(tmp_path: Path) -> None:
    """Older sidecars hold ``...123456Z``; newer ones ISO 8601 with ``+00:00``."""
    oid = ObjectId("test", "_", "k")
    store = DirectoryStorage(tmp_path)
    _write(store, oid, b"v", expiration=TimeToLive(timedelta(hours=1)), time_expires=NOW)
    (sidecar,) = (tmp_path / "objects").rglob("*.json")
    data = json.loads(sidecar.read_text())
    assert data["record"]["time_created"] == "2026-07-01T12:00:00.123456+00:00"
    data["record"]["time_created"] = "2026-07-01T12:00:00.123456Z"
    data["record"]["time_expires"] = "2026-07-01T12:00:00.123456Z"
    sidecar.write_text(json.dumps(data))
    record = DirectoryStorage(tmp_path).lookup(oid)
    assert record is not None and record.time_created == NOW and record.time_expires == NOW


def test_emulator_over_a_directory_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    first = Client(Emulator(DirectoryStorage(tmp_path), clock=clock))
    first.put("/v1/objects/test/_/k", b"v", x_sn_expiration="tti:1d", x_snme_n="v")
    second = Client(Emulator(DirectoryStorage(tmp_path), clock=clock))
    result = second.get("/v1/objects/test/_/k")
    assert result.body == b"v"
    assert result.headers == first.get("/v1/objects/test/_/k").headers


@pytest.mark.parametrize(
    "key",
    [
        "..",
        "../../etc/passwd",
        "/abs",
        "a/b/c/",
        "x" * 5000,
        "emoji 🎉 ü ß 中文",
        "nul\x00byte",
        "back\\slash",
        "CON",
        "a" + "/" * 50,
    ],
)
def test_arbitrary_keys_map_to_safe_file_names(tmp_path: Path, key: str) -> None:
    store = DirectoryStorage(tmp_path)
    oid = ObjectId("test", "_", key)
    _write(store, oid, key.encode("utf-8", "surrogatepass"))
    assert _read(store, oid) == key.encode("utf-8", "surrogatepass")
    assert store.lookup(ObjectId("test", "_", key + "x")) is None
    # Everything stays inside root/objects, in short names.
    for path in tmp_path.rglob("*"):
        assert path.resolve().is_relative_to(tmp_path.resolve() / "objects")
        assert len(path.name) <= 110


def test_identity_components_do_not_collide(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    a = ObjectId("ab", "_", "c")
    b = ObjectId("a", "b_", "c")
    _write(store, a, b"A")
    _write(store, b, b"B")
    assert (_read(store, a), _read(store, b)) == (b"A", b"B")


def test_overwrite_is_atomic_and_an_open_reader_keeps_the_old_version(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    oid = ObjectId("test", "_", "k")
    _write(store, oid, b"old version " * 1000)
    opened = store.open(oid)
    assert opened is not None
    stream = opened.read_range(0, opened.record.size)
    first = stream.read(10)
    writer = store.writer(oid)
    writer.write(b"new")
    assert _read(store, oid).startswith(b"old")  # not visible before commit
    writer.commit(_record(3))
    assert _read(store, oid) == b"new"
    rest = _drain(stream)
    assert first + rest == b"old version " * 1000
    assert len([name for name in _files(tmp_path) if name.endswith(".body")]) == 1


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    oid = ObjectId("test", "_", "k")
    writer = store.writer(oid)
    writer.write(b"partial")
    writer.abort()
    writer.abort()  # idempotent
    assert store.lookup(oid) is None
    assert _files(tmp_path) == []


def test_commit_checks_the_size(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    writer = store.writer(ObjectId("test", "_", "k"))
    writer.write(b"abc")
    with pytest.raises(ValueError, match="size"):
        writer.commit(_record(4))
    assert _files(tmp_path) == []


def test_delete_removes_all_files_and_is_idempotent(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    oid = ObjectId("test", "_", "k")
    _write(store, oid, b"x")
    store.delete(oid)
    store.delete(oid)
    assert store.lookup(oid) is None and store.open(oid) is None
    assert _files(tmp_path) == []


def test_update_rewrites_only_the_record(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    oid = ObjectId("test", "_", "k")
    policy = TimeToIdle(timedelta(hours=1))
    _write(store, oid, b"body", expiration=policy, time_expires=NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=5)
    seen = store.update(oid, lambda r: _record(r.size, expiration=policy, time_expires=later))
    assert seen is not None and seen.time_expires == NOW + timedelta(hours=1)
    assert store.update(oid, lambda r: None) == _record(4, expiration=policy, time_expires=later)
    assert _read(store, oid) == b"body"
    assert store.update(ObjectId("test", "_", "nope"), lambda r: r) is None


def test_ranges_read_from_the_file(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    oid = ObjectId("test", "_", "k")
    _write(store, oid, bytes(range(100)))
    opened = store.open(oid)
    assert opened is not None
    assert _drain(opened.read_range(10, 5)) == bytes(range(10, 15))


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    oid = ObjectId("test", "_", "shared")
    bodies = [bytes([n]) * (1000 + n) for n in range(8)]
    errors: list[BaseException] = []

    def writer(body: bytes) -> None:
        try:
            for _ in range(20):
                _write(store, oid, body)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(100):
                opened = store.open(oid)
                if opened is None:
                    continue
                data = _drain(opened.read_range(0, opened.record.size))
                assert data in bodies, "a reader saw a torn object"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(b,)) for b in bodies]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _read(store, oid) in bodies
    assert len([name for name in _files(tmp_path) if name.endswith(".body")]) == 1
    assert not [name for name in _files(tmp_path) if name.startswith(".tmp-")]


def _fetch(session: Any, key: str, **options: Any) -> Any:
    response = session.get(key, **options)
    assert response is not None
    return response


def _body_file(root: Path) -> Path:
    (body,) = [p for p in root.rglob("*") if p.is_file() and p.stat().st_size > 1000]
    return body


def test_the_socket_server_sends_stored_files_with_sendfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import objectstore_sync
    from objectstore_sync.testing import LocalServer

    sent: list[int] = []
    original = socket.socket.sendfile

    def counted(self: socket.socket, file: Any, offset: int = 0, count: int | None = None) -> int:
        result = original(self, file, offset, count)
        sent.append(result)
        return result

    monkeypatch.setattr(socket.socket, "sendfile", counted)
    payload = bytes(range(256)) * (3 * 4096 + 7)  # about 3 MiB
    with LocalServer(data_dir=tmp_path) as server, objectstore_sync.Client(server.url) as client:
        session = client.session(objectstore_sync.Usecase("test"), org=1)
        session.put(payload, key="big", compress="none")
        with _fetch(session, "big") as whole:
            assert whole.read() == payload
        with _fetch(session, "big", byte_range=(1000, 2_000_999)) as response:
            assert response.read() == payload[1000:2_001_000]
        stored = session.put(b"", key="empty", compress="none")
        with _fetch(session, stored) as empty:
            assert empty.read() == b""
    assert sent[:2] == [len(payload), 2_000_000]


def test_a_stored_file_shorter_than_its_record_is_an_error_not_short_data(
    tmp_path: Path,
) -> None:
    import objectstore_sync
    from objectstore_core import ObjectstoreError
    from objectstore_sync.testing import LocalServer

    payload = b"x" * 100_000
    with LocalServer(data_dir=tmp_path) as server, objectstore_sync.Client(server.url) as client:
        session = client.session(objectstore_sync.Usecase("test"), org=1)
        session.put(payload, key="k", compress="none")
        body = _body_file(tmp_path)
        with body.open("r+b") as file:
            file.truncate(50_000)
        with pytest.raises(ObjectstoreError), _fetch(session, "k") as response:
            response.read()
        ranged = _fetch(session, "k", byte_range=(0, 99_999))
        with pytest.raises(ObjectstoreError), ranged:
            ranged.read()


def test_faults_still_apply_to_stored_files(tmp_path: Path) -> None:
    import objectstore_sync
    from objectstore_core import ObjectstoreError
    from objectstore_core.emulator import Fault
    from objectstore_sync.testing import LocalServer

    payload = bytes(range(256)) * 1000
    with LocalServer(data_dir=tmp_path) as server, objectstore_sync.Client(server.url) as client:
        session = client.session(objectstore_sync.Usecase("test"), org=1)
        session.put(payload, key="k", compress="none")
        server.faults.inject(Fault.truncate(after=1000), method="GET")
        with pytest.raises(ObjectstoreError), _fetch(session, "k") as response:
            response.read()
        with _fetch(session, "k") as again:
            assert again.read() == payload
