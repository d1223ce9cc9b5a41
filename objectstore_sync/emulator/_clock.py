"""The emulator's wall clock: the I/O side reads the time and hands it to the handler.

The pure :class:`objectstore_core.emulator.Emulator` takes its ``clock``
as an argument and never reads the host's time; :class:`Emulator` here is
the same handler with the wall clock as its default, for servers, the
in-process transports and tests that do not fake time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from objectstore_core.emulator import Authorize, Storage
from objectstore_core.emulator import Emulator as PureEmulator

__all__ = ["Emulator", "wall_clock"]


def wall_clock() -> datetime:
    """The current time in UTC: the emulator's clock unless one is given."""
    return datetime.now(UTC)


class Emulator(PureEmulator):
    """The request handler (:class:`objectstore_core.emulator.Emulator`) on the wall clock.

    >>> from objectstore_core.emulator import MemoryStorage, ServerRequest
    >>> emulator = Emulator(MemoryStorage())
    >>> emulator.handle(ServerRequest("PUT", "/v1/objects/demo/org=1/k"), b"hi")[0].status
    200
    """

    def __init__(
        self,
        storage: Storage,
        *,
        clock: Callable[[], datetime] = wall_clock,
        enforce_expiry: bool = True,
        authorize: Authorize | None = None,
    ) -> None:
        super().__init__(storage, clock=clock, enforce_expiry=enforce_expiry, authorize=authorize)
