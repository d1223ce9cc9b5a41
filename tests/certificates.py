"""Client certificates made on the spot, and TLS handshakes without sockets.

The emulator's :class:`LocalCertificate` gives a server certificate and its
CA; tests of client authentication also need a client certificate, made
here with ``cryptography`` by a CA of its own (a server that requires client
certificates trusts :attr:`ClientCertificate.ca_pem`). :func:`handshake`
runs a client and a server context against each other through memory BIOs.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ClientCertificate", "handshake", "requiring_client_certificates"]


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate (``cert_pem``), its key (``key_pem``, encrypted with
    ``password``) and the CA that signed it (``ca_pem``), written to ``folder``:
    ``cert_file``, ``key_file`` and ``combined_file`` (certificate and
    unencrypted key in one file)."""

    ca_pem: str
    cert_pem: str
    key_pem: str
    password: str
    cert_file: str
    key_file: str
    combined_file: str

    @classmethod
    def create(cls, folder: Path, password: str = "client-secret") -> ClientCertificate:
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test client CA")])
        ca_id = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        issuer_id = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_id)
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(ca_id, critical=False)
            .add_extension(issuer_id, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test client")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(issuer_id, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        cert_pem = leaf.public_bytes(pem).decode("ascii")
        key_pem = key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password.encode()),
        ).decode("ascii")
        plain_key = key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")
        files = {
            "cert": (folder / "client.pem", cert_pem),
            "key": (folder / "client.key", key_pem),
            "combined": (folder / "client-with-key.pem", cert_pem + plain_key),
        }
        for path, text in files.values():
            path.write_text(text, encoding="ascii")
        return cls(
            ca.public_bytes(pem).decode("ascii"),
            cert_pem,
            key_pem,
            password,
            str(files["cert"][0]),
            str(files["key"][0]),
            str(files["combined"][0]),
        )


def requiring_client_certificates(server: ssl.SSLContext, client_ca_pem: str) -> ssl.SSLContext:
    """``server`` (a server-side context), now requiring a certificate signed by the CA."""
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(cadata=client_ca_pem)
    return server


def handshake(
    client: ssl.SSLContext, server: ssl.SSLContext, server_hostname: str | None
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Complete a TLS handshake between two contexts in memory; (client, server) ends.

    A failure raises the side's :class:`ssl.SSLError` (the client's
    :class:`ssl.SSLCertVerificationError` for an untrusted server).
    """
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    near = client.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    far = server.wrap_bio(server_in, server_out, server_side=True)
    near_done = far_done = False
    for _ in range(8):
        if not near_done:
            try:
                near.do_handshake()
                near_done = True
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        if not far_done:
            try:
                far.do_handshake()
                far_done = True
            except ssl.SSLWantReadError:
                pass
        client_in.write(server_out.read())
        if near_done and far_done:
            return near, far
    raise AssertionError("the TLS handshake did not finish")
