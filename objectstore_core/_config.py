"""Client configuration shared by both twins: everything a client decides without I/O.

Both ``objectstore_sync.Client`` and ``objectstore_async.AsyncClient`` turn
their constructor arguments into one :class:`ClientConfig` here, so argument
handling, defaults, deprecations and validation exist once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from objectstore_core._auth import SecretKey, TokenProvider
from objectstore_core._download import check_max_read_size
from objectstore_core._metrics import MetricsBackend, NoOpMetricsBackend
from objectstore_core._models import Scope, Usecase
from objectstore_core._options import ConnectionOptions
from objectstore_core._paths import Target, split_base_url
from objectstore_core._retry import RetryPolicy
from objectstore_core._timeout import Timeout, seconds

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_USER_AGENT",
    "ClientConfig",
    "ClientTarget",
    "MetricsBackend",
    "NoOpMetricsBackend",
    "Timeout",
    "client_config",
    "config_from_env",
    "session_target",
    "token_from_env",
]

__version__ = "0.1.0"
DEFAULT_USER_AGENT = f"objectstore-client/{__version__} (objectstore-py)"
DEFAULT_MAX_CONNECTIONS = 32


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a client needs to reach a server, validated."""

    base_url: str
    scheme: str
    host: str
    port: int
    base_path: str
    timeout: Timeout
    max_connections: int
    user_agent: str
    token: TokenProvider | None = field(default=None, repr=False)
    connection_kwargs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    connection_options: ConnectionOptions = field(default_factory=ConnectionOptions, repr=False)
    metrics_backend: Any = field(default_factory=NoOpMetricsBackend, repr=False)
    retries: int | None = None
    spool_dir: Any = None
    retry: RetryPolicy | None = None
    max_read_size: int | None = None
    propagate_traces: bool = False

    def base_headers(self) -> dict[str, str]:
        """Headers sent on every request.

        The User-Agent, a static token (§10.2) and ``connection_kwargs``'
        ``headers``.
        """
        # identity: the server never applies transport compression (PROTOCOL §5);
        # asking for none keeps proxies from adding it.
        headers = {"user-agent": self.user_agent, "accept-encoding": "identity"}
        if isinstance(self.token, str):
            headers["x-os-auth"] = f"Bearer {self.token}"
        headers.update(self.connection_options.headers)  # none of the above (_options)
        return headers


def client_config(
    base_url: str,
    metrics_backend: MetricsBackend | None = None,
    propagate_traces: bool = False,
    retries: int | None = None,
    timeout_ms: float | None = None,
    connection_kwargs: Mapping[str, Any] | None = None,
    token: TokenProvider | None = None,
    spool_dir: Any = None,
    *,
    timeout: Timeout | float | None = None,
    retry: RetryPolicy | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    user_agent: str | None = None,
    max_read_size: int | None = None,
) -> ClientConfig:
    """Validate client arguments (official names first, then ours) into a config.

    Retries: ``retry=`` (a :class:`RetryPolicy`) is used as given. Otherwise
    the official ``retries=N`` retries only failed connects, N times
    (``retries=0``: never); with neither, the default :class:`RetryPolicy`
    applies. Passing both is an error, as for ``timeout``/``timeout_ms``.
    """
    scheme, host, port, base_path = split_base_url(base_url)
    if propagate_traces:
        # Deprecated as in the official client (where the Sentry SDK's http.client
        # integration sends the headers); our requests do not pass http.client, so
        # here the option still works: see objectstore_core._tracing.
        warnings.warn(
            "propagate_traces is deprecated; it still sends the Sentry trace headers "
            "(sentry-trace, baggage) with each request while the Sentry SDK is initialised",
            DeprecationWarning,
            stacklevel=3,
        )
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
    ):
        raise ValueError(f"retries={retries!r} is invalid: use a count >= 0 or None")
    # connection_kwargs mean the same in both twins (_options); maxsize is max_connections,
    # and urllib3's pool timeout and retries are the client's own.
    connection = ConnectionOptions.parse(connection_kwargs, scheme)
    if connection.retries is not None and (retries is not None or retry is not None):
        raise ValueError("pass retries in connection_kwargs or as retries=/retry=, not both")
    policy = (
        RetryPolicy.transport_failures(connection.retries)
        if connection.retries is not None
        else _retry_policy(retries, retry)
    )
    chosen = Timeout.coerce(timeout)
    if connection.timeout is not None:
        if chosen is not None or timeout_ms is not None:
            raise ValueError(
                "pass timeout in connection_kwargs or as timeout=/timeout_ms=, not both"
            )
        chosen = connection.timeout
    if chosen is None:
        read = seconds(timeout_ms, "timeout_ms")
        chosen = Timeout(read=read / 1000 if read is not None else None)
    elif timeout_ms is not None:
        raise ValueError("pass either timeout= or timeout_ms=, not both")
    if (
        isinstance(max_connections, bool)
        or not isinstance(max_connections, int)
        or max_connections < 1
    ):
        raise ValueError(f"max_connections={max_connections!r} is invalid: use an integer >= 1")
    max_connections = connection.pool_size(max_connections, DEFAULT_MAX_CONNECTIONS)
    agent = DEFAULT_USER_AGENT if user_agent is None else user_agent
    if not isinstance(agent, str) or any(c in agent for c in "\r\n\0"):
        raise ValueError(f"user_agent={agent!r} is invalid: it must be one line of text")
    if token is not None and not isinstance(token, str | SecretKey):
        # Never echo the value: it may be a secret in an unexpected wrapper.
        raise TypeError(
            f"token must be a SecretKey, a str (a pre-made token) or None, "
            f"got {type(token).__name__}"
        )
    if isinstance(token, str) and any(c in token for c in "\r\n\0 "):
        raise ValueError("token is invalid: a static token must be one word without whitespace")
    return ClientConfig(
        base_url=base_url,
        scheme=scheme,
        host=host,
        port=port,
        base_path=base_path,
        timeout=chosen,
        max_connections=max_connections,
        user_agent=agent,
        token=token,
        connection_kwargs=dict(connection_kwargs or {}),
        connection_options=connection,
        metrics_backend=metrics_backend if metrics_backend is not None else NoOpMetricsBackend(),
        retries=retries,
        spool_dir=spool_dir,
        retry=policy,
        max_read_size=check_max_read_size(max_read_size),
        propagate_traces=bool(propagate_traces),
    )


