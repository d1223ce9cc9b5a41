"""What a batch gives back (API §3): per-operation results, their collection, the error.

Shared by both twins. :class:`BatchError` is at once an
:class:`ObjectstoreError` (``except ObjectstoreError`` catches it) and an
:class:`ExceptionGroup` of the failed operations' errors, so ``except*``
picks out, say, the :class:`Forbidden` ones::

    try:
        results.raise_for_failures()
    except* Forbidden as denied:
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, overload

from objectstore_core._codec import ZstdContexts, decode_frame
from objectstore_core._download import DEFAULT_CHUNK, Download
from objectstore_core._errors import ObjectstoreError
from objectstore_core._metadata import Metadata
from objectstore_core._values import quick_setters

__all__ = [
    "HELD_SLOTS",
    "SPENT",
    "UNREAD",
    "BatchError",
    "BatchResult",
    "BatchResults",
    "FetchedObject",
    "Fetcher",
    "HeldBody",
    "LazyDownload",
    "OperationKind",
    "held_responses",
    "new_result",
    "operation_context",
    "read_held",
]

OperationKind = Literal["put", "get", "head", "delete"]

Fetcher = Callable[["Metadata", bytes, bool, Any, int, "str | None"], Any]
"""What a batch get's found object becomes (its result's ``value``): called with its
metadata, its stored bytes, whether they are to be decoded, and what its error
context is made of if an error needs it: the batch's target (opaque here), the
operation's index and the key (see :class:`LazyDownload`)."""


@dataclass(frozen=True, slots=True)
class FetchedObject:
    """A found object of a batch get: its metadata and stored bytes, not yet decoded.

    The twins hand it out as their ``GetResponse`` (decoding on read when ``decode``).
    """

    metadata: Metadata
    body: bytes
    decode: bool
    context: Mapping[str, str | None]

    def download(self, contexts: ZstdContexts | None = None) -> Download:
        """The state that checks and decodes :attr:`body` as the caller reads it.

        Built on the first read: a batch may hand out thousands of objects at
        once, and a decoder holds a zstd context while it lives.
        """
        return LazyDownload(self.body, self.decode, contexts, context=self.context)


class LazyDownload(Download):
    """A :class:`Download` of a body in hand that sets itself up when first used.

    A read of the whole body first tries it at once: an uncompressed body is
    handed out as it is, a compressed one that is one frame of a declared
    size is decoded in one call. Anything else (reads in pieces, several
    frames, an undeclared size) goes through a real :class:`Download`, fed
    the whole body when it is made: the twin's stream under it holds nothing.
    A batch's objects record no per-get metrics: their exchange is the batch's.

    ``context`` is the error context of the operation; without it, ``resolve``
    makes it from ``target``, ``index`` and ``key`` when an error first needs
    it. Nothing else is kept: a batch may hold thousands of these, each one
    more object for the garbage collector to visit.
    """

    __slots__ = (
        "_body",
        "_ctx",
        "_decodes",
        "_index",
        "_key",
        "_made",
        "_resolve",
        "_spent",
        "_target",
        "_zstd",
    )

    def __init__(
        self,
        body: bytes,
        decode: bool,
        contexts: ZstdContexts | None,
        *,
        context: Mapping[str, str | None] | None = None,
        resolve: Callable[[Any, int, str | None], Mapping[str, str | None]] | None = None,
        target: Any = None,
        index: int = 0,
        key: str | None = None,
    ) -> None:
        # Deliberately not Download.__init__: that happens in _real(), on first use.
        self._body = body
        self._decodes = decode
        self._ctx = context
        self._resolve = resolve
        self._target = target
        self._index = index
        self._key = key
        self._zstd = contexts
        self._made: Download | None = None
        self._spent = False  # the whole payload was handed out by the shortcut
        self.meter = None
        self.log = None
        self.unsettled = False

    def _error_context(self) -> Mapping[str, str | None]:
        if self._ctx is None:
            if self._resolve is None:  # pragma: no cover - one of the two is always given
                raise RuntimeError("LazyDownload has neither a context nor a way to make one")
            self._ctx = self._resolve(self._target, self._index, self._key)
        return self._ctx

    def _real(self) -> Download:
        if self._made is None:
            made = self._made = Download(
                decode=self._decodes,
                expected_length=len(self._body),
                context=self._error_context(),
                contexts=self._zstd,
            )
            made.feed(self._body, last=True)
        return self._made

    @property
    def received(self) -> int:
        return len(self._body) if self._spent else self._real().received

    @property
    def piece(self) -> int:
        return self._real().piece

    @property
    def expected_length(self) -> int | None:
        return len(self._body)

    @property
    def finished(self) -> bool:
        return self._spent or (self._made is not None and self._made.finished)

    def annotate(self, error: ObjectstoreError) -> ObjectstoreError:
        return error.with_context(**self._error_context())

    def feed(self, raw: bytes | bytearray | memoryview, *, last: bool = False) -> None:
        if self._spent:
            raise RuntimeError("feed() after the end of the body was declared")
        self._real().feed(raw, last=last)

    def read(self, limit: int | None = None, **options: bool) -> bytes | None:
        if self._spent:
            return b""
        if self._made is None and limit is None and options.get("whole"):
            body = self._body
            # On an error nothing changes: a later read repeats it through _real().
            out = decode_frame(body, DEFAULT_CHUNK, self._zstd) if self._decodes else body
            if out is not None:
                self._spent = True
                return out
        return self._real().read(limit, **options)


