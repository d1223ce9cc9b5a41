"""Every transport failure reaches the caller as our error, with the cause kept (API §7).

Each failure class is forced for real on loopback, for both twins: refused
and timed-out connects, a server that stalls, resets before or during a
response, sends a malformed status line, or stops reading a body. Retries
are disabled so the first failure is what the caller sees.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from objectstore_core import (
    ConnectError,
    ConnectTimeout,
    ObjectstoreError,
    ProtocolError,
    ReadError,
    ReadTimeout,
    RetryPolicy,
    Timeout,
    WriteTimeout,
)
from objectstore_core.emulator import Fault
from objectstore_sync.testing import LocalServer
from tests.reliability.conftest import (
    RawServer,
    Twin,
    full_backlog_url,
    pausing_reader,
    read_head,
    refused_url,
)

NO_RETRY = RetryPolicy.disabled()
TOKEN = "sekrit-token-value-1234"


def _check(
    error: ObjectstoreError, cls: type[ObjectstoreError], operation: str, *, foreign: bool = True
) -> None:
    """``foreign``: the failure came from a library or the OS, kept as ``__cause__``."""
    assert type(error) is cls, f"{type(error).__name__}: {error}"
    if foreign:
        assert error.__cause__ is not None, "the foreign exception must be kept as __cause__"
        assert not isinstance(error.__cause__, ObjectstoreError)
    assert error.operation == operation and error.usecase == "reliability"
    assert error.scope is not None and error.scope.startswith("org=1")
    assert TOKEN not in str(error) and TOKEN not in repr(error)
    assert TOKEN not in str(error.__cause__)


def test_connect_refused(make_twin: Callable[..., Twin]) -> None:
    session = make_twin(refused_url(), retry=NO_RETRY, token=TOKEN).session()
    with pytest.raises(ConnectError) as info:
        session.head("k")
    _check(info.value, ConnectError, "head")
    assert info.value.key == "k"


def test_connect_timeout_on_a_listener_that_never_accepts(make_twin: Callable[..., Twin]) -> None:
    with full_backlog_url() as url:
        session = make_twin(
            url, retry=NO_RETRY, timeout=Timeout(connect=0.05), token=TOKEN
        ).session()
        started = time.monotonic()
        with pytest.raises(ConnectTimeout) as info:
            session.put(b"data", key="k")
        assert time.monotonic() - started < 2
    _check(info.value, ConnectTimeout, "put")


def test_read_timeout_on_a_stalling_server(
    server: LocalServer, make_twin: Callable[..., Twin]
) -> None:
    session = make_twin(
        server.url, retry=NO_RETRY, timeout=Timeout(read=0.1), token=TOKEN
    ).session()
    server.faults.inject(Fault.stall(30), method="HEAD")  # ends when the client leaves
    with pytest.raises(ReadTimeout) as info:
        session.head("k")
    _check(info.value, ReadTimeout, "head")


@pytest.mark.parametrize("method", ["HEAD", "PUT", "DELETE"])
def test_reset_before_the_response(
    server: LocalServer, make_twin: Callable[..., Twin], method: str
) -> None:
    session = make_twin(server.url, retry=NO_RETRY, token=TOKEN).session()
    server.faults.inject(Fault.reset(), method=method)
    operation = {"HEAD": "head", "PUT": "put", "DELETE": "delete"}[method]
    with pytest.raises(ReadError) as info:
        if method == "PUT":
            session.put(b"x", key="k")
        elif method == "HEAD":
            session.head("k")
        else:
            session.delete("k")
    _check(info.value, ReadError, operation)


def test_reset_during_a_streamed_body(server: LocalServer, make_twin: Callable[..., Twin]) -> None:
    session = make_twin(server.url, retry=NO_RETRY).session()
    key = session.put(b"x" * 100_000, key="k", compress="none")
    server.faults.inject(Fault.reset(after=1000), method="GET")
    response = session.get(key)
    with pytest.raises(ReadError) as info:
        response.read()
    assert info.value.__cause__ is not None


def test_reset_during_a_small_body_read_by_the_transport(
    server: LocalServer, make_twin: Callable[..., Twin]
) -> None:
    session = make_twin(server.url, retry=NO_RETRY).session()
    server.faults.inject(Fault.reset(after=3), method="PUT")
    with pytest.raises(ReadError) as info:
        session.put(b"x", key="k")
    assert info.value.__cause__ is not None and info.value.operation == "put"


def _malformed(sock: socket.socket) -> None:
    read_head(sock)
    sock.sendall(b"HTTP/1.1 2x0 Bogus\r\ncontent-length: 0\r\n\r\n")


def _garbage(sock: socket.socket) -> None:
    read_head(sock)
    sock.sendall(b"\x00\x01 this is not HTTP\r\n\r\n")


@pytest.mark.parametrize("handler", [_malformed, _garbage], ids=["status-line", "garbage"])
def test_malformed_status_line(
    make_twin: Callable[..., Twin], kind: str, handler: Callable[[socket.socket], None]
) -> None:
    with RawServer(handler) as raw:
        session = make_twin(raw.url, retry=NO_RETRY, token=TOKEN).session()
        with pytest.raises(ProtocolError) as info:
            session.head("k")
    # Both twins parse responses with the core's own HTTP/1.1 codec: there is
    # no foreign exception to keep.
    _check(info.value, ProtocolError, "head", foreign=False)


def test_write_timeout_when_the_server_stops_reading(make_twin: Callable[..., Twin]) -> None:
    with RawServer(pausing_reader(pause=0.4, after=0), rcvbuf=16 * 1024) as raw:
        limits = Timeout(connect=1.0, write=0.1, read=5.0)
        session = make_twin(raw.url, retry=NO_RETRY, timeout=limits, token=TOKEN).session()
        with pytest.raises(WriteTimeout) as info:
            session.put(b"\0" * (16 * 1024 * 1024), key="k", compress="none")
    _check(info.value, WriteTimeout, "put")


def test_header_values_never_appear_in_errors(
    server: LocalServer, make_twin: Callable[..., Twin]
) -> None:
    """Requests carry the token in x-os-auth; neither messages nor reprs show it."""
    session = make_twin(server.url, retry=NO_RETRY, token=TOKEN).session()
    server.faults.inject(Fault.status(503))
    with pytest.raises(ObjectstoreError) as info:
        session.head("k")
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.args)
    assert TOKEN not in str(getattr(info.value, "response", ""))
