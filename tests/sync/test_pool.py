"""The sync transport's connection pool: slots, waiting, liveness of idle connections.

Driven directly with :class:`Request` descriptions against small loopback
servers. What callers see through the client is covered by tests/behaviour
and tests/reliability.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from objectstore_core import PoolTimeout, ReadTimeout, Request, Timeout, client_config
from objectstore_sync._transport import SocketTransport
from tests.reliability.conftest import RawServer, answer, numbered, read_head


def _transport(url: str, **kwargs: Any) -> SocketTransport:
    return SocketTransport(client_config(url, **kwargs))


def test_a_full_pool_times_out_then_hands_the_freed_slot_to_a_waiter() -> None:
    with RawServer(numbered()) as raw:
        transport = _transport(raw.url, max_connections=1)
        _, held = transport.send(Request("GET", "/a", stream=True))
        assert held is not None
        with pytest.raises(PoolTimeout):
            transport.send(Request("GET", "/b", timeout=Timeout(pool=0.05)))
        results: list[bytes] = []
        waiter = threading.Thread(
            target=lambda: results.append(transport.send(Request("GET", "/c"))[0].body)
        )
        waiter.start()
        time.sleep(0.1)
        assert not results and transport.pool_stats() == {"idle": 0, "in_use": 1}
        assert held.read() == b"1" and held.read() == b""  # released: the waiter goes on
        waiter.join(5)
        assert results == [b"1"]  # the same connection, reused
        assert transport.pool_stats() == {"idle": 1, "in_use": 0}
        transport.close()


def test_slots_are_never_exceeded_under_threads() -> None:
    with RawServer(numbered()) as raw:
        transport = _transport(raw.url, max_connections=3)
        seen: list[int] = []
        in_use: list[int] = []
        lock = threading.Lock()

        def work() -> None:
            for _ in range(20):
                response, _ = transport.send(Request("GET", "/x"))
                with lock:
                    seen.append(int(response.body))
                    in_use.append(transport.pool_stats()["in_use"])

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(seen) == 160 and max(seen) <= 3  # never more than three connections
        assert max(in_use) <= 3
        assert transport.pool_stats() == {"idle": len(set(seen)), "in_use": 0}
        transport.close()


def _close_idle(sock: socket.socket) -> None:
    sock.shutdown(socket.SHUT_RDWR)


def _stray_answer(sock: socket.socket) -> None:
    time.sleep(0.05)  # after the client took its response and pooled the connection
    sock.sendall(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")


@pytest.mark.parametrize("misbehave", [_close_idle, _stray_answer], ids=["closed", "stray-bytes"])
def test_an_idle_connection_that_went_stale_is_not_reused(misbehave: Any) -> None:
    """A keyless POST is never resent, so a stale connection must not be tried."""
    with RawServer(numbered(misbehave)) as raw:
        transport = _transport(raw.url)
        assert transport.send(Request("GET", "/a"))[0].body == b"1"
        time.sleep(0.2)
        response, _ = transport.send(Request("POST", "/b", body=b"x"))
        assert response.status == 200 and response.body == b"2"
        transport.close()


def test_a_connection_checked_before_is_still_found_stale_when_it_dies() -> None:
    """The liveness check keeps its poller with the connection: a later check of the
    same socket must still see the server's close."""
    count = iter(range(1, 100))

    def handle(sock: socket.socket) -> None:
        number = str(next(count)).encode()
        for _ in range(2):
            if not read_head(sock):
                return
            sock.sendall(answer(number))
        time.sleep(0.05)
        sock.shutdown(socket.SHUT_RDWR)  # idle after its second answer: closed

    with RawServer(handle) as raw:
        transport = _transport(raw.url)
        assert transport.send(Request("GET", "/a"))[0].body == b"1"
        assert transport.send(Request("GET", "/b"))[0].body == b"1"  # checked, reused
        time.sleep(0.2)
        response, _ = transport.send(Request("POST", "/c", body=b"x"))  # never resent
        assert response.status == 200 and response.body == b"2"
        transport.close()


def test_a_per_request_read_timeout_does_not_stick_to_the_connection() -> None:
    with RawServer(numbered()) as raw:
        transport = _transport(raw.url)
        assert transport.send(Request("GET", "/a"))[0].body == b"1"
        with pytest.raises(ReadTimeout):
            transport.send(Request("GET", "/slow", timeout=Timeout(read=0.05)))
        # The timed-out connection was dropped; the next one waits without a limit.
        assert transport.send(Request("GET", "/slow"))[0].body == b"2"
        transport.close()
