"""The h11 socket server through LocalServer, with the stdlib http.client as the client."""

from __future__ import annotations

import http.client
import signal
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from objectstore_core.emulator import MemoryStorage, ObjectId
from objectstore_sync.emulator import DirectoryStorage, EmulatorServer, LocalServer
from tests.emulator.emulator_helpers import connect, recv_all

OBJ = "/v1/objects/test/org=1"
MiB = 1 << 20


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


class Opener:
    """Opens client connections to a server and closes them all at teardown."""

    def __init__(self) -> None:
        self.closers: list[Callable[[], None]] = []

    def http(self, server: LocalServer) -> http.client.HTTPConnection:
        host, port = server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        self.closers.append(conn.close)
        return conn

    def raw(self, server: LocalServer) -> socket.socket:
        sock = connect(server.url)
        self.closers.append(sock.close)
        return sock


@pytest.fixture
def opener() -> Iterator[Opener]:
    made = Opener()
    yield made
    for close in made.closers:
        close()


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_keep_alive_serves_several_requests_on_one_connection(
    server: LocalServer, opener: Opener
) -> None:
    conn = opener.http(server)
    conn.request("PUT", f"{OBJ}/k", body=b"hello", headers={"x-snme-a": "1"})
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b'{"key":"k"}')
    sock = conn.sock
    for _ in range(3):
        conn.request("GET", f"{OBJ}/k")
        response = conn.getresponse()
        assert response.read() == b"hello"
    conn.request("DELETE", f"{OBJ}/k")
    assert conn.getresponse().status == 204
    assert conn.sock is sock  # never reconnected
    assert server.server.connections_accepted == 1
    conn.close()


def test_response_headers_are_lower_case_with_server_and_date(
    server: LocalServer, opener: Opener
) -> None:
    conn = opener.http(server)
    conn.request("PUT", f"{OBJ}/k", body=b"x", headers={"Content-Type": "text/plain"})
    conn.getresponse().read()
    conn.request("GET", f"{OBJ}/k")
    response = conn.getresponse()
    response.read()
    names = [name for name, _ in response.getheaders()]
    assert names == [name.lower() for name in names]
    assert response.getheader("server") == "objectstore-emulator"
    assert response.getheader("date", "").endswith(" GMT")
    assert response.getheader("transfer-encoding") == "chunked"  # GET 200 (§1.1)
    assert response.getheader("content-length") is None
    assert response.getheader("content-type") == "text/plain"


def test_framing_of_head_206_404_and_204(server: LocalServer, opener: Opener) -> None:
    conn = opener.http(server)
    conn.request("PUT", f"{OBJ}/k", body=b"0123456789")
    conn.getresponse().read()

    conn.request("HEAD", f"{OBJ}/k")
    head = conn.getresponse()
    assert (head.status, head.read()) == (204, b"")
    assert head.getheader("content-length") is None
    assert head.getheader("transfer-encoding") is None
    assert head.getheader("x-sn-size") == "10"

    conn.request("GET", f"{OBJ}/k", headers={"Range": "bytes=2-4"})
    partial = conn.getresponse()
    assert (partial.status, partial.read()) == (206, b"234")
    assert partial.getheader("content-length") == "3"
    assert partial.getheader("content-range") == "bytes 2-4/10"

    conn.request("GET", f"{OBJ}/missing")
    missing = conn.getresponse()
    assert (missing.status, missing.read(), missing.getheader("content-length")) == (404, b"", "0")

    conn.request("DELETE", f"{OBJ}/k")
    deleted = conn.getresponse()
    assert (deleted.status, deleted.read(), deleted.getheader("content-length")) == (204, b"", None)

    conn.request("PUT", f"{OBJ}/", body=b"")
    not_allowed = conn.getresponse()
    assert (not_allowed.status, not_allowed.getheader("allow")) == (405, "POST")
    assert not_allowed.read() == b""


def test_chunked_upload(server: LocalServer, opener: Opener) -> None:
    conn = opener.http(server)
    parts = [b"alpha ", b"", b"beta ", b"gamma" * 1000]
    conn.request("PUT", f"{OBJ}/chunked", body=iter(parts), encode_chunked=True)
    assert conn.getresponse().read() == b'{"key":"chunked"}'
    conn.request("GET", f"{OBJ}/chunked")
    assert conn.getresponse().read() == b"".join(parts)


