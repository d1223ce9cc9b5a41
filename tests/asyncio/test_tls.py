"""The async twin's TLS context means what urllib3 makes of the same options.

Each context is tried in a handshake through memory BIOs against the
emulator's test certificate (no sockets): trust, host names, client
certificates, versions and ALPN are all seen by a real TLS peer.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from objectstore_async._tls import check_hostname, ssl_context
from objectstore_async.testing import LocalCertificate
from objectstore_core._certnames import server_hostname
from objectstore_core._options import ConnectionOptions
from tests.certificates import ClientCertificate, handshake, requiring_client_certificates


@pytest.fixture(scope="module")
def certificate() -> LocalCertificate:
    return LocalCertificate.create()


@pytest.fixture(scope="module")
def stranger() -> LocalCertificate:
    """Another CA and server certificate: trusting it must not trust ``certificate``."""
    return LocalCertificate.create()


@pytest.fixture(scope="module")
def client_certificate(tmp_path_factory: pytest.TempPathFactory) -> ClientCertificate:
    return ClientCertificate.create(tmp_path_factory.mktemp("client"))


@pytest.fixture
def ca_file(certificate: LocalCertificate, tmp_path: Path) -> str:
    return str(certificate.write_ca(tmp_path / "ca.pem"))


def _context(**kwargs: Any) -> ssl.SSLContext:
    made = ssl_context(ConnectionOptions.parse(kwargs, "https"))
    assert made is not None
    return made


def _connect(
    context: ssl.SSLContext,
    server: LocalCertificate | ssl.SSLContext,
    name: str | None = "localhost",
) -> ssl.SSLObject:
    far = server.server_context() if isinstance(server, LocalCertificate) else server
    return handshake(context, far, name)[0]


def test_no_context_for_http() -> None:
    assert ssl_context(ConnectionOptions.parse(None, "http")) is None


def test_the_default_verifies_with_the_system_cas_as_urllib3(
    certificate: LocalCertificate,
) -> None:
    context = _context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION and context.options & ssl.OP_NO_TICKET
    assert context.post_handshake_auth and not context.hostname_checks_common_name
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _connect(context, certificate)  # a throwaway CA is not a system CA


def test_alpn_offers_http_1_1_only(certificate: LocalCertificate, ca_file: str) -> None:
    server = certificate.server_context()
    server.set_alpn_protocols(["h2", "http/1.1"])
    assert _connect(_context(ca_certs=ca_file), server).selected_alpn_protocol() == "http/1.1"


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "::1"])
def test_a_ca_bundle_file_is_trusted_instead_of_the_system(
    certificate: LocalCertificate, ca_file: str, name: str
) -> None:
    seen = _connect(_context(ca_certs=ca_file), certificate, name).getpeercert()
    assert seen is not None and seen["subjectAltName"]


def test_a_ca_bundle_path_may_start_with_the_home_directory(
    certificate: LocalCertificate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    certificate.write_ca(tmp_path / "ca.pem")
    _connect(_context(ca_certs="~/ca.pem"), certificate)


def test_ca_data_as_text_or_bytes(certificate: LocalCertificate) -> None:
    _connect(_context(ca_cert_data=certificate.ca_pem), certificate)
    _connect(_context(ca_cert_data=certificate.ca_pem.encode()), certificate)
    der = ssl.PEM_cert_to_DER_cert(certificate.ca_pem)
    _connect(_context(ca_cert_data=der), certificate)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_hashed_ca_directory(certificate: LocalCertificate, tmp_path: Path) -> None:
    ca = certificate.write_ca(tmp_path / "ca.pem")
    digest = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(ca)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / f"{digest}.0").write_text(certificate.ca_pem, encoding="ascii")
    _connect(_context(ca_cert_dir=str(folder)), certificate)


def test_another_ca_is_refused(stranger: LocalCertificate, certificate: LocalCertificate) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _connect(_context(ca_cert_data=stranger.ca_pem), certificate)


def test_a_wrong_host_name_is_refused(certificate: LocalCertificate, ca_file: str) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _connect(_context(ca_certs=ca_file), certificate, "objectstore.example")


@pytest.mark.parametrize("spelling", ["CERT_NONE", "NONE", ssl.CERT_NONE])
def test_cert_none_checks_neither_chain_nor_name(
    certificate: LocalCertificate, spelling: object
) -> None:
    context = _context(cert_reqs=spelling)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    tls = _connect(context, certificate, "objectstore.example")
    check_hostname(ConnectionOptions.parse({"cert_reqs": spelling}, "https"), "x.example", tls)


def test_assert_hostname_false_checks_the_chain_only(
    certificate: LocalCertificate, stranger: LocalCertificate, ca_file: str
) -> None:
    options = ConnectionOptions.parse({"ca_certs": ca_file, "assert_hostname": False}, "https")
    context = ssl_context(options)
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    tls = _connect(context, certificate, "objectstore.example")
    check_hostname(options, "objectstore.example", tls)  # nothing to check
    with pytest.raises(ssl.SSLCertVerificationError):
        _connect(_context(ca_cert_data=stranger.ca_pem, assert_hostname=False), certificate)


def test_assert_hostname_names_the_certificate_to_expect(
    certificate: LocalCertificate, ca_file: str
) -> None:
    options = ConnectionOptions.parse({"ca_certs": ca_file, "assert_hostname": "::1"}, "https")
    context = ssl_context(options)
    assert context is not None and not context.check_hostname
    # SNI still carries the host; the certificate must be valid for the asserted name.
    tls = _connect(context, certificate, server_hostname(options, "objectstore.example"))
    check_hostname(options, "objectstore.example", tls)
    wrong = ConnectionOptions.parse({"ca_certs": ca_file, "assert_hostname": "x.example"}, "https")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"verify failed.*x\.example"):
        check_hostname(wrong, "localhost", tls)


def test_server_hostname_replaces_the_host_for_sni_and_the_check(
    certificate: LocalCertificate, ca_file: str
) -> None:
    options = ConnectionOptions.parse(
        {"ca_certs": ca_file, "server_hostname": "localhost"}, "https"
    )
    assert server_hostname(options, "objectstore.example") == "localhost"
    context = ssl_context(options)
    assert context is not None
    tls = _connect(context, certificate, server_hostname(options, "objectstore.example"))
    assert tls.server_hostname == "localhost"


def test_a_given_context_is_used_as_it_is_with_alpn_http_1_1(
    certificate: LocalCertificate,
) -> None:
    given = certificate.client_context()
    given.set_alpn_protocols(["h2"])
    options = ConnectionOptions.parse({"ssl_context": given}, "https")
    assert ssl_context(options) is given
    server = certificate.server_context()
    server.set_alpn_protocols(["h2", "http/1.1"])
    assert _connect(given, server).selected_alpn_protocol() == "http/1.1"


def test_a_given_context_without_check_hostname_still_gets_the_name_checked(
    certificate: LocalCertificate,
) -> None:
    given = certificate.client_context()
    given.check_hostname = False
    options = ConnectionOptions.parse({"ssl_context": given}, "https")
    tls = _connect(given, certificate, "objectstore.example")
    check_hostname(options, "localhost", tls)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"'objectstore\.example'"):
        check_hostname(options, "objectstore.example", tls)
    given.verify_mode = ssl.CERT_NONE  # nothing verified: nothing to check, as in urllib3
    check_hostname(options, "objectstore.example", _connect(given, certificate, "x.example"))


def test_a_client_certificate_with_an_encrypted_key(
    certificate: LocalCertificate, client_certificate: ClientCertificate
) -> None:
    server = requiring_client_certificates(certificate.server_context(), client_certificate.ca_pem)
    context = _context(
        ca_cert_data=certificate.ca_pem,
        cert_file=client_certificate.cert_file,
        key_file=client_certificate.key_file,
        key_password=client_certificate.password,
    )
    _, far = handshake(context, server, "localhost")
    seen = far.getpeercert()
    assert seen is not None and seen["subject"] == ((("commonName", "test client"),),)
    _, far = handshake(
        _context(ca_cert_data=certificate.ca_pem, cert_file=client_certificate.combined_file),
        server,
        "localhost",
    )
    assert far.getpeercert()
    with pytest.raises(ssl.SSLError):
        handshake(_context(ca_cert_data=certificate.ca_pem), server, "localhost")


def test_a_wrong_key_password_fails_when_the_context_is_made(
    client_certificate: ClientCertificate,
) -> None:
    with pytest.raises(ssl.SSLError):
        _context(
            cert_file=client_certificate.cert_file,
            key_file=client_certificate.key_file,
            key_password="wrong",
        )


def test_a_missing_ca_file_fails_when_the_context_is_made(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _context(ca_certs=str(tmp_path / "missing.pem"))


def test_tls_versions(certificate: LocalCertificate) -> None:
    context = _context(ca_cert_data=certificate.ca_pem, ssl_maximum_version=ssl.TLSVersion.TLSv1_2)
    assert context.maximum_version == ssl.TLSVersion.TLSv1_2
    assert _connect(context, certificate).version() == "TLSv1.2"
    context = _context(ca_cert_data=certificate.ca_pem, ssl_minimum_version=ssl.TLSVersion.TLSv1_3)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert _connect(context, certificate).version() == "TLSv1.3"


def test_the_key_log_file_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "keys.log"))
    assert _context().keylog_filename == str(tmp_path / "keys.log")
