"""Fork safety and thread safety of one client (API §6).

Children are forked with ``os.fork`` and leave with ``os._exit`` (status 0
on success), so no test machinery runs twice. Every child arms an alarm so
a deadlock fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta

import anyio
import anyio.from_thread
import pytest

from objectstore_async import AsyncClient
from objectstore_core import ObjectstoreError, TimeToLive
from objectstore_sync import Client, GetResponse, Session, Usecase
from objectstore_sync._transport import SocketTransport
from objectstore_sync.testing import LocalServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CHILD_DEADLINE = 10  # seconds before a stuck child is killed by its alarm


def _in_child(work: Callable[[], None]) -> int:
    """Fork; run ``work`` in the child; return the child's pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        status = 1
        try:
            signal.alarm(CHILD_DEADLINE)
            work()
            status = 0
        except BaseException:
            traceback.print_exc(file=sys.stderr)
        finally:
            os._exit(status)
    return pid


def _wait(pid: int) -> int:
    """The child's exit status (killing it after the deadline)."""
    deadline = time.monotonic() + CHILD_DEADLINE + 5
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -9


def _round_trip(session: Session, tag: str) -> None:
    payload = f"{tag}-{os.getpid()}".encode() * 100
    key = session.put(payload, key=f"{tag}-{os.getpid()}")
    with _get(session, key) as response:
        assert response.read() == payload
    assert session.head(key) is not None
    session.delete(key)
    assert session.get(key) is None


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def _get(session: Session, key: str) -> GetResponse:
    response = session.get(key)
    assert response is not None, key
    return response


def _stats(client: Client) -> dict[str, int]:
    transport = client._transport
    assert isinstance(transport, SocketTransport)
    return transport.pool_stats()


def test_client_works_in_child_and_parent_after_fork(server: LocalServer) -> None:
    with Client(server.url) as client:
        session = client.session(Usecase("fork"), org=1)
        _round_trip(session, "before")  # leaves a pooled keep-alive connection
        stats = _stats(client)
        assert stats == {"idle": 1, "in_use": 0}
        accepted = server.server.connections_accepted

        def child() -> None:
            # The parent's idle socket is not reused: the child opens its own.
            _round_trip(session, "child")
            assert _stats(client) == {"idle": 1, "in_use": 0}

        assert _wait(_in_child(child)) == 0
        assert server.server.connections_accepted == accepted + 1
        _round_trip(session, "parent")  # the parent's pooled connection still works
        assert server.server.connections_accepted == accepted + 1


def test_child_forked_while_another_thread_holds_the_only_connection(
    server: LocalServer,
) -> None:
    """With max_connections=1 an inherited semaphore would block the child forever."""
    with Client(server.url, max_connections=1) as client:
        session = client.session(Usecase("fork"), org=2)
        key = session.put(b"x" * 1_000_000, key="held", compress="none")
        holding = threading.Event()
        release = threading.Event()

        def hold() -> None:
            response = session.get(key)
            assert response is not None
            response.payload.read(10)  # the connection stays busy with the unread rest
            holding.set()
            release.wait(10)
            assert response.read() == b"x" * (1_000_000 - 10)
            response.close()

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(10)
        try:
            assert _stats(client)["in_use"] == 1
            pid = _in_child(lambda: _round_trip(session, "child-of-busy"))
            assert _wait(pid) == 0
        finally:
            release.set()
            holder.join(10)
        _round_trip(session, "parent-after")
        assert _stats(client) == {"idle": 1, "in_use": 0}


def test_streamed_body_open_across_fork_is_not_pooled_in_the_child(server: LocalServer) -> None:
    with Client(server.url, max_connections=2) as client:
        session = client.session(Usecase("fork"), org=3)
        key = session.put(b"y" * 500_000, key="open", compress="none")
        response = session.get(key)
        assert response is not None

        def child() -> None:
            response.close()  # leased before the fork: closed, no slot freed, never pooled
            stats = _stats(client)
            assert stats == {"idle": 0, "in_use": 0}, stats
            _round_trip(session, "child-open")

        assert _wait(_in_child(child)) == 0
        assert response.read() == b"y" * 500_000  # the parent's stream is intact
        assert _stats(client) == {"idle": 1, "in_use": 0}


