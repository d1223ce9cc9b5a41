"""The socket server over TLS: ``LocalServer(tls=...)`` and ``LocalCertificate``.

Clients here are the standard library's (``ssl`` sockets, ``http.client``),
so these tests prove the server's side; the twins' https paths are tested
against it elsewhere.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import h11
import pytest
from cryptography import x509

from objectstore_core.emulator import Fault
from objectstore_sync.emulator import EmulatorServer, LocalCertificate, LocalServer

OBJ = "/v1/objects/tls/org=1"


@pytest.fixture(scope="module")
def certificate() -> LocalCertificate:
    return LocalCertificate.create()


@pytest.fixture
def server(certificate: LocalCertificate) -> Iterator[LocalServer]:
    with LocalServer(tls=certificate) as running:
        yield running


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _tls_connect(
    server: LocalServer, context: ssl.SSLContext | None = None, hostname: str = "127.0.0.1"
) -> ssl.SSLSocket:
    raw = socket.create_connection(_address(server.url), timeout=10)
    try:
        return (context or server.client_context()).wrap_socket(raw, server_hostname=hostname)
    except BaseException:
        raw.close()
        raise


def _exchange(sock: ssl.SSLSocket, request: h11.Request, body: bytes = b"") -> tuple[int, bytes]:
    """One request on ``sock`` read back with h11: ``(status, body)``."""
    connection = h11.Connection(h11.CLIENT)
    data = connection.send(request) or b""
    if body:
        data += connection.send(h11.Data(data=body)) or b""
    data += connection.send(h11.EndOfMessage()) or b""
    sock.sendall(data)
    status, received = 0, b""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            received += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return status, received


def _request(method: str, target: str, body: bytes = b"") -> h11.Request:
    headers = [("host", "127.0.0.1")]
    if method in ("PUT", "POST"):
        headers.append(("content-length", str(len(body))))
    return h11.Request(method=method, target=target, headers=headers)


def _https(server: LocalServer) -> http.client.HTTPSConnection:
    host, port = _address(server.url)
    return http.client.HTTPSConnection(host, port, timeout=10, context=server.client_context())


def test_the_server_speaks_tls(server: LocalServer) -> None:
    assert server.url.startswith("https://127.0.0.1:")
    with _tls_connect(server) as sock:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        peer = sock.getpeercert()
        assert peer is not None and ("IP Address", "127.0.0.1") in peer["subjectAltName"]
        put = _request("PUT", f"{OBJ}/k", b"hello")
        assert _exchange(sock, put, b"hello") == (200, b'{"key":"k"}')
        assert _exchange(sock, _request("GET", f"{OBJ}/k")) == (200, b"hello")  # kept alive
    assert server.server.connections_accepted == 1


def test_every_loopback_name_is_in_the_certificate(server: LocalServer) -> None:
    for hostname in ("127.0.0.1", "localhost"):
        with _tls_connect(server, hostname=hostname) as sock:
            assert _exchange(sock, _request("GET", "/health"))[0] == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        _tls_connect(server, hostname="objectstore.example")


def test_a_client_that_does_not_trust_the_ca_refuses_the_server(server: LocalServer) -> None:
    for context in (ssl.create_default_context(), LocalCertificate.create().client_context()):
        with pytest.raises(ssl.SSLCertVerificationError):
            _tls_connect(server, context)
    with _tls_connect(server) as sock:  # the failed handshakes did not hurt the server
        assert _exchange(sock, _request("GET", "/health"))[0] == 200


def test_plain_http_to_the_tls_port_gets_no_http_answer(server: LocalServer) -> None:
    with socket.create_connection(_address(server.url), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        received = b""
        with contextlib.suppress(ConnectionResetError):  # a reset ends the read like EOF
            while chunk := sock.recv(65536):
                received += chunk
    assert not received.startswith(b"HTTP/")
    with _tls_connect(server) as tls:
        assert _exchange(tls, _request("GET", "/health"))[0] == 200


def test_large_and_chunked_bodies_and_stored_files(tmp_path: Path) -> None:
    """Bodies over TLS take the paths without MSG_WAITALL, sendmsg and sendfile."""
    payload = bytes(range(256)) * (3 << 12)  # 3 MiB
    with LocalServer(data_dir=tmp_path, tls=True) as server:
        connection = _https(server)
        try:
            connection.request("PUT", f"{OBJ}/sized", body=payload)
            assert connection.getresponse().read() == b'{"key":"sized"}'
            pieces = (payload[i : i + 10_000] for i in range(0, len(payload), 10_000))
            connection.request("PUT", f"{OBJ}/chunked", body=pieces, encode_chunked=True)
            assert connection.getresponse().read() == b'{"key":"chunked"}'
            for key in ("sized", "chunked"):
                connection.request("GET", f"{OBJ}/{key}")
                response = connection.getresponse()
                assert (response.status, response.read()) == (200, payload)
            connection.request("GET", f"{OBJ}/sized", headers={"range": "bytes=5-9"})
            assert connection.getresponse().read() == payload[5:10]
        finally:
            connection.close()
        assert server.server.connections_accepted == 1


def test_faults_act_on_the_tls_connection(server: LocalServer) -> None:
    connection = _https(server)
    try:
        connection.request("PUT", f"{OBJ}/k", body=b"0123456789" * 10)
        connection.getresponse().read()
        server.faults.inject(Fault.truncate(after=10), method="GET")
        connection.request("GET", f"{OBJ}/k")
        with pytest.raises((http.client.IncompleteRead, ssl.SSLError)):
            connection.getresponse().read()
    finally:
        connection.close()


def test_a_stall_ends_when_a_tls_client_hangs_up(server: LocalServer) -> None:
    server.faults.inject(Fault.stall(60), method="HEAD")
    with _tls_connect(server) as sock:
        sock.sendall(f"HEAD {OBJ}/k HTTP/1.1\r\nhost: t\r\n\r\n".encode())
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # stalled
    started = time.monotonic()
    server.stop()  # a handler still stalled would hold shutdown for its grace period (5 s)
    assert time.monotonic() - started < 2.0


def test_a_request_sent_during_a_tls_stall_is_served_after_it(server: LocalServer) -> None:
    server.faults.inject(Fault.stall(0.5), method="HEAD")
    head = f"HEAD {OBJ}/k HTTP/1.1\r\nhost: t\r\n\r\n".encode()
    with _tls_connect(server) as sock:
        sock.sendall(head)
        time.sleep(0.2)
        sock.sendall(head)  # arrives while the first answer stalls
        replies = b""
        while replies.count(b"HTTP/1.1 404") < 2:
            chunk = sock.recv(65536)
            assert chunk, replies
            replies += chunk


def test_local_server_tls_options(certificate: LocalCertificate) -> None:
    plain = LocalServer()
    assert plain.certificate is None
    with pytest.raises(RuntimeError, match="no certificate"):
        plain.client_context()
    with pytest.raises(TypeError, match="tls="):
        LocalServer(tls="yes")  # type: ignore[arg-type]
    own = LocalServer(tls=certificate.server_context())  # any server-side context
    assert own.certificate is None
    with own:
        assert own.url.startswith("https://")
        with _tls_connect(own, certificate.client_context()) as sock:
            assert _exchange(sock, _request("GET", "/health"))[0] == 200
    fresh = LocalServer(tls=True)
    assert fresh.certificate is not None
    assert fresh.certificate.hosts == ("127.0.0.1", "::1", "localhost")
    with fresh:
        ca_file = Path(fresh.ca_file)
        assert ca_file.read_text() == fresh.certificate.ca_pem
        context = ssl.create_default_context(cafile=ca_file)
        with _tls_connect(fresh, context) as sock:
            assert _exchange(sock, _request("GET", "/health"))[0] == 200
    assert not ca_file.exists()
    with pytest.raises(TypeError, match=r"ssl\.SSLContext"):
        EmulatorServer("127.0.0.1", 0, tls=certificate)  # type: ignore[arg-type]


def test_local_certificate_contents(tmp_path: Path) -> None:
    made = LocalCertificate.create(["127.0.0.1", "objectstore.test"])
    leaf, ca = x509.load_pem_x509_certificates(made.cert_pem.encode())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["objectstore.test"]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert x509.load_pem_x509_certificate(made.ca_pem.encode()) == ca
    leaf.verify_directly_issued_by(ca)
    assert made.write_ca(tmp_path / "ca.pem").read_text() == made.ca_pem
    with pytest.raises(ValueError, match="hosts"):
        LocalCertificate.create("127.0.0.1")
