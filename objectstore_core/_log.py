"""Log lines of the ``objectstore`` logger, decided and written once for both twins.

Two kinds of line, from the flows (the one place every request passes):

- DEBUG, one per HTTP request: method, path, status (or the class of the
  error the attempt failed with), duration, bytes sent and received, and the
  attempt number (shown here on two lines)::

      PUT /v1/objects/attachments/org=42/doc -> 201 in 1.3 ms, sent 43 bytes,
      received 14 bytes, attempt 1

- INFO, one per retry: the operation, its request, why (the status, or the
  error's class) and the wait before the next attempt (on two lines here)::

      retrying put (PUT /v1/objects/attachments/org=42/doc) after status 503:
      waiting 0.050 s before attempt 2

No line holds a header value, a token, an error message or the query of a
pre-signed URL (:func:`redact_target`).

The core does not import :mod:`logging` (it loads ``threading``, which the
core must not load). Each twin hands the core its ``logging.getLogger("objectstore")``
at import (:func:`use_logger`), as it hands over its wall clock; the flows
call it through the small :class:`Logger` protocol. With DEBUG disabled, a
request costs one ``isEnabledFor`` check (:func:`debug_logger`) and nothing
else: no :class:`Clock` step, no record, no formatting. The durations come
from :class:`Clock` steps, i.e. from the driver's monotonic clock.
"""

from __future__ import annotations

from typing import Final, Protocol

from objectstore_core._errors import ObjectstoreError
from objectstore_core._http import (
    Flow,
    Request,
    Response,
    SendRequest,
    Upload,
    read_clock,
    send_once,
    upload_size,
)

__all__ = [
    "DEBUG",
    "INFO",
    "LOGGER_NAME",
    "Logger",
    "RequestRecord",
    "debug_logger",
    "log_request",
    "log_retry",
    "logged_attempt",
    "redact_target",
    "retry_reason",
    "use_logger",
]

LOGGER_NAME: Final = "objectstore"
"""The name of the logger both twins hand the core."""

DEBUG: Final = 10  # logging.DEBUG
INFO: Final = 20  # logging.INFO

REQUEST_LINE: Final = "%s %s -> %s in %.1f ms, sent %s, received %s, attempt %d"
RETRY_LINE: Final = "retrying %s (%s %s) after %s: waiting %.3f s before attempt %d"


class Logger(Protocol):
    """What the core needs of a :class:`logging.Logger`."""

    def isEnabledFor(self, level: int) -> bool: ...

    def log(self, level: int, msg: object, *args: object) -> None: ...


_logger: Logger | None = None


def use_logger(logger: Logger) -> None:
    """Give the core the logger its lines go to; each twin calls it at import."""
    global _logger
    _logger = logger


def debug_logger() -> Logger | None:
    """The logger when it records DEBUG lines, else None: the one check per request."""
    logger = _logger
    if logger is not None and logger.isEnabledFor(DEBUG):
        return logger
    return None


def redact_target(target: str) -> str:
    """The request target as it may be logged: a pre-signed query is never shown.

    A query holding a pre-signed URL's parameters (``os_kid``, ``os_exp``,
    ``os_sig``, any ``os_`` name) is replaced as a whole by ``?[redacted]``;
    the ``session`` of a resumable upload shows as ``session=[redacted]``;
    other queries (a multipart upload's id and part number) are kept.
    """
    path, mark, query = target.partition("?")
    if not mark:
        return target
    items = query.split("&")
    names = [item.partition("=")[0].lower() for item in items]
    if any(name.startswith(("os_", "os%5f")) for name in names):
        return f"{path}?[redacted]"
    if "session" not in names:
        return target
    # A resumable upload's session id lets its holder append to the upload: not shown.
    kept = [
        "session=[redacted]" if name == "session" else item
        for name, item in zip(names, items, strict=True)
    ]
    return f"{path}?{'&'.join(kept)}"


def _sent(request: Request) -> str:
    body = request.body
    if body is None:
        return "0 bytes"
    if isinstance(body, Upload):
        size = body.length if body.length is not None else None
        if size is None and not body.compress:
            size = upload_size(body)
        return "a streamed body" if size is None else f"{size} bytes"
    return f"{len(body)} bytes"


