"""``connection_kwargs`` checked once, for both twins: every option, every refusal.

No sockets: socket constants are only compared, and the TLS contexts are bare
``ssl.SSLContext`` objects that load nothing.
"""

from __future__ import annotations

import pathlib
import socket
import ssl
from typing import Any

import pytest

from objectstore_core._config import DEFAULT_MAX_CONNECTIONS, client_config
from objectstore_core._options import TCP_NODELAY_ON, ConnectionOptions

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _parse(scheme: str = "https", **kwargs: Any) -> ConnectionOptions:
    return ConnectionOptions.parse(kwargs, scheme)


def _one(name: str, value: object, scheme: str = "https") -> ConnectionOptions:
    return ConnectionOptions.parse({name: value}, scheme)


def _context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def test_the_default_nodelay_option_is_the_socket_modules() -> None:
    assert (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) == TCP_NODELAY_ON


@pytest.mark.parametrize("given", [None, {}])
def test_no_options_give_the_defaults(given: dict[str, Any] | None) -> None:
    for scheme in ("http", "https"):
        options = ConnectionOptions.parse(given, scheme)
        assert options == ConnectionOptions(https=scheme == "https")
        assert options.socket_options == (TCP_NODELAY_ON,)
        assert options.maxsize is None and options.local_address is None
    assert ConnectionOptions.parse(None, "http").urllib3_kwargs() == {
        "socket_options": [TCP_NODELAY_ON]
    }
    assert ConnectionOptions.parse(None, "https").urllib3_kwargs() == {
        "socket_options": [TCP_NODELAY_ON],
        "cert_reqs": "CERT_REQUIRED",
    }
    assert ConnectionOptions.parse(None, "https").verifies
    assert not ConnectionOptions.parse(None, "http").verifies


def test_every_tls_option_is_kept_and_handed_to_urllib3() -> None:
    options = _parse(
        cert_reqs="CERT_REQUIRED",
        ca_certs="ca.pem",
        ca_cert_dir=pathlib.Path("certs"),
        ca_cert_data=PEM,
        cert_file="client.pem",
        key_file="client.key",
        key_password="sekrit",
        assert_hostname="objectstore.internal",
        server_hostname="sni.internal",
        ssl_minimum_version=ssl.TLSVersion.TLSv1_2,
        ssl_maximum_version=ssl.TLSVersion.TLSv1_3,
    )
    assert options.urllib3_kwargs() == {
        "socket_options": [TCP_NODELAY_ON],
        "cert_reqs": "CERT_REQUIRED",
        "ca_certs": "ca.pem",
        "ca_cert_dir": "certs",
        "ca_cert_data": PEM,
        "cert_file": "client.pem",
        "key_file": "client.key",
        "key_password": "sekrit",
        "assert_hostname": "objectstore.internal",
        "server_hostname": "sni.internal",
        "ssl_minimum_version": ssl.TLSVersion.TLSv1_2,
        "ssl_maximum_version": ssl.TLSVersion.TLSv1_3,
    }
    assert "sekrit" not in repr(options) and "BEGIN" not in repr(options)


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("CERT_NONE", "CERT_NONE"),
        ("NONE", "CERT_NONE"),
        (ssl.CERT_NONE, "CERT_NONE"),
        (0, "CERT_NONE"),
        ("CERT_REQUIRED", "CERT_REQUIRED"),
        ("REQUIRED", "CERT_REQUIRED"),
        (ssl.CERT_REQUIRED, "CERT_REQUIRED"),
    ],
)
def test_cert_reqs_spellings(given: object, meant: str) -> None:
    options = _parse(cert_reqs=given)
    assert options.cert_reqs == meant
    assert options.urllib3_kwargs()["cert_reqs"] == meant
    assert options.verifies is (meant == "CERT_REQUIRED")


def test_assert_hostname_false_skips_only_the_name_check() -> None:
    options = _parse(assert_hostname=False)
    assert options.assert_hostname is False and options.verifies
    assert options.urllib3_kwargs()["assert_hostname"] is False


def test_ca_cert_data_pem_bytes_become_text_and_der_stays_bytes() -> None:
    assert _parse(ca_cert_data=PEM.encode()).ca_cert_data == PEM
    assert _parse(ca_cert_data=b"\n" + PEM.encode()).ca_cert_data == "\n" + PEM
    assert _parse(ca_cert_data=b"\x30\x82\x01\x0a").ca_cert_data == b"\x30\x82\x01\x0a"


