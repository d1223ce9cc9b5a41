"""Building frozen values quickly: the core's hot values are frozen slotted dataclasses.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__``, which looks the attribute up by name every time.
The values made once or more per request (requests, responses, response
heads, flow steps, batch parts and results, metadata) set their slots
through the slot descriptors' own setters instead: the same value, frozen
all the same, for about half the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["quick_setters"]


def quick_setters(cls: type, *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    """The setters of the slots ``names`` of the slotted class ``cls``, in that order.

    ``setter(instance, value)`` sets the slot even on a frozen dataclass; only
    its own ``__init__`` (or a constructor function next to it) may use them.
    """
    setters = []
    for name in names:
        slot = cls.__dict__.get(name)
        if slot is None or not hasattr(slot, "__set__"):
            raise TypeError(f"{cls.__name__}.{name} is not a slot")
        setters.append(slot.__set__)
    return tuple(setters)