def _retry_policy(retries: int | None, retry: RetryPolicy | None) -> RetryPolicy:
    if retry is not None:
        if retries is not None:
            raise ValueError("pass either retry= or retries=, not both")
        if not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, got {retry!r}")
        return retry
    if retries is not None:
        return RetryPolicy.connection_errors(retries)
    return RetryPolicy()


def config_from_env(
    environ: Mapping[str, str], read_key_file: Callable[[str], str] | None = None
) -> tuple[str, TokenProvider | None]:
    """``(OBJECTSTORE_URL, token)`` from the environment; ValueError without a URL.

    The token is ``$OBJECTSTORE_TOKEN`` (a pre-made JWT), or a
    :class:`SecretKey` named ``$OBJECTSTORE_KEY_ID`` whose PEM is in the file
    ``$OBJECTSTORE_KEY_FILE`` (read with ``read_key_file``: the core does no I/O).
    """
    url = environ.get("OBJECTSTORE_URL", "").strip()
    if not url:
        raise ValueError(
            "OBJECTSTORE_URL is not set: it must name the server, e.g. http://127.0.0.1:8888"
        )
    return url, token_from_env(environ, read_key_file)


def token_from_env(
    environ: Mapping[str, str], read_key_file: Callable[[str], str] | None = None
) -> TokenProvider | None:
    """The token described by ``OBJECTSTORE_TOKEN`` or ``OBJECTSTORE_KEY_ID`` + ``_KEY_FILE``.

    Setting both kinds, or only one of the key variables, raises ValueError.
    """
    token = environ.get("OBJECTSTORE_TOKEN", "").strip() or None
    kid = environ.get("OBJECTSTORE_KEY_ID", "").strip()
    key_file = environ.get("OBJECTSTORE_KEY_FILE", "").strip()
    if not kid and not key_file:
        return token
    if token is not None:
        raise ValueError(
            "OBJECTSTORE_TOKEN and OBJECTSTORE_KEY_ID/OBJECTSTORE_KEY_FILE are both set: "
            "use a static token or a signing key, not both"
        )
    if not kid or not key_file:
        missing = "OBJECTSTORE_KEY_FILE" if kid else "OBJECTSTORE_KEY_ID"
        raise ValueError(f"{missing} is not set: a signing key needs both its id and its PEM file")
    if read_key_file is None:
        raise ValueError("OBJECTSTORE_KEY_FILE is set but no file reader was given")
    try:
        pem = read_key_file(key_file)
    except OSError as exc:
        raise ValueError(
            f"OBJECTSTORE_KEY_FILE {key_file!r} cannot be read: {exc.strerror or exc}"
        ) from None
    return SecretKey(kid, pem)


def session_target(
    config: ClientConfig, usecase: Usecase | Scope, scopes: Mapping[str, str | int | bool]
) -> Target:
    """Resolve ``client.session(usecase, **scopes)`` or ``client.session(scope)`` (API §1)."""
    headers = tuple(config.base_headers().items())
    if isinstance(usecase, Usecase):
        chosen, scope = usecase, Scope.from_items(tuple(scopes.items()))
    elif isinstance(usecase, Scope):
        if usecase.usecase is None:
            raise ValueError(
                f"scope {str(usecase)!r} has no usecase: build it with "
                "Usecase(...).for_project(...) or pass client.session(usecase, **scopes)"
            )
        if scopes:
            raise ValueError("pass scope components either in the Scope or as keywords, not both")
        chosen, scope = usecase.usecase, usecase
    else:
        raise TypeError(f"session() needs a Usecase or a Scope, got {usecase!r}")
    # A signing key signs every request at send time, with a token cached per
    # (usecase, scope) across sessions (PROTOCOL §10.7); a static token is a header.
    credentials = (
        config.token.credentials(chosen.name, scope)
        if isinstance(config.token, SecretKey)
        else None
    )
    return ClientTarget(config.base_path, chosen, scope, headers, credentials, config=config)


@dataclass(frozen=True, slots=True)
class ClientTarget(Target):
    """A :class:`Target` of a client's session: it also carries the client's
    configuration, so the flows apply its retry policy, timeouts and metrics.

    Flows given a plain :class:`Target` (as in the core's tests) never retry.
    """

    config: ClientConfig | None = field(default=None, repr=False, compare=False)