def test_an_ssl_context_is_used_as_it_is() -> None:
    context = _context()
    options = _parse(ssl_context=context, server_hostname="sni.internal")
    assert options.ssl_context is context and options.verifies
    made = options.urllib3_kwargs()
    assert made["ssl_context"] is context and made["server_hostname"] == "sni.internal"
    assert "cert_reqs" not in made  # urllib3 then keeps the context's own verify_mode
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    assert not options.verifies


def test_socket_options_extend_the_default_nodelay() -> None:
    keepalive = (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    options = _parse("http", socket_options=[keepalive, [6, 1, 0]])
    assert options.socket_options == (TCP_NODELAY_ON, keepalive, (6, 1, 0))
    assert options.urllib3_kwargs()["socket_options"] == [TCP_NODELAY_ON, keepalive, (6, 1, 0)]
    assert _parse("http", socket_options=None).socket_options == (TCP_NODELAY_ON,)
    assert _parse("http", socket_options=[]).socket_options == (TCP_NODELAY_ON,)
    assert _parse("http", socket_options=[(1, 25, b"eth0")]).socket_options[-1] == (1, 25, b"eth0")


def test_source_address_and_local_address() -> None:
    options = _parse("http", source_address=("127.0.0.1", 0))
    assert options.source_address == ("127.0.0.1", 0) and options.local_address == "127.0.0.1"
    assert options.urllib3_kwargs()["source_address"] == ("127.0.0.1", 0)
    assert _parse("http", source_address=["::1", 0]).source_address == ("::1", 0)


def test_pool_options() -> None:
    assert _parse("http", maxsize=4, block=True).maxsize == 4
    assert "maxsize" not in _parse("http", maxsize=4).urllib3_kwargs()
    assert "block" not in _parse("http", block=True).urllib3_kwargs()


def test_maxsize_is_max_connections() -> None:
    assert client_config("http://h").max_connections == DEFAULT_MAX_CONNECTIONS
    assert client_config("http://h", connection_kwargs={"maxsize": 4}).max_connections == 4
    assert client_config("http://h", max_connections=5).max_connections == 5
    assert (
        client_config("http://h", max_connections=6, connection_kwargs={"maxsize": 6})
    ).max_connections == 6
    with pytest.raises(ValueError, match=r"max_connections=5 and connection_kwargs\['maxsize'\]"):
        client_config("http://h", max_connections=5, connection_kwargs={"maxsize": 4})


def test_the_config_carries_the_checked_options() -> None:
    config = client_config("https://h", connection_kwargs={"ca_certs": "ca.pem"})
    assert config.connection_options.ca_certs == "ca.pem"
    assert config.connection_options.https
    assert client_config("http://h").connection_options == ConnectionOptions()
    with pytest.raises(ValueError, match="block"):
        client_config("http://h", connection_kwargs={"block": False})


# ------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("ssl_context", "ctx", "ssl.SSLContext"),
        ("ssl_context", object(), "ssl.SSLContext"),
        ("cert_reqs", "CERT_OPTIONAL", "CERT_OPTIONAL is CERT_REQUIRED"),
        ("cert_reqs", ssl.CERT_OPTIONAL, "CERT_OPTIONAL is CERT_REQUIRED"),
        ("cert_reqs", "yes", "'CERT_REQUIRED'"),
        ("cert_reqs", True, "'CERT_REQUIRED'"),
        ("ca_certs", "", "file system path"),
        ("ca_certs", 3, "file system path"),
        ("ca_cert_dir", b"certs", "file system path"),
        ("ca_cert_data", "not a certificate", "PEM"),
        ("ca_cert_data", b"", "PEM"),
        ("ca_cert_data", 7, "PEM"),
        ("ca_cert_data", b"-----BEGIN" + "é".encode(), "ASCII"),
        ("cert_file", 1, "file system path"),
        ("assert_hostname", True, "host name"),
        ("assert_hostname", "", "host name"),
        ("server_hostname", "a b", "host name"),
        ("server_hostname", 5, "host name"),
        ("ssl_minimum_version", 0x0303, "ssl.TLSVersion"),
        ("ssl_maximum_version", "TLSv1_3", "ssl.TLSVersion"),
        ("socket_options", "TCP_NODELAY", "(level, option, value)"),
        ("socket_options", [(6, 1)], "(level, option, value)"),
        ("socket_options", [(True, 1, 1)], "(level, option, value)"),
        ("socket_options", [(6, 1, "1")], "(level, option, value)"),
        ("socket_options", 5, "(level, option, value)"),
        ("source_address", "127.0.0.1", "(host, port)"),
        ("source_address", ("127.0.0.1",), "(host, port)"),
        ("source_address", ("", 0), "(host, port)"),
        ("source_address", ("127.0.0.1", "0"), "(host, port)"),
        ("source_address", ("127.0.0.1", 4000), "the port must be 0"),
        ("maxsize", 0, "integer >= 1"),
        ("maxsize", True, "integer >= 1"),
        ("maxsize", 2.0, "integer >= 1"),
        ("block", False, "waits for a free one up to Timeout.pool"),
        ("block", "yes", "use True"),
        ("block", None, "use True"),
    ],
)
def test_a_mistyped_option_is_a_value_error_naming_it(name: str, value: object, rule: str) -> None:
    with pytest.raises(ValueError) as info:
        _one(name, value)
    message = str(info.value)
    assert f"connection_kwargs[{name!r}]" in message
    assert rule in message


