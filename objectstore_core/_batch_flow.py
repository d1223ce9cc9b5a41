"""Batches (API §3, PROTOCOL §8): operations, splitting, and the flows both twins drive.

A :class:`BatchBuilder` validates each operation as it is added (ValueError
before anything is sent) and :meth:`BatchBuilder.plan` splits them exactly
as PROTOCOL §8.5 says: get, head and delete always go through the batch
endpoint; a put does when its size is known and its worst-case part fits
in 1 MiB; other puts (large, or files, paths and iterables, whose size the
core cannot know) go as individual requests through the single-object
flow, with its compression and retries. Batch requests hold at most 1000
operations and an estimated 100 MiB of body.

Each piece of the plan is a :class:`BatchJob` whose flow returns the
:class:`BatchResult` of its operations. The twins run the jobs
concurrently (threads or tasks) within the two concurrency limits; every
decision (retries, correlation, error mapping) is made here.

Failure semantics of one batch request (:func:`batch_request_flow`):

* A whole-request failure (an error status or a transport error) fails
  exactly the request's own operations, unless the client's retry policy
  retries it: then every operation without a result is sent again, except
  keyless inserts, which are never replayed once the request may have
  reached the server (a second attempt could store a second object;
  only errors raised before any byte left, such as a failed connect, replay them).
* Per-part 429 and 503 results are retried in the next attempt under the same
  policy (with the same keyless-insert rule).
* A malformed response fails exactly the affected operations with
  :class:`ProtocolError`: a part without a status, a duplicate index, and
  operations that got no part at all (a missing or unknown index, a
  truncated stream, a boundary that never closes). Nothing hangs, nothing is
  dropped or reported twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from objectstore_core._batch import (
    END,
    NEED_DATA,
    BatchDecoder,
    BatchPart,
    batch_content_type,
    boundary_from_content_type,
    decode_batch_key,
    part_head,
    part_size,
)
from objectstore_core._batch_results import (
    BatchResult,
    FetchedObject,
    Fetcher,
    OperationKind,
    new_result,
)
from objectstore_core._codec import compress_bound
from objectstore_core._config import ClientTarget
from objectstore_core._errors import ObjectstoreError, ProtocolError, error_for_response
from objectstore_core._http import (
    Compress,
    Flow,
    Payload,
    ReadBody,
    Request,
    Response,
    Sleep,
    read_clock,
)
from objectstore_core._log import RequestRecord, log_retry
from objectstore_core._metadata import read_metadata
from objectstore_core._metered import BatchTally, start_request
from objectstore_core._metrics import meter_for, observed
from objectstore_core._models import Compression, ExpirationPolicy
from objectstore_core._operations import (
    _send,
    _validate_accept,
    put_flow,
    resolve_compression,
    write_headers,
)
from objectstore_core._paths import Target, validate_key
from objectstore_core._retry import NEVER_SENT_ERRORS, RetryPolicy
from objectstore_core._timeout import Timeout
from objectstore_core._tracing import traced

__all__ = [
    "BatchBuilder",
    "BatchJob",
    "batch_request_flow",
    "validate_concurrency",
]

MAX_OPERATIONS = 1000
"""Operations per batch request (PROTOCOL §8.2)."""

MAX_REQUEST_BYTES = 100 * 1024 * 1024
"""Estimated body bytes per batch request (the Rust client's bound, §8.5)."""

MAX_PART_PAYLOAD = 1024 * 1024
"""An insert part's payload as sent, after compression (§8.1, §8.2)."""

_WIRE_KIND = {"put": "insert", "get": "get", "head": "head", "delete": "delete"}
_RETRY_PART_STATUSES = frozenset({429, 503})
# The status lines of most parts (§8.4), read without parsing them.
_USUAL_STATUSES: dict[str | None, int] = {
    "200 OK": 200,
    "201 Created": 201,
    "204 No Content": 204,
    "404 Not Found": 404,
}


@dataclass(slots=True, eq=False)
class _Operation:
    """One validated operation; ``single`` builds its individual flow when it cannot batch.

    Not frozen, though never changed: a batch builds one per operation, and a
    frozen dataclass costs four times as much to build.
    """

    index: int
    kind: OperationKind
    key: str | None
    headers: tuple[tuple[str, str], ...] = ()
    data: bytes | None = None  # a batchable put's payload, raw
    compress: bool = False
    decode: bool = True
    single: Callable[[], Flow[Any]] | None = None
    estimate: int = 0
    head: bytes = b""  # the part's header lines (after the delimiter line), encoded once


@dataclass(frozen=True, slots=True)
class BatchJob:
    """A unit of work for a twin: one batch request, or one individual operation.

    ``batched``: whether it goes to the batch endpoint (the twins bound the
    two kinds by separate limits); ``size``: its operations.
    """

    batched: bool
    size: int
    flow: Callable[..., Flow[list[BatchResult]]]
    """Called as ``flow()`` or ``flow(fetcher)``: a :data:`Fetcher` makes a found
    object of a get the twin's value directly (else it is a :class:`FetchedObject`)."""


def validate_concurrency(value: object, name: str) -> int:
    """A concurrency limit of ``many()``: an integer >= 1, or ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: use an integer >= 1")
    return value


class BatchBuilder:
    """Collects validated operations for one session (no I/O)."""

    __slots__ = ("_ops", "_plain", "target")

    def __init__(self, target: Target) -> None:
        self.target = target
        self._ops: list[_Operation] = []
        # A put with no options of its own: (compress?, metadata headers), from the
        # usecase's defaults, worked out on the first such put.
        self._plain: tuple[bool, tuple[tuple[str, str], ...]] | None = None

    def __len__(self) -> int:
        return len(self._ops)

    def put(
        self,
        contents: Payload,
        key: str | None = None,
        compress: Compression | None = None,
        compression: Compression | None = None,
        precompressed: Compression | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        expiration_policy: ExpirationPolicy | None = None,
        origin: str | None = None,
        filename: str | None = None,
        resumable_threshold_bytes: int | Literal["none"] | None = None,
    ) -> None:
        target = self.target
        plain = (
            compress is None
            and compression is None
            and precompressed is None
            and content_type is None
            and metadata is None
            and expiration_policy is None
            and origin is None
            and filename is None
            and resumable_threshold_bytes is None
        )
        if plain and self._plain is not None:  # the usual put: the usecase's defaults
            do_compress, fixed = self._plain
        else:
            do_compress, encoding = resolve_compression(
                target, compress, compression, precompressed
            )
            fixed = tuple(
                write_headers(
                    target,
                    encoding,
                    content_type,
                    metadata,
                    expiration_policy,
                    origin,
                    filename,
                    resumable_threshold_bytes,
                )
            )
            if plain:
                self._plain = (do_compress, fixed)
        if key == "":
            key = None
        if key is not None:
            validate_key(key)
        if isinstance(contents, str):
            contents = contents.encode("utf-8")
        index = len(self._ops)
        if isinstance(contents, bytes | bytearray | memoryview):
            data = bytes(contents)
            worst = compress_bound(len(data)) if do_compress else len(data)
            if worst <= MAX_PART_PAYLOAD:  # §8.5: batchable by its worst-case part
                estimate = part_size(key, fixed, worst)
                head = part_head("insert", key, fixed)
                self._ops.append(
                    _Operation(
                        index, "put", key, fixed, data, do_compress, True, None, estimate, head
                    )
                )
                return
        # Large or unsized: the single-object flow (which also checks the payload's type);
        # the deprecated spelling was resolved (and warned about) above.
        chosen = compress if compression is None else compression
        args = (contents, key, chosen, None, precompressed, content_type, metadata)
        more = (expiration_policy, origin, filename, resumable_threshold_bytes)
        put_flow(target, *args, *more).close()  # built to validate; each run builds its own

        def flow() -> Flow[Any]:
            return put_flow(target, *args, *more)

        self._ops.append(_Operation(index, "put", key, single=flow))

    def get(
        self, key: str, decompress: bool = True, accept_encoding: Sequence[str] | None = None
    ) -> None:
        validate_key(key)
        accepted = accept_encoding is not None and _validate_accept(accept_encoding)
        decode = bool(decompress) and not accepted
        self._add_simple("get", key, decode)

    def head(self, key: str) -> None:
        validate_key(key)
        self._add_simple("head", key)

    def delete(self, key: str) -> None:
        validate_key(key)
        self._add_simple("delete", key)

    def _add_simple(self, kind: OperationKind, key: str, decode: bool = True) -> None:
        estimate = part_size(key, (), 0)
        head = part_head(_WIRE_KIND[kind], key)
        self._ops.append(
            _Operation(len(self._ops), kind, key, (), None, False, decode, None, estimate, head)
        )

    def plan(self, timeout: Timeout | None = None) -> list[BatchJob]:
        """Split the operations into jobs (§8.5); individual ones first, as they are slowest."""
        target = self.target
        singles: list[BatchJob] = []
        batches: list[BatchJob] = []
        chunk: list[_Operation] = []
        size = 0

        def close_chunk() -> None:
            ops = tuple(chunk)

            def flow(fetcher: Fetcher | None = None) -> Flow[list[BatchResult]]:
                return batch_request_flow(target, ops, timeout, fetcher)

            batches.append(BatchJob(True, len(ops), flow))

        for op in self._ops:
            if op.single is not None:
                singles.append(BatchJob(False, 1, _single_job(target, op)))
                continue
            if chunk and (len(chunk) >= MAX_OPERATIONS or size + op.estimate > MAX_REQUEST_BYTES):
                close_chunk()
                chunk, size = [], 0
            chunk.append(op)
            size += op.estimate
        if chunk:
            close_chunk()
        self._ops = []  # a batch is sent once; the builder is empty again
        return singles + batches


def _single_job(target: Target, op: _Operation) -> Callable[..., Flow[list[BatchResult]]]:
    assert op.single is not None
    make = op.single

    def flow(fetcher: Fetcher | None = None) -> Flow[list[BatchResult]]:
        try:
            key = yield from make()
        except ObjectstoreError as error:
            return [_failed(target, op, error)]
        return [BatchResult(op.index, op.kind, key, key)]

    return flow


def _context(target: Target, op: _Operation, key: str | None = None) -> dict[str, str | None]:
    return {
        "operation": f"batch {op.kind} #{op.index}",
        "usecase": target.usecase.name,
        "scope": str(target.scope),
        "key": key if key is not None else op.key,
    }


def _failed(target: Target, op: _Operation, error: ObjectstoreError) -> BatchResult:
    # Each result owns its error (context differs per operation): copy shared ones.
    own = copy_error(error)
    own.operation = None
    own.key = None
    own.with_context(**_context(target, op))
    return BatchResult(op.index, op.kind, op.key, None, own)


def copy_error(error: ObjectstoreError) -> ObjectstoreError:
    """A shallow copy of ``error`` (same class, arguments and attributes, same cause)."""
    clone = error.__class__.__new__(error.__class__)
    clone.__dict__.update(error.__dict__)
    clone.args = error.args
    clone.__cause__ = error.__cause__
    return clone


def _protocol(target: Target, op: _Operation, message: str) -> BatchResult:
    return _failed(target, op, ProtocolError(f"malformed batch response: {message}"))


def _no_retry_target(target: Target) -> Target:
    """``target`` whose single requests are not retried: the batch flow retries itself."""
    if isinstance(target, ClientTarget) and target.config is not None:
        return replace(target, config=replace(target.config, retry=RetryPolicy.disabled()))
    return target


def batch_request_flow(
    target: Target,
    ops: Sequence[_Operation],
    timeout: Timeout | None = None,
    fetcher: Fetcher | None = None,
) -> Flow[list[BatchResult]]:
    """Send ``ops`` as batch requests until each has a result (see the module docs).

    ``fetcher`` makes a get's found object the value of its result (see
    :data:`Fetcher`); without one it is a :class:`FetchedObject`.
    """
    config = target.config if isinstance(target, ClientTarget) else None
    policy = config.retry if config is not None else None
    bodies: dict[int, bytes] = {}
    for op in ops:  # compressed once, reused by every attempt
        if op.kind == "put" and op.data is not None:
            if op.compress:
                frame = yield Compress(op.data, len(op.data))
                if not isinstance(frame, bytes):  # pragma: no cover - driver contract
                    raise TypeError(f"driver sent {frame!r} for a Compress step")
                bodies[op.index] = frame
            else:
                bodies[op.index] = op.data
    single = _no_retry_target(target)
    # A recording backend times each request; the no-op one adds no step and no object.
    request_once = _metered_attempt if observed(target) else _attempt
    results: dict[int, BatchResult] = {}
    pending = list(ops)
    attempt = 0
    while pending:
        attempt += 1
        outcome, retry = yield from request_once(
            single, pending, bodies, timeout, results, attempt, fetcher
        )
        may_retry = policy is not None and attempt < policy.max_attempts and retry
        never_sent = isinstance(outcome, NEVER_SENT_ERRORS)
        again = [op for op in retry if never_sent or not _keyless(op)] if may_retry else []
        resent = {op.index for op in again}
        for op in retry:
            if op.index not in resent:
                results[op.index] = _give_up(target, op, outcome, results.get(op.index))
        if not again:
            break
        assert policy is not None
        delay = policy.delay(attempt, getattr(outcome, "retry_after", None))
        log_retry("batch", "POST", target.collection("objects:batch"), outcome, delay, attempt)
        yield Sleep(delay)
        for op in again:
            results.pop(op.index, None)
        pending = again
    return [results[op.index] for op in ops]


def _keyless(op: _Operation) -> bool:
    return op.kind == "put" and op.key is None


def _give_up(
    target: Target, op: _Operation, outcome: object, current: BatchResult | None
) -> BatchResult:
    if current is not None:
        return current  # the operation's own (retryable) part result stands
    if isinstance(outcome, ObjectstoreError):
        return _failed(target, op, outcome)
    return _protocol(target, op, "no result for this operation")  # pragma: no cover


def _metered_attempt(
    target: Target,
    ops: list[_Operation],
    bodies: Mapping[int, bytes],
    timeout: Timeout | None,
    results: dict[int, BatchResult],
    attempt: int = 1,
    fetcher: Fetcher | None = None,
) -> Flow[tuple[object, list[_Operation]]]:
    """:func:`_attempt` as one ``storage.batch.*`` set (see :class:`BatchTally`).

    The operations of the request report no ``storage.<op>.*`` of their own:
    they share its latency and bytes.
    """
    meter = meter_for(target, "batch")
    if meter is None:  # the Sentry SDK is loaded but records nothing
        return (yield from _attempt(target, ops, bodies, timeout, results, attempt, fetcher))
    yield from start_request(meter)
    tally = BatchTally()
    flow = _attempt(target, ops, bodies, timeout, results, attempt, fetcher, tally)
    if meter.trace is not None:
        meter.note("operations", len(ops))
        flow = traced(flow, meter.trace)
    outcome = yield from flow
    done = yield from read_clock()
    tally.record(meter, done, ((op.kind, _outcome(results.get(op.index))) for op in ops))
    return outcome


def _outcome(result: BatchResult | None) -> str | None:
    error = result.error if result is not None else None
    return None if error is None else type(error).__name__


def _attempt(
    target: Target,
    ops: list[_Operation],
    bodies: Mapping[int, bytes],
    timeout: Timeout | None,
    results: dict[int, BatchResult],
    attempt: int = 1,
    fetcher: Fetcher | None = None,
    tally: BatchTally | None = None,
) -> Flow[tuple[object, list[_Operation]]]:
    """One batch request for ``ops``; fills ``results``, returns (outcome, ops to retry).

    The outcome is the whole-request error (or None); the ops to retry are
    those a retry may help: all of them after a transient whole-request
    failure, else those whose parts came back 429 or 503. ``attempt``
    numbers the request in the batch's own retries (for its log line, which
    is written once its multipart body has been read); ``tally`` notes the
    bytes moved and the failure, for the request's metrics.
    """
    boundary = "os-boundary-" + secrets.token_hex(16)
    body = _encode(ops, bodies, boundary)
    if tally is not None:
        tally.sent = len(body)
    headers = (("content-type", batch_content_type(boundary)),)
    # stream=True: the multipart response is read part by part (ReadBody steps), so a
    # response is never held whole and the parts before a broken stream still count.
    path = target.collection("objects:batch")
    request = Request("POST", path, headers, body, stream=True, timeout=timeout)
    config = target.config if isinstance(target, ClientTarget) else None
    policy = config.retry if config is not None else None
    try:
        deferred: list[RequestRecord] = []  # the log line, when DEBUG is on
        response = yield from _send(target, request, "batch", None, deferred, first=attempt)
    except ObjectstoreError as error:
        if tally is not None:
            tally.failure = error
        for op in ops:
            results[op.index] = _failed(target, op, error)
        retryable = policy is not None and isinstance(error, policy.errors)
        return error, (list(ops) if retryable else [])
    if tally is not None:
        tally.got(len(response.body))
    if response.status != 200:
        if deferred:  # a 2xx that is not a batch answer: its body is not read
            deferred[0].finish((yield from read_clock()), 0, f"status {response.status} refused")
        failure = error_for_response(
            response.status, response.headers, response.body, operation="batch"
        )
        if tally is not None:
            tally.failure = failure
        for op in ops:
            results[op.index] = _failed(target, op, failure)
        retryable = policy is not None and response.status in policy.statuses
        return failure, (list(ops) if retryable else [])
    retry, missing, broken, received = yield from _read_parts(
        target, ops, response, results, tally, fetcher
    )
    if deferred:
        stopped = None if broken is None else type(broken).__name__
        deferred[0].finish((yield from read_clock()), received, stopped)
    if tally is not None:
        tally.failure = broken
    if policy is None:
        return None, []
    again = [op for op in retry if results[op.index].error is not None]
    if broken is not None and isinstance(broken, policy.errors):
        # A partial response (§8.5 via the retry policy): only the operations
        # without a result are sent again.
        return broken, again + missing
    return None, again


def _read_parts(
    target: Target,
    ops: list[_Operation],
    response: Response,
    results: dict[int, BatchResult],
    tally: BatchTally | None = None,
    fetcher: Fetcher | None = None,
) -> Flow[tuple[list[_Operation], list[_Operation], ObjectstoreError | None, int]]:
    """Read the response's parts as they arrive, correlating them with ``ops`` by index
    (§8.4, §8.5).

    Returns the operations whose parts asked for a retry (429/503), those left
    without any result, the error that broke the stream, if one did, and the
    body bytes received.
    """
    by_index = dict(enumerate(ops))  # the index header is the position in *this* request
    seen: set[int] = set()
    retry: list[_Operation] = []
    problem = "no part for this operation in the batch response"
    broken: ObjectstoreError | None = None
    received = len(response.body)
    try:
        boundary = boundary_from_content_type(response.headers.get("content-type"))
        decoder = BatchDecoder(boundary)
        if response.body:  # a transport that read the body whole
            decoder.receive_data(response.body)
        while True:
            event = decoder.next_event()
            if event is NEED_DATA:
                try:
                    chunk = yield ReadBody()
                except ObjectstoreError as error:
                    broken = error
                    break
                if not isinstance(chunk, bytes):  # pragma: no cover - driver contract
                    raise TypeError(f"driver sent {chunk!r} for a ReadBody step")
                received += len(chunk)
                if tally is not None:
                    tally.got(len(chunk))
                decoder.receive_data(chunk)  # b"": the end of the body
                continue
            if event is END:
                break
            assert isinstance(event, BatchPart)
            text = event.headers.get("x-sn-batch-operation-index")
            if text is None or not text.isascii() or not text.isdigit():
                continue  # unattributable: its operation (if any) ends without a part
            position = int(text)
            op = by_index.get(position)
            if op is None:
                continue
            if position in seen:
                results[op.index] = _protocol(target, op, f"duplicate index {position}")
                continue
            seen.add(position)
            result, again = _part_result(target, op, event, fetcher)
            results[op.index] = result
            if again:
                retry.append(op)
    except ProtocolError as error:
        problem = str(error)
    missing = [op for position, op in by_index.items() if position not in seen]
    for op in missing:
        if broken is not None:
            results[op.index] = _failed(target, op, broken)
        else:
            results[op.index] = _protocol(target, op, problem)
    return retry, missing, broken, received


def _encode(ops: Sequence[_Operation], bodies: Mapping[int, bytes], boundary: str) -> bytes:
    """The request body: what :func:`encode_batch` makes of the operations' parts (§8.1),
    from the header lines each operation encoded when it was added."""
    delimiter = f"--{boundary}\r\n".encode()
    pieces: list[bytes] = []
    add = pieces.extend
    for op in ops:
        add((delimiter, op.head, bodies.get(op.index, b""), b"\r\n"))
    pieces.append(f"--{boundary}--\r\n".encode())
    return b"".join(pieces)


def _part_result(
    target: Target, op: _Operation, part: BatchPart, fetcher: Fetcher | None = None
) -> tuple[BatchResult, bool]:
    """One part's result, and whether a retry may help (per-part 429/503)."""
    headers = part.headers
    status_text = headers.get("x-sn-batch-operation-status")
    status = _USUAL_STATUSES.get(status_text)
    if status is None:
        code = status_text.split(" ", 1)[0] if status_text else ""
        if not code.isascii() or not code.isdigit() or len(code) != 3:
            return _protocol(target, op, f"part status {status_text!r} is not 'code reason'"), False
        status = int(code)
    key = op.key
    raw_key = headers.get("x-sn-batch-operation-key")
    if raw_key is not None:
        if "%" not in raw_key:
            key = raw_key  # what decoding it would give
        else:
            try:
                key = decode_batch_key(raw_key)
            except ValueError:
                return _protocol(
                    target, op, f"part key {raw_key!r} is not percent-encoded UTF-8"
                ), False
    if status >= 400 and not (status == 404 and op.kind in ("get", "head")):
        error = error_for_response(status, headers, part.body, **_context(target, op, key))
        return new_result(op.index, op.kind, key, None, error), status in _RETRY_PART_STATUSES
    try:
        value = _success_value(target, op, status, key, part, fetcher)
    except ValueError as exc:
        return _protocol(target, op, str(exc)), False
    return new_result(op.index, op.kind, key, value, None), False


def _success_value(
    target: Target,
    op: _Operation,
    status: int,
    key: str | None,
    part: BatchPart,
    fetcher: Fetcher | None = None,
) -> object:
    kind = op.kind
    if kind == "get":
        if status == 404:
            return None
        if status != 200:
            raise ValueError(f"unexpected status {status} for a get")
        headers, body = part.headers, part.body
        decode = op.decode and headers.get("content-encoding") == "zstd"
        metadata = read_metadata(headers, decoded=decode, default_size=len(body))
        if fetcher is not None:  # the context is built only if an error needs it
            return fetcher(metadata, body, decode, target, op.index, key)
        return FetchedObject(metadata, body, decode, _context(target, op, key))
    if kind == "head":
        if status == 404:
            return None
        if status not in (200, 204):
            raise ValueError(f"unexpected status {status} for a head")
        return read_metadata(part.headers)
    if kind == "put":
        if status not in (200, 201) or key is None:
            raise ValueError(f"insert answered {status} without a key")
        return key
    if not 200 <= status < 300:
        raise ValueError(f"unexpected status {status} for a delete")
    return None
