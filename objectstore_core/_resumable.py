"""Resumable uploads (PROTOCOL §14.1): a session on the server, appends from an offset.

``put`` takes this path for a payload whose size is known (bytes, a path, a
seekable file or stream) and at least ``resumable_threshold_bytes``: it
creates an upload session, appends the payload in chunks that are multiples
of the server's granularity, and after a transient failure probes the
server's offset and continues from there. A payload the client compresses is
first compressed whole into a temporary file the twin keeps (a
:class:`Spool` step): the session's length is the compressed size and every
offset counts compressed bytes. A server without resumable uploads (501) or
one that declines the session gets a plain upload (of the spooled bytes,
with a content-length, when they exist). When the upload gives up (the
server went away, retries exhausted) the error carries a
:class:`ResumeHandle`; ``session.resume_upload(handle, source)`` continues
with only the missing bytes, in this process or another one.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, fields
from urllib.parse import quote

from objectstore_core._config import ClientTarget
from objectstore_core._errors import (
    ObjectstoreError,
    ProtocolError,
    TransportError,
    error_for_response,
)
from objectstore_core._http import (
    Buffer,
    Flow,
    Measure,
    Payload,
    PayloadKind,
    Request,
    Response,
    SendRequest,
    Sleep,
    Spool,
    Spooled,
    SpoolTally,
    Upload,
    UploadReplay,
    classify_payload,
    send_once,
)
from objectstore_core._log import debug_logger, log_retry, logged_attempt
from objectstore_core._metadata import _DIGITS_RE
from objectstore_core._metered import finish_request, metered, start_request
from objectstore_core._metrics import meter_for
from objectstore_core._paths import Target
from objectstore_core._retry import RetryPolicy
from objectstore_core._timeout import Timeout

__all__ = [
    "CHUNK_BYTES",
    "ResumeHandle",
    "resumable_put_steps",
    "resume_upload_flow",
    "spool_pieces",
]

CHUNK_BYTES = 64 * 1024 * 1024
"""The most one append sends (rounded down to the server's granularity)."""

_TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})  # §14.1


@dataclass(frozen=True, slots=True)
class ResumeHandle:
    """Where a resumable upload stopped: enough to continue it later (picklable).

    ``offset`` is the last offset the server confirmed; the server may hold
    more, which the resuming probe finds out. ``total`` is the size of the
    payload as uploaded; ``session`` the server's opaque session token.

    For a payload the client compressed (PROTOCOL §14.1: offsets count
    compressed bytes), ``total`` is the compressed size, ``compressed_sha256``
    the sha256 (hex) of the compressed bytes, ``source_size`` the size of the
    source before compression and ``zstd_workers`` the libzstd workers that
    compressed it: ``resume_upload`` compresses the source again the same way
    and checks it gets the same bytes before it sends any. All three are None
    for a payload sent as it is stored.
    """

    usecase: str
    scope: str
    key: str
    session: str
    offset: int
    total: int
    granularity: int = 0
    source_size: int | None = None
    compressed_sha256: str | None = None
    zstd_workers: int | None = None

    def __setstate__(self, state: list[object]) -> None:
        # A handle pickled before the compression fields existed holds fewer
        # values: the missing ones take their defaults (a payload sent as stored).
        values = dict(zip((f.name for f in fields(ResumeHandle)), state, strict=False))
        for f in fields(ResumeHandle):
            object.__setattr__(self, f.name, values.get(f.name, f.default))

    @property
    def compressed(self) -> bool:
        """True when the client compressed the payload (it must be compressed again)."""
        return self.compressed_sha256 is not None


def _context(target: Target, operation: str, key: str | None) -> dict[str, str | None]:
    # As in _operations (which builds on this module, so it cannot be imported here).
    scope = str(target.scope)
    return {"operation": operation, "usecase": target.usecase.name, "scope": scope, "key": key}


def _raise_for(response: Response, target: Target, operation: str, key: str | None) -> None:
    context = _context(target, operation, key)
    raise error_for_response(response.status, response.headers, response.body, **context)


def _protocol_error(message: str, target: Target, operation: str, key: str | None) -> ProtocolError:
    error = ProtocolError(message)
    error.with_context(**_context(target, operation, key))
    return error


def _attempt(
    target: Target,
    request: Request,
    operation: str,
    size: int | None = None,
    attempt: int = 1,
) -> Flow[Response | ObjectstoreError]:
    """One attempt, without the generic retries: this flow decides what happens next.

    Logged at DEBUG as every request is (``attempt``: its number in this
    flow's count). Timed as ``storage.<operation>.*`` when the client's
    backend records (``resumable.create``, ``resumable.put`` with the
    ``size`` appended, as the official client; ``resumable.probe``,
    ``resumable.cancel``); an error status or a transport error is the
    ``outcome``.
    """
    if target.headers:
        request = request.with_headers(target.headers)
    meter = meter_for(target, operation)
    if meter is not None:
        yield from start_request(meter)
    outcome: Response | ObjectstoreError
    log = debug_logger()
    if log is not None:
        outcome = yield from logged_attempt(SendRequest(request, target.credentials), log, attempt)
    else:
        outcome = yield from send_once(SendRequest(request, target.credentials))
    if meter is not None:
        yield from finish_request(meter, outcome, size=size)
    return outcome