def test_a_key_password_of_the_wrong_type_is_not_shown() -> None:
    with pytest.raises(ValueError, match=r"connection_kwargs\['key_password'\]") as info:
        _parse(cert_file="c.pem", key_password=["sekrit"])
    assert "sekrit" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("assert_fingerprint", "ca_cert_data="),
        ("ssl_version", "ssl_minimum_version="),
        ("blocksize", "read and write sizes"),
        ("verify", "cert_reqs='CERT_NONE'"),
        ("cert", "cert_file="),
        ("local_address", "source_address=(host, 0)"),
    ],
)
def test_an_option_with_no_meaning_here_points_at_its_replacement(name: str, hint: str) -> None:
    with pytest.raises(ValueError) as info:
        _one(name, 1)
    assert f"connection_kwargs[{name!r}] is not supported" in str(info.value)
    assert hint in str(info.value)


def test_an_unknown_option_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError) as info:
        _parse(http2=True)
    message = str(info.value)
    assert "connection_kwargs['http2'] is not a supported option" in message
    for name in ("ca_certs", "ssl_context", "socket_options", "maxsize", "block"):
        assert repr(name) in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ssl_context", _context()),
        ("cert_reqs", "CERT_NONE"),
        ("ca_certs", "ca.pem"),
        ("ca_cert_dir", "certs"),
        ("ca_cert_data", PEM),
        ("cert_file", "client.pem"),
        ("assert_hostname", False),
        ("server_hostname", "sni.internal"),
        ("ssl_minimum_version", ssl.TLSVersion.TLSv1_2),
        ("ssl_maximum_version", ssl.TLSVersion.TLSv1_3),
    ],
)
def test_tls_options_with_an_http_url_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValueError) as info:
        _one(name, value, "http")
    assert f"connection_kwargs[{name!r}] is a TLS option, but the base URL is http://" in str(
        info.value
    )
    with pytest.raises(ValueError, match="TLS option"):
        client_config("http://h", connection_kwargs={name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cert_reqs", "CERT_NONE"),
        ("ca_certs", "ca.pem"),
        ("ca_cert_dir", "certs"),
        ("ca_cert_data", PEM),
        ("cert_file", "client.pem"),
        ("assert_hostname", False),
        ("ssl_minimum_version", ssl.TLSVersion.TLSv1_2),
        ("ssl_maximum_version", ssl.TLSVersion.TLSv1_3),
    ],
)
def test_context_settings_cannot_be_combined_with_a_context(name: str, value: object) -> None:
    with pytest.raises(ValueError) as info:
        ConnectionOptions.parse({"ssl_context": _context(), name: value}, "https")
    assert f"connection_kwargs[{name!r}] cannot be combined with ssl_context" in str(info.value)


@pytest.mark.parametrize("name", ["key_file", "key_password"])
def test_a_key_needs_a_certificate(name: str) -> None:
    with pytest.raises(ValueError, match=rf"connection_kwargs\['{name}'\] needs cert_file"):
        _one(name, "client.key")


def test_versions_must_leave_one_version() -> None:
    with pytest.raises(ValueError, match=r"connection_kwargs\['ssl_minimum_version'\].*above"):
        _parse(
            ssl_minimum_version=ssl.TLSVersion.TLSv1_3,
            ssl_maximum_version=ssl.TLSVersion.TLSv1_2,
        )
    assert _parse(
        ssl_minimum_version=ssl.TLSVersion.TLSv1_3,
        ssl_maximum_version=ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ).ssl_maximum_version is (ssl.TLSVersion.MAXIMUM_SUPPORTED)


def test_parse_needs_a_mapping_and_a_known_scheme() -> None:
    with pytest.raises(TypeError, match="connection_kwargs must be a mapping"):
        ConnectionOptions.parse([("maxsize", 1)], "http")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scheme='ftp'"):
        ConnectionOptions.parse({}, "ftp")


def test_options_are_frozen_values() -> None:
    options = _parse("http", maxsize=3)
    with pytest.raises(AttributeError):
        options.maxsize = 4  # type: ignore[misc]
    assert options == _parse("http", maxsize=3)
