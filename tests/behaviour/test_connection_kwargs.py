"""urllib3's pool defaults in ``connection_kwargs`` (``headers``, ``timeout``,
``retries``) mean the client's own settings, in both twins.

Code written for the official client passes them in ``connection_kwargs``;
each has the effect it has there: default headers go out on every request,
the timeout bounds the exchange, the retries retry failed connections.
Against scripted loopback peers, for the sync twin and the async twin under
asyncio and trio.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from objectstore_core import ClientConfig, RetryPolicy, Timeout, Usecase, client_config
from objectstore_core import TimeoutError as ObjectstoreTimeout
from tests.behaviour.peers import Peer, PeerConnection, response
from tests.behaviour.twins import Twin


@pytest.fixture(params=["sync", "asyncio", "trio"])
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def _not_found(conn: PeerConnection) -> None:
    while conn.read_request() is not None:
        conn.send(response(404))


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer(_not_found) as running:
        yield running


def _session(kind: str, url: str, **client_kwargs: Any) -> tuple[Twin, Any]:
    twin = Twin(kind, url, None, **client_kwargs)
    return twin, twin.session(Usecase("attachments"), org=1)


def test_default_headers_go_out_on_every_request(kind: str, peer: Peer) -> None:
    headers = {"X-Team": "storage", "x-request-source": "cleanup"}
    twin, session = _session(kind, peer.url, connection_kwargs={"headers": headers})
    try:
        assert session.get("a") is None
        assert session.head("b") is None
        session.put(b"x", key="c")
    except Exception:
        pass  # a 404 answer to the put is an error; the head is what is asserted
    finally:
        twin.close()
    assert len(peer.requests) == 3
    for head in peer.requests:
        assert head.headers["x-team"] == "storage"
        assert head.headers["x-request-source"] == "cleanup"
        assert head.headers["user-agent"].startswith("objectstore")  # still the client's own


def test_a_number_timeout_bounds_reads(kind: str) -> None:
    def silent(conn: PeerConnection) -> None:
        conn.read_request()
        time.sleep(2)

    with Peer(silent) as slow:
        twin, session = _session(
            kind, slow.url, connection_kwargs={"timeout": 0.3}, retry=RetryPolicy.disabled()
        )
        try:
            started = time.monotonic()
            with pytest.raises(ObjectstoreTimeout):
                session.head("slow")
            assert time.monotonic() - started < 1.5
        finally:
            twin.close()


def test_retries_retry_a_lost_connection(kind: str) -> None:
    def drop(conn: PeerConnection) -> None:
        conn.read_request()
        conn.close()

    with Peer(drop) as dropping:
        twin, session = _session(kind, dropping.url, connection_kwargs={"retries": 2})
        try:
            with pytest.raises(Exception):  # noqa: B017 - which error is another test's concern
                session.head("gone")
        finally:
            twin.close()
        assert len(dropping.requests) == 3  # the first attempt and two retries


# ------------------------------------------------------------------ the meaning, checked


def _config(**kwargs: Any) -> ClientConfig:
    return client_config("http://127.0.0.1:9", connection_kwargs=kwargs)


def test_timeout_values() -> None:
    assert _config(timeout=2).timeout == Timeout(connect=2, read=2, write=2)
    assert _config(timeout=Timeout(read=7)).timeout == Timeout(read=7)
    made = _config(timeout=urllib3.Timeout(connect=1.5, read=4)).timeout
    assert (made.connect, made.read, made.total) == (1.5, 4, None)
    made = _config(timeout=urllib3.Timeout(total=9)).timeout
    assert made.total == 9
    for bad in (0, -1, float("inf"), "3", True):
        with pytest.raises(ValueError, match=r"connection_kwargs\['timeout'\]"):
            _config(timeout=bad)


def test_timeout_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        client_config("http://h", timeout=3, connection_kwargs={"timeout": 2})
    with pytest.raises(ValueError, match="not both"):
        client_config("http://h", timeout_ms=300, connection_kwargs={"timeout": 2})


def test_retries_values() -> None:
    assert _config(retries=3).retry == RetryPolicy.transport_failures(3)
    assert _config(retries=False).retry == RetryPolicy.transport_failures(0)
    policy = _config(retries=False).retry
    assert policy is not None and policy.max_attempts == 1
    with pytest.raises(ValueError, match=r"retry=RetryPolicy"):
        _config(retries=urllib3.Retry(total=3))
    with pytest.raises(ValueError, match=r"connection_kwargs\['retries'\]"):
        _config(retries=-1)
    with pytest.raises(ValueError, match="not both"):
        client_config("http://h", retries=1, connection_kwargs={"retries": 2})


@pytest.mark.parametrize(
    "name",
    ["Host", "content-length", "Transfer-Encoding", "user-agent", "Authorization",
     "x-os-auth", "x-snme-owner", "x-sn-expiration", "accept-encoding", "content-type"],
)  # fmt: skip
def test_headers_the_client_writes_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=rf"cannot set '{name}'"):
        _config(headers={name: "v"})


def test_bad_header_values_are_refused_without_showing_them() -> None:
    with pytest.raises(ValueError, match=r"\['x-key'\] is invalid") as info:
        _config(headers={"x-key": "sekrit\r\nx-evil: 1"})
    assert "sekrit" not in str(info.value)
    with pytest.raises(ValueError, match="invalid header name"):
        _config(headers={"bad name": "v"})
    with pytest.raises(ValueError, match="twice"):
        _config(headers={"X-A": "1", "x-a": "2"})
    with pytest.raises(ValueError, match="mapping"):
        _config(headers=[("x-a", "1")])
