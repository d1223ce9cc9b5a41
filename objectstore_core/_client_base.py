"""What a client is without I/O: configuration, sessions, construction from the environment.

``objectstore_sync.Client`` and ``objectstore_async.AsyncClient`` both derive
from :class:`BaseClient` (never from each other) and add only their
transport, their way of closing (``close`` / ``aclose``) and the three
looks outside the core cannot take itself (a key file, the environment, the
wall clock). The constructor is therefore one signature for both twins.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Generic, Self, TypeVar

from objectstore_core._auth import TokenProvider
from objectstore_core._codec import ZstdContexts
from objectstore_core._config import (
    DEFAULT_MAX_CONNECTIONS,
    ClientConfig,
    MetricsBackend,
    client_config,
    config_from_env,
    session_target,
)
from objectstore_core._models import Scope, Usecase
from objectstore_core._paths import Target
from objectstore_core._retry import RetryPolicy
from objectstore_core._timeout import Timeout

__all__ = ["BaseClient"]

TransportT = TypeVar("TransportT")
SessionT = TypeVar("SessionT")


class BaseClient(Generic[TransportT, SessionT]):
    """A client of one Objectstore server: configuration, pool and sessions.

    The first eight parameters are the official client's, in its order.
    ``timeout`` (a :class:`Timeout` or seconds) supersedes ``timeout_ms``;
    ``retry`` (a :class:`RetryPolicy`) supersedes ``retries`` (which, as in
    the official client, retries only failed connects; passing both is an
    error; with neither the default policy retries what is safe to retry);
    ``max_connections`` sizes the pool; ``transport`` replaces the network
    entirely (for example an in-process emulator in tests);
    ``max_read_size`` bounds a whole-body ``read()``/``aread()`` of a
    download (None: unbounded; ``get(max_read_size=...)`` overrides it).
    """

    def __init__(
        self,
        base_url: str,
        metrics_backend: MetricsBackend | None = None,
        propagate_traces: bool = False,
        retries: int | None = None,
        timeout_ms: float | None = None,
        connection_kwargs: Mapping[str, Any] | None = None,
        token: TokenProvider | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        *,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        user_agent: str | None = None,
        transport: TransportT | None = None,
        max_read_size: int | None = None,
    ) -> None:
        self._config = client_config(
            base_url,
            metrics_backend,
            propagate_traces,
            retries,
            timeout_ms,
            connection_kwargs,
            token,
            spool_dir,
            timeout=timeout,
            retry=retry,
            max_connections=max_connections,
            user_agent=user_agent,
            max_read_size=max_read_size,
        )
        self._transport: TransportT = (
            transport if transport is not None else self._default_transport(self._config)
        )
        # Idle zstd contexts for this client's uploads and downloads: owned here,
        # not by the codec module, so that clients share no state.
        self._zstd = ZstdContexts()

    def _default_transport(self, config: ClientConfig) -> TransportT:
        raise NotImplementedError  # pragma: no cover - each twin provides its transport

    def _new_session(self, target: Target) -> SessionT:
        raise NotImplementedError  # pragma: no cover - each twin provides its session

    # What the core cannot do itself, each twin provides as a staticmethod (one
    # line each, beside its transport): read ``$OBJECTSTORE_KEY_FILE`` for
    # ``from_env``, hand over the process environment, and read the wall clock
    # for tokens and URLs made without ``now=``. The core opens no files and
    # reads neither the environment nor a clock.
    _read_key_file: Callable[[str], str] | None = None
    _environment: Callable[[], Mapping[str, str]] | None = None
    _wall_clock: Callable[[], float] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Self:
        """A client for ``$OBJECTSTORE_URL`` with the token the environment describes.

        ``$OBJECTSTORE_TOKEN`` is a pre-made token; ``$OBJECTSTORE_KEY_ID`` with
        ``$OBJECTSTORE_KEY_FILE`` (a PEM file) makes a :class:`SecretKey`.
        Other keyword arguments are passed to the constructor.

        >>> client = Client.from_env()          # doctest: +SKIP
        """
        if environ is None:
            if cls._environment is None:  # pragma: no cover - each twin provides it
                raise TypeError(f"{cls.__name__} cannot read the environment: pass environ")
            environ = cls._environment()
        url, token = config_from_env(environ, cls._read_key_file)
        kwargs.setdefault("token", token)
        return cls(url, **kwargs)

    @property
    def config(self) -> ClientConfig:
        """The validated configuration (its repr never shows the token)."""
        return self._config

    def session(self, usecase: Usecase | Scope, **scopes: str | int | bool) -> SessionT:
        """A session for ``usecase`` and ``scopes`` (in keyword order), or for a scope
        built from a usecase such as ``Usecase("x").for_project(1, 2)``."""
        return self._new_session(session_target(self._config, usecase, scopes))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._config.base_url!r})"
