"""Tokens and signing keys, where the official client's ``auth`` module has them (API §5).

>>> from objectstore_sync.auth import Permission, SecretKey
"""

from objectstore_core import Permission, Scope, SecretKey, TokenGenerator, TokenProvider

__all__ = ["Permission", "Scope", "SecretKey", "TokenGenerator", "TokenProvider"]
