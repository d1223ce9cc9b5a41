"""The official client's module helpers in objectstore_sync: files, urllib3 responses, spans.

Their values are compared with the official client's in tests/compat; this
covers what only ours does (bytes-like input, a clear error for anything
else) and the paths the comparison cannot reach.
"""

from __future__ import annotations

import io
import sys
from typing import IO, cast

import pytest
import urllib3

from objectstore_sync import ObjectNotFound, ReadError, RequestError, Scope, Usecase
from objectstore_sync.errors import raise_for_status
from objectstore_sync.metrics import measure_storage_operation
from objectstore_sync.testing import LocalServer
from objectstore_sync.tracing import storage_span
from objectstore_sync.utils import guess_mime_type

PDF = b"%PDF-1.7\n..."


class OneWay(io.RawIOBase):
    """A readable stream that cannot seek."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        buffer[:4] = b"%PDF"
        return 4


def test_guess_mime_type_of_bytes_like_values_and_files() -> None:
    assert guess_mime_type(PDF) == "application/pdf"
    assert guess_mime_type(bytearray(PDF)) == "application/pdf"
    assert guess_mime_type(memoryview(PDF)) == "application/pdf"
    stream = io.BytesIO(b"abc" + PDF)
    stream.seek(3)
    assert guess_mime_type(stream) == "application/pdf"
    assert stream.tell() == 3  # read from where it was, and put back
    one_way = cast(IO[bytes], OneWay())
    assert guess_mime_type(one_way) is None  # a file that cannot seek is not consumed
    with pytest.raises(TypeError, match="bytes or a binary file, got str"):
        guess_mime_type("%PDF")  # type: ignore[arg-type]


def test_raise_for_status_on_a_real_urllib3_response() -> None:
    with LocalServer() as server, urllib3.PoolManager() as http:
        missing = http.request("GET", f"{server.url}/v1/objects/attachments/org=1/nope")
        with pytest.raises(ObjectNotFound) as info:
            raise_for_status(missing, error_type=ObjectNotFound)
        assert info.value.status == 404
        with pytest.raises(RequestError, match="failed with status 404"):
            raise_for_status(missing)
        health = http.request("GET", f"{server.url}/health")
        raise_for_status(health)  # below 400: nothing


class Broken(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        raise ConnectionResetError("peer went away")


def test_raise_for_status_when_the_body_cannot_be_read() -> None:
    response = urllib3.HTTPResponse(body=Broken(), status=500, preload_content=False)
    with pytest.raises(ReadError, match="reading the error body failed") as info:
        raise_for_status(response)
    assert isinstance(info.value.__cause__, urllib3.exceptions.HTTPError | OSError)


class Recorder:
    def __init__(self) -> None:
        self.names: list[str] = []

    def increment(self, name: str, value: float = 1, tags: object = None) -> None:
        self.names.append(name)

    def gauge(self, name: str, value: float, tags: object = None) -> None:
        self.names.append(name)

    def distribution(
        self, name: str, value: float, tags: object = None, unit: object = None
    ) -> None:
        self.names.append(name)


def test_measure_storage_operation_records_a_failed_operation_too() -> None:
    backend = Recorder()
    with pytest.raises(KeyError), measure_storage_operation(backend, "get", "attachments") as m:
        m.record_uncompressed_size(10)
        raise KeyError("inside")
    assert backend.names[:2] == ["storage.get.size", "storage.get.latency"]


def test_storage_span_without_the_sentry_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # importing it now fails
    with storage_span("put", Usecase("attachments"), Scope(org=1), key="k", size=None) as span:
        span.set_attribute("objectstore.size", 5)
        span.set_attributes({"objectstore.key": "k"})
