"""Whose name a TLS certificate carries: pure rules for the host name checks.

OpenSSL checks the host name itself in the usual case. Where urllib3 checks
it after the handshake instead (a name given to ``assert_hostname``, or a
given context with ``check_hostname`` off), the async twin applies
:func:`matches` to the verified peer certificate as ``ssl`` describes it
(``getpeercert()``), so both twins accept and refuse the same certificates.
No I/O: the twin does the handshake and hands over what it got.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from objectstore_core._options import ConnectionOptions

__all__ = ["matches", "server_hostname"]


def server_hostname(options: ConnectionOptions, host: str) -> str:
    """The name for SNI and OpenSSL's host name check: ``server_hostname`` or the host.

    As in urllib3, an IP address loses its brackets and IPv6 zone, so that
    ssl treats it as an address (no SNI; matched against IP SANs).
    """
    name = options.server_hostname or host
    bare = name.strip("[]")
    if "%" in bare:
        bare = bare[: bare.rfind("%")]
    return bare if _ip(bare) is not None else name


def matches(cert: dict[str, Any], name: str, *, common_name: bool = False) -> bool:
    """Whether a verified peer certificate (``getpeercert()``) is valid for ``name``.

    An IP address matches IP address SANs only; a DNS name matches DNS SANs
    case-insensitively, where ``*`` may stand for the whole leftmost label
    (``*.example.com`` matches ``a.example.com``, not ``example.com`` nor
    ``a.b.example.com``; ``*.com`` matches nothing). The subject's common name counts only with
    ``common_name`` and when the certificate has no DNS SAN.
    """
    bare = name.strip("[]").rstrip(".")
    sans: Iterable[tuple[str, str]] = cert.get("subjectAltName", ())
    address = _ip(bare)
    if address is not None:
        return any(kind == "IP Address" and _ip(value) == address for kind, value in sans)
    dns = [value for kind, value in sans if kind == "DNS"]
    if not dns and common_name:
        dns = [
            value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"
        ]
    return any(_dns_matches(pattern, bare) for pattern in dns)


def _dns_matches(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower().rstrip("."), name.lower()
    if "*" not in pattern:
        return pattern == name
    first, _, rest = pattern.partition(".")
    if first != "*" or "*" in rest or "." not in rest:
        # Only as the whole leftmost label (RFC 6125 §6.4.3), over two labels at least (OpenSSL).
        return False
    label, _, parent = name.partition(".")
    return bool(label) and parent == rest


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None