def _transient(outcome: Response | ObjectstoreError) -> bool:
    if isinstance(outcome, Response):
        return outcome.status in _TRANSIENT_STATUSES
    # Timeouts, lost connections and garbled answers (§14.1); not a failed connect
    # that the session never saw either, which is just as safe to repeat.
    return isinstance(outcome, TransportError | ProtocolError)


def _offset(response: Response) -> int | None:
    text = response.headers.get("upload-offset")
    if text is None or not _DIGITS_RE.fullmatch(text.strip()):
        return None
    return int(text)


def _body(
    contents: Payload, kind: PayloadKind, offset: int, end: int, replay: UploadReplay
) -> bytes | Upload:
    """Bytes ``offset..end`` of the payload, as a fixed-length body.

    Every append shares ``replay``: a file's offsets count from the position
    its first append found it at.
    """
    if isinstance(contents, bytes | bytearray | memoryview):
        return bytes(memoryview(contents).cast("B")[offset:end])
    # The transport reads the source from ``offset`` and sends exactly this many bytes.
    return Upload(contents, kind, False, end - offset, offset, replay)


class _Upload:
    """The state of one resumable upload as the flow runs it."""

    def __init__(
        self,
        target: Target,
        contents: Payload,
        handle: ResumeHandle,
        timeout: Timeout | None,
        replay: UploadReplay | None = None,
    ) -> None:
        self.target = target
        self.contents = contents
        self.kind = classify_payload(contents)
        self.replay = UploadReplay() if replay is None else replay
        self.handle = handle
        self.timeout = timeout
        config = target.config if isinstance(target, ClientTarget) else None
        self.policy = (config.retry if config is not None else None) or RetryPolicy()

    @property
    def path(self) -> str:
        return self.target.object(self.handle.key) + "?session=" + _quote(self.handle.session)

    def _fail(self, error: ObjectstoreError) -> ObjectstoreError:
        error.with_context(**_context(self.target, "put", self.handle.key))
        error.resume_handle = self.handle  # type: ignore[attr-defined]
        return error

    def _advance(self, response: Response) -> None:
        """Take the server's offset; it must lie within ``[previous, total]`` (§14.1)."""
        offset = _offset(response)
        handle = self.handle
        if offset is None or not handle.offset <= offset <= handle.total:
            raise self._fail(
                _protocol_error(
                    f"the server reported upload offset {response.headers.get('upload-offset')!r}"
                    f" outside [{handle.offset}, {handle.total}]",
                    self.target,
                    "put",
                    handle.key,
                )
            )
        self.handle = _with_offset(handle, offset)

    def _chunk_end(self) -> int:
        handle = self.handle
        size = CHUNK_BYTES
        if handle.granularity > 0:
            size = max(handle.granularity, size // handle.granularity * handle.granularity)
        return min(handle.total, handle.offset + size)

    def run(self, probe_first: bool) -> Flow[str]:
        retries = 0
        probing = probe_first
        while True:
            before = self.handle.offset
            if probing:
                headers: tuple[tuple[str, str], ...] = (("upload-offset", "*"),)
                request = Request("PUT", self.path, headers, None, timeout=self.timeout)
                outcome = yield from _attempt(
                    self.target, request, "resumable.probe", attempt=retries + 1
                )
            else:
                end = self._chunk_end()
                body = _body(self.contents, self.kind, before, end, self.replay)
                headers = (("upload-offset", str(before)),)
                request = Request("PUT", self.path, headers, body, timeout=self.timeout)
                outcome = yield from _attempt(
                    self.target, request, "resumable.put", end - before, retries + 1
                )
            if isinstance(outcome, Response) and outcome.status == 201:
                return self.handle.key  # complete and committed
            if isinstance(outcome, Response) and (
                200 <= outcome.status < 300 or outcome.status == 409
            ):
                # 2xx: what is stored so far; 409: our offset was not the server's (§14.1).
                appended = not probing
                self._advance(outcome)
                probing = False
                if self.handle.offset > before:
                    retries = 0  # progress resets the count of consecutive retries
                elif appended:
                    retries += 1
                    if retries >= self.policy.max_attempts:
                        raise self._fail(_stalled(self.target, self.handle))
                continue
            if _transient(outcome) and retries + 1 < self.policy.max_attempts:
                retries += 1
                delay = self.policy.backoff_delay(retries)
                log_retry("put", request.method, request.target, outcome, delay, retries)
                yield Sleep(delay)
                probing = True
                continue
            if isinstance(outcome, Response) and outcome.status in (404, 410):
                _raise_for(outcome, self.target, "put", self.handle.key)  # the session is gone
            if _transient(outcome):
                raise self._fail(_as_error(outcome, self.target, self.handle.key))
            yield from self._cancel()  # a fatal error: the session is of no further use
            raise _as_error(outcome, self.target, self.handle.key)

    def _cancel(self) -> Flow[None]:
        """Best effort: cancelling the session must not hide the error that led to it."""
        request = Request("DELETE", self.path, timeout=self.timeout)
        yield from _attempt(self.target, request, "resumable.cancel")


def _stalled(target: Target, handle: ResumeHandle) -> ObjectstoreError:
    return _protocol_error(
        f"the server did not take the upload beyond offset {handle.offset} of {handle.total}",
        target,
        "put",
        handle.key,
    )


def _as_error(outcome: Response | ObjectstoreError, target: Target, key: str) -> ObjectstoreError:
    if isinstance(outcome, ObjectstoreError):
        return outcome.with_context(**_context(target, "put", key))
    try:
        _raise_for(outcome, target, "put", key)
    except ObjectstoreError as error:
        return error
    raise AssertionError("unreachable")  # pragma: no cover


def _with_offset(handle: ResumeHandle, offset: int) -> ResumeHandle:
    return ResumeHandle(
        handle.usecase,
        handle.scope,
        handle.key,
        handle.session,
        offset,
        handle.total,
        handle.granularity,
        handle.source_size,
        handle.compressed_sha256,
        handle.zstd_workers,
    )


def _quote(value: str) -> str:
    return quote(value, safe="-._~")


def _parse_session(response: Response) -> tuple[str, str, int] | None:
    """``{"key", "session", "granularity"?}`` of a created session, or None if malformed."""
    try:
        parsed = json.loads(response.body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    key, token, granularity = parsed.get("key"), parsed.get("session"), parsed.get("granularity", 0)
    if not isinstance(key, str) or not key or not isinstance(token, str) or not token:
        return None
    if isinstance(granularity, bool) or not isinstance(granularity, int) or granularity < 0:
        return None
    return key, token, granularity


def _measured(contents: Payload) -> Flow[int | None]:
    """The size of ``contents``: bytes by their length, a path or a file as the twin
    measures it (None when it cannot tell without reading)."""
    if isinstance(contents, bytes | bytearray | memoryview):
        return memoryview(contents).nbytes
    measured = yield Measure(contents)
    return measured if isinstance(measured, int) and not isinstance(measured, bool) else None


def _spool(contents: Payload, size: int | None, workers: int | None = None) -> Flow[Spooled]:
    """The payload compressed whole into the driver's temporary file (PROTOCOL §14.1)."""
    upload = Upload(contents, classify_payload(contents), True)
    spooled = yield Spool(upload, size, workers)
    if not isinstance(spooled, Spooled):  # pragma: no cover - driver contract
        raise TypeError(f"driver sent {spooled!r} for a Spool step")
    return spooled


def _spool_replay() -> UploadReplay:
    # The spool is the driver's own file, handed back at position 0: every body
    # read from it counts its offsets from there.
    return UploadReplay(start=0)


def _spooled_body(spooled: Spooled) -> Upload:
    """The spooled compressed bytes as one fixed-length body (a plain fallback, §14.1)."""
    return Upload(spooled.file, PayloadKind.FILE, False, spooled.size, 0, _spool_replay())


def resumable_put_steps(
    target: Target,
    method: str,
    path: str,
    headers: tuple[tuple[str, str], ...],
    contents: Payload,
    threshold: int,
    key: str | None,
    timeout: Timeout | None,
    plain: Callable[[Upload | None], Flow[str]],
    compress: bool = False,
) -> Flow[str]:
    """A put of ``contents``: resumable from ``threshold`` bytes on, else ``plain(None)``
    (the put's own body; also on 501 and on a declined session, §14.1).

    With ``compress`` the threshold applies to the source's size before
    compression; at or over it the payload is spooled compressed first, the
    session is as long as the compressed bytes, and a fallback sends them
    with ``plain(body)`` instead of compressing again.
    """
    size = yield from _measured(contents)
    if size is None or size < threshold:
        return (yield from plain(None))
    spooled: Spooled | None = None
    source: Payload = contents
    replay: UploadReplay | None = None
    total = size
    if compress:
        # PROTOCOL §14.1: compressed into a temporary file first, so the upload length is
        # the compressed size and all offsets refer to compressed bytes.
        spooled = yield from _spool(contents, size)
        source, replay, total = spooled.file, _spool_replay(), spooled.size
    create = Request(
        method,
        path + "?upload_type=resumable",
        (*headers, ("upload-length", str(total))),
        None,
        timeout=timeout,
    )
    outcome = yield from _attempt(target, create, "resumable.create")
    session = None
    if isinstance(outcome, Response) and 200 <= outcome.status < 300:
        session = _parse_session(outcome)
    if session is None:
        # 501, a declined or failed session, a malformed answer: a plain upload of the
        # prepared body, with an explicit content-length when it was spooled (§14.1).
        return (yield from plain(None if spooled is None else _spooled_body(spooled)))
    got_key, token, granularity = session
    usecase, scope = target.usecase.name, str(target.scope)
    if spooled is None:
        handle = ResumeHandle(usecase, scope, got_key, token, 0, total, granularity)
    else:  # what a resume must reproduce before it sends anything
        handle = ResumeHandle(
            usecase,
            scope,
            got_key,
            token,
            0,
            total,
            granularity,
            spooled.source_size,
            spooled.sha256,
            spooled.workers,
        )
    return (yield from _Upload(target, source, handle, timeout, replay).run(probe_first=False))


def resume_upload_flow(
    target: Target, handle: ResumeHandle, contents: Payload, *, timeout: Timeout | None = None
) -> Flow[str]:
    """Continue the upload ``handle`` describes with the same ``contents`` (API §4).

    The server's offset is probed first, so only the missing bytes are sent.
    An upload the client compressed is compressed again first (the same
    way: zstd gives the same bytes for the same input and settings) and
    must match what the handle recorded, before any request.
    """
    if not isinstance(handle, ResumeHandle):
        raise TypeError(f"handle must be a ResumeHandle, got {handle!r:.80}")
    if (handle.usecase, handle.scope) != (target.usecase.name, str(target.scope)):
        raise ValueError(
            f"the upload of {handle.key!r} belongs to usecase {handle.usecase!r} and scope "
            f"{handle.scope!r}, not to this session ({target.usecase.name!r}, {target.scope})"
        )
    if isinstance(contents, str):
        contents = contents.encode("utf-8")
    kind = classify_payload(contents)
    if kind in (PayloadKind.ITERABLE, PayloadKind.ASYNC_ITERABLE):
        raise ValueError(
            f"cannot resume from {type(contents).__name__}: resume_upload needs a source it "
            "can read from an offset (bytes, a path or a seekable file)"
        )
    flow = _resume_steps(target, handle, contents, timeout)
    # The whole resumed upload, with the payload's size (its stored bytes, in whatever
    # encoding the put chose); its requests report storage.resumable.* themselves.
    return metered(target, "resume_upload", flow, size=handle.total)


def _resume_steps(
    target: Target, handle: ResumeHandle, contents: Payload, timeout: Timeout | None
) -> Flow[str]:
    size = yield from _measured(contents)
    if not handle.compressed:
        if size != handle.total:
            raise ValueError(
                f"the source holds {size!r} bytes but the upload of {handle.key!r} is of "
                f"{handle.total}: pass the same source"
            )
        return (yield from _Upload(target, contents, handle, timeout).run(probe_first=True))
    if handle.source_size is not None and size != handle.source_size:
        raise ValueError(
            f"the source holds {size!r} bytes but the upload of {handle.key!r} was "
            f"compressed from {handle.source_size}: pass the same source"
        )
    # PROTOCOL §14.1: offsets count compressed bytes, so the source is compressed again,
    # with the workers the first spool used, and must give exactly the bytes recorded.
    spooled = yield from _spool(contents, size, handle.zstd_workers)
    if spooled.size != handle.total or spooled.sha256 != handle.compressed_sha256:
        raise ValueError(
            f"the source compresses to {spooled.size} bytes (sha256 {spooled.sha256[:16]}...) "
            f"but the upload of {handle.key!r} holds {handle.total} compressed bytes (sha256 "
            f"{(handle.compressed_sha256 or '')[:16]}...): resume_upload needs the same source, "
            "compressed to identical bytes (the same zstd library version and settings)"
        )
    upload = _Upload(target, spooled.file, handle, timeout, _spool_replay())
    return (yield from upload.run(probe_first=True))


def spool_pieces(
    step: Spool,
    chunks: Generator[Buffer, None, None],
    write: Callable[[Buffer], object],
    cpus: int,
) -> SpoolTally:
    """Perform the compressing of a :class:`Spool` step: the payload read as ``chunks``
    (closed at the end, whatever happens), compressed by the step's encoder for the
    twin's ``cpus``, each piece counted, hashed and handed to ``write`` (the twin's
    temporary file). The twin then rewinds its file and sends back
    :meth:`SpoolTally.spooled`."""
    tally = step.tally()
    with contextlib.closing(chunks):
        for piece in tally.compressed(step, chunks, cpus):
            write(piece)
    return tally
