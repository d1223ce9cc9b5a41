"""Object operations as flows: each is written once and driven by both twins.

A flow builds its request(s), yields them, and interprets the responses; the
sync and async drivers only move bytes and wait. Arguments are validated
when the flow is *built* (before the first step), so bad input raises
ValueError before any I/O.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from objectstore_core._codec import ZstdContexts
from objectstore_core._config import ClientConfig, ClientTarget
from objectstore_core._download import Download, check_max_read_size
from objectstore_core._durations import format_duration
from objectstore_core._errors import (
    ObjectstoreError,
    ProtocolError,
    TimeoutError,
    error_for_response,
)
from objectstore_core._http import (
    Compress,
    Flow,
    Payload,
    Request,
    Response,
    SendRequest,
    Sleep,
    Upload,
    classify_payload,
    read_clock,
)
from objectstore_core._log import RequestRecord, debug_logger, log_retry, logged_attempt
from objectstore_core._metadata import (
    _DIGITS_RE,
    Metadata,
    check_head_limits,
    metadata_headers,
    read_metadata,
)
from objectstore_core._metered import measured_transfer
from objectstore_core._metrics import Meter, measured, measured_open, meter_for
from objectstore_core._models import (
    Compression,
    ExpirationPolicy,
    TimeToIdle,
    TimeToLive,
    validate_compression,
)
from objectstore_core._paths import Target, validate_key
from objectstore_core._resumable import resumable_put_steps
from objectstore_core._retry import retry_delay
from objectstore_core._timeout import Timeout

__all__ = [
    "GetOutcome",
    "delete_flow",
    "extend_expiry_flow",
    "get_flow",
    "head_flow",
    "parse_accept_encoding",
    "put_flow",
    "write_headers",
]

# Payloads up to this size are compressed in one call (a Compress step, which
# the driver performs where its twin decides) and sent with a content-length;
# larger ones are streamed through the encoder in chunks by the transport.
ONE_SHOT_LIMIT = 4 * 1024 * 1024


def _send(
    target: Target,
    request: Request,
    operation: str,
    key: str | None,
    deferred: list[RequestRecord] | None = None,
    *,
    first: int = 1,
) -> Flow[Response]:
    """Yield one request with the session's headers and credentials; return its response.

    The one place every request passes. Drivers throw transport failures
    into the flow at the ``yield``, so they are decided here: a failed
    attempt (an error, or a status of the retry policy) is repeated after a
    :class:`Sleep` when the client's :class:`RetryPolicy` asks for it and a
    repetition cannot duplicate or corrupt a write (see
    :mod:`objectstore_core._retry`). The final response is returned whatever
    its status; the final error leaves with the operation's context.

    With ``Timeout.total`` the flow keeps a deadline: it asks the driver for
    the time (:class:`Clock`), cuts each attempt's socket waits to the time
    left, and stops retrying when the next backoff would not fit. A stream
    handed to the caller is never retried: only responses reach this loop.

    Each attempt is logged at DEBUG and each retry at INFO (see
    :mod:`objectstore_core._log`); with DEBUG off, the check before the loop
    is all logging costs. ``deferred`` collects the log line of a body left
    open for the caller (a get's), which its download writes when it ends;
    ``first`` is the number of the first attempt in the log (a batch counts
    its own retries).
    """
    if target.headers:
        request = request.with_headers(target.headers)
    config = target.config if isinstance(target, ClientTarget) else None
    policy = config.retry if config is not None else None
    limits = request.timeout or (config.timeout if config is not None else None)
    deadline = None
    if limits is not None and limits.total is not None:
        deadline = (yield from read_clock()) + limits.total
    log = debug_logger()  # None unless DEBUG lines are recorded: the one check per request
    shift = first - 1  # only for the log lines: the retry policy counts from 1
    attempt = 0
    while True:
        attempt += 1
        sent = request
        if deadline is not None and limits is not None:
            left = deadline - (yield from read_clock())
            if left <= 0:
                raise TimeoutError(
                    f"{operation} did not finish within the total timeout of {limits.total} s"
                ).with_context(**_context(target, operation, key))
            sent = replace(request, timeout=_clipped(limits, left))
        outcome: Response | ObjectstoreError
        if log is not None:
            outcome = yield from logged_attempt(
                SendRequest(sent, target.credentials), log, attempt + shift, deferred
            )
        else:  # send_once, inline: the usual attempt costs no generator of its own
            try:
                reply = yield SendRequest(sent, target.credentials)
            except ObjectstoreError as error:
                outcome = error
            else:
                if not isinstance(reply, Response):  # pragma: no cover - driver contract
                    raise TypeError(f"driver sent {reply!r} for a SendRequest")
                outcome = reply
        delay = retry_delay(policy, request, attempt, outcome)
        if (
            delay is not None
            and deadline is not None
            and (yield from read_clock()) + delay >= deadline
        ):
            delay = None  # the wait alone would overrun the deadline
        if delay is None:
            if isinstance(outcome, ObjectstoreError):
                context = _context(target, operation, key)
                raise outcome.with_context(**context) from outcome.__cause__
            return outcome
        _count_retry(config, operation, outcome, delay)
        log_retry(operation, request.method, request.target, outcome, delay, attempt + shift)
        yield Sleep(delay)


def _clipped(limits: Timeout, left: float) -> Timeout:
    """``limits`` with every socket wait cut to the ``left`` seconds of the deadline."""

    def cut(value: float | None) -> float:
        return left if value is None else min(value, left)

    return replace(
        limits,
        connect=cut(limits.connect),
        read=cut(limits.read),
        write=cut(limits.write),
        pool=cut(limits.pool),
        total=left,  # the attempt's own deadline: the exchange bounds every wait by it
    )


def _count_retry(
    config: ClientConfig | None,
    operation: str,
    outcome: Response | ObjectstoreError,
    delay: float = 0.0,
) -> None:
    """Report a retry to the client's metrics backend: ``objectstore.retries`` counts it,
    ``objectstore.retry_backoff`` adds the seconds waited before it."""
    if config is None:
        return
    reason = str(outcome.status) if isinstance(outcome, Response) else type(outcome).__name__
    tags = {"operation": operation, "reason": reason}
    config.metrics_backend.increment("objectstore.retries", tags=tags)
    config.metrics_backend.increment("objectstore.retry_backoff", delay, tags=tags)


def _context(target: Target, operation: str, key: str | None) -> dict[str, str | None]:
    return {
        "operation": operation,
        "usecase": target.usecase.name,
        "scope": str(target.scope),
        "key": key,
    }


def _raise_for(response: Response, target: Target, operation: str, key: str | None) -> None:
    raise error_for_response(
        response.status, response.headers, response.body, **_context(target, operation, key)
    )


def _protocol_error(message: str, target: Target, operation: str, key: str | None) -> ProtocolError:
    error = ProtocolError(message)
    error.with_context(**_context(target, operation, key))
    return error


# ---------------------------------------------------------------------- put


def resolve_compression(
    target: Target,
    compress: Compression | None,
    compression: Compression | None,
    precompressed: Compression | None,
) -> tuple[bool, Compression | None]:
    """Decide (compress the body here?, content-encoding to record) for a put.

    ``compression=`` is the deprecated spelling of ``compress=`` (PROTOCOL
    §14.6); ``precompressed="zstd"`` uploads the bytes as they are and records
    them as zstd.
    """
    if compression is not None:
        warnings.warn(
            "put(compression=...) is deprecated; use compress=...",
            DeprecationWarning,
            stacklevel=4,
        )
        if compress is not None and compress != compression:
            raise ValueError(
                f"compress={compress!r} and compression={compression!r} disagree: "
                "pass only compress"
            )
        compress = compression
    if precompressed is not None:
        if precompressed != "zstd":
            raise ValueError(
                f"precompressed={precompressed!r} is not supported: the only value is 'zstd'"
            )
        if compress not in (None, "none"):
            raise ValueError(
                f"compress={compress!r} with precompressed='zstd' would compress twice: "
                "pass only one of them"
            )
        return False, "zstd"
    chosen = validate_compression(compress if compress is not None else target.usecase.compression)
    return chosen == "zstd", chosen if chosen == "zstd" else None


def write_headers(
    target: Target,
    encoding: Compression | None,
    content_type: str | None,
    metadata: Mapping[str, str] | None,
    expiration_policy: ExpirationPolicy | None,
    origin: str | None,
    filename: str | None,
    resumable_threshold_bytes: int | str | None,
) -> list[tuple[str, str]]:
    """A put's options checked (ValueError or TypeError naming the bad one) and its
    metadata headers (PROTOCOL §4.1); the usecase's policy when none is given."""
    _validate_threshold(resumable_threshold_bytes)
    policy = _validate_expiration(
        expiration_policy if expiration_policy is not None else target.usecase.expiration_policy
    )
    return metadata_headers(
        content_type=content_type,
        compression=encoding,
        expiration_policy=policy,
        origin=origin,
        filename=filename,
        custom=metadata,
    )


def _validate_expiration(policy: object) -> ExpirationPolicy | None:
    if policy is None or isinstance(policy, TimeToLive | TimeToIdle):
        return policy
    raise TypeError(f"expiration_policy {policy!r} must be TimeToLive, TimeToIdle or None")


def _validate_threshold(value: object) -> None:
    if value is None or value == "none":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"resumable_threshold_bytes={value!r} is invalid: use a byte count >= 0 or 'none'"
        )


