"""A faithful local Objectstore server, as a pure (sans-IO) request handler.

The handler speaks the wire protocol of ``PROTOCOL.md`` (§2–§7, §14.2,
§14.4, §14.5) and is driven by a transport: the socket server in
``objectstore_sync.emulator``, or an in-process transport in tests::

    from objectstore_core.emulator import Emulator, MemoryStorage, ServerRequest

    emulator = Emulator(MemoryStorage())
    response, body = emulator.handle(
        ServerRequest("PUT", "/v1/objects/demo/org=1/greeting", (("content-type", "text/plain"),)),
        b"hello",
    )
    assert response.status == 200 and body == b'{"key":"greeting"}'

Layout: ``_messages`` (request/response values), ``_routing`` (§2),
``_object_headers`` (§4), ``_ranges`` (§6), ``_expiry`` (§7, §14.2),
``_auth`` (§10, §11: tokens, pre-signed URLs, the key directory),
``_faults`` (programmatic fault injection),
``_storage`` (the storage protocol and the in-memory store), ``_exchange``
(one request in progress), ``_handler`` (routing requests to all of
them) and ``_wire`` (durations, timestamps, base64url, the pre-signed
canonical form). Nothing in this package performs I/O, and it uses only
the public names of ``objectstore_core``: it reads the wire with its own
code, so a wire-format bug in the client is not mirrored into it.
"""

from objectstore_core.emulator._auth import (
    ALLOW_ALL,
    Authenticator,
    AuthKey,
    Permit,
    load_public_key,
    parse_permission,
)
from objectstore_core.emulator._faults import Fault, FaultedBody, FaultKind, FaultPlan
from objectstore_core.emulator._handler import Authorize, Emulator, Exchange, read_body
from objectstore_core.emulator._messages import BodyStream, BytesLike, ServerRequest, ServerResponse
from objectstore_core.emulator._routing import Route, RouteKind
from objectstore_core.emulator._storage import (
    DEFAULT_CONTENT_TYPE,
    MemoryStorage,
    ObjectId,
    ObjectRecord,
    ObjectWriter,
    OpenObject,
    RecordChange,
    Storage,
)

__all__ = [
    "ALLOW_ALL",
    "DEFAULT_CONTENT_TYPE",
    "AuthKey",
    "Authenticator",
    "Authorize",
    "BodyStream",
    "BytesLike",
    "Emulator",
    "Exchange",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FaultedBody",
    "MemoryStorage",
    "ObjectId",
    "ObjectRecord",
    "ObjectWriter",
    "OpenObject",
    "Permit",
    "RecordChange",
    "Route",
    "RouteKind",
    "ServerRequest",
    "ServerResponse",
    "Storage",
    "load_public_key",
    "parse_permission",
    "read_body",
]