def test_celery_style_prefork_workers(server: LocalServer) -> None:
    """A client built in the parent, used by several forked workers and by the parent."""
    client = Client(server.url, max_connections=4)
    session = client.session(Usecase("celery"), org=4)
    _round_trip(session, "warmup")

    def worker() -> None:
        rng = random.Random(os.getpid())
        for n in range(20):
            payload = rng.randbytes(rng.randint(0, 5000))
            key = session.put(payload, key=f"w{os.getpid()}-{n}")
            if n % 2:
                assert session.put(payload) != key  # keyless too
            with _get(session, key) as response:
                assert response.read() == payload
            assert session.head(key) is not None
            session.delete(key)

    pids = [_in_child(worker) for _ in range(4)]
    _round_trip(session, "parent-during")
    statuses = [_wait(pid) for pid in pids]
    assert statuses == [0, 0, 0, 0]
    _round_trip(session, "parent-after")
    client.close()


def test_async_client_is_rebuilt_in_a_forked_child(server: LocalServer) -> None:
    """The parent keeps one event loop (in a portal thread, API §6: one client per loop);
    a forked child runs its own loop and gets a fresh pool instead of the parent's sockets."""
    client = AsyncClient(server.url)
    session = client.session(Usecase("fork-async"), org=5)

    async def round_trip(tag: str) -> None:
        payload = f"{tag}-{os.getpid()}".encode() * 50
        key = await session.put(payload, key=f"{tag}-{os.getpid()}")
        response = await session.get(key)
        assert response is not None
        async with response:
            assert await response.aread() == payload
        await session.delete(key)

    with anyio.from_thread.start_blocking_portal() as portal:
        portal.call(round_trip, "parent-before")  # pooled connections bound to that loop
        accepted = server.server.connections_accepted
        assert _wait(_in_child(lambda: anyio.run(round_trip, "child"))) == 0
        assert server.server.connections_accepted > accepted  # the child dialled its own
        portal.call(round_trip, "parent-after")
        portal.call(client.aclose)


def test_one_client_shared_by_sixteen_threads(server: LocalServer) -> None:
    errors: list[BaseException] = []
    with Client(server.url, max_connections=8) as client:
        session = client.session(Usecase("threads"), org=6)
        start = threading.Barrier(16)

        def work(index: int) -> None:
            rng = random.Random(index)
            try:
                start.wait(10)
                for n in range(15):
                    payload = rng.randbytes(rng.randint(0, 20_000))
                    key = session.put(
                        payload,
                        key=f"t{index}-{n}",
                        expiration_policy=TimeToLive(timedelta(hours=1)),
                    )
                    generated = session.put(payload)
                    for each in (key, generated):
                        with _get(session, each) as response:
                            assert response.read() == payload
                    session.extend_expiry(key, from_now=timedelta(hours=2))
                    assert session.head(key) is not None
                    session.delete(generated)
                    assert session.get(generated) is None
            except BaseException as exc:  # collected and reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == [], errors[:3]
        stats = _stats(client)
        assert stats["in_use"] == 0 and 1 <= stats["idle"] <= 8


def test_no_connections_or_descriptors_leak_under_faults(server: LocalServer) -> None:
    from objectstore_core.emulator import Fault

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc")
    with Client(server.url, max_connections=4) as client:
        session = client.session(Usecase("leaks"), org=7)
        session.put(b"warm", key="warm")
        before = open_fds()
        for fault in (
            Fault.reset(),
            Fault.reset(after=2),
            Fault.truncate(after=3),
            Fault.corrupt(at=1),
            Fault.status(503),
        ):
            for _ in range(5):
                server.faults.inject(fault, method="GET")
                try:
                    with _get(session, "warm") as response:
                        response.read()
                except ObjectstoreError:
                    pass
        server.faults.clear()
        stats = _stats(client)
        assert stats["in_use"] == 0 and stats["idle"] <= 4
        assert open_fds() - before <= 4  # at most the pooled keep-alive sockets
    time.sleep(0.05)