def _body(contents: Payload, compress: bool) -> bytes | Upload | Compress:
    """Describe a payload as a request body, without reading, measuring or compressing it."""
    if isinstance(contents, str):
        contents = contents.encode("utf-8")
    kind = classify_payload(contents)
    if isinstance(contents, bytes | bytearray | memoryview):
        size = memoryview(contents).nbytes
        if compress and size <= ONE_SHOT_LIMIT:
            return Compress(contents, size)
        if not compress and isinstance(contents, bytes):
            return contents
    return Upload(source=contents, kind=kind, compress=compress)


def put_flow(
    target: Target,
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
    resumable_threshold_bytes: int | str | None = None,
    *,
    timeout: Timeout | None = None,
) -> Flow[str]:
    """Upload one object; returns its key (PROTOCOL §3.1, §3.2).

    Without a key (None or ``""``, as the official clients do) the server
    generates one: ``POST .../{scope}/`` answered 201. With a key: ``PUT``
    answered 200. Validation happens here, before the flow starts. Nothing is
    compressed here: bytes up to 4 MiB are compressed by the flow's first
    step (:class:`Compress`, performed by the driver), larger payloads by the
    transport as it streams them.
    """
    do_compress, encoding = resolve_compression(target, compress, compression, precompressed)
    if key == "":
        key = None
    if key is not None:
        validate_key(key)
    headers = write_headers(
        target,
        encoding,
        content_type,
        metadata,
        expiration_policy,
        origin,
        filename,
        resumable_threshold_bytes,
    )
    if isinstance(contents, str):
        contents = contents.encode("utf-8")
    body = _body(contents, do_compress)
    # Without a key: POST to the collection; with one: PUT to the object (§3.1, §3.2).
    method, path = ("POST", target.collection()) if key is None else ("PUT", target.object(key))
    check_head_limits(path, target.headers, headers)
    threshold = resumable_threshold_bytes
    if threshold is None:
        threshold = target.usecase.resumable_threshold_bytes
    meter = meter_for(target, "put", key)  # None unless metrics or a Sentry span record it
    if isinstance(threshold, int) and _may_resume(contents, threshold):
        # §14.1: a payload of a size the twin can measure (before compression); one the
        # client compresses is spooled compressed first (see resumable_put_steps).
        def plain(spooled: Upload | None) -> Flow[str]:
            sent = body if spooled is None else spooled
            return _put_steps(target, method, path, tuple(headers), sent, timeout, key)

        flow = resumable_put_steps(
            target,
            method,
            path,
            tuple(headers),
            contents,
            threshold,
            key,
            timeout,
            plain,
            compress=do_compress,
        )
        if meter is None:
            return flow
        meter.note("compression", encoding or "none")
        # Sent in several requests (or one, below the threshold): sized as a whole.
        total = None
        if isinstance(contents, bytes | bytearray | memoryview):
            total = memoryview(contents).nbytes
        # Compressed here: the source's size and the spool's (or frames') size, as a
        # plain compressed put records them; else the stored bytes as ``encoding``.
        stored = None if do_compress else encoding
        return measured_transfer(flow, meter, total=total, encoding=stored)
    flow = _put_steps(target, method, path, tuple(headers), body, timeout, key)
    if meter is None:
        return flow
    meter.note("compression", encoding or "none")
    return measured(flow, meter, encoding=encoding)


