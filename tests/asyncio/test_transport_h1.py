"""The async network transport itself: pool, keep-alive resend, errors, TLS, fork.

Driven directly with :class:`Request` descriptions against small hand-made
loopback servers, under asyncio and trio. The behaviour every caller sees is
covered by tests/behaviour and tests/reliability.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import os
import socket
import ssl
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

from objectstore_async._transport import AsyncSocketTransport
from objectstore_core import (
    ConnectError,
    PayloadKind,
    PoolTimeout,
    ProtocolError,
    ReadError,
    ReadTimeout,
    Request,
    Timeout,
    Upload,
    client_config,
)
from tests.reliability.conftest import RawServer, full_backlog_url, read_head

BACKENDS = ["asyncio", "trio"]
OK_EMPTY = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


def _run(test: Callable[[], Any], backend: str) -> None:
    anyio.run(test, backend=backend)


def _transport(url: str, **kwargs: Any) -> AsyncSocketTransport:
    return AsyncSocketTransport(client_config(url, **kwargs))


def _numbered_connections() -> tuple[Callable[[socket.socket], None], list[bytes]]:
    """A keep-alive handler answering each request with its connection's number;
    also returns the list of request heads it received."""
    numbers = itertools.count(1)
    heads: list[bytes] = []

    def handle(sock: socket.socket) -> None:
        number = str(next(numbers)).encode()
        while head := read_head(sock):
            heads.append(head)
            sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(number), number))

    return handle, heads


@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_connections_are_reused_last_in_first_out(backend: str) -> None:
    handler, heads = _numbered_connections()
    with RawServer(handler) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            _, body1 = await transport.send(Request("GET", "/a", stream=True))
            _, body2 = await transport.send(Request("GET", "/b", stream=True))
            assert body1 is not None and body2 is not None
            assert transport.pool_stats() == {"idle": 0, "in_use": 2}
            assert await body1.read() == b"1" and await body1.read() == b""
            assert await body2.read() == b"2" and await body2.read() == b""
            assert transport.pool_stats() == {"idle": 2, "in_use": 0}
            # Connection 2 was released last: it serves the next request.
            response, body = await transport.send(Request("GET", "/c"))
            assert body is None and response.body == b"2"
            await transport.aclose()
            assert transport.pool_stats() == {"idle": 0, "in_use": 0}
            with pytest.raises(ConnectError, match="closed"):
                await transport.send(Request("GET", "/d"))

        _run(main, backend)
    assert heads[0].startswith(b"GET /a HTTP/1.1\r\nhost: 127.0.0.1:")


@pytest.mark.parametrize("backend", BACKENDS)
def test_pool_timeout_while_the_only_connection_is_streaming(backend: str) -> None:
    handler, _ = _numbered_connections()
    with RawServer(handler) as raw:
        transport = _transport(raw.url, max_connections=1)

        async def main() -> None:
            _, held = await transport.send(Request("GET", "/a", stream=True))
            assert held is not None
            with pytest.raises(PoolTimeout):
                await transport.send(Request("GET", "/b", timeout=Timeout(pool=0.05)))
            waiter_done = anyio.Event()

            async def waiter() -> None:
                response, _ = await transport.send(Request("GET", "/c"))
                assert response.body == b"2"  # a new connection in the freed slot
                waiter_done.set()

            async with anyio.create_task_group() as group:
                group.start_soon(waiter)
                await anyio.sleep(0.05)
                assert not waiter_done.is_set()
                await held.aclose()  # unfinished: its connection is closed, the slot freed
            response, _ = await transport.send(Request("GET", "/d"))
            assert response.body == b"2"
            assert transport.pool_stats() == {"idle": 1, "in_use": 0}
            await transport.aclose()

        _run(main, backend)


def _answers_once_then_drops() -> tuple[Callable[[socket.socket], None], list[bytes]]:
    """Each connection answers its first request, then closes on reading the next one
    without a response: a keep-alive connection the server dropped under the client."""
    heads: list[bytes] = []

    def handle(sock: socket.socket) -> None:
        heads.append(read_head(sock))
        sock.sendall(OK_EMPTY)
        heads.append(read_head(sock))

    return handle, heads


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dead_reused_connection_is_resent_once_for_idempotent_methods(backend: str) -> None:
    handler, heads = _answers_once_then_drops()
    with RawServer(handler) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            assert (await transport.send(Request("HEAD", "/a")))[0].status == 200
            # Reuses the idle connection, which the server drops: sent again on a new one.
            assert (await transport.send(Request("PUT", "/b", body=b"x")))[0].status == 200
            assert transport.pool_stats() == {"idle": 1, "in_use": 0}
            await transport.aclose()

        _run(main, backend)
    assert [head.split(b" ", 2)[:2] for head in heads if head] == [
        [b"HEAD", b"/a"],
        [b"PUT", b"/b"],
        [b"PUT", b"/b"],
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_keyless_post_is_never_resent(backend: str) -> None:
    handler, heads = _answers_once_then_drops()
    with RawServer(handler) as raw:
        transport = _transport(raw.url)

        async def main() -> None:
            await transport.send(Request("HEAD", "/a"))
            with pytest.raises(ReadError):
                await transport.send(Request("POST", "/b", body=b"x"))
            assert transport.pool_stats() == {"idle": 0, "in_use": 0}
            await transport.aclose()

        _run(main, backend)
    assert len([head for head in heads if head]) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_body_that_stalls_raises_read_timeout_and_closes(backend: str) -> None:
    release = threading.Event()

    def stalls(sock: socket.socket) -> None:
        read_head(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        release.wait(5)

    with RawServer(stalls) as raw:
        transport = _transport(raw.url, timeout=Timeout(read=0.1))

        async def main() -> None:
            _, body = await transport.send(Request("GET", "/a", stream=True))
            assert body is not None and await body.read() == b"abc"
            with pytest.raises(ReadTimeout) as info:
                await body.read()
            assert info.value.__cause__ is not None
            assert transport.pool_stats() == {"idle": 0, "in_use": 0}
            assert await body.read() == b""
            with pytest.raises(ReadTimeout):  # read whole by the transport
                await transport.send(Request("GET", "/b"))

        try:
            _run(main, backend)
        finally:
            release.set()


class _Boom(Exception):
    pass


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_callers_payload_error_reaches_them_unchanged(backend: str) -> None:
    cause = KeyError("inner")

    def sink(sock: socket.socket) -> None:
        while sock.recv(65536):
            pass

    with RawServer(sink) as raw:
        transport = _transport(raw.url, max_connections=1)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"some bytes"
            try:
                raise cause
            except KeyError as exc:
                raise _Boom("from the payload") from exc

        async def main() -> None:
            upload = Upload(chunks(), PayloadKind.ASYNC_ITERABLE, compress=False)
            with pytest.raises(_Boom) as info:
                await transport.send(Request("PUT", "/k", body=upload))
            assert info.value.__cause__ is cause
            assert transport.pool_stats() == {"idle": 0, "in_use": 0}
            await transport.aclose()

        _run(main, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancelled_connect_frees_the_slot(backend: str) -> None:
    with full_backlog_url() as url:
        transport = _transport(url, max_connections=1, timeout=Timeout(connect=None))

        async def main() -> None:
            with anyio.move_on_after(0.1) as scope:
                await transport.send(Request("HEAD", "/a"))
            assert scope.cancelled_caught
            assert transport.pool_stats() == {"idle": 0, "in_use": 0}

        _run(main, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_invalid_header_value_is_never_shown(backend: str) -> None:
    transport = _transport("http://127.0.0.1:9")
    secret = "Bearer sekrit\r\nx-injected: 1"

    async def main() -> None:
        with pytest.raises(ProtocolError) as info:
            await transport.send(Request("HEAD", "/a", headers=(("x-os-auth", secret),)))
        assert "sekrit" not in str(info.value) and info.value.__cause__ is None
        assert transport.pool_stats() == {"idle": 0, "in_use": 0}

    _run(main, backend)


def test_unknown_connection_kwargs_are_refused() -> None:
    with pytest.raises(ValueError, match="http2"):
        _transport("http://127.0.0.1:9", connection_kwargs={"http2": True})


def test_host_header_brackets_ipv6_and_omits_default_ports() -> None:
    assert _transport("http://[::1]:8080")._host_header == "[::1]:8080"
    assert _transport("http://example.com")._host_header == "example.com"
    assert _transport("https://example.com:443/p")._host_header == "example.com"
    assert _transport("https://example.com:80")._host_header == "example.com:80"


# ---------------------------------------------------------------------- TLS


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "objectstore test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _TLSServer:
    """Answers every request of every connection with 200 and the request's Host, over TLS."""

    def __init__(self, cert: Path, key: Path) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> _TLSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(5)
            with self._context.wrap_socket(sock, server_side=True) as tls:
                while head := read_head(tls):
                    host = next(
                        line.split(b":", 1)[1].strip()
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"host:")
                    )
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(host), host)
                    )
        except (OSError, ssl.SSLError):
            pass
        finally:
            sock.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _self_signed(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_https_verifies_with_the_given_ca_and_reuses_the_connection(
    backend: str, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    with _TLSServer(cert, key) as server:
        url = f"https://localhost:{server.port}"

        async def main() -> None:
            transport = _transport(url, connection_kwargs={"ca_certs": str(cert)})
            for _ in range(2):
                response, _ = await transport.send(Request("GET", "/a"))
                assert (
                    response.status == 200 and response.body == f"localhost:{server.port}".encode()
                )
            assert transport.pool_stats() == {"idle": 1, "in_use": 0}
            await transport.aclose()

            context = ssl.create_default_context(cafile=str(cert))
            transport = _transport(url, connection_kwargs={"ssl_context": context})
            assert (await transport.send(Request("GET", "/b")))[0].status == 200
            await transport.aclose()

            # The default context does not trust a self-signed certificate.
            transport = _transport(url)
            with pytest.raises(ConnectError) as info:
                await transport.send(Request("GET", "/c"))
            assert info.value.__cause__ is not None
            assert transport.pool_stats() == {"idle": 0, "in_use": 0}

        _run(main, backend)


# ---------------------------------------------------------------------- fork


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_with_an_empty_pool() -> None:
    handler, _ = _numbered_connections()
    with RawServer(handler) as raw:
        transport = _transport(raw.url)

        async def numbered() -> bytes:
            response, _ = await transport.send(Request("GET", "/n"))
            return response.body

        with anyio.from_thread.start_blocking_portal() as portal:
            assert portal.call(numbered) == b"1"
            assert transport.pool_stats() == {"idle": 1, "in_use": 0}
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                status = 1
                try:
                    assert transport.pool_stats() == {"idle": 0, "in_use": 0}
                    assert anyio.run(numbered) == b"2"  # its own connection
                    status = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stderr.flush()
                    os._exit(status)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            # The parent's connection was not disturbed by the child.
            assert portal.call(numbered) == b"1"
            portal.call(transport.aclose)
