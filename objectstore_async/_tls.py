"""TLS for the async twin: the context urllib3 would make from the same options.

The sync twin hands :class:`ConnectionOptions` to urllib3, which makes a TLS
context per connection. The async twin makes one context per client here,
following urllib3's rules, so that each option means the same in both twins:

- default: verification on with the system's CAs, ``check_hostname``, TLS 1.2
  or later, no compression or session tickets, post-handshake client
  authentication allowed, ALPN ``http/1.1``, no host name match on the
  certificate's common name, ``SSLKEYLOGFILE`` honoured;
- ``cert_reqs="CERT_NONE"``: neither the chain nor the host name is checked;
- given CAs (``ca_certs``, ``ca_cert_dir``, ``ca_cert_data``) replace the
  system's; a client certificate chain is loaded with its key and password;
- ``assert_hostname=False`` keeps verifying the chain but not the name; a str
  is the name to check instead of the host (SNI still carries the host);
- a given ``ssl_context`` is used as configured, with ALPN set to
  ``http/1.1`` (as urllib3 does).

Where urllib3 checks the host name itself instead of leaving it to OpenSSL
(``assert_hostname`` is a str, or a given context verifies but has
``check_hostname`` off), :func:`check_hostname` does the same after the
handshake.
"""

from __future__ import annotations

import os
import ssl
import sys

from objectstore_core._certnames import matches, server_hostname
from objectstore_core._options import ConnectionOptions

__all__ = ["ALPN_PROTOCOLS", "check_hostname", "ssl_context"]

ALPN_PROTOCOLS = ["http/1.1"]  # our exchange speaks HTTP/1.1 only


def ssl_context(options: ConnectionOptions) -> ssl.SSLContext | None:
    """The client's TLS context (None for an http:// base URL).

    Files are read here (CA bundle, client certificate): a missing or bad one
    raises OSError or :class:`ssl.SSLError` when the context is made.
    """
    if not options.https:
        return None
    given: ssl.SSLContext | None = options.ssl_context  # checked an SSLContext by the core
    if given is not None:
        given.set_alpn_protocols(ALPN_PROTOCOLS)
        return given
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = options.ssl_minimum_version or ssl.TLSVersion.TLSv1_2
    if options.ssl_maximum_version is not None:
        context.maximum_version = options.ssl_maximum_version
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
    if sys.version_info >= (3, 13):  # as urllib3 on 3.13+
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    context.post_handshake_auth = True
    if options.cert_reqs == "CERT_NONE":
        context.check_hostname = False  # before verify_mode: ssl refuses the other order
        context.verify_mode = ssl.CERT_NONE
    else:
        context.verify_mode = ssl.CERT_REQUIRED
        # A name given to assert_hostname (or False) is checked by check_hostname() (or not at all).
        context.check_hostname = options.assert_hostname is None
    context.hostname_checks_common_name = False
    _load_trust(context, options)
    if options.cert_file is not None:
        context.load_cert_chain(options.cert_file, options.key_file, options.key_password)
    context.set_alpn_protocols(ALPN_PROTOCOLS)
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog:
        context.keylog_filename = os.path.expandvars(keylog)
    return context


def _load_trust(context: ssl.SSLContext, options: ConnectionOptions) -> None:
    # urllib3 expands ~ in the two paths (not in the client certificate's).
    ca_certs = None if options.ca_certs is None else os.path.expanduser(options.ca_certs)
    ca_dir = None if options.ca_cert_dir is None else os.path.expanduser(options.ca_cert_dir)
    if ca_certs or ca_dir or options.ca_cert_data:
        context.load_verify_locations(ca_certs, ca_dir, options.ca_cert_data)
    else:
        context.load_default_certs()


def check_hostname(options: ConnectionOptions, host: str, tls: ssl.SSLObject) -> None:
    """After the handshake, the host name check urllib3 makes itself (a no-op otherwise).

    It applies when the certificate was verified but OpenSSL did not check
    the name: ``assert_hostname`` is a str (that name must match), or a given
    context has ``check_hostname`` off (``server_hostname`` or the host must
    match). Raises :class:`ssl.SSLCertVerificationError` on a mismatch.
    """
    context = tls.context
    if (
        context.verify_mode == ssl.CERT_NONE
        or context.check_hostname
        or options.assert_hostname is False
    ):
        return
    name = options.assert_hostname or server_hostname(options, host)
    common_name = options.ssl_context is not None and context.hostname_checks_common_name
    cert = tls.getpeercert()
    if not cert or not matches(cert, name, common_name=common_name):
        raise ssl.SSLCertVerificationError(
            f"certificate verify failed: the certificate is not valid for {name!r}"
        )
