"""``Client`` and ``Session``: the blocking API (API §1, §2, §6).

Each operation builds a flow in the core, drives it with urllib3 and wraps
the result; no protocol decision is made here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from objectstore_core import (
    ClientConfig,
    Flow,
    GetOutcome,
    MetricsBackend,
    Scope,
    SessionFlows,
    Target,
    Timeout,
    Usecase,
    client_config,
    config_from_env,
    session_target,
    with_return_annotation,
)
from objectstore_sync._driver import drive
from objectstore_sync._response import GetResponse, open_response
from objectstore_sync._transport import Urllib3Transport

__all__ = ["Client", "Session"]

T = TypeVar("T")


class Client:
    """A connection pool to one Objectstore server, safe to share across threads.

    >>> client = Client("http://127.0.0.1:8888")            # doctest: +SKIP
    >>> session = client.session(Usecase("attachments"), org=42, project=1337)  # doctest: +SKIP
    >>> key = session.put(b"hello")                          # doctest: +SKIP

    The first eight parameters are the official client's, in its order;
    ``timeout`` (a :class:`Timeout` or seconds) supersedes ``timeout_ms``.
    """

    def __init__(
        self,
        base_url: str,
        metrics_backend: MetricsBackend | None = None,
        propagate_traces: bool = False,
        retries: int | None = None,
        timeout_ms: float | None = None,
        connection_kwargs: Mapping[str, Any] | None = None,
        token: Any = None,
        spool_dir: str | os.PathLike[str] | None = None,
        *,
        timeout: Timeout | float | None = None,
        max_connections: int = 32,
        user_agent: str | None = None,
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
            max_connections=max_connections,
            user_agent=user_agent,
        )
        self._transport = Urllib3Transport(self._config)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Client:
        """A client for ``OBJECTSTORE_URL``, with ``OBJECTSTORE_TOKEN`` if set."""
        url, token = config_from_env(os.environ if environ is None else environ)
        kwargs.setdefault("token", token)
        return cls(url, **kwargs)

    @property
    def config(self) -> ClientConfig:
        """The validated configuration (never shows the token)."""
        return self._config

    def session(self, usecase: Usecase | Scope, **scopes: str | int | bool) -> Session:
        """A session for ``usecase`` and ``scopes``, or for a scope built from a usecase."""
        return Session(self, session_target(self._config, usecase, scopes))

    def close(self) -> None:
        """Close pooled connections. Bodies still being read close when finished."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._config.base_url!r})"


P = ParamSpec("P")


def _blocking(
    method: Callable[Concatenate[SessionFlows, P], Flow[T]], returns: object
) -> Callable[Concatenate[Session, P], T]:
    """Turn a core session method into a blocking one with the same signature."""

    def call(self: Session, /, *args: P.args, **kwargs: P.kwargs) -> T:
        value, stream = drive(method(self._flows, *args, **kwargs), self._client._transport)
        if stream is not None:  # pragma: no cover - only get flows leave a body open
            stream.close()
        return value

    functools.update_wrapper(call, method)
    with_return_annotation(call, method, returns)
    return call


def _blocking_get(
    method: Callable[Concatenate[SessionFlows, P], Flow[GetOutcome | None]],
) -> Callable[Concatenate[Session, P], GetResponse | None]:
    """``get``: run the flow, then wrap the body it left open in a GetResponse."""

    def call(self: Session, /, *args: P.args, **kwargs: P.kwargs) -> GetResponse | None:
        outcome, stream = drive(method(self._flows, *args, **kwargs), self._client._transport)
        if outcome is None:
            return None
        assert stream is not None, "a found object always leaves its body open"
        return open_response(outcome, stream)

    functools.update_wrapper(call, method)
    with_return_annotation(call, method, "GetResponse | None")
    return call


class Session:
    """Operations on the objects of one usecase and scope (API §2).

    The methods are the core's :class:`objectstore_core.SessionFlows`,
    run to completion with the urllib3 transport.
    """

    __slots__ = ("_client", "_flows")

    def __init__(self, client: Client, target: Target) -> None:
        self._client = client
        self._flows = SessionFlows(target)

    @property
    def usecase(self) -> Usecase:
        return self._flows.usecase

    @property
    def scope(self) -> Scope:
        return self._flows.scope

    def __repr__(self) -> str:
        return f"Session(usecase={self.usecase.name!r}, scope={str(self.scope)!r})"

    put = _blocking(SessionFlows.put, "str")
    get = _blocking_get(SessionFlows.get)
    head = _blocking(SessionFlows.head, "Metadata | None")
    delete = _blocking(SessionFlows.delete, "None")
    extend_expiry = _blocking(SessionFlows.extend_expiry, "None")
