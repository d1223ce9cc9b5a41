"""Expiration: the read filter, the TTI bump and PATCH extend_expiry (PROTOCOL §7, §14.2).

All functions are pure: they take the current record and ``now`` and return
a decision or a replacement record; the handler applies replacements with
``Storage.update`` (an atomic read-modify-write).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from objectstore_core import TimeToIdle, TimeToLive
from objectstore_core.emulator._storage import ObjectRecord
from objectstore_core.emulator._wire import parse_duration

__all__ = [
    "ExtendExpiry",
    "ExtensionOutcome",
    "deadline_after",
    "extend",
    "is_expired",
    "parse_extend_expiry",
    "tti_bump",
]

_MAX_DEBOUNCE = timedelta(hours=24)
_LATEST = datetime.max.replace(tzinfo=UTC)


def deadline_after(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, saturating at the end of time for absurdly long durations.

    ``ttl:999999999d`` is a valid policy; its deadline is simply "never" in practice.
    """
    try:
        return moment + delta
    except OverflowError:
        return _LATEST


def is_expired(record: ObjectRecord, now: datetime) -> bool:
    """True once the deadline has passed; ``ttl:0s`` is expired at once (§7.1, §7.3)."""
    return record.time_expires is not None and record.time_expires <= now


def tti_bump(record: ObjectRecord, now: datetime) -> ObjectRecord | None:
    """The record after a read of a TTI object, or None when nothing is written (§7.2).

    ``new = now + D``; the deadline moves only if it is earlier than
    ``new - W`` with the debounce window ``W = min(D / 4, 24 h)``.
    """
    policy = record.expiration
    if not isinstance(policy, TimeToIdle) or record.time_expires is None:
        return None
    if is_expired(record, now):
        return None
    new_deadline = deadline_after(now, policy.delta)
    window = min(policy.delta / 4, _MAX_DEBOUNCE)
    if record.time_expires < deadline_after(new_deadline, -window):
        return dataclasses.replace(record, time_expires=new_deadline)
    return None


@dataclass(frozen=True, slots=True)
class ExtendExpiry:
    """A parsed ``{"extend_expiry": ...}`` body: ``at``, or ``after`` + ``from`` (§14.2)."""

    at: datetime | None = None
    after: timedelta | None = None
    base: Literal["now", "creation"] = "now"

    def target(self, record: ObjectRecord, now: datetime) -> datetime:
        """The requested deadline; an absolute one is rounded up to whole seconds."""
        if self.at is not None:
            return _ceil_seconds(self.at)
        assert self.after is not None
        origin = now if self.base == "now" else record.time_created
        return deadline_after(origin, self.after)


def _ceil_seconds(moment: datetime) -> datetime:
    if moment.microsecond:
        return deadline_after(moment.replace(microsecond=0), timedelta(seconds=1))
    return moment


def parse_extend_expiry(body: bytes) -> ExtendExpiry:
    """Parse a PATCH body; ValueError explains what is wrong (→ 400).

    >>> parse_extend_expiry(b'{"extend_expiry": {"after": "30d", "from": "now"}}').after
    datetime.timedelta(days=30)
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"invalid JSON body: {exc}") from None
    if not isinstance(document, dict) or set(document) != {"extend_expiry"}:
        raise ValueError("body must be an object with exactly the field `extend_expiry`")
    spec = document["extend_expiry"]
    if not isinstance(spec, dict):
        raise ValueError("`extend_expiry` must be an object")
    unknown = set(spec) - {"at", "after", "from"}
    if unknown:
        raise ValueError(f"unknown field(s) in `extend_expiry`: {', '.join(sorted(unknown))}")
    if ("at" in spec) == ("after" in spec):
        raise ValueError("`extend_expiry` needs exactly one of `at` or `after`")
    if "at" in spec:
        if "from" in spec:
            raise ValueError("`from` is only allowed with `after`")
        return ExtendExpiry(at=_parse_at(spec["at"]))
    after = spec["after"]
    if not isinstance(after, str):
        raise ValueError("`after` must be a duration string")
    base = spec.get("from")
    if base not in ("now", "creation"):
        raise ValueError("`from` must be 'now' or 'creation'")
    return ExtendExpiry(after=parse_duration(after), base=base)


def _parse_at(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("`at` must be an ISO 8601 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"`at` {value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"`at` {value!r} must carry a UTC offset")
    return moment


ExtensionOutcome = Literal["manual", "extended", "unchanged"]


def extend(
    request: ExtendExpiry, record: ObjectRecord, now: datetime
) -> tuple[ExtensionOutcome, ObjectRecord | None]:
    """Decide a PATCH against the live (not expired) ``record`` (§14.2).

    The deadline is only ever raised. For TTL the stored duration becomes the
    new lifetime since creation (so ``time_created + ttl == time_expires``
    still holds); for TTI the duration is unchanged.
    """
    policy = record.expiration
    if policy is None or record.time_expires is None:
        return "manual", None
    target = request.target(record, now)
    if target <= record.time_expires:
        return "unchanged", None
    if isinstance(policy, TimeToLive):
        lifetime = max(target - record.time_created, timedelta(0))
        return "extended", dataclasses.replace(
            record, time_expires=target, expiration=TimeToLive(lifetime)
        )
    return "extended", dataclasses.replace(record, time_expires=target)
