"""Multipart against the official client 0.2.10 as a referee (API §0.1, §4, PROTOCOL §9).

Objects written by multipart through either client read back byte for byte
through the other, and the official client's multipart works against the
emulator. Both run against one emulator on loopback; each twin is checked.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import zstandard

from objectstore_sync import Usecase
from objectstore_sync.testing import LocalServer
from tests.behaviour.twins import Twin

oc: Any = pytest.importorskip("objectstore_client")

_counter = itertools.count()
CHUNKS = [bytes(range(256)) * 40, b"middle " * 700, b"tail"]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture(params=["sync", "asyncio", "trio"])
def ours(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Any]:
    """Our session (either twin) and the official one, on the same scope."""
    twin = Twin(request.param, server.url, timeout=10)
    scope = {"org": 7, "test": next(_counter)}
    yield twin.session(Usecase("attachments"), **scope), scope
    twin.close()


def _official(server: LocalServer, scope: dict[str, int]) -> Any:
    return oc.Client(server.url).session(oc.Usecase("attachments"), **scope)


def _read_ours(session: Any, key: str) -> bytes:
    response = session.get(key)
    assert response is not None
    with response:
        data: bytes = response.read()
    return data


def test_official_multipart_reads_back_through_ours(ours: Any, server: LocalServer) -> None:
    session, scope = ours
    theirs = _official(server, scope)
    upload = theirs.initiate_multipart_upload(key="from/official", content_type="text/plain")
    frames = [zstandard.compress(chunk) for chunk in CHUNKS]  # one zstd frame per part
    parts = [
        upload.put_part(
            frame,
            part_number=n,
            content_length=len(frame),
            content_md5=hashlib.md5(frame).digest(),
        )
        for n, frame in enumerate(frames, 1)
    ]
    assert [p.part_number for p in upload.list_parts()] == [1, 2, 3]
    with pytest.raises(oc.multipart.MultipartCompleteError) as info:
        upload.complete([oc.multipart.CompletePart(1, '"wrong"')])
    assert info.value.code == "InvalidPart"
    assert upload.complete(parts) == "from/official"
    assert _read_ours(session, "from/official") == b"".join(CHUNKS)
    assert session.head("from/official").content_type == "text/plain"
    # And the stored bytes are the very frames the official client sent.
    raw = session.get("from/official", decompress=False)
    with raw:
        assert raw.read() == b"".join(frames)


def test_our_multipart_reads_back_through_the_official_client(
    ours: Any, server: LocalServer
) -> None:
    session, scope = ours
    upload = session.initiate_multipart_upload(key="from/ours", metadata={"team": "storage"})
    frames = [zstandard.compress(chunk) for chunk in CHUNKS]
    parts = [
        upload.put_part(io.BytesIO(frame), part_number=n, content_length=len(frame))
        for n, frame in enumerate(frames, 1)
    ]
    assert upload.complete(parts) == "from/ours"
    result = _official(server, scope).get("from/ours")
    assert result.payload.read() == b"".join(CHUNKS)
    assert result.metadata.custom == {"team": "storage"}


def test_each_client_continues_an_upload_the_other_started(ours: Any, server: LocalServer) -> None:
    session, scope = ours
    theirs = _official(server, scope)
    started = theirs.initiate_multipart_upload(key="shared", compression="none")
    first = started.put_part(b"official,", part_number=1, content_length=9)
    mine = session.resume_multipart_upload("shared", started.upload_id)
    second = mine.put_part(b"ours", part_number=2, content_length=4)
    listed = theirs.resume_multipart_upload("shared", started.upload_id).list_parts()
    assert [(p.part_number, p.etag) for p in listed] == [(1, first.etag), (2, second.etag)]
    assert mine.complete([first, second]) == "shared"
    assert theirs.get("shared").payload.read() == b"official,ours"
    assert _read_ours(session, "shared") == b"official,ours"


def test_a_managed_upload_reads_back_through_the_official_client(
    ours: Any, server: LocalServer
) -> None:
    session, scope = ours
    data = (b"per-part frames " * 700_000)[: 11 * 1024 * 1024]  # three parts
    key = session.upload(data, part_size=5 * 1024 * 1024, concurrency=2)
    assert _official(server, scope).get(key).payload.read() == data
