"""The emulator's request handler: a push-style state machine without I/O.

A transport drives one :class:`Exchange` per request, in the spirit of h11::

    exchange = emulator.begin(ServerRequest(method, target, headers))
    if exchange.response is None:          # the request body matters
        for chunk in body_chunks:          # as the bytes arrive
            exchange.feed(chunk)           # streamed into storage, never buffered whole
    response = exchange.finish()           # end of the request body
    # on a client that went away instead: exchange.abort()

When ``exchange.response`` is set right after :meth:`Emulator.begin` (errors,
GET, HEAD, DELETE, ...) the transport may still feed the body: it is
discarded. A response body is ``bytes`` or a :class:`BodyStream` the
transport reads in chunks and must close. :meth:`Emulator.handle` runs a
whole exchange in memory for tests and in-process transports.

Checks follow the reference server's order (PROTOCOL §1.4): route and
method, then authentication (``authorize``, e.g. an
:class:`~objectstore_core.emulator.Authenticator`; None disables auth),
then path parsing, endpoint extraction (Range, query, body), metadata
validation, the permission check of the authenticated :class:`Permit`
(§1.4 step 6), and storage.

Expiry mimics the **production** backends, not the reference server's
development backends (PROTOCOL §7.3): expired objects are filtered on read
(404) and reads of TTI objects bump the deadline with the debounce of §7.2.
``enforce_expiry=False`` gives the development behaviour (objects never
expire, no bump). Time comes from the injected ``clock``.

Writes stamp ``x-sn-time-created`` when the request head arrives (the
metadata is parsed from the headers before the body streams, and the
deadline of a TTL object counts from there) and become visible atomically
when the body is complete.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from objectstore_core import Permission
from objectstore_core.emulator._auth import ALLOW_ALL, Permit
from objectstore_core.emulator._batch import begin_batch
from objectstore_core.emulator._exchange import (
    BufferSink,
    Exchange,
    UploadSink,
    read_body,
    service_error,
)
from objectstore_core.emulator._expiry import extend, is_expired, parse_extend_expiry, tti_bump
from objectstore_core.emulator._faults import FaultKind, FaultPlan, attach_fault
from objectstore_core.emulator._messages import (
    BytesLike,
    ServerRequest,
    ServerResponse,
    empty_response,
    json_error,
    json_response,
    text_response,
)
from objectstore_core.emulator._multipart import MULTIPART_ROUTES, MultipartUploads
from objectstore_core.emulator._object_headers import (
    MetadataError,
    WriteMetadata,
    parse_write_metadata,
    read_headers,
    size_header,
)
from objectstore_core.emulator._ranges import RangeError, parse_range, resolve_range
from objectstore_core.emulator._resumable import ResumableSessions
from objectstore_core.emulator._routing import (
    ObjectPath,
    PathError,
    Route,
    RouteKind,
    RouteMiss,
    match_route,
    parse_object_path,
    parse_query,
    split_target,
)
from objectstore_core.emulator._storage import ObjectId, ObjectRecord, OpenObject, Storage

__all__ = ["Authorize", "Emulator", "Exchange", "read_body"]

Authorize = Callable[[ServerRequest, Route, datetime], ServerResponse | Permit | None]
"""The auth slot (PROTOCOL §1.4 step 3), called with the emulator clock's time: an error
response refuses the request, a :class:`Permit` is asked for each operation's permission
(None allows everything)."""

Deny = Callable[[Permission], ServerResponse | None]
"""The permit's check for the request's usecase and scope: None when allowed."""

_ACCEPT_RANGES = ("accept-ranges", "bytes")
_JSON_BODY_LIMIT = 64 * 1024  # PATCH bodies are tiny; bound what we buffer
_KEDA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Emulator:
    """A faithful Objectstore server without I/O, over a :class:`Storage`.

    ``clock`` gives the current time (an aware UTC ``datetime``): the handler
    never reads the host's clock. ``objectstore_sync.emulator.Emulator`` is
    this handler on the wall clock.

    >>> from datetime import UTC, datetime
    >>> from objectstore_core.emulator import MemoryStorage, ServerRequest
    >>> emulator = Emulator(MemoryStorage(), clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    >>> put = ServerRequest("PUT", "/v1/objects/demo/org=1/hello", ())
    >>> emulator.handle(put, b"hi")[0].status
    200
    >>> response, body = emulator.handle(ServerRequest("GET", "/v1/objects/demo/org=1/hello"))
    >>> response.status, body
    (200, b'hi')
    """

    def __init__(
        self,
        storage: Storage,
        *,
        clock: Callable[[], datetime],
        enforce_expiry: bool = True,
        authorize: Authorize | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.enforce_expiry = enforce_expiry
        self.authorize = authorize
        self.faults = FaultPlan()
        """Faults to inject into responses (see :mod:`objectstore_core.emulator._faults`)."""
        self.multipart = MultipartUploads(storage, clock)
        """The open multipart uploads (PROTOCOL §9)."""
        self.resumable = ResumableSessions(storage, clock)
        """The resumable upload sessions (PROTOCOL §14.1)."""
        self.batch_turns: AbstractContextManager[object] = nullcontext()
        """Held while a batch request's operations run: a threaded server passes a
        ``threading.Lock()``, so concurrent batches run one after the other (see
        :meth:`use_batch_lock`)."""
        self._requests_total = 0
        self._bytes_total = 0
        self._in_flight = 0

    def use_batch_lock(self, lock: AbstractContextManager[object]) -> None:
        """Run batch requests one at a time under ``lock`` (e.g. ``threading.Lock()``).

        In a threaded server, batches that run side by side share one core
        (the interpreter runs one thread at a time) and so all finish late,
        together; taking turns, the first finishes first and its client reads
        it while the next one runs.
        """
        self.batch_turns = lock

    # -- entry points -------------------------------------------------------------------

    def begin(self, request: ServerRequest) -> Exchange:
        """Start handling ``request``; see :class:`Exchange` for the rest."""
        self._requests_total += 1
        self._in_flight += 1
        fault = self.faults.take(request)
        if fault is not None and fault.kind is FaultKind.STATUS:
            exchange = attach_fault(Exchange(), fault)  # answered without processing
        else:
            try:
                exchange = self._dispatch(request)
            except Exception as exc:  # a bug or a storage failure must still produce a response
                exchange = Exchange(service_error(500, f"internal error: {exc!r}"))
            if fault is not None:
                exchange = attach_fault(exchange, fault)
        # /keda counters; plain int updates, so approximate when threads race.
        exchange._account = self._account
        return exchange

    def handle(self, request: ServerRequest, body: BytesLike = b"") -> tuple[ServerResponse, bytes]:
        """Run a whole exchange in memory; returns the response and its full body."""
        exchange = self.begin(request)
        if body:
            exchange.feed(body)
        response = exchange.finish()
        return response, read_body(response)

    def _account(self, delta: int) -> None:
        if delta < 0:
            self._in_flight -= 1
        else:
            self._bytes_total += delta

    # -- routing (PROTOCOL §1.4, §2.4) ----------------------------------------------------

    def _dispatch(self, request: ServerRequest) -> Exchange:
        raw_path, raw_query = split_target(request.target)
        route = match_route(request.method, raw_path)
        if isinstance(route, RouteMiss):
            headers = [("allow", route.allow)] if route.allow else []
            return Exchange(empty_response(route.status, headers))
        internal = self._internal(route)
        if internal is not None:
            return Exchange(internal)
        # §1.4 step 3: authentication happens before the path is parsed.
        permit: Permit = ALLOW_ALL
        if self.authorize is not None:
            outcome = self.authorize(request, route, self.clock())
            if isinstance(outcome, ServerResponse):
                return Exchange(outcome)
            permit = ALLOW_ALL if outcome is None else outcome
        try:
            path = parse_object_path(route)  # §1.4 step 4
        except PathError as exc:
            return Exchange(text_response(400, f"Invalid URL: {exc}"))

        def deny(permission: Permission) -> ServerResponse | None:
            return permit.check(path.usecase, path.scope, permission)

        if route.kind is RouteKind.OBJECT_INSERT:
            return self._begin_write(request, raw_query, path, str(uuid.uuid4()), 201, deny)
        if route.kind is RouteKind.OBJECT:
            assert path.key is not None
            return self._object(request, raw_query, path, path.key, deny)
        if route.kind is RouteKind.BATCH:  # §8, in its own module
            return begin_batch(self, request, path, deny, self._requests_total)
        if route.kind in MULTIPART_ROUTES:  # §9
            new_key = lambda: str(uuid.uuid4())  # noqa: E731
            return self.multipart.begin(request, raw_query, route, path, deny, new_key)
        return Exchange(service_error(501, "not implemented"))

    def _internal(self, route: Route) -> ServerResponse | None:
        """The internal endpoints of §3.8 (no auth); HEAD gets the GET headers only."""
        if route.kind in (RouteKind.HEALTH, RouteKind.READY):
            response = text_response(200, "OK")
        elif route.kind is RouteKind.KEDA:
            response = text_response(200, self._keda_text())
            response = ServerResponse(
                200, (("content-type", _KEDA_TYPE),), response.body, response.content_length
            )
        else:
            return None
        if route.method == "HEAD":
            return ServerResponse(response.status, response.headers, b"", response.content_length)
        return response

    def _keda_text(self) -> str:
        lines = []
        for name, kind, value in (
            ("objectstore_bytes_total", "counter", self._bytes_total),
            ("objectstore_requests_total", "counter", self._requests_total),
            ("objectstore_requests_in_flight", "gauge", self._in_flight),
            ("objectstore_requests_limit", "gauge", 10_000),
            ("objectstore_tasks_running", "gauge", 0),
            ("objectstore_tasks_limit", "gauge", 500),
        ):
            lines += [f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(lines) + "\n"

    def _object(
        self, request: ServerRequest, raw_query: str, path: ObjectPath, key: str, deny: Deny
    ) -> Exchange:
        # Permissions per operation: PROTOCOL §10.4. Each check follows the
        # endpoint's own extraction (Range, query, body), as on the reference server.
        oid = ObjectId(path.usecase, path.scope_wire, key)
        method = request.method
        if method == "PUT":
            return self._begin_write(request, raw_query, path, key, 200, deny)
        if method == "GET":
            return Exchange(self._get(request, oid, deny))
        if method == "HEAD":
            return Exchange(deny(Permission.OBJECT_READ) or self._head(oid))
        if method == "DELETE":
            return Exchange(self._delete(raw_query, oid, deny))
        assert method == "PATCH"
        return Exchange(
            sink=BufferSink(lambda body: self._patch(oid, body, deny), _JSON_BODY_LIMIT)
        )

    # -- writes (PROTOCOL §3.1, §3.2, §4, §14.1) ---------------------------------------

    def _begin_write(
        self,
        request: ServerRequest,
        raw_query: str,
        path: ObjectPath,
        key: str,
        status: int,
        deny: Deny,
    ) -> Exchange:
        try:
            query = parse_query(raw_query, ("upload_type", "session"))
        except ValueError as exc:
            return Exchange(text_response(400, f"Failed to deserialize query string: {exc}"))
        oid = ObjectId(path.usecase, path.scope_wire, key)
        if "session" in query:  # an append to a resumable upload (§14.1)
            denial = deny(Permission.OBJECT_WRITE)
            return (
                Exchange(denial)
                if denial
                else self.resumable.append(request, query["session"], oid)
            )
        metadata = self._admit_write(request.headers, deny)
        if isinstance(metadata, ServerResponse):
            return Exchange(metadata)
        if query.get("upload_type") == "resumable":  # §14.1 (501 when disabled)
            return Exchange(self.resumable.create(request, oid, metadata))
        return Exchange(sink=self._upload(oid, metadata, json_response(status, {"key": key})))

    def _admit_write(
        self, headers: tuple[tuple[str, str], ...], deny: Deny
    ) -> WriteMetadata | ServerResponse:
        """The validated metadata of a write, or its error response (a batch insert too)."""
        try:
            metadata = parse_write_metadata(headers)  # §1.4 step 6
        except MetadataError as exc:
            message = f"metadata error: {exc}"
            return json_error(400, f"service error: {message}", [message, str(exc)])
        # After metadata: a bad header wins (§1.4 step 6).
        return deny(Permission.OBJECT_WRITE) or metadata

    def _upload(
        self, oid: ObjectId, metadata: WriteMetadata, success: ServerResponse
    ) -> UploadSink:
        """The sink of an admitted write, stamped now; it answers ``success`` once stored."""
        stamped = self.clock()
        return UploadSink(self.storage.writer(oid), metadata, stamped, success)

    # -- reads (PROTOCOL §3.3, §3.4, §6, §7) ---------------------------------------------

    def _live(self, record: ObjectRecord, now: datetime) -> bool:
        return not (self.enforce_expiry and is_expired(record, now))

    def _touch(self, oid: ObjectId, record: ObjectRecord, now: datetime) -> None:
        """Bump a TTI deadline after a read (§7.2); the response reports the old one."""
        if not self.enforce_expiry or tti_bump(record, now) is None:
            return

        def change(current: ObjectRecord) -> ObjectRecord | None:
            if current.time_created != record.time_created:
                return None  # overwritten meanwhile: the new version has its own deadline
            return tti_bump(current, now)

        self.storage.update(oid, change)

    def _get(self, request: ServerRequest, oid: ObjectId, deny: Deny) -> ServerResponse:
        range_value = request.header("range")
        requested = None
        if range_value is not None:
            try:
                requested = parse_range(range_value)  # §1.4 step 5: before the lookup
            except RangeError as exc:
                return json_error(400, f"client error: invalid Range header: {exc}")
        opened = self._open_live(oid, deny)
        if isinstance(opened, ServerResponse):
            return opened
        try:
            record = opened.record
            total = record.size
            if requested is None:  # the whole body, chunked (§1.1)
                found = tuple(self._found_headers(record))
                return ServerResponse(200, found, opened.read_range(0, total), None)
            headers = read_headers(record)
            span = resolve_range(requested, total)
            if span is None:
                opened.close()
                return empty_response(416, [("content-range", f"bytes */{total}"), _ACCEPT_RANGES])
            first, last = span
            length = last - first + 1
            body = opened.read_range(first, length)
        except BaseException:
            opened.close()
            raise
        headers += [("content-range", f"bytes {first}-{last}/{total}"), _ACCEPT_RANGES]
        headers.append(size_header(record))
        return ServerResponse(206, tuple(headers), body, length)

    def _open_live(self, oid: ObjectId, deny: Deny) -> OpenObject | ServerResponse:
        """A read's permission check and lookup (a batch get's too): the object opened,
        its TTI deadline bumped (§7.2), or the denial or 404 to answer."""
        denial = deny(Permission.OBJECT_READ)
        if denial is not None:
            return denial
        opened = self.storage.open(oid)
        if opened is None:
            return empty_response(404)
        try:
            if not self._admit_read(oid, opened.record):
                opened.close()
                return empty_response(404)
        except BaseException:
            opened.close()
            raise
        return opened

    def _read_small(
        self, oid: ObjectId, deny: Deny
    ) -> tuple[ObjectRecord, bytes] | ServerResponse | None:
        """What :meth:`_open_live` decides, with a small object's whole body, in one step
        where the store offers it (the in-memory one); None: open the object instead."""
        get_small = getattr(self.storage, "get_small", None)
        if get_small is None:
            return None
        denial = deny(Permission.OBJECT_READ)
        if denial is not None:
            return denial
        found = get_small(oid)
        if found is None:
            return empty_response(404)
        record, body = found
        if body is None:  # not small
            return None
        if not self._admit_read(oid, record):
            return empty_response(404)
        return record, body

    def _admit_read(self, oid: ObjectId, record: ObjectRecord) -> bool:
        """Whether a read of ``record`` may go on (it is live); its TTI bumped if so."""
        now = self.clock()
        if not self._live(record, now):
            return False
        self._touch(oid, record, now)
        return True

    @staticmethod
    def _found_headers(record: ObjectRecord) -> list[tuple[str, str]]:
        """The headers of a whole-object GET 200 and of a HEAD 204 (§3.3, §3.4, §14.5)."""
        return [*read_headers(record), _ACCEPT_RANGES, size_header(record)]

    def _head(self, oid: ObjectId) -> ServerResponse:
        record = self.storage.lookup(oid)
        now = self.clock()
        if record is None or not self._live(record, now):
            return empty_response(404)
        self._touch(oid, record, now)  # HEAD counts as an access (§3.4)
        return ServerResponse(204, tuple(self._found_headers(record)), b"", None)

    def _delete(self, raw_query: str, oid: ObjectId, deny: Deny) -> ServerResponse:
        try:
            query = parse_query(raw_query, ("session",))
        except ValueError as exc:
            return text_response(400, f"Failed to deserialize query string: {exc}")
        if "session" in query:  # cancel a resumable upload (§14.1)
            return deny(Permission.OBJECT_WRITE) or self.resumable.cancel(query["session"], oid)
        denial = deny(Permission.OBJECT_DELETE)
        if denial is not None:
            return denial
        self.storage.delete(oid)
        return empty_response(204)  # also when absent (§3.5)

    # -- PATCH extend_expiry (PROTOCOL §14.2) ---------------------------------------------

    def _patch(self, oid: ObjectId, body: bytes, deny: Deny) -> ServerResponse:
        try:
            request = parse_extend_expiry(body)
        except ValueError as exc:
            return json_error(400, f"client error: invalid extend_expiry request: {exc}")
        denial = deny(Permission.OBJECT_WRITE)  # §10.4: extend_expiry needs object.write
        if denial is not None:
            return denial
        now = self.clock()

        def change(current: ObjectRecord) -> ObjectRecord | None:
            if not self._live(current, now):
                return None
            return extend(request, current, now)[1]

        seen = self.storage.update(oid, change)
        if seen is None or not self._live(seen, now):
            return empty_response(404)
        outcome, _ = extend(request, seen, now)
        if outcome == "manual":
            return json_error(409, "client error: the object has no expiry to extend")
        # Success has no body; 204 says so (the 0.2.10 client accepts any 2xx).
        return empty_response(204)
