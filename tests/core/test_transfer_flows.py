"""The managed upload flow of objectstore_core._transfer, driven by hand (API §4).

A scripted driver answers its steps: it counts what runs at once, and
decides which spawned part fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from objectstore_core import (
    CompletePart,
    Join,
    Joined,
    ReadAt,
    Response,
    SendRequest,
    ServerError,
    Spawn,
    Target,
    Usecase,
)
from objectstore_core._http import Compress, Flow, Measure
from objectstore_core._transfer import MIN_PART_SIZE, upload_flow

RAW = Usecase("raw_things", compression="none")
TARGET = Target("", RAW, RAW.for_organization(1))
PART = MIN_PART_SIZE


def _json(value: object) -> Response:
    return Response(200, {"content-type": "application/json"}, json.dumps(value).encode())


class Driver:
    """Runs a managed upload's steps; spawned part flows "succeed" unless told to fail."""

    def __init__(self, failing: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.failing = failing
        self.requests: list[str] = []
        self.reads: list[tuple[int, int]] = []
        self.spawned: list[int] = []
        self.most_at_once = 0
        self._running: list[Spawn] = []

    def run(self, flow: Flow[Any], size: int) -> Any:
        reply: Any = None
        try:
            step = next(flow)
            while True:
                reply = self._answer(step, size)
                step = flow.send(reply)
        except StopIteration as done:
            return done.value

    def _answer(self, step: object, size: int) -> Any:
        if isinstance(step, Measure):
            return size
        if isinstance(step, ReadAt):
            self.reads.append((step.offset, step.size))
            return b"x" * step.size
        if isinstance(step, Compress):
            return step.run(cpus=1)
        if isinstance(step, Spawn):
            self._running.append(step)
            self.spawned.append(step.tag)
            self.most_at_once = max(self.most_at_once, len(self._running))
            return None
        if isinstance(step, Join):
            done = self._running.pop(0)
            if done.tag in self.failing:
                return Joined(done.tag, error=ServerError("part failed", 500, ""))
            return Joined(done.tag, CompletePart(done.tag, f'"e{done.tag}"'))
        assert isinstance(step, SendRequest), step
        request = step.request
        self.requests.append(f"{request.method} {request.target.split('/')[2]}")
        if request.method == "PUT" and "objects:multipart/" in request.target:
            return _json({"key": "k", "upload_id": "u"})
        if request.method == "POST":
            return _json({"key": "k"})
        return Response(204)


def test_parts_are_read_in_order_and_run_at_most_concurrency_at_once(tmp_path: Path) -> None:
    driver = Driver()
    key = driver.run(
        upload_flow(TARGET, tmp_path / "f", "k", part_size=PART, concurrency=2), 5 * PART + 1
    )
    assert key == "k"
    assert driver.reads == [(n * PART, PART) for n in range(5)] + [(5 * PART, 1)]
    assert driver.spawned == [1, 2, 3, 4, 5, 6]
    assert driver.most_at_once == 2
    assert driver.requests == ["PUT objects:multipart", "POST objects:multipart:complete"]


def test_a_failed_part_lets_the_others_finish_then_aborts(tmp_path: Path) -> None:
    driver = Driver(failing={1})
    with pytest.raises(ServerError, match="part failed"):
        driver.run(
            upload_flow(TARGET, tmp_path / "f", "k", part_size=PART, concurrency=3), 6 * PART
        )
    assert driver.spawned == [1, 2, 3]  # nothing new once a part failed
    assert driver.requests == ["PUT objects:multipart", "DELETE objects:multipart"]


def test_a_source_that_shrinks_meanwhile_aborts(tmp_path: Path) -> None:
    class Short(Driver):
        def _answer(self, step: object, size: int) -> Any:
            if isinstance(step, ReadAt) and step.offset:
                return b"short"
            return super()._answer(step, size)

    driver = Short()
    with pytest.raises(Exception, match="the source changed while it was uploaded"):
        driver.run(upload_flow(TARGET, tmp_path / "f", "k", part_size=PART), 3 * PART)
    assert driver.requests[-1] == "DELETE objects:multipart"
