"""objectstore_async: the asyncio/trio twin of ``objectstore_sync``, on httpx.

The client classes arrive with the async twin; the shared models are
importable from here already.
"""

from objectstore_core import (
    Compression,
    ExpirationPolicy,
    Metadata,
    ObjectstoreError,
    Permission,
    Scope,
    TimeToIdle,
    TimeToLive,
    Usecase,
)

__all__ = [
    "Compression",
    "ExpirationPolicy",
    "Metadata",
    "ObjectstoreError",
    "Permission",
    "Scope",
    "TimeToIdle",
    "TimeToLive",
    "Usecase",
]
