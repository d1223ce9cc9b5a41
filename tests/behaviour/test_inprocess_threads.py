"""The in-process emulator serves a client calling from many threads at once.

The sync twin runs a managed upload's parts and a batch's requests in
worker threads; with an in-process transport they all reach one store, whose
updates read a record and then write it back. The store a transport builds
for itself is locked, so no update is lost.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from objectstore_sync import Client, CompletePart, Usecase
from objectstore_sync.testing import InProcessTransport


def test_parts_uploaded_from_many_threads_are_all_kept() -> None:
    with Client("http://objectstore.test", transport=InProcessTransport()) as client:
        session = client.session(Usecase("attachments"), org=1)
        upload = session.initiate_multipart_upload(key="many", compression="none")

        def put(number: int) -> CompletePart:
            data = b"%05d" % number
            return upload.put_part(data, part_number=number, content_length=len(data))

        with ThreadPoolExecutor(16) as pool:
            parts = list(pool.map(put, range(1, 401)))
        assert [part.part_number for part in upload.list_parts()] == list(range(1, 401))
        upload.complete(parts)
        response = session.get("many")
        assert response is not None
        with response:
            assert response.read() == b"".join(b"%05d" % n for n in range(1, 401))
