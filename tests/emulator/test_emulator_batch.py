"""The emulator's batch endpoint, exactly as PROTOCOL §8 (no client code involved).

Requests are written by hand and responses read with a small parser of this
module, so neither shares code with the client's batch encoder or decoder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from objectstore_core import Permission, Scope
from objectstore_core.emulator import MemoryStorage, ObjectId, ServerResponse
from objectstore_sync.emulator import DirectoryStorage, Emulator
from tests.emulator.emulator_helpers import Client, FakeClock

BATCH = "/v1/objects:batch/test/org=1/"
OBJ = "/v1/objects/test/org=1"
B = "request-boundary"


def _part(kind: str | None, key: str | None = None, body: bytes = b"", *extra: str) -> bytes:
    lines = ['content-disposition: form-data; name="part"']
    if kind is not None:
        lines.append(f"x-sn-batch-operation-kind: {kind}")
    if key is not None:
        lines.append(f"x-sn-batch-operation-key: {key}")
    lines += extra
    return f"--{B}\r\n".encode() + "\r\n".join(lines).encode() + b"\r\n\r\n" + body + b"\r\n"


def _send(client: Client, *parts: bytes) -> tuple[str, list[tuple[dict[str, str], bytes]], bytes]:
    body = b"".join(parts) + f"--{B}--\r\n".encode()
    result = client.post(BATCH, body, content_type=f"multipart/form-data; boundary={B}")
    assert result.status == 200
    content_type = result.headers["content-type"]
    match = re.fullmatch(
        r'multipart/form-data; boundary="(os-boundary-[0-9a-f]{32})"', content_type
    )
    assert match, content_type
    boundary = match.group(1).encode()
    raw = result.body
    assert raw.endswith(b"--" + boundary + b"--")  # no trailing CRLF (§8.4)
    pieces = raw[: -len(boundary) - 4].split(b"--" + boundary + b"\r\n")
    assert pieces[0] == b""
    parsed = []
    for piece in pieces[1:]:
        assert piece.endswith(b"\r\n")
        head, _, content = piece[:-2].partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parsed.append((headers, content))
    return match.group(1), parsed, raw


def _by_index(parts: list[tuple[dict[str, str], bytes]]) -> dict[int, tuple[dict[str, str], bytes]]:
    return {int(h["x-sn-batch-operation-index"]): (h, b) for h, b in parts}


def test_framing_statuses_and_keys(client: Client) -> None:
    client.put(f"{OBJ}/there", b"stored", content_type="text/plain", x_snme_a="1")
    _, parts, _ = _send(
        client,
        _part("insert", "notes%2Fa%2Etxt", b"hello", "content-type: text/plain"),
        _part("INSERT", None, b"generated"),
        _part("get", "there"),
        _part("get", "missing"),
        _part("head", "there"),
        _part("delete", "there"),
        _part("delete"),
    )
    by_index = _by_index(parts)
    assert sorted(by_index) == list(range(7))
    h, body = by_index[0]
    assert h["x-sn-batch-operation-status"] == "201 Created"
    assert h["x-sn-batch-operation-key"] == "notes%2Fa%2Etxt"
    assert h["x-sn-batch-operation-kind"] == "insert"
    assert h["content-disposition"] == "form-data; name=part"
    generated = by_index[1][0]["x-sn-batch-operation-key"]
    assert re.fullmatch(r"[0-9a-f]{8}(%2D[0-9a-f]{4}){3}%2D[0-9a-f]{12}", generated)
    h, body = by_index[2]
    assert (h["x-sn-batch-operation-status"], body) == ("200 OK", b"stored")
    assert h["content-type"] == "text/plain" and h["x-snme-a"] == "1"
    assert by_index[3][0]["x-sn-batch-operation-status"] == "404 Not Found"
    assert by_index[3][0]["x-sn-batch-operation-kind"] == "get"
    assert by_index[4][0]["x-sn-batch-operation-status"] == "204 No Content"
    assert by_index[5][0]["x-sn-batch-operation-status"] == "204 No Content"
    h, body = by_index[6]
    assert set(h) == {
        "x-sn-batch-operation-index",
        "x-sn-batch-operation-status",
        "content-disposition",
    }
    assert h["x-sn-batch-operation-status"] == "400 Bad Request"
    assert json.loads(body)["detail"].startswith("batch error: bad request: missing")
    assert client.get(f"{OBJ}/notes/a.txt").body == b"hello"


def test_parts_come_in_completion_order_that_varies(client: Client) -> None:
    orders = set()
    for _ in range(5):
        _, parts, _ = _send(client, *(_part("get", f"k{i}") for i in range(20)))
        orders.add(tuple(int(h["x-sn-batch-operation-index"]) for h, _ in parts))
    assert len(orders) > 1
    assert all(sorted(order) == list(range(20)) for order in orders)


def test_limits_give_413_parts(client: Client) -> None:
    parts = [_part("delete", f"k{i}") for i in range(1002)]
    parts[5] = _part("insert", "big", b"x" * (1024 * 1024 + 1))
    parts[6] = _part("insert", "edge", b"x" * (1024 * 1024))
    _, answered, _ = _send(client, *parts)
    by_index = _by_index(answered)
    statuses = {i: h["x-sn-batch-operation-status"] for i, (h, _) in by_index.items()}
    assert statuses[5] == "413 Payload Too Large"
    assert statuses[6] == "201 Created"
    assert statuses[1000] == statuses[1001] == "413 Payload Too Large"
    assert statuses[999] == "204 No Content"


def test_an_empty_batch_is_only_the_closing_delimiter(client: Client) -> None:
    boundary, parts, raw = _send(client)
    assert parts == [] and raw == f"--{boundary}--".encode()


def test_a_body_that_never_closes_fails_its_last_part(client: Client) -> None:
    body = _part("get", "a") + f"--{B}\r\nx-sn-batch-operation-kind: get".encode()
    result = client.post(BATCH, body, content_type=f"multipart/form-data; boundary={B}")
    assert result.status == 200
    assert b"200 OK" not in result.body and b"404 Not Found" in result.body
    assert b"400 Bad Request" in result.body


def test_per_operation_permissions(storage: object, clock: object) -> None:
    class ReadOnly:
        def check(
            self, usecase: str, scope: Scope, permission: Permission
        ) -> ServerResponse | None:
            if permission is Permission.OBJECT_READ:
                return None
            body = b'{"detail":"auth error: operation not allowed"}'
            return ServerResponse(403, (("content-type", "application/json"),), body, len(body))

    emulator = Emulator(storage, clock=clock, authorize=lambda *_: ReadOnly())  # type: ignore[arg-type]
    client = Client(emulator)
    _, parts, _ = _send(client, _part("get", "a"), _part("insert", "b", b"x"), _part("delete", "c"))
    statuses = {i: h["x-sn-batch-operation-status"] for i, (h, _) in _by_index(parts).items()}
    assert statuses == {0: "404 Not Found", 1: "403 Forbidden", 2: "403 Forbidden"}


def test_a_batch_insert_stores_what_a_single_put_stores(client: Client) -> None:
    meta = ("content-type: text/plain", "x-sn-expiration: ttl:1h", "x-snme-a: b")
    _send(client, _part("insert", "b", b"payload", *meta), _part("insert", "empty"))
    headers = {line.split(": ")[0]: line.split(": ")[1] for line in meta}
    client.put(f"{OBJ}/s", b"payload", **{k.replace("-", "_"): v for k, v in headers.items()})
    batched, single = client.get(f"{OBJ}/b"), client.get(f"{OBJ}/s")
    assert batched.body == single.body == b"payload"
    assert (single.headers["content-type"], single.headers["x-snme-a"]) == ("text/plain", "b")
    varying = {"x-sn-time-created", "x-sn-time-expires"}
    assert {k: v for k, v in batched.headers.items() if k not in varying} == {
        k: v for k, v in single.headers.items() if k not in varying
    }
    empty = client.get(f"{OBJ}/empty")
    assert (empty.status, empty.body, empty.headers["x-sn-size"]) == (200, b"", "0")


def test_a_threaded_server_runs_batches_one_at_a_time() -> None:
    from objectstore_sync.emulator import EmulatorServer

    with EmulatorServer(port=0) as server:
        turns = server.emulator.batch_turns
        assert turns.acquire(blocking=False)  # type: ignore[attr-defined]
        turns.release()  # type: ignore[attr-defined]


@pytest.mark.parametrize("store", ["memory", "directory"])
def test_batch_gets_answer_what_single_gets_answer(store: str, tmp_path: Path) -> None:
    """Small objects come from the in-memory store in one step (however they were
    stored), larger ones and other stores through an opened object: the same parts."""
    clock = FakeClock()
    storage = MemoryStorage() if store == "memory" else DirectoryStorage(tmp_path)
    client = Client(Emulator(storage, clock=clock))
    large = bytes(range(256)) * 2400  # 600 KiB: more than the one-step limit
    client.put(f"{OBJ}/single", b"one", content_type="text/plain", x_snme_a="1")
    client.put(f"{OBJ}/large", large)
    client.put(f"{OBJ}/tti", b"idle", x_sn_expiration="tti:1h")
    client.put(f"{OBJ}/ttl", b"soon", x_sn_expiration="ttl:1m")
    _send(client, _part("insert", "batched", b"two", "x-snme-b: 2"))
    clock.advance(minutes=2)  # ttl has expired
    _, parts, _ = _send(
        client, *(_part("get", k) for k in ("single", "batched", "large", "tti", "ttl", "none"))
    )
    got = _by_index(parts)
    for index, key in enumerate(("single", "batched", "large", "tti")):
        headers, body = got[index]
        single = client.get(f"{OBJ}/{key}")
        assert body == single.body
        names = ("content-type", "x-sn-size", "x-sn-time-created", "x-sn-time-expires", "x-snme-a")
        for name in (*names, "x-snme-b"):
            assert headers.get(name) == single.headers.get(name)
        assert headers["x-sn-batch-operation-status"] == "200 OK"
    assert got[2][1] == large
    for index in (4, 5):  # expired, missing
        assert got[index][0]["x-sn-batch-operation-status"] == "404 Not Found"


def test_the_memory_store_hands_out_small_bodies_whole_and_large_ones_not() -> None:
    storage = MemoryStorage()
    client = Client(Emulator(storage, clock=FakeClock()))
    client.put(f"{OBJ}/written", b"via a writer")
    _send(client, _part("insert", "inserted", b"via put_small"))
    client.put(f"{OBJ}/large", b"x" * (600 * 1024))
    oid = ObjectId("test", "org=1", "written")
    found = storage.get_small(oid)
    assert found is not None and found[1] == b"via a writer" and type(found[1]) is bytes
    found = storage.get_small(ObjectId("test", "org=1", "inserted"))
    assert found is not None and found[1] == b"via put_small"
    found = storage.get_small(ObjectId("test", "org=1", "large"))
    assert found is not None and found[1] is None and found[0].size == 600 * 1024
    assert storage.get_small(ObjectId("test", "org=1", "absent")) is None