def _may_resume(contents: Payload, threshold: int) -> bool:
    """Whether a put of ``contents`` could reach ``threshold`` bytes (before compression)
    and be resumed (§14.1): bytes that do, paths and files or streams (measured by the
    twin: a seekable one has a size); never iterators."""
    if isinstance(contents, bytes | bytearray | memoryview):
        return memoryview(contents).nbytes >= threshold
    return isinstance(contents, os.PathLike) or callable(getattr(contents, "read", None))


def _put_steps(
    target: Target,
    method: str,
    path: str,
    headers: tuple[tuple[str, str], ...],
    body: bytes | Upload | Compress,
    timeout: Timeout | None,
    key: str | None,
) -> Flow[str]:
    if isinstance(body, Compress):
        frame = yield body  # the driver compresses where its twin decides; the flow never does
        if not isinstance(frame, bytes):  # pragma: no cover - driver contract
            raise TypeError(f"driver sent {frame!r} for a Compress step")
        body = frame
    request = Request(method, path, headers, body, timeout=timeout)
    response = yield from _send(target, request, "put", key)
    if response.status not in (200, 201):
        _raise_for(response, target, "put", key)
    return parse_key_response(response, target, "put", key)


# Control characters (C0, DEL, C1): no key a server hands out holds one, and
# printed or logged they could rewrite what a terminal or a log shows.
_KEY_CONTROLS_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