def test_large_streaming_body_in_bounded_memory(tmp_path: Path, opener: Opener) -> None:
    size = 64 * MiB
    block = bytes(range(256)) * 4096  # 1 MiB

    def body() -> Iterator[bytes]:
        for _ in range(size // MiB):
            yield block

    with LocalServer(data_dir=tmp_path) as server:
        conn = opener.http(server)
        tracemalloc.start()
        try:
            conn.request("PUT", f"{OBJ}/big", body=body(), headers={"content-length": str(size)})
            assert conn.getresponse().read() == b'{"key":"big"}'
            conn.request("GET", f"{OBJ}/big")
            response = conn.getresponse()
            received = 0
            while chunk := response.read(MiB):
                assert chunk == block[: len(chunk)] or len(chunk) < MiB
                received += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert received == size
        assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"
        conn.close()


def test_client_disconnect_mid_upload_leaves_no_object(tmp_path: Path, opener: Opener) -> None:
    with LocalServer(data_dir=tmp_path) as server:
        sock = opener.raw(server)
        sock.sendall(
            f"PUT {OBJ}/partial HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n".encode()
            + b"x" * 5000
        )
        time.sleep(0.05)
        sock.close()
        _eventually(lambda: not server.server._connections)
        oid = ObjectId("test", "org=1", "partial")
        assert server.storage.lookup(oid) is None
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_client_disconnect_mid_download_keeps_serving(server: LocalServer, opener: Opener) -> None:
    conn = opener.http(server)
    conn.request("PUT", f"{OBJ}/big", body=b"z" * (8 * MiB))
    conn.getresponse().read()
    sock = opener.raw(server)
    sock.sendall(f"GET {OBJ}/big HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    assert sock.recv(100).startswith(b"HTTP/1.1 200 OK")
    sock.close()
    _eventually(lambda: len(server.server._connections) == 1)  # only `conn` is left
    conn.request("GET", f"{OBJ}/big")
    assert len(conn.getresponse().read()) == 8 * MiB


def test_expect_100_continue(server: LocalServer, opener: Opener) -> None:
    sock = opener.raw(server)
    sock.sendall(
        f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n".encode()
        + b"expect: 100-continue\r\n\r\n"
    )
    assert sock.recv(1000) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(b"abc")
    reply = b""
    while not reply.endswith(b"}"):
        reply += sock.recv(1000)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b'{"key":"k"}')
    sock.close()


def test_expect_100_continue_with_an_early_error_answers_and_closes(
    server: LocalServer, opener: Opener
) -> None:
    sock = opener.raw(server)
    sock.sendall(
        (
            f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n"
            "content-encoding: gzip\r\nexpect: 100-continue\r\n\r\n"
        ).encode()
    )
    reply = recv_all(sock)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nconnection: close\r\n" in reply
    assert b"invalid compression value" in reply
    sock.close()


def test_early_error_drains_the_body_and_keeps_the_connection(
    server: LocalServer, opener: Opener
) -> None:
    conn = opener.http(server)
    conn.request("PUT", f"{OBJ}/k", body=b"x" * MiB, headers={"content-encoding": "gzip"})
    rejected = conn.getresponse()
    assert (rejected.status, rejected.getheader("connection")) == (400, None)
    rejected.read()
    sock = conn.sock
    conn.request("PUT", f"{OBJ}/k", body=b"ok")
    assert conn.getresponse().status == 200
    assert conn.sock is sock


def test_protocol_errors_get_400_and_close(server: LocalServer, opener: Opener) -> None:
    sock = opener.raw(server)
    sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    reply = recv_all(sock)
    assert reply.startswith(b"HTTP/1.1 400 ")
    sock.close()


def test_bad_chunked_framing_aborts_the_upload(server: LocalServer, opener: Opener) -> None:
    sock = opener.raw(server)
    sock.sendall(
        f"PUT {OBJ}/k HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".encode()
        + b"3\r\nabc\r\nZZZ\r\n"
    )
    assert recv_all(sock).startswith(b"HTTP/1.1 400 ")
    sock.close()
    assert server.storage.lookup(ObjectId("test", "org=1", "k")) is None


def test_http_10_client(server: LocalServer, opener: Opener) -> None:
    conn = opener.http(server)
    conn.request("PUT", f"{OBJ}/k", body=b"old school")
    conn.getresponse().read()
    sock = opener.raw(server)
    sock.sendall(f"GET {OBJ}/k HTTP/1.0\r\n\r\n".encode())
    reply = recv_all(sock)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"\r\n\r\nold school")
    assert b"transfer-encoding" not in reply.lower()


def test_pipelined_requests(server: LocalServer, opener: Opener) -> None:
    sock = opener.raw(server)
    put = f"PUT {OBJ}/p HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi"
    get = f"GET {OBJ}/p HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    sock.sendall((put + get).encode())
    reply = recv_all(sock)
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    assert reply.endswith(b"2\r\nhi\r\n0\r\n\r\n")


def test_shutdown_closes_idle_connections_quickly() -> None:
    server = EmulatorServer("127.0.0.1", 0)
    server.start()
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/health")
    assert conn.getresponse().read() == b"OK"
    started = time.monotonic()
    server.shutdown()
    assert time.monotonic() - started < 2
    assert conn.sock is not None and conn.sock.recv(10) == b""  # closed by the server
    conn.close()
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1)


def test_storage_choice(tmp_path: Path) -> None:
    with LocalServer() as memory:
        assert isinstance(memory.storage, MemoryStorage)
        assert memory.emulator.storage is memory.storage
    public_pem = Path(__file__).parent.parent / "data" / "ed25519.public.pem"
    keys = {"kid": public_pem}  # keys are read and checked even without enforcement
    with LocalServer(data_dir=tmp_path, auth_keys=keys, enforce_auth=False) as disk:
        assert isinstance(disk.storage, DirectoryStorage)
        assert disk.url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        _ = LocalServer().url


def _get_health(url: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().read()
    finally:
        conn.close()


def test_serve_forever_returns_after_shutdown_from_another_thread() -> None:
    server = EmulatorServer("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    assert _get_health(server.url) == b"OK"
    server.shutdown()
    thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(RuntimeError):
        server.start()


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
@pytest.mark.parametrize("how", ["shutdown-in-handler", "keyboard-interrupt"])
def test_serve_forever_in_the_main_thread_stops_on_a_signal(how: str) -> None:
    server = EmulatorServer("127.0.0.1", 0)
    results: list[bytes] = []
    client = threading.Thread(target=lambda: results.append(_get_health(server.url)))

    def on_alarm(signum: int, frame: object) -> None:
        if how == "shutdown-in-handler":
            server.shutdown()
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        client.start()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            assert how == "keyboard-interrupt"
        finally:
            server.shutdown()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    client.join(5)
    assert results == [b"OK"]
