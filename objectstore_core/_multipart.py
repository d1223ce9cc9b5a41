"""Values of multipart uploads (PROTOCOL §9), shaped as the official client's.

``CompletePart`` is what ``put_part`` returns and ``complete`` takes (§9.2,
§9.4); ``PartInfo`` is one entry of ``list_parts`` (§9.3). Both are plain
mutable dataclasses with value equality, as in the official client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["CompletePart", "PartInfo"]


@dataclass
class CompletePart:
    """A stored part: its number (1-10000) and the etag the server gave it."""

    part_number: int
    etag: str


@dataclass
class PartInfo:
    """A stored part as listed by the server (PROTOCOL §9.3)."""

    part_number: int
    etag: str
    last_modified: datetime
    size: int