def operation_context(target: Any, index: int, key: str | None) -> dict[str, str | None]:
    """The error context of batch get ``index`` of ``key`` (a :class:`Target`'s), from
    what the flow handed a fetcher (as the flow's own context is made)."""
    return {
        "operation": f"batch get #{index}",
        "usecase": target.usecase.name,
        "scope": str(target.scope),
        "key": key,
    }


HELD_SLOTS = ("_body", "_decodes", "_index", "_key", "_target", "_zstd")
"""The slots a :class:`HeldBody` payload class declares (its twin's payload has slots)."""


class HeldBody:
    """What a twin's batch payload adds to its payload: the object's stored bytes, held.

    A whole read hands them out at once (decoded: see :func:`read_held`),
    which is what most reads of a batch's objects are; anything else first
    makes the :class:`LazyDownload` the payload then reads through. Until
    then the payload is the only object under its response: a batch hands
    out thousands, each one more for the garbage collector to visit.

    A mixin put before the twin's payload class, whose subclass declares
    :data:`HELD_SLOTS` (so the attributes below live in slots); the payload
    starts with :data:`UNREAD` as its download.
    """

    _body: bytes
    _decodes: bool
    _zstd: ZstdContexts | None
    _target: Any
    _index: int
    _key: str | None
    _download: Download

    _IN_HAND: Any  # the twin's empty raw body under the payload (see BodyInHand)

    def __init__(
        self,
        body: bytes,
        decode: bool,
        contexts: ZstdContexts | None,
        target: Any,
        index: int,
        key: str | None,
    ) -> None:
        cast(Any, super()).__init__(self._IN_HAND, UNREAD)  # the twin's payload
        self._body = body
        self._decodes = decode
        self._zstd = contexts
        self._target = target
        self._index = index
        self._key = key

    def _from_hand(self, whole: bool) -> bytes | None:
        """Before each pull: the whole payload at once when that is asked first and suffices.

        Otherwise None, and the payload then reads through a real download,
        made here when first needed (a read in pieces, or after a whole read
        failed).
        """
        download = self._download
        if download is not UNREAD:
            return None
        if whole and not cast(Any, self).closed:  # the payload's: a closed one's pull raises
            out = read_held(self._body, self._decodes, self._zstd)
            if out is not None:
                self._download = SPENT
                self._body = b""  # handed out: not held twice
                return out
        self._download = LazyDownload(
            self._body,
            self._decodes,
            self._zstd,
            resolve=operation_context,
            target=self._target,
            index=self._index,
            key=self._key,
        )
        return None


def held_responses(
    response: type[tuple[Any, ...]], payload: Callable[..., Any]
) -> Callable[[ZstdContexts | None, Metadata, bytes, bool, Any, int, str | None], Any]:
    """What a twin's batch makes of a found object (its ``_held``): a ``response``
    named tuple of the metadata and ``payload(body, decode, contexts, target, index,
    key)``, a :class:`HeldBody` payload. The tuple is built without the named tuple's
    ``__new__``, a Python function of its own, once per batched get."""
    new_tuple = tuple.__new__

    def held(
        contexts: ZstdContexts | None,
        metadata: Metadata,
        body: bytes,
        decode: bool,
        target: Any,
        index: int,
        key: str | None,
    ) -> Any:
        return new_tuple(response, (metadata, payload(body, decode, contexts, target, index, key)))

    return held


