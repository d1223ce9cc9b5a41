"""One sync client shared by many threads."""

from __future__ import annotations

import os
import threading

from objectstore_sync import Client, Usecase
from objectstore_sync.testing import LocalServer


def test_many_threads_share_one_client(server: LocalServer) -> None:
    errors: list[BaseException] = []
    with Client(server.url, max_connections=8, timeout=30) as client:

        def work(index: int) -> None:
            try:
                session = client.session(Usecase("threads"), worker=index)
                for round_ in range(20):
                    data = os.urandom(1000 + round_ * 97)
                    key = session.put(data, key=f"k{round_}")
                    response = session.get(key)
                    assert response is not None
                    with response:
                        assert response.read() == data
                    metadata = session.head(key)
                    assert metadata is not None
                    session.delete(key)
                    assert session.get(key) is None
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
