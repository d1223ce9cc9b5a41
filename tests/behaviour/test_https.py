"""HTTPS for both twins, against the emulator serving TLS on loopback.

The certificates are made for the test (a throwaway CA and a server
certificate from :class:`LocalCertificate`; a client certificate from
``tests.certificates``). Each test runs the sync twin and the async twin
under asyncio and trio with the same ``connection_kwargs``, which must mean
the same in all three: trust (``ca_certs``, ``ca_cert_data``,
``ssl_context``), ``cert_reqs="CERT_NONE"``, host names
(``server_hostname``, ``assert_hostname``), a client certificate, and the
socket and pool options.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest

from objectstore_async import AsyncClient
from objectstore_sync import (
    Client,
    ConnectError,
    RetryPolicy,
    Timeout,
    TransportError,
    Usecase,
)
from objectstore_sync.testing import LocalCertificate, LocalServer
from tests.behaviour.twins import AsyncSessionView
from tests.certificates import ClientCertificate, requiring_client_certificates

_counter = itertools.count()


def _kinds() -> list[Any]:
    """The sync twin, and the async twin under asyncio and under trio."""
    return [pytest.param(kind, id=kind) for kind in ("sync", "asyncio", "trio")]


@pytest.fixture(scope="module")
def certificate() -> LocalCertificate:
    return LocalCertificate.create()


@pytest.fixture(scope="module")
def server(certificate: LocalCertificate) -> Iterator[LocalServer]:
    with LocalServer(tls=certificate) as running:
        yield running


@contextlib.contextmanager
def _session(kind: str, url: str, **connection_kwargs: Any) -> Iterator[Any]:
    """A session of the ``kind`` twin (blocking view for async) with these options."""
    options: dict[str, Any] = {
        "timeout": Timeout(connect=5, read=10, write=10),
        "retry": RetryPolicy.disabled(),  # a refused handshake fails at once
        "connection_kwargs": connection_kwargs,
    }
    usecase, scope = Usecase("attachments"), {"org": 42, "test": next(_counter)}
    if kind == "sync":
        with Client(url, **options) as client:
            yield client.session(usecase, **scope)
        return
    made = AsyncClient(url, **options)
    with anyio.from_thread.start_blocking_portal(backend=kind) as portal:
        try:
            yield AsyncSessionView(made.session(usecase, **scope), portal)
        finally:
            portal.call(made.aclose)


def _round_trip(session: Any) -> None:
    """put, get, head and delete one object."""
    key = session.put(b"over https", key="tls/object", content_type="text/plain")
    assert key == "tls/object"
    got = session.get(key)
    assert got is not None
    with got:
        assert got.read() == b"over https"
    metadata = session.head(key)
    assert metadata is not None and metadata.content_type == "text/plain"
    session.delete(key)
    assert session.get(key) is None and session.head(key) is None


def _verification_failed(error: BaseException) -> bool:
    return re.search(r"certificate verif", str(error), re.IGNORECASE) is not None


# ------------------------------------------------------------------ trusting the CA


@pytest.mark.parametrize("kind", _kinds())
def test_ca_certs_file(kind: str, server: LocalServer) -> None:
    assert server.url.startswith("https://127.0.0.1:")
    with _session(kind, server.url, ca_certs=server.ca_file) as session:
        _round_trip(session)


@pytest.mark.parametrize("kind", _kinds())
def test_ca_cert_data(kind: str, server: LocalServer, certificate: LocalCertificate) -> None:
    with _session(kind, server.url, ca_cert_data=certificate.ca_pem) as session:
        _round_trip(session)


@pytest.mark.parametrize("kind", _kinds())
def test_ca_cert_data_as_pem_bytes(
    kind: str, server: LocalServer, certificate: LocalCertificate
) -> None:
    # ssl reads bytes as DER: ConnectionOptions hands PEM bytes on as text.
    with _session(kind, server.url, ca_cert_data=certificate.ca_pem.encode()) as session:
        _round_trip(session)


@pytest.mark.parametrize("kind", _kinds())
def test_ssl_context(kind: str, server: LocalServer) -> None:
    with _session(kind, server.url, ssl_context=server.client_context()) as session:
        _round_trip(session)


@pytest.mark.parametrize("kind", _kinds())
def test_a_path_object_names_the_ca_file(kind: str, server: LocalServer) -> None:
    with _session(kind, server.url, ca_certs=Path(server.ca_file)) as session:
        _round_trip(session)


# ------------------------------------------------------------------ refusing the server


@pytest.mark.parametrize("kind", _kinds())
def test_another_ca_is_a_connect_error_about_verification(kind: str, server: LocalServer) -> None:
    stranger = LocalCertificate.create()
    with (
        _session(kind, server.url, ca_cert_data=stranger.ca_pem) as session,
        pytest.raises(ConnectError) as info,
    ):
        session.put(b"never sent", key="refused")
    assert _verification_failed(info.value), info.value
    assert isinstance(info.value.__cause__, Exception)


@pytest.mark.parametrize("kind", _kinds())
def test_the_system_cas_do_not_trust_a_throwaway_ca(kind: str, server: LocalServer) -> None:
    with _session(kind, server.url) as session, pytest.raises(ConnectError) as info:
        session.head("refused")
    assert _verification_failed(info.value), info.value


@pytest.mark.parametrize("kind", _kinds())
def test_cert_none_connects_without_verifying(kind: str, server: LocalServer) -> None:
    with _session(kind, server.url, cert_reqs="CERT_NONE") as session:
        _round_trip(session)


# ------------------------------------------------------------------ host names


@pytest.fixture(scope="module")
def named_server() -> Iterator[tuple[LocalServer, LocalCertificate]]:
    """A server whose certificate is valid for ``objectstore.test`` only, on 127.0.0.1."""
    certificate = LocalCertificate.create(["objectstore.test"])
    with LocalServer(tls=certificate) as running:
        yield running, certificate


@pytest.mark.parametrize("kind", _kinds())
def test_a_certificate_for_another_name_is_refused(
    kind: str, named_server: tuple[LocalServer, LocalCertificate]
) -> None:
    running, certificate = named_server
    with (
        _session(kind, running.url, ca_cert_data=certificate.ca_pem) as session,
        pytest.raises(ConnectError) as info,
    ):
        session.head("refused")
    assert "127.0.0.1" in str(info.value)


@pytest.mark.parametrize("kind", _kinds())
def test_server_hostname_names_the_certificate(
    kind: str, named_server: tuple[LocalServer, LocalCertificate]
) -> None:
    running, certificate = named_server
    kwargs = {"ca_cert_data": certificate.ca_pem, "server_hostname": "objectstore.test"}
    with _session(kind, running.url, **kwargs) as session:
        _round_trip(session)


@pytest.mark.parametrize("kind", _kinds())
def test_assert_hostname(kind: str, named_server: tuple[LocalServer, LocalCertificate]) -> None:
    running, certificate = named_server
    trusted = {"ca_cert_data": certificate.ca_pem}
    with _session(kind, running.url, **trusted, assert_hostname="objectstore.test") as session:
        _round_trip(session)
    with _session(kind, running.url, **trusted, assert_hostname=False) as session:
        _round_trip(session)
    with (
        _session(kind, running.url, **trusted, assert_hostname="other.test") as session,
        pytest.raises(ConnectError),
    ):
        session.head("refused")


# ------------------------------------------------------------------ client certificates


@pytest.fixture(scope="module")
def client_certificate(tmp_path_factory: pytest.TempPathFactory) -> ClientCertificate:
    return ClientCertificate.create(tmp_path_factory.mktemp("client-certificate"))


@pytest.fixture(scope="module")
def strict_server(
    certificate: LocalCertificate, client_certificate: ClientCertificate
) -> Iterator[LocalServer]:
    """A server that requires a client certificate signed by the client CA."""
    context = requiring_client_certificates(certificate.server_context(), client_certificate.ca_pem)
    with LocalServer(tls=context) as running:
        yield running


@pytest.mark.parametrize("kind", _kinds())
def test_a_client_certificate_is_presented(
    kind: str,
    strict_server: LocalServer,
    certificate: LocalCertificate,
    client_certificate: ClientCertificate,
) -> None:
    kwargs = {
        "ca_cert_data": certificate.ca_pem,
        "cert_file": client_certificate.cert_file,
        "key_file": client_certificate.key_file,
        "key_password": client_certificate.password,
    }
    with _session(kind, strict_server.url, **kwargs) as session:
        _round_trip(session)
    combined = {"ca_cert_data": certificate.ca_pem, "cert_file": client_certificate.combined_file}
    with _session(kind, strict_server.url, **combined) as session:
        _round_trip(session)


@pytest.mark.parametrize("kind", _kinds())
def test_no_client_certificate_is_refused_by_a_strict_server(
    kind: str, strict_server: LocalServer, certificate: LocalCertificate
) -> None:
    with (
        _session(kind, strict_server.url, ca_cert_data=certificate.ca_pem) as session,
        pytest.raises(TransportError),
    ):
        # TLS 1.3 finishes the client's handshake first: the refusal may come with the answer.
        session.head("refused")


@pytest.mark.parametrize("kind", _kinds())
def test_a_client_certificate_in_a_given_context(
    kind: str,
    strict_server: LocalServer,
    certificate: LocalCertificate,
    client_certificate: ClientCertificate,
) -> None:
    context = certificate.client_context()
    context.load_cert_chain(
        client_certificate.cert_file, client_certificate.key_file, client_certificate.password
    )
    with _session(kind, strict_server.url, ssl_context=context) as session:
        _round_trip(session)


# ------------------------------------------------------------------ versions, sockets, pool


@pytest.mark.parametrize("kind", _kinds())
def test_tls_versions(kind: str, server: LocalServer, certificate: LocalCertificate) -> None:
    for bound in ("ssl_minimum_version", "ssl_maximum_version"):
        kwargs = {"ca_cert_data": certificate.ca_pem, bound: ssl.TLSVersion.TLSv1_2}
        with _session(kind, server.url, **kwargs) as session:
            _round_trip(session)


@pytest.mark.parametrize("kind", _kinds())
def test_socket_and_pool_options_over_https(
    kind: str, server: LocalServer, certificate: LocalCertificate
) -> None:
    kwargs = {
        "ca_cert_data": certificate.ca_pem,
        "socket_options": [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)],
        "source_address": ("127.0.0.1", 0),
        "maxsize": 2,
        "block": True,
    }
    with _session(kind, server.url, **kwargs) as session:
        _round_trip(session)


@pytest.mark.parametrize("kind", _kinds())
def test_socket_and_pool_options_over_http(kind: str) -> None:
    kwargs = {
        "socket_options": [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)],
        "source_address": ("127.0.0.1", 0),
        "maxsize": 2,
    }
    with LocalServer() as running, _session(kind, running.url, **kwargs) as session:
        _round_trip(session)


@pytest.mark.parametrize("kind", _kinds())
def test_tls_options_need_an_https_url(kind: str, server: LocalServer) -> None:
    plain = server.url.replace("https://", "http://")
    with (
        pytest.raises(ValueError, match=r"connection_kwargs\['ca_certs'\] is a TLS option"),
        _session(kind, plain, ca_certs=server.ca_file),
    ):
        pass  # pragma: no cover
