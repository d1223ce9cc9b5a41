"""``connection_kwargs``: one meaning of the official client's connection options.

Users of the official client pass urllib3's connection-pool keyword names
(``maxsize``, ``ca_certs``, ``ssl_context``, ``socket_options``...). Both
twins accept exactly those names, with urllib3's meaning, through one
:class:`ConnectionOptions` built here when the client is built. The sync
twin hands :meth:`ConnectionOptions.urllib3_kwargs` to urllib3's connection
classes; the async twin builds the equivalent TLS context from the same
fields (``objectstore_async._tls``). An option one of the twins could not
honour is refused here, for both, with a :class:`ValueError` naming it.

Pure: the values are checked, never used. No file is read (a CA bundle path
is checked when a connection needs it, as urllib3 does) and no TLS context is
made; the ``ssl`` module is not even imported (a context and a TLS version are
recognised by their class).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from objectstore_core._timeout import Timeout

# The ssl objects these options carry (an SSLContext, TLSVersion members) are the twins'
# to use: the core recognises them by class name and never imports ssl, so it types
# them as opaque values.
SSLContext = Any
TLSVersion = Any

__all__ = ["TCP_NODELAY_ON", "ConnectionOptions"]

SocketOption = tuple[int, int, int | bytes]

# (IPPROTO_TCP, TCP_NODELAY, 1): IP protocol number 6 is TCP (IANA), and
# TCP_NODELAY is option 1 on every platform Python runs on (a test compares
# them with the socket module's constants). Both twins send small writes
# (request heads, chunk framing) that must not wait for the peer's ACK.
TCP_NODELAY_ON: SocketOption = (6, 1, 1)

# Options that only mean something on an https connection.
_TLS = (
    "ssl_context",
    "cert_reqs",
    "ca_certs",
    "ca_cert_dir",
    "ca_cert_data",
    "cert_file",
    "key_file",
    "key_password",
    "assert_hostname",
    "server_hostname",
    "ssl_minimum_version",
    "ssl_maximum_version",
)
# Options that configure a TLS context: a given ``ssl_context`` is already configured.
_CONTEXT_SETTINGS = frozenset(_TLS) - {"ssl_context", "server_hostname"}
_SOCKETS = ("socket_options", "source_address")
_POOL = ("maxsize", "block")
# urllib3 pool settings that map onto the client's own: default headers, the
# default timeout, connection retries (see ConnectionOptions).
_REQUESTS = ("headers", "timeout", "retries")
SUPPORTED = frozenset((*_TLS, *_SOCKETS, *_POOL, *_REQUESTS))

# urllib3 (or former async-twin) names with no meaning here, and what to use instead.
_REFUSED = {
    "assert_fingerprint": "certificate pinning is not supported: pass the server's own "
    "certificate as ca_cert_data= or ca_certs=",
    "ssl_version": "it is deprecated by urllib3: use ssl_minimum_version= and "
    "ssl_maximum_version= (ssl.TLSVersion)",
    "blocksize": "the transports choose their own read and write sizes",
    "verify": "use cert_reqs='CERT_NONE' to turn verification off, or ca_certs=, "
    "ca_cert_dir=, ca_cert_data= or ssl_context= to verify against given CAs",
    "cert": "use cert_file=, key_file= and key_password=",
    "local_address": "use source_address=(host, 0)",
}

CertReqs = Literal["CERT_NONE", "CERT_REQUIRED"]

_CERT_REQS: dict[object, CertReqs] = {
    "CERT_NONE": "CERT_NONE",
    "NONE": "CERT_NONE",
    "CERT_REQUIRED": "CERT_REQUIRED",
    "REQUIRED": "CERT_REQUIRED",
}
_VERIFY_MODES: dict[object, CertReqs] = {0: "CERT_NONE", 2: "CERT_REQUIRED"}  # ssl.CERT_*


def _named(name: str) -> str:
    return f"connection_kwargs[{name!r}]"


def _invalid(name: str, value: object, rule: str) -> ValueError:
    return ValueError(f"{_named(name)}={value!r} is invalid: {rule}")


def _is_ssl_class(value: object, name: str) -> bool:
    """Whether ``value``'s class is, or derives from, ``ssl.<name>`` (without importing ssl)."""
    return any(
        cls.__name__ == name and cls.__module__ in ("ssl", "_ssl") for cls in type(value).__mro__
    )


