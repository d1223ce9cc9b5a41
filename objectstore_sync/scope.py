"""``Scope``, where the official client's ``scope`` module has it (PROTOCOL §2.2).

>>> from objectstore_sync.scope import EMPTY_SCOPES, Scope
>>> str(Scope(org=42, project=1337)), EMPTY_SCOPES
('org=42;project=1337', '_')
"""

from objectstore_core._models import EMPTY_SCOPES, SCOPE_VALUE_ALLOWED_CHARS, Scope

__all__ = ["EMPTY_SCOPES", "SCOPE_VALUE_ALLOWED_CHARS", "Scope"]