def parse_key_response(response: Response, target: Target, operation: str, key: str | None) -> str:
    """Read ``{"key": "..."}`` from a write response (PROTOCOL §3.1, §3.2).

    The key is not trusted blindly: for a write to a given key it must be
    that key (§3.2: the body names the decoded key); a generated key must be
    a non-empty string that can name an object (§2.3), without control
    characters. Anything else is a :class:`ProtocolError`.
    """
    try:
        parsed = json.loads(response.body)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("key"), str) or not parsed["key"]:
        raise _protocol_error(
            f"expected a JSON body with a key, got {response.body[:200]!r}", target, operation, key
        )
    returned: str = parsed["key"]
    if key is not None:
        if returned != key:
            raise _protocol_error(
                f"the server answered with key {returned[:200]!r} for a write to key {key!r}",
                target,
                operation,
                key,
            )
        return returned  # the caller's own key, whatever it holds
    if _KEY_CONTROLS_RE.search(returned):
        raise _protocol_error(
            f"the server answered with key {returned[:200]!r}, which holds a control character",
            target,
            operation,
            key,
        )
    try:
        validate_key(returned)
    except ValueError as exc:
        raise _protocol_error(
            f"the server answered with an unusable key: {exc}", target, operation, key
        ) from None
    return returned


# ---------------------------------------------------------------------- get


def parse_accept_encoding(header: str) -> list[str]:
    """The encodings an Accept-Encoding style value accepts, in order.

    Quality values are honoured only to drop refused encodings: ``q=0``
    means "not acceptable" (RFC 9110 §12.4.2).

    >>> parse_accept_encoding("zstd, gzip;q=0.5, br;q=0, *")
    ['zstd', 'gzip', '*']
    """
    accepted = []
    for item in header.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if not name:
            continue
        refused = False
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    refused = float(value.strip()) <= 0
                except ValueError:
                    refused = False
        if not refused:
            accepted.append(name.lower())
    return accepted


@dataclass(frozen=True, slots=True)
class GetOutcome:
    """A found object whose body the transport kept open.

    ``decode``: pass the body through the zstd decoder. ``expected_length``:
    raw bytes announced by the server, checked by the download state.
    ``max_read_size``: the bound of a whole-body read (None: unbounded).
    ``meter`` and ``log``: the get's metrics and its DEBUG line, which its
    download settles when the body ends (None: nothing to record).
    """

    metadata: Metadata
    decode: bool
    expected_length: int | None
    status: int
    context: Mapping[str, str | None] = field(default_factory=dict)
    max_read_size: int | None = None
    meter: Meter | None = field(default=None, repr=False, compare=False)
    log: RequestRecord | None = field(default=None, repr=False, compare=False)

    def download(self, contexts: ZstdContexts | None = None) -> Download:
        """The state that checks and decodes this body as the caller reads it.

        ``contexts``: the client's idle zstd contexts, reused across downloads.
        """
        return Download(
            decode=self.decode,
            expected_length=self.expected_length,
            context=self.context,
            contexts=contexts,
            max_read_size=self.max_read_size,
            meter=self.meter,
            log=self.log,
            stored="zstd" if self.decode else self.metadata.compression,
        )


