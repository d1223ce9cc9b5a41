"""The metrics hooks of the core's flows, without sockets: a scripted driver and fake clock.

With the default no-op backend a flow yields exactly the steps it yields
without metrics (no :class:`Clock`, nothing measured); with a recording
backend it asks for the time at its start and end and reports what its
steps revealed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

from objectstore_core import (
    Clock,
    Compress,
    NoOpMetricsBackend,
    Response,
    SendRequest,
    ServerError,
    Usecase,
    client_config,
    session_target,
)
from objectstore_core._http import Flow
from objectstore_core._metrics import Meter
from objectstore_core._operations import delete_flow, get_flow, head_flow, put_flow
from objectstore_core._paths import Target

T = TypeVar("T")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, float, dict[str, str], str | None]] = []

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        self.events.append((name, value, dict(tags or {}), None))

    def gauge(self, name: str, value: float, tags: Any = None) -> None:
        self.events.append((name, value, dict(tags or {}), None))

    def distribution(
        self, name: str, value: float, tags: Any = None, unit: str | None = None
    ) -> None:
        self.events.append((name, value, dict(tags or {}), unit))


def target(backend: Any = None) -> Target:
    config = client_config("http://objectstore.test", metrics_backend=backend, retries=0)
    return session_target(config, Usecase("attachments"), {"org": 1})


def run(flow: Flow[T], answers: Iterator[Response], ticks: Iterator[float]) -> tuple[T, list[Any]]:
    """Drive ``flow``: answer requests in order, the clock from ``ticks``; return the steps."""
    steps: list[Any] = []
    reply: Any = None
    try:
        while True:
            step = flow.send(reply)
            steps.append(type(step).__name__)
            if isinstance(step, Clock):
                reply = next(ticks)
            elif isinstance(step, Compress):
                reply = step.run(cpus=1)
            else:
                assert isinstance(step, SendRequest)
                reply = next(answers)
    except StopIteration as done:
        return done.value, steps


KEY_OK = Response(200, {}, b'{"key":"k"}')


@pytest.mark.parametrize("backend", [None, NoOpMetricsBackend()])
def test_the_no_op_backend_adds_no_step(backend: Any) -> None:
    _, put_steps = run(put_flow(target(backend), b"data", key="k"), iter([KEY_OK]), iter(()))
    assert put_steps == ["Compress", "SendRequest"]
    _, head_steps = run(head_flow(target(backend), "k"), iter([Response(404)]), iter(()))
    assert head_steps == ["SendRequest"]
    outcome, get_steps = run(get_flow(target(backend), "k"), iter([Response(200)]), iter(()))
    assert get_steps == ["SendRequest"] and outcome is not None and outcome.meter is None


def test_a_put_reports_sizes_latency_and_throughput_from_its_steps() -> None:
    recorder = Recorder()
    flow = put_flow(target(recorder), b"a" * 1000, key="k")
    _, steps = run(flow, iter([KEY_OK]), iter([10.0, 10.5]))
    assert steps == ["Clock", "Compress", "SendRequest", "Clock"]
    names = [(name, tags.get("compression"), unit) for name, _, tags, unit in recorder.events]
    assert names == [
        ("storage.put.size", "none", "byte"),
        ("storage.put.size", "zstd", "byte"),
        ("storage.put.latency", None, None),
        ("storage.put.compression_ratio", "zstd", None),
        ("storage.put.throughput", "none", None),
        ("storage.put.inverse_throughput", "none", None),
        ("storage.put.throughput", "zstd", None),
        ("storage.put.inverse_throughput", "zstd", None),
    ]
    values = {(name, tags.get("compression")): value for name, value, tags, _ in recorder.events}
    assert values["storage.put.latency", None] == 0.5
    assert values["storage.put.size", "none"] == 1000
    assert values["storage.put.throughput", "none"] == 2000.0
    assert values["storage.put.inverse_throughput", "none"] == 0.0005


def test_a_precompressed_put_reports_one_size_in_its_encoding() -> None:
    recorder = Recorder()
    flow = put_flow(target(recorder), b"zzzz", key="k", precompressed="zstd")
    run(flow, iter([KEY_OK]), iter([1.0, 2.0]))
    sizes = [(v, t) for name, v, t, _ in recorder.events if name == "storage.put.size"]
    assert sizes == [(4, {"usecase": "attachments", "compression": "zstd"})]


def test_a_failed_operation_reports_its_latency_with_the_outcome() -> None:
    recorder = Recorder()
    with pytest.raises(ServerError):
        run(delete_flow(target(recorder), "k"), iter([Response(500)]), iter([1.0, 3.0]))
    assert recorder.events == [
        ("storage.delete.latency", 2.0, {"usecase": "attachments", "outcome": "ServerError"}, None)
    ]


def test_an_empty_payload_reports_no_ratio_and_no_throughput_of_nothing() -> None:
    recorder = Recorder()
    Meter(recorder, "put", "u").record(1.0, uncompressed=0, compressed=9)
    names = [(name, tags.get("compression")) for name, _, tags, _ in recorder.events]
    assert names == [
        ("storage.put.size", "none"),
        ("storage.put.size", "zstd"),
        ("storage.put.latency", None),
        ("storage.put.throughput", "zstd"),
        ("storage.put.inverse_throughput", "zstd"),
    ]


def test_a_get_leaves_its_meter_to_the_body() -> None:
    recorder = Recorder()
    answer = Response(200, {"content-length": "3"})
    outcome, steps = run(get_flow(target(recorder), "k"), iter([answer]), iter([5.0]))
    assert steps == ["Clock", "SendRequest"] and recorder.events == []
    assert outcome is not None
    download = outcome.download()
    download.feed(b"abc")
    download.feed(b"")
    assert download.read() == b"abc" and download.read() == b""
    download.settle(7.0)
    download.settle(8.0)  # once only
    assert [(name, value) for name, value, _, _ in recorder.events] == [
        ("storage.get.size", 3),
        ("storage.get.latency", 2.0),
        ("storage.get.throughput", 1.5),
        ("storage.get.inverse_throughput", 2.0 / 3),
    ]
