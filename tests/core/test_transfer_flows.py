"""The managed upload flow of objectstore_core._transfer, driven by hand (API §4).

A scripted driver answers its steps: it counts what runs at once, runs a
spawned part's own steps when it is joined, and decides which part fails.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import zstandard

from objectstore_core import (
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
from objectstore_core._transfer import MIN_PART_SIZE, CompressPart, PartBuffers, upload_flow

RAW = Usecase("raw_things", compression="none")
TARGET = Target("", RAW, RAW.for_organization(1))
ZSTD = Usecase("zstd_things")
ZSTD_TARGET = Target("", ZSTD, ZSTD.for_organization(1))
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
        if isinstance(step, CompressPart):
            self.reads.append((step.offset, step.size))
            return step.run(io.BytesIO(b"x" * step.size).readinto)
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
            try:
                return Joined(done.tag, self.run(done.flow, size))  # type: ignore[arg-type]
            except Exception as error:
                return Joined(done.tag, error=error)
        assert isinstance(step, SendRequest), step
        request = step.request
        self.requests.append(f"{request.method} {request.target.split('/')[2]}")
        if request.method == "PUT" and "part_number=" in request.target:
            number = int(request.target.rsplit("=", 1)[1])
            return _json({"etag": f'"e{number}"'})
        if request.method == "PUT" and "objects:multipart/" in request.target:
            return _json({"key": "k", "upload_id": "u"})
        if request.method == "POST":
            return _json({"key": "k"})
        return Response(204)


def _calls(driver: Driver) -> list[str]:
    return [call for call in driver.requests if call != "PUT objects:multipart:parts"]


@pytest.mark.parametrize("usecase", [TARGET, ZSTD_TARGET], ids=["raw", "zstd"])
def test_a_paths_parts_are_read_by_the_parts_themselves_at_most_concurrency_at_once(
    tmp_path: Path, usecase: Target
) -> None:
    driver = Driver()
    key = driver.run(
        upload_flow(usecase, tmp_path / "f", "k", part_size=PART, concurrency=2), 5 * PART + 1
    )
    assert key == "k"
    assert driver.reads == [(n * PART, PART) for n in range(5)] + [(5 * PART, 1)]
    assert driver.spawned == [1, 2, 3, 4, 5, 6]
    assert driver.most_at_once == 2
    assert _calls(driver) == ["PUT objects:multipart", "POST objects:multipart:complete"]


def test_a_file_objects_parts_are_read_in_order_by_the_upload() -> None:
    class Recording(Driver):
        spawned_after: list[int]

        def _answer(self, step: object, size: int) -> Any:
            if isinstance(step, Spawn):  # the part was read before it was spawned
                self.spawned_after.append(len(self.reads))
            return super()._answer(step, size)

    driver = Recording()
    driver.spawned_after = []
    driver.run(upload_flow(TARGET, io.BytesIO(), "k", part_size=PART, concurrency=2), 3 * PART)
    assert driver.reads == [(n * PART, PART) for n in range(3)]
    assert driver.spawned_after == [1, 2, 3]


def test_a_compressed_part_is_read_into_a_reused_buffer(tmp_path: Path) -> None:
    buffers = PartBuffers(PART)
    step = CompressPart(tmp_path / "f", 0, 10, buffers)
    frame = step.run(io.BytesIO(b"0123456789").readinto)
    second = step.run(io.BytesIO(b"abcdefghij").readinto)
    assert zstandard.decompress(frame) == b"0123456789"
    assert zstandard.decompress(second) == b"abcdefghij"
    assert len(buffers._idle) == 1  # one buffer, taken and given back twice
    buffers.close()
    assert buffers._idle == []


def test_a_part_cut_short_fails_and_gives_its_buffer_back(tmp_path: Path) -> None:
    buffers = PartBuffers(PART)
    step = CompressPart(tmp_path / "f", PART, 10, buffers)
    with pytest.raises(Exception, match="the source changed while it was uploaded"):
        step.run(io.BytesIO(b"short").readinto)
    assert len(buffers._idle) == 1


def test_a_failed_part_lets_the_others_finish_then_aborts(tmp_path: Path) -> None:
    driver = Driver(failing={1})
    with pytest.raises(ServerError, match="part failed"):
        driver.run(
            upload_flow(TARGET, tmp_path / "f", "k", part_size=PART, concurrency=3), 6 * PART
        )
    assert driver.spawned == [1, 2, 3]  # nothing new once a part failed
    assert _calls(driver) == ["PUT objects:multipart", "DELETE objects:multipart"]


@pytest.mark.parametrize("usecase", [TARGET, ZSTD_TARGET], ids=["raw", "zstd"])
def test_a_source_that_shrinks_meanwhile_aborts(tmp_path: Path, usecase: Target) -> None:
    class Short(Driver):
        def _answer(self, step: object, size: int) -> Any:
            if isinstance(step, ReadAt) and step.offset:
                return b"short"
            if isinstance(step, CompressPart) and step.offset:
                return step.run(io.BytesIO(b"short").readinto)
            return super()._answer(step, size)

    driver = Short()
    with pytest.raises(Exception, match="the source changed while it was uploaded"):
        driver.run(upload_flow(usecase, tmp_path / "f", "k", part_size=PART), 3 * PART)
    assert driver.requests[-1] == "DELETE objects:multipart"
