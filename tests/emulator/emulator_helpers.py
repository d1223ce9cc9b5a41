"""Helpers for the emulator tests: a fake clock and a socket-free client."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from objectstore_core.emulator import Emulator, ServerRequest, ServerResponse

START = datetime(2026, 7, 1, 12, 0, 0, 123456, tzinfo=UTC)


class FakeClock:
    """A settable clock: ``clock()`` returns ``now``; ``advance`` moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Result:
    """A response with its body read, for assertions."""

    response: ServerResponse
    body: bytes

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.response.headers)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.response.headers]

    def json(self) -> object:
        assert self.header("content-type") == "application/json"
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.response.header(name)


class Client:
    """Calls the handler in memory: ``client.put("/v1/...", b"body", header=value)``."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
    ) -> Result:
        response, data = self.emulator.handle(ServerRequest(method, target, tuple(headers)), body)
        return Result(response, data)

    def get(self, target: str, headers: list[tuple[str, str]] | None = None) -> Result:
        return self.request("GET", target, headers=headers or [])

    def head(self, target: str) -> Result:
        return self.request("HEAD", target)

    def put(self, target: str, body: bytes = b"", **headers: str) -> Result:
        return self.request("PUT", target, body, _headers(headers))

    def post(self, target: str, body: bytes = b"", **headers: str) -> Result:
        return self.request("POST", target, body, _headers(headers))

    def delete(self, target: str) -> Result:
        return self.request("DELETE", target)

    def patch(self, target: str, document: object) -> Result:
        body = json.dumps(document).encode()
        return self.request("PATCH", target, body, [("content-type", "application/json")])


def _headers(headers: dict[str, str]) -> list[tuple[str, str]]:
    return [(name.replace("_", "-"), value) for name, value in headers.items()]


def connect(url: str) -> socket.socket:
    """A raw TCP connection to the socket server at ``url`` (``http://host:port``)."""
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def recv_all(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