def read_held(body: bytes, decode: bool, contexts: ZstdContexts | None) -> bytes | None:
    """The whole payload of stored bytes in hand, in one step, as a :class:`LazyDownload`
    of them hands it out; None when that takes more (or fails: the LazyDownload,
    made then, reports it).

    For a twin's batch payload, which holds the bytes itself until a read
    needs more than this: what most reads are, so most payloads never make
    their LazyDownload.
    """
    if not decode:
        return body
    try:
        return decode_frame(body, DEFAULT_CHUNK, contexts)
    except ObjectstoreError:
        return None


def _spent() -> LazyDownload:
    download = LazyDownload(b"", False, None, context={})
    download._spent = True  # as after its one whole read
    return download


UNREAD: Download = LazyDownload(b"", False, None, context={})
"""What a twin's batch payload holds as its download before it makes one (never read)."""

SPENT: Download = _spent()
"""What a twin's batch payload holds as its download once :func:`read_held` handed out
its payload: finished, and every read gives ``b""``."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of one operation of a batch (API §3).

    ``index``: its position in submission order; ``kind``: ``put``, ``get``,
    ``head`` or ``delete``; ``key``: the object's key (for a keyless put, the
    key the server generated, once known). ``value``: the key for a put, a
    ``GetResponse`` (or None if missing) for a get, :class:`Metadata` (or None)
    for a head, None for a delete. ``error``: the :class:`ObjectstoreError`
    of a failed operation, naming its operation, index and key.
    """

    index: int
    kind: OperationKind
    key: str | None
    value: Any = None
    error: ObjectstoreError | None = None

    @property
    def ok(self) -> bool:
        """True when the operation succeeded (a missing get/head is a success)."""
        return self.error is None


_new = object.__new__
_set_index, _set_kind, _set_key, _set_value, _set_error = quick_setters(
    BatchResult, "index", "kind", "key", "value", "error"
)


def new_result(
    index: int, kind: OperationKind, key: str | None, value: Any, error: ObjectstoreError | None
) -> BatchResult:
    """``BatchResult(index, kind, key, value, error)`` without the frozen dataclass's
    ``__init__`` (one per operation: this costs half as much)."""
    result: BatchResult = _new(BatchResult)
    _set_index(result, index)
    _set_kind(result, kind)
    _set_key(result, key)
    _set_value(result, value)
    _set_error(result, error)
    return result


class BatchError(ObjectstoreError, ExceptionGroup[Exception]):
    """Some operations of a batch failed: an ObjectstoreError and an ExceptionGroup.

    ``exceptions`` holds each failed operation's error (its ``operation``
    names the kind and index, e.g. ``batch put #3``, and ``key`` the key);
    ``results`` the failed :class:`BatchResult` values, in submission order.
    """

    results: tuple[BatchResult, ...] = ()

    def __new__(cls, message: str, exceptions: Sequence[Exception]) -> BatchError:
        return super().__new__(cls, message, exceptions)

    def __init__(self, message: str, exceptions: Sequence[Exception]) -> None:
        super().__init__(message, exceptions)

    def derive(self, excs: Sequence[Exception]) -> BatchError:  # type: ignore[override]
        """The group ``except*`` hands out: the same type, with a subset of the errors."""
        derived = BatchError(self.message, excs)
        derived.results = tuple(r for r in self.results if r.error in excs)
        return derived


class BatchResults(Sequence[BatchResult]):
    """The results of :meth:`Batch.send`, one per operation, in submission order."""

    __slots__ = ("_results",)

    def __init__(self, results: Sequence[BatchResult]) -> None:
        self._results = tuple(results)

    @overload
    def __getitem__(self, index: int) -> BatchResult: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[BatchResult]: ...
    def __getitem__(self, index: int | slice) -> BatchResult | Sequence[BatchResult]:
        return self._results[index]

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[BatchResult]:
        return iter(self._results)

    @property
    def failures(self) -> tuple[BatchResult, ...]:
        """The results whose operation failed."""
        return tuple(r for r in self._results if r.error is not None)

    @property
    def ok(self) -> bool:
        """True when every operation succeeded."""
        return all(r.error is None for r in self._results)

    def raise_for_failures(self) -> None:
        """Raise one :class:`BatchError` grouping every failed operation's error, if any."""
        failed = self.failures
        if not failed:
            return
        errors = [r.error for r in failed if r.error is not None]
        error = BatchError(f"{len(failed)} of {len(self._results)} batch operations failed", errors)
        error.results = failed
        raise error

    def __repr__(self) -> str:
        return f"BatchResults({len(self._results)} results, {len(self.failures)} failed)"
