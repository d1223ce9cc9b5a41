"""Certificates for serving the emulator over TLS in tests, made on the spot.

The reference server speaks plain HTTP (PROTOCOL §1.1; TLS ends at a proxy
in production), but clients are used over ``https`` too. To test that
path, :class:`LocalCertificate` makes a throwaway certificate authority
and a server certificate it signs for loopback names, in memory, with
``cryptography``. A client trusts the CA (``ca_pem``, :meth:`write_ca` for
a file, or :meth:`client_context`); the server presents the leaf
(:meth:`server_context`). A CA and a leaf rather than one self-signed
certificate, because strict verification (Python 3.13's default context)
refuses a CA certificate presented as a server's.

    certificate = LocalCertificate.create()          # 127.0.0.1, ::1, localhost
    with LocalServer(tls=certificate) as server:     # server.url is https://127.0.0.1:...
        client = Client(server.url, connection_kwargs={"ssl_context": certificate.client_context()})
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LOOPBACK_NAMES", "LocalCertificate", "server_context_from_files"]

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
"""The names a :class:`LocalCertificate` is made for by default."""

_CLOCK_SKEW = timedelta(minutes=5)  # valid from a little before now


def _new_server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def server_context_from_files(
    cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]
) -> ssl.SSLContext:
    """A server-side context presenting the PEM certificate chain and key in these files.

    For ``objectstore serve --tls-cert FILE --tls-key FILE``. A file that
    cannot be read, or a key that does not match the certificate, is a
    ValueError naming the files.
    """
    context = _new_server_context()
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(
            f"cannot serve TLS with certificate {os.fspath(cert_file)!r} and key "
            f"{os.fspath(key_file)!r}: {reason} (expected PEM files: the certificate chain, "
            "then its unencrypted private key)"
        ) from None
    return context


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _subject_alternative_names(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True, slots=True)
class LocalCertificate:
    """A server certificate for loopback names and the throwaway CA that signed it (PEM text).

    ``ca_pem`` is what a client trusts; ``cert_pem`` (the leaf, then the
    CA) and ``key_pem`` are what the server presents. The CA's private key
    is dropped once the leaf is signed, so nothing else can be signed by it.
    """

    ca_pem: str
    cert_pem: str
    key_pem: str
    hosts: tuple[str, ...]

    @classmethod
    def create(
        cls, hosts: Sequence[str] = LOOPBACK_NAMES, *, valid_for: timedelta = timedelta(days=7)
    ) -> LocalCertificate:
        """Make a CA and a certificate for ``hosts`` (IP addresses or DNS names), ECDSA P-256.

        >>> LocalCertificate.create().hosts
        ('127.0.0.1', '::1', 'localhost')
        """
        if isinstance(hosts, str) or not hosts:
            raise ValueError(f"hosts={hosts!r} is invalid: give a non-empty list of names")
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "objectstore emulator CA")])
        ca_id = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signs_certificates=True), critical=True)
            .add_extension(ca_id, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_id),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(_subject_alternative_names(hosts), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_id),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        return cls(_pem(ca), _pem(leaf) + _pem(ca), key_pem, tuple(hosts))

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting this certificate (TLS 1.2 or later)."""
        context = _new_server_context()
        # load_cert_chain reads files only: hand it private temporary ones.
        with tempfile.TemporaryDirectory(prefix="objectstore-tls-") as folder:
            chain, key = Path(folder, "chain.pem"), Path(folder, "key.pem")
            chain.write_text(self.cert_pem, encoding="ascii")
            descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(self.key_pem)
            context.load_cert_chain(chain, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this CA only, checking host names as usual."""
        return ssl.create_default_context(cadata=self.ca_pem)

    def write_ca(self, path: str | os.PathLike[str]) -> Path:
        """Write ``ca_pem`` to ``path`` (for ``verify=``/``ca_certs=`` options); returns it."""
        target = Path(path)
        target.write_text(self.ca_pem, encoding="ascii")
        return target
