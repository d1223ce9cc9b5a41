"""Certificate name rules of the core (``objectstore_core._certnames``), without sockets.

The handshakes that use them are tested in ``tests/asyncio/test_tls.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from objectstore_core._certnames import matches, server_hostname
from objectstore_core._options import ConnectionOptions


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%eth0]", "fe80::1"),
    ],
)
def test_server_hostname_of_an_address_is_bare(host: str, name: str) -> None:
    assert server_hostname(ConnectionOptions(https=True), host) == name


@pytest.mark.parametrize(
    ("sans", "name", "expected"),
    [
        ((("DNS", "a.example"),), "a.example", True),
        ((("DNS", "A.Example"),), "a.example.", True),
        ((("DNS", "*.example.com"),), "a.example.com", True),
        ((("DNS", "*.example.com"),), "example.com", False),
        ((("DNS", "*.example.com"),), "a.b.example.com", False),
        ((("DNS", "f*.example.com"),), "foo.example.com", False),
        ((("DNS", "*.com"),), "example.com", False),
        ((("DNS", "a.*.example"),), "a.b.example", False),
        ((("IP Address", "127.0.0.1"),), "127.0.0.1", True),
        ((("IP Address", "0:0:0:0:0:0:0:1\n"),), "[::1]", True),
        ((("DNS", "127.0.0.1"),), "127.0.0.1", False),
        ((("IP Address", "127.0.0.1"),), "localhost", False),
        ((), "a.example", False),
    ],
)
def test_matches(sans: tuple[tuple[str, str], ...], name: str, expected: bool) -> None:
    assert matches({"subjectAltName": sans}, name) is expected


def test_matches_the_common_name_only_when_asked_and_without_dns_sans() -> None:
    cert: dict[str, Any] = {"subject": ((("commonName", "a.example"),),)}
    assert not matches(cert, "a.example")
    assert matches(cert, "a.example", common_name=True)
    cert["subjectAltName"] = (("DNS", "b.example"),)
    assert not matches(cert, "a.example", common_name=True)