def _path(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise _invalid(name, value, "use a file system path (a non-empty str or os.PathLike)")
    return value


def _cert_reqs(value: object) -> CertReqs | None:
    if value is None:
        return None
    if isinstance(value, str) and value in _CERT_REQS:
        return _CERT_REQS[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in _VERIFY_MODES:
        return _VERIFY_MODES[value]  # also ssl.VerifyMode members, an IntEnum
    rule = "use 'CERT_REQUIRED' (the default) or 'CERT_NONE', or ssl.CERT_REQUIRED/ssl.CERT_NONE"
    if value in ("CERT_OPTIONAL", "OPTIONAL", 1):
        rule += " (a client always gets the server's certificate: CERT_OPTIONAL is CERT_REQUIRED)"
    raise _invalid("cert_reqs", value, rule)


def _ca_cert_data(value: object) -> str | bytes | None:
    """PEM text as str (also given as ASCII bytes), or DER bytes, as ``load_verify_locations``."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if data.lstrip().startswith(b"-----BEGIN"):
            try:
                return data.decode("ascii")
            except UnicodeDecodeError:
                raise _invalid("ca_cert_data", "<bytes>", "PEM text must be ASCII") from None
        if data:
            return data  # DER, as ssl.SSLContext.load_verify_locations(cadata=bytes) reads it
    elif isinstance(value, str) and "-----BEGIN" in value:
        return value
    shown = value if isinstance(value, str) and len(value) < 60 else f"<{type(value).__name__}>"
    raise _invalid(
        "ca_cert_data",
        shown,
        "use PEM certificates (str or bytes with '-----BEGIN CERTIFICATE-----') or DER bytes",
    )


def _socket_options(value: object) -> tuple[SocketOption, ...]:
    rule = "use a list of (level, option, value) tuples for socket.setsockopt"
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _invalid("socket_options", value, rule)
    options: list[SocketOption] = []
    for item in value:
        if (
            not isinstance(item, tuple | list)
            or len(item) != 3
            or any(isinstance(part, bool) or not isinstance(part, int) for part in item[:2])
            or not isinstance(item[2], int | bytes)
        ):
            raise _invalid("socket_options", value, f"{rule}; {item!r} is not one")
        options.append((item[0], item[1], item[2]))
    return tuple(options)


def _source_address(value: object) -> tuple[str, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not isinstance(value[0], str)
        or not value[0]
        or isinstance(value[1], bool)
        or not isinstance(value[1], int)
    ):
        raise _invalid("source_address", value, "use a (host, port) tuple such as ('10.0.0.2', 0)")
    if value[1] != 0:
        raise _invalid(
            "source_address",
            value,
            "the port must be 0 (any free port): a pool makes several connections from the "
            "address at once, and the async twin can only choose the local host",
        )
    return (value[0], 0)


# Headers the client writes itself on every request or per operation (framing,
# content coding, auth, the protocol's own x-sn-/x-snme-/x-os- headers): a
# default value for one of them would be overwritten or would corrupt a request.
_OWN_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
        "trailer", "upgrade", "expect", "accept-encoding", "content-encoding", "content-type",
        "range", "authorization", "user-agent", "proxy-authorization", "proxy-connection",
    }
)  # fmt: skip
_OWN_PREFIXES = ("x-sn-", "x-snme-", "x-os-")
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _headers(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise _invalid("headers", value, "use a mapping of header names to str values")
    headers: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
            raise ValueError(f"{_named('headers')} has an invalid header name {name!r}")
        lower = name.lower()
        if lower in _OWN_HEADERS or lower.startswith(_OWN_PREFIXES):
            raise ValueError(
                f"{_named('headers')} cannot set {name!r}: the client writes it itself "
                "(the User-Agent is user_agent=, the token is token=, metadata is a put option)"
            )
        if lower in headers:
            raise ValueError(f"{_named('headers')} names {name!r} twice")
        # The value is never shown: a default header may carry a credential.
        if not isinstance(text, str) or any(c in text for c in "\r\n\0"):
            raise ValueError(
                f"{_named('headers')}[{name!r}] is invalid: use one line of text (a str "
                "without CR, LF or NUL)"
            )
        headers[lower] = text
    return tuple(headers.items())


def _timeout(value: object) -> Timeout | None:
    """urllib3's pool ``timeout``: a number (connect and read), None, or a urllib3 Timeout."""
    if value is None:
        return None
    if isinstance(value, Timeout):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not value > 0 or value == float("inf"):
            raise _invalid("timeout", value, "use a finite number of seconds > 0")
        return Timeout(connect=value, read=value, write=value)
    if type(value).__name__ == "Timeout" and type(value).__module__.startswith("urllib3"):
        # Read through its public properties; urllib3's "default" marker is not a number.
        def part(name: str) -> float | None:
            try:  # a part derived from total asks for a started timer: not given, then
                found = getattr(value, name, None)
            except Exception:
                return None
            is_number = isinstance(found, int | float) and not isinstance(found, bool)
            return float(cast(float, found)) if is_number else None

        read = part("read_timeout")
        return Timeout(connect=part("connect_timeout"), read=read, write=read, total=part("total"))
    raise _invalid(
        "timeout", value, "use a number of seconds, a urllib3 Timeout or an objectstore Timeout"
    )


def _retries(value: object) -> int | None:
    """urllib3's pool ``retries``: a count of retries after a failed connection, or False."""
    if value is None:
        return None
    if value is False:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise _invalid(
        "retries",
        value,
        "use a count >= 0 or False (a urllib3 Retry's other settings have no meaning here: "
        "pass retry=RetryPolicy(...) to the client)",
    )


def _text(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n\0/ "):
        raise _invalid(name, value, "use a host name (a non-empty str without spaces or '/')")
    return value


def _tls_version(name: str, value: object) -> TLSVersion | None:
    if value is None or _is_ssl_class(value, "TLSVersion"):
        return value  # recognised without importing ssl
    raise _invalid(name, value, "use an ssl.TLSVersion such as ssl.TLSVersion.TLSv1_2")


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """The client's ``connection_kwargs``, checked; the same meaning in both twins.

    The names and meanings are urllib3's (``HTTPSConnectionPool``), which is
    what code written for the official client passes. Build it with
    :meth:`parse`; every field is also checked when built directly.

    TLS, only with an ``https://`` base URL (with ``http://`` each is a
    ValueError, so a TLS setting is never silently ignored):

    - ``ssl_context``: an :class:`ssl.SSLContext` used as it is configured
      (trust, client certificate, versions, ``verify_mode``); as urllib3 does,
      its ALPN protocols are set to ``http/1.1``, and when it verifies
      certificates but has ``check_hostname`` off the host name is still
      checked. It cannot be combined with the settings below that configure a
      context (configure the context itself); ``server_hostname`` may be given.
    - ``cert_reqs``: ``"CERT_REQUIRED"`` (default) or ``"CERT_NONE"`` (or the
      ``ssl.CERT_*`` values): ``CERT_NONE`` turns certificate and host name
      verification off.
    - ``ca_certs`` (a PEM bundle file), ``ca_cert_dir`` (an OpenSSL hashed
      directory), ``ca_cert_data`` (PEM text as str or bytes, or DER bytes):
      trust these CAs instead of the system's.
    - ``cert_file``, ``key_file``, ``key_password``: a client certificate
      chain (PEM), its key when not in ``cert_file``, the key's password.
    - ``server_hostname``: the name sent in SNI and checked against the
      server's certificate, instead of the base URL's host.
    - ``assert_hostname``: ``False`` skips the host name check (the chain is
      still verified); a str is the name the certificate must carry (SNI is
      unchanged).
    - ``ssl_minimum_version`` / ``ssl_maximum_version``: ``ssl.TLSVersion``
      bounds (the minimum defaults to TLS 1.2, as in urllib3).

    Sockets:

    - ``socket_options``: ``(level, option, value)`` triples applied with
      ``setsockopt`` to every new connection. They **extend** the default
      ``TCP_NODELAY`` (urllib3 would replace it): pass
      ``(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)`` to turn it off. The
      field holds the full list, default first.
    - ``source_address``: ``(host, 0)``, the local address to connect from.
      The port must be 0: the pool opens several connections at once.

    Pool:

    - ``maxsize``: the pool size, the official spelling of the client's
      ``max_connections``: it overrides the default; an explicit
      ``max_connections`` with another value is a ValueError (see
      :meth:`pool_size`).
    - ``block``: only ``True``, which is what the pool always does (a request
      waits up to ``Timeout.pool`` for a free connection); ``False`` (open
      extra, unpooled connections) is a ValueError.

    Requests (urllib3's pool defaults, given the client's own meaning):

    - ``headers``: a mapping of headers sent on every request. Headers the
      client writes itself (framing, ``content-type``, ``accept-encoding``,
      ``user-agent``, ``authorization``, the protocol's ``x-sn-``/``x-snme-``/
      ``x-os-`` headers) are a ValueError: use the client's own arguments.
    - ``timeout``: a number of seconds bounds the connect and each read and
      write; a urllib3 ``Timeout`` gives its connect, read and total parts; an
      objectstore :class:`Timeout` is used as it is. It is the client's
      timeout, so passing ``timeout=`` or ``timeout_ms=`` as well is a
      ValueError.
    - ``retries``: a count (or ``False``: none) of retries after a failed
      exchange (connect errors, timeouts, lost connections, wherever a retry
      cannot duplicate a write; statuses are not retried), as urllib3's
      ``Retry(total=N)``; passing ``retries=`` or
      ``retry=`` as well is a ValueError, and so is a urllib3 ``Retry``
      (its status and backoff settings have no meaning here: pass
      ``retry=RetryPolicy(...)``).

    Refused with a ValueError pointing at what to use instead:
    ``assert_fingerprint``, ``ssl_version``, ``blocksize``, and the names the
    async twin once took (``verify``, ``cert``, ``local_address``); any other
    name is a ValueError listing the supported ones.

    >>> options = ConnectionOptions.parse({"ca_certs": "ca.pem", "maxsize": 8}, "https")
    >>> options.urllib3_kwargs()["ca_certs"], options.maxsize
    ('ca.pem', 8)
    >>> ConnectionOptions.parse({"ca_certs": "ca.pem"}, "http")
    Traceback (most recent call last):
    ...
    ValueError: connection_kwargs['ca_certs'] is a TLS option, but the base URL is http://: \
use an https:// base URL, or leave the option out
    """

    https: bool = False
    ssl_context: SSLContext | None = None
    cert_reqs: CertReqs | None = None
    ca_certs: str | None = None
    ca_cert_dir: str | None = None
    ca_cert_data: str | bytes | None = field(default=None, repr=False)
    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | bytes | None = field(default=None, repr=False)
    assert_hostname: str | Literal[False] | None = None
    server_hostname: str | None = None
    ssl_minimum_version: TLSVersion | None = None
    ssl_maximum_version: TLSVersion | None = None
    socket_options: tuple[SocketOption, ...] = (TCP_NODELAY_ON,)
    source_address: tuple[str, int] | None = None
    maxsize: int | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout: Timeout | None = None
    retries: int | None = None

    def __post_init__(self) -> None:
        fix = object.__setattr__
        if not isinstance(self.https, bool):
            raise TypeError(f"https must be a bool, got {self.https!r}")
        if self.ssl_context is not None and not _is_ssl_class(self.ssl_context, "SSLContext"):
            raise _invalid("ssl_context", self.ssl_context, "use an ssl.SSLContext")
        fix(self, "cert_reqs", _cert_reqs(self.cert_reqs))
        for name in ("ca_certs", "ca_cert_dir", "cert_file", "key_file"):
            fix(self, name, _path(name, getattr(self, name)))
        fix(self, "ca_cert_data", _ca_cert_data(self.ca_cert_data))
        if self.key_password is not None and not isinstance(self.key_password, str | bytes):
            # Never shown: it is a secret in an unexpected wrapper.
            raise ValueError(
                f"{_named('key_password')} is invalid: use a str or bytes, "
                f"not {type(self.key_password).__name__}"
            )
        if self.assert_hostname is not False:
            fix(self, "assert_hostname", _text("assert_hostname", self.assert_hostname))
        fix(self, "server_hostname", _text("server_hostname", self.server_hostname))
        for name in ("ssl_minimum_version", "ssl_maximum_version"):
            fix(self, name, _tls_version(name, getattr(self, name)))
        fix(self, "socket_options", _socket_options(self.socket_options))
        fix(self, "source_address", _source_address(self.source_address))
        if self.maxsize is not None and (
            isinstance(self.maxsize, bool) or not isinstance(self.maxsize, int) or self.maxsize < 1
        ):
            raise _invalid("maxsize", self.maxsize, "use an integer >= 1 (the pool size)")
        given = self.headers
        fix(self, "headers", _headers(dict(given) if isinstance(given, tuple) else given))
        fix(self, "timeout", _timeout(self.timeout))
        fix(self, "retries", _retries(self.retries))
        self._check_combinations()

    def _check_combinations(self) -> None:
        given = [name for name in _TLS if getattr(self, name) is not None]
        if given and not self.https:
            raise ValueError(
                f"{_named(given[0])} is a TLS option, but the base URL is http://: "
                "use an https:// base URL, or leave the option out"
            )
        if self.ssl_context is not None:
            for name in given:
                if name in _CONTEXT_SETTINGS:
                    raise ValueError(
                        f"{_named(name)} cannot be combined with ssl_context: configure the "
                        "context itself (load_verify_locations, load_cert_chain, verify_mode, "
                        "check_hostname, minimum_version...)"
                    )
        for name in ("key_file", "key_password"):
            if getattr(self, name) is not None and self.cert_file is None:
                raise ValueError(f"{_named(name)} needs cert_file (the client certificate)")
        low, high = self.ssl_minimum_version, self.ssl_maximum_version
        if low is not None and high is not None and 0 <= high < low:
            raise ValueError(
                f"{_named('ssl_minimum_version')}={low!r} is above "
                f"ssl_maximum_version={high!r}: no TLS version is left"
            )

    @classmethod
    def parse(cls, kwargs: Mapping[str, Any] | None, scheme: str) -> ConnectionOptions:
        """Check ``connection_kwargs`` for a base URL of ``scheme`` ("http" or "https")."""
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme={scheme!r} is invalid: use 'http' or 'https'")
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, Mapping):
            raise TypeError(
                f"connection_kwargs must be a mapping of option names to values, got {kwargs!r}"
            )
        values = dict(kwargs)
        for name in values:
            if name in _REFUSED:
                raise ValueError(f"{_named(name)} is not supported: {_REFUSED[name]}")
            if name not in SUPPORTED:
                raise ValueError(
                    f"{_named(name)} is not a supported option: use one of {sorted(SUPPORTED)}"
                )
        block = values.pop("block", True)
        if block is not True:
            if block is False:
                raise ValueError(
                    f"{_named('block')}=False is not supported: the pool never opens more than "
                    "max_connections connections; a request waits for a free one up to "
                    "Timeout.pool (then PoolTimeout). Leave block out or pass True"
                )
            raise _invalid("block", block, "use True (the only behaviour of the pool)")
        extra = _socket_options(values.pop("socket_options", None) or ())
        return cls(https=scheme == "https", socket_options=(TCP_NODELAY_ON, *extra), **values)

    # -- what each twin needs -------------------------------------------------------------

    @property
    def local_address(self) -> str | None:
        """The local host to connect from (``source_address[0]``), or None."""
        return None if self.source_address is None else self.source_address[0]

    @property
    def verifies(self) -> bool:
        """Whether the server's certificate is verified (https only)."""
        if self.ssl_context is not None:
            return bool(self.ssl_context.verify_mode != 0)  # ssl.CERT_NONE
        return self.https and self.cert_reqs != "CERT_NONE"

    def urllib3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for urllib3's ``HTTPSConnection`` (https) or ``HTTPConnection``.

        Only what was given, apart from the socket options (always the full
        list) and ``cert_reqs`` (``CERT_REQUIRED`` unless turned off, or the
        context's own mode with ``ssl_context``).
        """
        made: dict[str, Any] = {"socket_options": list(self.socket_options)}
        if self.source_address is not None:
            made["source_address"] = self.source_address
        if not self.https:
            return made
        for name in _TLS:
            value = getattr(self, name)
            if value is not None:
                made[name] = value
        if self.ssl_context is None:
            made["cert_reqs"] = self.cert_reqs or "CERT_REQUIRED"
        return made

    def pool_size(self, max_connections: int, default: int) -> int:
        """The pool size, from the client's ``max_connections`` and ``maxsize``.

        ``maxsize`` is the same setting: given, it replaces ``max_connections``
        when that is the ``default``; another explicit value is a ValueError.
        """
        if self.maxsize is None or self.maxsize == max_connections:
            return max_connections
        if max_connections == default:
            return self.maxsize
        raise ValueError(
            f"max_connections={max_connections!r} and {_named('maxsize')}={self.maxsize!r} "
            "disagree: both are the pool size, pass one of them"
        )
