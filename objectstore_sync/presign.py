"""Pre-signed URL constants and the canonical form, as the official ``presign`` module (§11).

>>> from objectstore_sync.presign import MAX_PRESIGN_DURATION, build_canonical_form
"""

from objectstore_core._presign import (
    MAX_PRESIGN_DURATION,
    PARAM_DURATION,
    PARAM_KID,
    PARAM_SIG,
    PARAM_TIMESTAMP,
    SUPPORTED_METHODS,
    build_canonical_form,
)

__all__ = [
    "MAX_PRESIGN_DURATION",
    "PARAM_DURATION",
    "PARAM_KID",
    "PARAM_SIG",
    "PARAM_TIMESTAMP",
    "SUPPORTED_METHODS",
    "build_canonical_form",
]
