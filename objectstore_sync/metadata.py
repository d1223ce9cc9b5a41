"""Metadata, expiration policies and their header forms, as the official ``metadata`` module.

PROTOCOL §4. ``format_timedelta`` / ``parse_timedelta`` are the official
names of the duration format (§4.3, §14.3); reading also accepts the
reference server's humantime forms (``30days``).

>>> from objectstore_sync.metadata import TimeToLive, format_expiration
>>> from datetime import timedelta
>>> format_expiration(TimeToLive(timedelta(days=30)))
'ttl:30d'
"""

from objectstore_core import (
    Compression,
    ExpirationPolicy,
    Metadata,
    TimeToIdle,
    TimeToLive,
    decode_header_value,
    format_expiration,
    parse_expiration,
)
from objectstore_core import format_duration as format_timedelta
from objectstore_core._metadata import (
    HEADER_EXPIRATION,
    HEADER_FILENAME,
    HEADER_META_PREFIX,
    HEADER_ORIGIN,
    HEADER_SIZE,
    HEADER_TIME_CREATED,
    HEADER_TIME_EXPIRES,
)
from objectstore_core._official import TIME_SPLIT, T, itertools_batched, parse_timedelta

__all__ = [
    "HEADER_EXPIRATION",
    "HEADER_FILENAME",
    "HEADER_META_PREFIX",
    "HEADER_ORIGIN",
    "HEADER_SIZE",
    "HEADER_TIME_CREATED",
    "HEADER_TIME_EXPIRES",
    "TIME_SPLIT",
    "Compression",
    "ExpirationPolicy",
    "Metadata",
    "T",
    "TimeToIdle",
    "TimeToLive",
    "decode_header_value",
    "format_expiration",
    "format_timedelta",
    "itertools_batched",
    "parse_expiration",
    "parse_timedelta",
]
