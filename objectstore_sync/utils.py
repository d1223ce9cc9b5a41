"""Encoding helpers, where the official client's ``utils`` module has them (PROTOCOL §2.5, §14.4).

>>> from objectstore_sync.utils import encode_path
>>> encode_path("a b/c")
'a%20b/c'
"""

from objectstore_core import (
    decode_header_value,
    encode_header_value,
    encode_path,
    encode_query,
    parse_accept_encoding,
)
from objectstore_sync._official import guess_mime_type

__all__ = [
    "decode_header_value",
    "encode_header_value",
    "encode_path",
    "encode_query",
    "guess_mime_type",
    "parse_accept_encoding",
]
