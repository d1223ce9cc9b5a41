"""A metrics backend that keeps what it is handed, for the metrics tests of both twins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    kind: str
    name: str
    value: float
    tags: Mapping[str, str]
    unit: str | None

    @property
    def shape(self) -> tuple[str, str, tuple[tuple[str, str], ...], str | None]:
        """Everything but the value: what a dashboard's query depends on."""
        return (self.kind, self.name, tuple(sorted(self.tags.items())), self.unit)


class Recorder:
    """A metrics backend that keeps every event it is handed."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def increment(self, name: str, value: int | float = 1, tags: Any = None) -> None:
        self.events.append(Event("increment", name, value, dict(tags or {}), None))

    def gauge(self, name: str, value: int | float, tags: Any = None) -> None:
        self.events.append(Event("gauge", name, value, dict(tags or {}), None))

    def distribution(
        self, name: str, value: int | float, tags: Any = None, unit: str | None = None
    ) -> None:
        self.events.append(Event("distribution", name, value, dict(tags or {}), unit))

    def take(self) -> list[Event]:
        taken, self.events = self.events, []
        return taken
