"""Testing helpers for code that uses ``objectstore_async``.

:class:`AsyncInProcessTransport` runs the emulator inside the process, no
sockets involved::

    from objectstore_async import AsyncClient, Usecase
    from objectstore_async.testing import AsyncInProcessTransport

    async def test_upload() -> None:
        client = AsyncClient("http://objectstore.test", transport=AsyncInProcessTransport())
        session = client.session(Usecase("tests"), org=1)
        key = await session.put(b"hi")
        assert await (await session.get(key)).aread() == b"hi"

For a real server on loopback use ``objectstore_sync.testing.LocalServer``
(its ``url`` works with ``AsyncClient`` too).
"""

from objectstore_async._inprocess import AsyncInProcessTransport

__all__ = ["AsyncInProcessTransport"]