def _received(request: Request, outcome: Response | ObjectstoreError) -> str:
    if not isinstance(outcome, Response):
        return "no response"
    if _streamed(request, outcome):
        # The body is left open for the caller: what the server announced.
        announced = outcome.headers.get("content-length")
        if announced is not None and announced.strip().isdigit():
            return f"{int(announced)} bytes (streamed)"
        return "a streamed body"
    return f"{len(outcome.body)} bytes"


def log_request(
    logger: Logger,
    request: Request,
    outcome: Response | ObjectstoreError,
    seconds: float,
    attempt: int,
) -> None:
    """Write the DEBUG line of one request (``seconds``: from sending to the response)."""
    status: object = outcome.status if isinstance(outcome, Response) else type(outcome).__name__
    logger.log(
        DEBUG,
        REQUEST_LINE,
        request.method,
        redact_target(request.target),
        status,
        max(seconds, 0.0) * 1000.0,
        _sent(request),
        _received(request, outcome),
        attempt,
    )


def retry_reason(outcome: object) -> str:
    """Why an attempt is repeated: ``status 503``, or the error's class (``ReadError``)."""
    if isinstance(outcome, Response):
        return f"status {outcome.status}"
    if outcome is None:
        return "failed parts"
    status = getattr(outcome, "status", None)  # a RequestError (a failed batch request)
    return f"status {status}" if isinstance(status, int) else type(outcome).__name__


def log_retry(
    operation: str,
    method: str,
    target: str,
    outcome: object,
    delay: float,
    attempt: int,
) -> None:
    """Write the INFO line of a retry: attempt ``attempt`` failed, the next follows ``delay``."""
    logger = _logger
    if logger is None or not logger.isEnabledFor(INFO):
        return
    logger.log(
        INFO,
        RETRY_LINE,
        operation,
        method,
        redact_target(target),
        retry_reason(outcome),
        delay,
        attempt + 1,
    )


class RequestRecord:
    """The DEBUG line of a request whose body streams to the caller, until it ends.

    A get's body is read after its flow returned: the line is written by
    :meth:`finish`, which the body's :class:`~objectstore_core.Download`
    calls when it is settled (read to its end, failed, or closed), with the
    raw bytes received and the twin's monotonic time.
    """

    __slots__ = ("attempt", "logger", "request", "start", "status")

    def __init__(
        self, logger: Logger, request: Request, status: int, start: float, attempt: int
    ) -> None:
        self.logger = logger
        self.request = request
        self.status = status
        self.start = start
        self.attempt = attempt

    def finish(self, now: float, received: int, outcome: str | None = None) -> None:
        """Write the line: ``received`` raw body bytes, ``outcome`` if it did not end well."""
        request = self.request
        text = f"{received} bytes" if outcome is None else f"{received} bytes ({outcome})"
        self.logger.log(
            DEBUG,
            REQUEST_LINE,
            request.method,
            redact_target(request.target),
            self.status,
            max(now - self.start, 0.0) * 1000.0,
            _sent(request),
            text,
            self.attempt,
        )


def logged_attempt(
    step: SendRequest,
    logger: Logger,
    attempt: int,
    deferred: list[RequestRecord] | None = None,
) -> Flow[Response | ObjectstoreError]:
    """Perform ``step`` between two :class:`Clock` steps and log it; return what came back.

    A transport failure the driver throws in is returned, not raised: the
    caller decides on retries as it does without logging. With ``deferred``,
    a body left open for the caller is not logged yet: its
    :class:`RequestRecord` is appended there, to be finished when the body ends.
    """
    start = yield from read_clock()
    outcome = yield from send_once(step)
    if deferred is not None and _streamed(step.request, outcome):
        assert isinstance(outcome, Response)
        deferred.append(RequestRecord(logger, step.request, outcome.status, start, attempt))
        return outcome
    end = yield from read_clock()
    log_request(logger, step.request, outcome, end - start, attempt)
    return outcome


def _streamed(request: Request, outcome: Response | ObjectstoreError) -> bool:
    """Whether the transport left ``outcome``'s body open for the caller (see Request)."""
    return (
        request.stream
        and isinstance(outcome, Response)
        and not outcome.body
        and 200 <= outcome.status < 300
    )