def _validate_range(byte_range: object) -> tuple[int, int | None] | None:
    if byte_range is None:
        return None
    if (
        not isinstance(byte_range, tuple | list)
        or len(byte_range) != 2
        or isinstance(byte_range[0], bool)
        or not isinstance(byte_range[0], int)
        or not (byte_range[1] is None or isinstance(byte_range[1], int))
        or isinstance(byte_range[1], bool)
    ):
        raise ValueError(
            f"byte_range={byte_range!r} is invalid: expected (first, last) inclusive byte "
            "offsets, or (first, None) for the rest"
        )
    first, last = byte_range[0], byte_range[1]
    if first < 0 or (last is not None and last < first):
        raise ValueError(
            f"byte_range={byte_range!r} is invalid: offsets must satisfy 0 <= first <= last"
        )
    return first, last


def get_flow(
    target: Target,
    key: str,
    decompress: bool = True,
    accept_encoding: Sequence[str] | None = None,
    byte_range: tuple[int, int | None] | None = None,
    *,
    timeout: Timeout | None = None,
    max_read_size: int | None = None,
) -> Flow[GetOutcome | None]:
    """Read one object, leaving the body for the caller to stream (PROTOCOL §3.3, §6).

    Returns None on 404. The stored bytes are decoded when they are zstd, the
    caller wants decompression, and does not accept zstd itself (§5). A range
    addresses stored bytes (§6) and is never decoded: a slice of a zstd stream
    cannot be decompressed on its own. ``max_read_size`` bounds a whole-body
    read of this object (None: the client's ``max_read_size``).
    """
    validate_key(key)
    accepted = accept_encoding is not None and _validate_accept(accept_encoding)
    span = None if byte_range is None else _validate_range(byte_range)
    if max_read_size is not None:
        bound = check_max_read_size(max_read_size)
    elif isinstance(target, ClientTarget) and target.config is not None:
        bound = target.config.max_read_size
    else:
        bound = None
    headers: tuple[tuple[str, str], ...] = ()
    if span is not None:
        first, last = span
        headers = (("range", f"bytes={first}-{'' if last is None else last}"),)
    request = Request("GET", target.object(key), headers, stream=True, timeout=timeout)
    meter = meter_for(target, "get", key)  # the body records it (Download.settle)
    want_decode = decompress and not accepted and span is None
    flow = _get_steps(target, request, key, want_decode, bound, meter)
    return flow if meter is None else measured_open(flow, meter)


def _validate_accept(accept_encoding: object) -> bool:
    """True when the caller accepts zstd bytes as they are stored."""
    if accept_encoding is None:
        return False
    if isinstance(accept_encoding, str):
        encodings = parse_accept_encoding(accept_encoding)
    elif isinstance(accept_encoding, Sequence) and all(isinstance(e, str) for e in accept_encoding):
        encodings = [e.strip().lower() for e in accept_encoding]
    else:
        raise ValueError(
            f"accept_encoding={accept_encoding!r} is invalid: expected a list of encodings "
            "such as ['zstd']"
        )
    return "zstd" in encodings or "*" in encodings


def _get_steps(
    target: Target,
    request: Request,
    key: str,
    want_decode: bool,
    bound: int | None,
    meter: Meter | None = None,
) -> Flow[GetOutcome | None]:
    deferred: list[RequestRecord] = []  # the log line of a body left open, if logged
    response = yield from _send(target, request, "get", key, deferred)
    log = deferred[-1] if deferred else None
    status = response.status
    if status == 404:
        if meter is not None:
            meter.note("found", False)
        return None
    try:
        if status != 200 and status != 206:
            _raise_for(response, target, "get", key)
        # Decoded when stored as zstd (the metadata read below accepts nothing else).
        decode = want_decode and response.headers.get("content-encoding") == "zstd"
        expected = _announced_length(response, target, key)
        # A full read's length stands in for a missing size (servers send x-sn-size).
        size = expected if status == 200 else None
        metadata = _read_metadata(response, target, "get", key, decoded=decode, default_size=size)
    except ObjectstoreError as error:
        if log is not None:  # a body refused unread: its line is written now
            log.finish((yield from read_clock()), 0, type(error).__name__)
        raise
    if meter is not None:  # the official client's span attributes
        meter.note("found", True)
        meter.note("compression", "zstd" if decode else metadata.compression or "none")
        meter.note("decompressed", decode)
    context = _context(target, "get", key)
    return GetOutcome(metadata, decode, expected, status, context, bound, log=log)


