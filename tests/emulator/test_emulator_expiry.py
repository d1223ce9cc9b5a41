"""Expiration (PROTOCOL §7) and PATCH extend_expiry (§14.2) with a fake clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from objectstore_core.emulator import Emulator, MemoryStorage, ObjectId
from tests.emulator.emulator_helpers import Client, FakeClock

OBJ = "/v1/objects/test/org=1"
OID = ObjectId("test", "org=1", "k")


def _expires(client: Client) -> str | None:
    return client.head(f"{OBJ}/k").header("x-sn-time-expires")


# -- TTL -------------------------------------------------------------------------------------


def test_ttl_object_expires_at_its_deadline(client: Client, clock: FakeClock) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:1h")
    assert _expires(client) == "2026-07-01T13:00:00.123456Z"
    clock.advance(minutes=59, seconds=59)
    assert client.get(f"{OBJ}/k").status == 200
    assert _expires(client) == "2026-07-01T13:00:00.123456Z"  # reads never move a TTL
    clock.advance(seconds=1)
    assert client.get(f"{OBJ}/k").status == 404
    assert client.head(f"{OBJ}/k").status == 404
    assert client.get(f"{OBJ}/k", [("range", "bytes=0-0")]).status == 404
    assert client.delete(f"{OBJ}/k").status == 204


def test_zero_ttl_is_expired_immediately(client: Client) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:0s")
    assert client.get(f"{OBJ}/k").status == 404


def test_write_after_expiry_creates_a_fresh_object(client: Client, clock: FakeClock) -> None:
    client.put(f"{OBJ}/k", b"old", x_sn_expiration="ttl:1s")
    clock.advance(seconds=5)
    client.put(f"{OBJ}/k", b"new")
    result = client.get(f"{OBJ}/k")
    assert result.body == b"new"
    assert "x-sn-time-expires" not in result.headers


def test_overwrite_without_header_makes_the_object_manual(client: Client, clock: FakeClock) -> None:
    client.put(f"{OBJ}/k", b"a", x_sn_expiration="ttl:1h")
    client.put(f"{OBJ}/k", b"b")
    clock.advance(days=365)
    assert client.get(f"{OBJ}/k").body == b"b"


def test_expiry_not_enforced_in_development_mode(clock: FakeClock) -> None:
    client = Client(Emulator(MemoryStorage(), clock=clock, enforce_expiry=False))
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="tti:1h")
    clock.advance(hours=2)
    assert client.get(f"{OBJ}/k").status == 200
    assert _expires(client) == "2026-07-01T13:00:00.123456Z"  # no bump either


# -- TTI -------------------------------------------------------------------------------------


def test_tti_read_bumps_only_outside_the_debounce_window(client: Client, clock: FakeClock) -> None:
    # tti:2h → W = 30 min: a read bumps only when less than 1.5 h remain (§7.2).
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="tti:2h")
    assert _expires(client) == "2026-07-01T14:00:00.123456Z"
    clock.advance(minutes=29)
    assert _expires(client) == "2026-07-01T14:00:00.123456Z"  # within W: no write
    clock.advance(minutes=2)  # 12:31: deadline 14:00 < 14:31 - 0:30
    assert _expires(client) == "2026-07-01T14:00:00.123456Z"  # reports the pre-bump deadline
    assert _expires(client) == "2026-07-01T14:31:00.123456Z"  # ... and bumped it


def test_tti_object_expires_without_access(client: Client, clock: FakeClock) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="tti:1h")
    clock.advance(minutes=50)
    assert client.get(f"{OBJ}/k").status == 200  # bump to 13:50 (< 45 min left)
    clock.advance(minutes=59)
    assert client.get(f"{OBJ}/k").status == 200
    clock.advance(hours=2)
    assert client.get(f"{OBJ}/k").status == 404


def test_head_and_ranged_get_count_as_access(client: Client, clock: FakeClock) -> None:
    client.put(f"{OBJ}/k", b"xyz", x_sn_expiration="tti:1h")
    clock.advance(minutes=20)
    client.get(f"{OBJ}/k", [("range", "bytes=0-0")])
    clock.advance(minutes=1)
    assert _expires(client) == "2026-07-01T13:20:00.123456Z"


def test_long_tti_debounce_is_capped_at_a_day(client: Client, clock: FakeClock) -> None:
    # tti:30d → W = min(7.5 d, 24 h) = 24 h.
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="tti:30d")
    clock.advance(hours=23)
    assert _expires(client) == "2026-07-31T12:00:00.123456Z"
    assert _expires(client) == "2026-07-31T12:00:00.123456Z"  # no bump within 24 h
    clock.advance(hours=2)
    _expires(client)
    assert _expires(client) == "2026-08-01T13:00:00.123456Z"


# -- PATCH extend_expiry -----------------------------------------------------------------------


def _extend(client: Client, **spec: str) -> int:
    if "from_" in spec:
        spec["from"] = spec.pop("from_")
    return client.patch(f"{OBJ}/k", {"extend_expiry": spec}).status


def test_extend_after_from_now_raises_a_ttl_deadline_and_adjusts_the_ttl(
    client: Client, clock: FakeClock
) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:1h")
    clock.advance(minutes=30)
    assert _extend(client, after="2h", from_="now") == 204
    head = client.head(f"{OBJ}/k")
    assert head.header("x-sn-time-expires") == "2026-07-01T14:30:00.123456Z"
    assert head.header("x-sn-expiration") == "ttl:2h 30m"  # lifetime since creation


def test_extend_from_creation(client: Client) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="tti:1d")
    assert _extend(client, after="400d 1m 30s", from_="creation") == 204
    head = client.head(f"{OBJ}/k")
    assert head.header("x-sn-time-expires") == "2027-08-05T12:01:30.123456Z"
    assert head.header("x-sn-expiration") == "tti:1d"  # TTI duration unchanged


def test_extend_at_is_rounded_up_to_whole_seconds(client: Client) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:1h")
    assert _extend(client, at="2026-12-01T00:00:00.250000+00:00") == 204
    head = client.head(f"{OBJ}/k")
    assert head.header("x-sn-time-expires") == "2026-12-01T00:00:01.000000Z"
    assert _extend(client, at="2026-12-01T02:00:00+02:00") == 204  # same instant: no change
    assert client.head(f"{OBJ}/k").header("x-sn-time-expires") == "2026-12-01T00:00:01.000000Z"


def test_extend_never_shortens(client: Client, storage: MemoryStorage) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:30d")
    before = storage.lookup(OID)
    assert _extend(client, after="1d", from_="now") == 204
    assert _extend(client, at="2026-07-01T00:00:00+00:00") == 204
    assert storage.lookup(OID) == before


def test_extended_deadline_keeps_the_object_alive(client: Client, clock: FakeClock) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:1h")
    _extend(client, after="1d", from_="now")
    clock.advance(hours=23)
    assert client.get(f"{OBJ}/k").status == 200
    clock.advance(hours=2)
    assert client.get(f"{OBJ}/k").status == 404


def test_extend_manual_object_is_409(client: Client) -> None:
    client.put(f"{OBJ}/k", b"x")
    result = client.patch(f"{OBJ}/k", {"extend_expiry": {"after": "1d", "from": "now"}})
    assert result.status == 409
    assert "detail" in result.json()  # type: ignore[operator]


def test_extend_absent_or_expired_object_is_404(client: Client, clock: FakeClock) -> None:
    assert _extend(client, after="1d", from_="now") == 404
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:1s")
    clock.advance(seconds=2)
    assert _extend(client, after="1d", from_="now") == 404
    assert client.get(f"{OBJ}/k").status == 404  # stays expired


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"extend_expiry": 5}',
        b'{"extend_expiry": {}}',
        b'{"extend_expiry": {"after": "1d"}}',
        b'{"extend_expiry": {"after": "1d", "from": "later"}}',
        b'{"extend_expiry": {"after": "1 fortnight", "from": "now"}}',
        b'{"extend_expiry": {"after": 60, "from": "now"}}',
        b'{"extend_expiry": {"at": "2026-12-01T00:00:00"}}',
        b'{"extend_expiry": {"at": "tomorrow"}}',
        b'{"extend_expiry": {"at": "2026-12-01T00:00:00Z", "from": "now"}}',
        b'{"extend_expiry": {"at": "2026-12-01T00:00:00Z", "after": "1d", "from": "now"}}',
        b'{"extend_expiry": {"after": "1d", "from": "now", "extra": 1}}',
        b'{"extend_expiry": {"after": "1d", "from": "now"}, "other": 1}',
    ],
)
def test_bad_patch_bodies_are_400(client: Client, body: bytes) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:1h")
    result = client.request("PATCH", f"{OBJ}/k", body)
    assert result.status == 400
    assert result.json()["detail"].startswith(  # type: ignore[index]
        "client error: invalid extend_expiry request: "
    )


def test_oversized_patch_body_is_413(client: Client) -> None:
    result = client.request("PATCH", f"{OBJ}/k", b" " * (65 * 1024))
    assert result.status == 413


def test_humantime_after_is_accepted(client: Client) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:1h")
    assert _extend(client, after="1day 12h", from_="creation") == 204
    assert _expires(client) == "2026-07-03T00:00:00.123456Z"
    assert client.head(f"{OBJ}/k").header("x-sn-expiration") == "ttl:1d 12h"


def test_ttl_adjustment_keeps_created_plus_ttl_equal_to_the_deadline(
    client: Client, storage: MemoryStorage
) -> None:
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:1h")
    _extend(client, at="2026-07-02T00:00:00Z")
    record = storage.lookup(OID)
    assert record is not None and record.expiration is not None
    assert record.time_created + record.expiration.delta == record.time_expires
    assert record.expiration.delta == timedelta(hours=11, minutes=59, seconds=59.876544)


def test_absurdly_long_durations_saturate_instead_of_failing(client: Client) -> None:
    assert client.put(f"{OBJ}/k", b"x", x_sn_expiration="ttl:999999999d").status == 200
    assert _expires(client) == "9999-12-31T23:59:59.999999Z"
    client.put(f"{OBJ}/k", b"x", x_sn_expiration="tti:999999999d")
    assert client.get(f"{OBJ}/k").status == 200  # the TTI bump saturates too
    assert _extend(client, after="999999999d", from_="now") == 204
    assert _extend(client, at="9999-12-31T23:59:59.5+00:00") == 204