def _announced_length(response: Response, target: Target, key: str) -> int | None:
    """Raw body length the server committed to, for truncation checks."""
    text = response.headers.get("content-length")
    if text is None and response.status == 200:
        text = response.headers.get("x-sn-size")
    if text is None:
        return None
    if not _DIGITS_RE.fullmatch(text.strip()):
        raise _protocol_error(f"invalid body length {text!r}", target, "get", key)
    return int(text)


def _read_metadata(
    response: Response,
    target: Target,
    operation: str,
    key: str,
    *,
    decoded: bool = False,
    default_size: int | None = None,
) -> Metadata:
    try:
        return read_metadata(response.headers, decoded=decoded, default_size=default_size)
    except ValueError as exc:
        raise _protocol_error(
            f"malformed metadata in response: {exc}", target, operation, key
        ) from exc


# --------------------------------------------------------------- head/delete


def head_flow(target: Target, key: str, *, timeout: Timeout | None = None) -> Flow[Metadata | None]:
    """Read an object's metadata; None on 404 (PROTOCOL §3.4: success is 204)."""
    validate_key(key)
    meter = meter_for(target, "head", key)
    flow = _head_steps(target, Request("HEAD", target.object(key), timeout=timeout), key, meter)
    return flow if meter is None else measured(flow, meter)


def _head_steps(
    target: Target, request: Request, key: str, meter: Meter | None = None
) -> Flow[Metadata | None]:
    response = yield from _send(target, request, "head", key)
    if response.status != 404 and response.status not in (200, 204):
        _raise_for(response, target, "head", key)
    if meter is not None:  # the official client's span attribute
        meter.note("found", response.status != 404)
    if response.status == 404:
        return None
    return _read_metadata(response, target, "head", key)


def delete_flow(target: Target, key: str, *, timeout: Timeout | None = None) -> Flow[None]:
    """Delete an object; deleting a missing object succeeds (PROTOCOL §3.5)."""
    validate_key(key)
    flow = _delete_steps(target, Request("DELETE", target.object(key), timeout=timeout), key)
    meter = meter_for(target, "delete", key)
    return flow if meter is None else measured(flow, meter)


def _delete_steps(target: Target, request: Request, key: str) -> Flow[None]:
    response = yield from _send(target, request, "delete", key)
    if response.status == 404 or 200 <= response.status < 300:
        return None
    _raise_for(response, target, "delete", key)
    return None  # pragma: no cover - _raise_for always raises


# ------------------------------------------------------------ extend_expiry


def extend_expiry_body(
    at: datetime | None, from_creation: timedelta | None, from_now: timedelta | None
) -> bytes:
    """The PATCH body of PROTOCOL §14.2; exactly one target must be given."""
    given = [
        name
        for name, v in (("at", at), ("from_creation", from_creation), ("from_now", from_now))
        if v is not None
    ]
    if len(given) != 1:
        raise ValueError(
            "extend_expiry needs exactly one of at=, from_creation=, from_now= "
            f"(got {', '.join(given) or 'none'})"
        )
    if at is not None:
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValueError(f"at={at!r} is invalid: pass a timezone-aware datetime")
        target: dict[str, str] = {"at": at.astimezone(UTC).isoformat()}
    else:
        delta = from_creation if from_creation is not None else from_now
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            raise ValueError(f"duration {delta!r} is invalid: pass a non-negative timedelta")
        target = {
            "after": format_duration(delta),
            "from": "creation" if from_creation is not None else "now",
        }
    return json.dumps({"extend_expiry": target}, separators=(",", ":")).encode()


def extend_expiry_flow(
    target: Target,
    key: str,
    at: datetime | None = None,
    from_creation: timedelta | None = None,
    from_now: timedelta | None = None,
    *,
    timeout: Timeout | None = None,
) -> Flow[None]:
    """Raise an object's expiry deadline (PROTOCOL §14.2).

    404 raises ObjectNotFound; 409 raises ExpiryExtensionRejected.
    """
    validate_key(key)
    body = extend_expiry_body(at, from_creation, from_now)
    headers = (("content-type", "application/json"),)
    request = Request("PATCH", target.object(key), headers, body, timeout=timeout)
    flow = _extend_steps(target, request, key)
    meter = meter_for(target, "extend_expiry", key)
    return flow if meter is None else measured(flow, meter)


def _extend_steps(target: Target, request: Request, key: str) -> Flow[None]:
    response = yield from _send(target, request, "extend_expiry", key)
    if not 200 <= response.status < 300:
        _raise_for(response, target, "extend_expiry", key)
    return None
