"""Drop-in compatibility: value types, errors and helpers behave like the official ones.

Each case is one expression, evaluated once with the official modules and
once with ours (``side.scope`` is ``objectstore_client.scope`` or
``objectstore_sync.scope``, and so on). Its outcome (the value, or the
name of the exception raised) must be the same on both sides.

``DIFFERENT`` lists the cases where this client behaves otherwise on
purpose, with both outcomes asserted exactly and the reason next to them,
so that a change on either side fails here too.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
import urllib3

from tests.compat.official import OFFICIAL, OURS, PACKAGE, load, outcome

if OFFICIAL is None:  # pragma: no cover
    pytest.skip(
        "the official client (dependency group peer) is not installed", allow_module_level=True
    )

PEM = (Path(__file__).parent.parent / "data" / "ed25519.private.pem").read_text()
DAY = timedelta(days=1)


class Side:
    """One client's modules by their official names: ``side.scope``, ``side.top``, ..."""

    def __init__(self, package: str) -> None:
        self.package = package

    def __getattr__(self, module: str) -> ModuleType:
        return load(self.package, "" if module == "top" else module)


def _roundtrip(value: Any) -> Any:
    return pickle.loads(pickle.dumps(value))


class Recorder:
    """A metrics backend that keeps what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        self.calls.append(("increment", name, value, dict(tags or {})))

    def gauge(self, name: str, value: float, tags: Any = None) -> None:
        self.calls.append(("gauge", name, value, dict(tags or {})))

    def distribution(self, name: str, value: float, tags: Any = None, unit: Any = None) -> None:
        self.calls.append(("distribution", name, value, dict(tags or {}), unit))


def _measured(side: Side, fail: bool) -> list[tuple[Any, ...]]:
    backend = Recorder()
    try:
        with side.metrics.measure_storage_operation(
            backend,
            "put",
            "attachments",
            uncompressed_size=100,
            compressed_size=40,
            compression="zstd",
        ):
            if fail:
                raise KeyError("inside")
    except KeyError:
        pass
    # Timings vary; names, tags, units and the sizes and ratio do not.
    timed = ("latency", "throughput", "inverse_throughput")
    return [(c[1], c[3], c[4]) if c[1].rsplit(".", 1)[1] in timed else c for c in backend.calls]


def _emitted(side: Side) -> list[tuple[Any, ...]]:
    backend = Recorder()
    emitter = side.metrics.StorageMetricEmitter(backend, "get", "attachments")
    emitter.maybe_record_throughputs()  # nothing timed yet: nothing
    emitter.record_latency(2.0)
    emitter.record_uncompressed_size(10)
    emitter.record_compressed_size(5, "zstd")
    emitter.record_size(8)
    emitter.maybe_record_compression_ratio()
    emitter.maybe_record_throughputs()
    return backend.calls


def _claims(side: Side, **kwargs: Any) -> dict[str, Any]:
    key = side.auth.SecretKey("kid", PEM, **kwargs)
    token = key.token_for_scope("attachments", side.scope.Scope(org=42, project=1337))
    claims = jwt.decode(token, options={"verify_signature": False})
    return {name: claims[name] for name in ("res", "permissions")}


def _raise_for(side: Side, status: int, body: bytes, error_type: str | None = None) -> Any:
    response = urllib3.HTTPResponse(body=body, status=status, preload_content=True)
    kwargs = {} if error_type is None else {"error_type": getattr(side.errors, error_type)}
    try:
        side.errors.raise_for_status(response, **kwargs)
    except side.errors.RequestError as error:
        return (type(error).__name__, str(error), error.status, error.response)
    return None


def _guess_from_file(side: Side) -> tuple[Any, ...]:
    stream = io.BytesIO(b"xx%PDF-1.7")
    stream.seek(2)
    found = side.utils.guess_mime_type(stream)
    return (found, stream.tell())


def _reassigned_etag(part: Any) -> str:
    part.etag = "f"
    return str(part.etag)


def _span(side: Side) -> str:
    scope = side.scope.Scope(org=1)
    with side.tracing.storage_span("put", side.client.Usecase("attachments"), scope, key="k") as s:
        return type(s).__name__


PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)
MAGIC = {
    "png": PNG,
    "jpeg": b"\xff\xd8\xff\xe0" + bytes(12),
    "gif": b"GIF89a" + bytes(10),
    "pdf": b"%PDF-1.4 ...",
    "zstd": b"\x28\xb5\x2f\xfd" + bytes(8),
    "gzip": b"\x1f\x8b\x08" + bytes(10),
    "zip": b"PK\x03\x04" + bytes(30),
    "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(8),
    "wav": b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(8),
    "bmp": b"BM" + bytes(30),
    "tar": bytes(257) + b"ustar\x0000" + bytes(300),  # not recognised by either
    "sqlite": b"SQLite format 3\x00" + bytes(84),
    "wasm": b"\x00asm\x01\x00\x00\x00",
    "mp4": b"\x00\x00\x00\x18ftypmp42" + bytes(16),
    "elf": b"\x7fELF\x02\x01\x01" + bytes(60),
    "elf magic only": b"\x7fELF" + bytes(12),
    "ogg": b"OggS" + bytes(40),
    "flac": b"fLaC" + bytes(40),
    "mp3": b"ID3" + bytes(40),
    "matroska": b"\x1a\x45\xdf\xa3" + bytes(40),  # not recognised by either
    "bzip2": b"BZh91AY" + bytes(20),
    "xz": b"\xfd7zXZ\x00" + bytes(20),
    "7z": b"7z\xbc\xaf\x27\x1c" + bytes(20),
    "rar": b"Rar!\x1a\x07\x00" + bytes(20),
    "tiff little-endian": b"II*\x00" + bytes(20),
    "tiff big-endian": b"MM\x00*" + bytes(20),
    "icon": b"\x00\x00\x01\x00" + bytes(20),
    "photoshop": b"8BPS" + bytes(20),
    "heic": b"\x00\x00\x00\x18ftypheic" + bytes(16),
    "m4a": b"\x00\x00\x00\x18ftypM4A " + bytes(16),
    "avi": b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(8),
    "text": b"hello world",
    "json": b'{"a": 1}',
    "empty": b"",
}

CASES: dict[str, Callable[[Side], Any]] = {
    # -- Scope
    "scope str": lambda s: str(s.scope.Scope(org=42, project=1337, app_slug="email_app")),
    "scope empty": lambda s: (str(s.scope.Scope()), s.scope.EMPTY_SCOPES),
    "scope bool and int": lambda s: str(s.scope.Scope(org=True, project=0)),
    "scope dict keeps values": lambda s: s.scope.Scope(org=1, p="x", b=False).dict(),
    "scope None value": lambda s: s.scope.Scope(org=None),
    "scope float value": lambda s: s.scope.Scope(org=1.5),
    "scope bytes value": lambda s: str(s.scope.Scope(org=b"1")),
    "scope empty value": lambda s: s.scope.Scope(org=""),
    "scope bad value": lambda s: s.scope.Scope(org="a b"),
    "scope bad name": lambda s: s.scope.Scope(**{"a b": 1}),
    "scope empty name": lambda s: s.scope.Scope(**{"": 1}),
    "scope allowed chars": lambda s: "".join(sorted(s.scope.SCOPE_VALUE_ALLOWED_CHARS)),
    "scope all allowed chars": lambda s: str(s.scope.Scope(x="Az09_-()$!+'")),
    "scope reflexive": lambda s: (lambda x: (x == x, hash(x) == hash(x)))(s.scope.Scope(org=1)),
    "scope pickles": lambda s: (lambda x: (str(x), x.dict()))(_roundtrip(s.scope.Scope(org=1))),
    "scope equal values": lambda s: s.scope.Scope(org=1) == s.scope.Scope(org=1),
    # -- Usecase
    "usecase name": lambda s: s.client.Usecase("attachments").name,
    "usecase 64 chars": lambda s: s.client.Usecase("a" * 64).name,
    "usecase too short": lambda s: s.client.Usecase("ab"),
    "usecase too long": lambda s: s.client.Usecase("a" * 65),
    "usecase bad chars": lambda s: s.client.Usecase("a b"),
    "usecase not str": lambda s: s.client.Usecase(123),
    "usecase negative threshold": lambda s: s.client.Usecase("abc", resumable_threshold_bytes=-1),
    "usecase threshold none": lambda s: (
        s.client.Usecase("abc", resumable_threshold_bytes="none").name
    ),
    "usecase pickles": lambda s: _roundtrip(s.client.Usecase("attachments")).name,
    "usecase name read-only": lambda s: setattr(s.client.Usecase("abc"), "name", "xyz"),
    "usecase unknown compression": lambda s: s.client.Usecase("abc", compression="gzip").name,
    "usecase bad policy": lambda s: s.client.Usecase("abc", expiration_policy=5).name,
    "usecase equal values": lambda s: s.client.Usecase("abc") == s.client.Usecase("abc"),
    # -- expiration policies
    "ttl repr": lambda s: repr(s.metadata.TimeToLive(DAY)),
    "tti repr": lambda s: repr(s.metadata.TimeToIdle(timedelta(seconds=90))),
    "ttl equality": lambda s: (
        s.metadata.TimeToLive(DAY) == s.metadata.TimeToLive(DAY),
        s.metadata.TimeToLive(DAY) == s.metadata.TimeToIdle(DAY),
    ),
    "ttl delta": lambda s: s.metadata.TimeToLive(DAY).delta,
    "ttl pickles": lambda s: repr(_roundtrip(s.metadata.TimeToIdle(DAY))),
    "ttl match args": lambda s: s.metadata.TimeToLive.__match_args__,
    "ttl hash": lambda s: hash(s.metadata.TimeToLive(DAY)) == hash(s.metadata.TimeToLive(DAY)),
    "ttl negative": lambda s: repr(s.metadata.TimeToLive(timedelta(seconds=-1))),
    "ttl not a timedelta": lambda s: repr(s.metadata.TimeToLive(5)),
    "ttl assignment": lambda s: setattr(s.metadata.TimeToLive(DAY), "delta", DAY),
    # -- Metadata
    "metadata repr": lambda s: repr(
        s.metadata.Metadata("text/plain", "zstd", None, None, None, "10.0.0.1", "a.txt", 5, {})
    ),
    "metadata equality": lambda s: (
        s.metadata.Metadata(*[None] * 8, {"a": "b"}) == s.metadata.Metadata(*[None] * 8, {"a": "b"})
    ),
    "metadata hash": lambda s: hash(s.metadata.Metadata(*[None] * 8, {})),
    "metadata pickles": lambda s: repr(_roundtrip(s.metadata.Metadata(*[None] * 8, {"a": "b"}))),
    "metadata fields": lambda s: [f.name for f in dataclasses.fields(s.metadata.Metadata)],
    "metadata from headers": lambda s: repr(
        s.metadata.Metadata.from_headers(
            {
                "content-type": "text/plain",
                "content-encoding": "zstd",
                "x-sn-expiration": "ttl:1d",
                "x-sn-time-created": "2026-01-02T03:04:05.000006Z",
                "x-sn-origin": "10.0.0.1",
                "x-sn-filename": "caf%C3%A9.txt",
                "x-sn-size": "12",
                "x-snme-note": "hello",
            }
        )
    ),
    # -- Permission
    "permission values": lambda s: [str(p) for p in s.auth.Permission],
    "permission max": lambda s: [p.value for p in s.auth.Permission.max()],
    "permission from value": lambda s: s.auth.Permission("object.read").name,
    "permission unknown": lambda s: s.auth.Permission("object.list"),
    "permission is a str": lambda s: s.auth.Permission.OBJECT_WRITE == "object.write",
    "permission pickles": lambda s: _roundtrip(s.auth.Permission.OBJECT_DELETE).value,
    # -- CompletePart, PartInfo
    "complete part repr": lambda s: repr(s.multipart.CompletePart(1, "etag")),
    "complete part equality": lambda s: (
        s.multipart.CompletePart(1, "e") == s.multipart.CompletePart(part_number=1, etag="e")
    ),
    "complete part hash": lambda s: hash(s.multipart.CompletePart(1, "e")),
    "complete part pickles": lambda s: repr(_roundtrip(s.multipart.CompletePart(2, "e"))),
    "complete part unchecked": lambda s: repr(s.multipart.CompletePart("x", 5)),
    "complete part mutable": lambda s: _reassigned_etag(s.multipart.CompletePart(1, "e")),
    "part info repr": lambda s: repr(
        s.multipart.PartInfo(1, "e", datetime(2026, 1, 2, tzinfo=UTC), 5)
    ),
    "part info pickles": lambda s: repr(
        _roundtrip(s.multipart.PartInfo(1, "e", datetime(2026, 1, 2, tzinfo=UTC), 5))
    ),
    "part info match args": lambda s: s.multipart.PartInfo.__match_args__,
    # -- errors
    "request error": lambda s: (lambda e: (str(e), e.args, e.status, e.response))(
        s.errors.RequestError("boom", 500, "body")
    ),
    "request error keywords": lambda s: (lambda e: (str(e), e.status, e.response))(
        s.errors.RequestError(message="m", status=None, response=None)
    ),
    "request error tree": lambda s: [
        issubclass(c, s.errors.RequestError)
        for c in (
            s.errors.ObjectNotFound,
            s.errors.ExpiryExtensionRejected,
            s.multipart.MultipartCompleteError,
        )
    ],
    "request errors are exceptions": lambda s: issubclass(s.errors.RequestError, Exception),
    "not found": lambda s: (lambda e: (str(e), e.status))(s.errors.ObjectNotFound("m", 404, "")),
    "multipart complete error": lambda s: (
        lambda e: (str(e), e.args, e.status, e.response, e.code)
    )(s.multipart.MultipartCompleteError(code="InvalidPart", message="part 2 is missing")),
    "multipart complete error positional": lambda s: (lambda e: (e.code, e.response))(
        s.multipart.MultipartCompleteError("a", "b")
    ),
    "request error pickles": lambda s: str(_roundtrip(s.errors.RequestError("m", 400, "b"))),
    "multipart error pickles": lambda s: str(
        _roundtrip(s.multipart.MultipartCompleteError("a", "b"))
    ),
    # -- SecretKey
    "key attributes": lambda s: (
        lambda k: (k.kid, k.expiry_seconds, [str(p) for p in k.permissions])
    )(s.auth.SecretKey("kid", PEM)),
    "key permissions": lambda s: [
        str(p) for p in s.auth.SecretKey("kid", PEM, permissions=["object.read"]).permissions
    ],
    "key token claims": lambda s: _claims(s),
    "key token claims narrowed": lambda s: _claims(s, permissions=[s.auth.Permission.OBJECT_READ]),
    "key signature": lambda s: s.auth.SecretKey("kid", PEM).signature_for_canonical_form(
        "GET\n/v1/objects/attachments/org=1/k\nos_kid=kid"
    ),
    "token provider": lambda s: s.auth.TokenProvider.__args__[1],
    "key invalid pem": lambda s: s.auth.SecretKey("kid", "not a pem").kid,
    "key pickles": lambda s: _roundtrip(s.auth.SecretKey("kid", PEM)).kid,
    # -- GetResponse
    "get response tuple": lambda s: tuple(s.client.GetResponse("m", "p")),
    "get response fields": lambda s: (lambda r: (r.metadata, r.payload, r[0], len(r)))(
        s.client.GetResponse(metadata="m", payload="p")
    ),
    # -- utils
    "encode path": lambda s: [
        s.utils.encode_path(p) for p in ("a b/c", "100%", "q?x#y", "ça/日本", "+:@!$&'()*,;=")
    ],
    "encode query": lambda s: [s.utils.encode_query(q) for q in ("a=b&c=d e", "x?y", "ü")],
    "encode header value": lambda s: [
        s.utils.encode_header_value(v) for v in ("café", "a\r\nb", "100%", "plain ascii")
    ],
    "decode header value": lambda s: [
        s.utils.decode_header_value(v) for v in ("caf%C3%A9", "100%", "%zz", "%0D%0A", "x")
    ],
    "accept encoding": lambda s: [
        s.utils.parse_accept_encoding(h)
        for h in ("zstd", "zstd, gzip;q=0.5", "*", "", "gzip;q=0, zstd;q=1", " ZSTD ")
    ],
    "guess mime type": lambda s: {
        name: s.utils.guess_mime_type(data) for name, data in MAGIC.items()
    },
    "guess mime type of a file": _guess_from_file,
    "guess mime type of text": lambda s: s.utils.guess_mime_type("text"),
    # -- metadata helpers
    "format timedelta": lambda s: [
        s.metadata.format_timedelta(d)
        for d in (
            timedelta(0),
            timedelta(seconds=1),
            30 * DAY,
            timedelta(days=1, seconds=3723),
            timedelta(seconds=1.5),
            400 * DAY,
        )
    ],
    "parse timedelta": lambda s: [
        s.metadata.parse_timedelta(t) for t in ("1d", "5s", "1h", "2m", "1d 2h 3m 4s", "0s")
    ],
    "parse timedelta weeks": lambda s: s.metadata.parse_timedelta("2w"),
    "parse timedelta not a duration": lambda s: s.metadata.parse_timedelta("abc"),
    "parse timedelta humantime": lambda s: s.metadata.parse_timedelta("30days"),
    "format expiration": lambda s: [
        s.metadata.format_expiration(p)
        for p in (
            s.metadata.TimeToLive(DAY),
            s.metadata.TimeToIdle(timedelta(seconds=90)),
            s.metadata.TimeToLive(timedelta(0)),
        )
    ],
    "format expiration none": lambda s: s.metadata.format_expiration(None),
    "parse expiration": lambda s: [
        repr(s.metadata.parse_expiration(v)) for v in ("manual", "ttl:1d", "tti:1h 30m")
    ],
    "parse expiration unknown": lambda s: s.metadata.parse_expiration("bogus"),
    "parse expiration empty duration": lambda s: repr(s.metadata.parse_expiration("ttl:")),
    "time split": lambda s: s.metadata.TIME_SPLIT.findall("1d 2h 30m5s"),
    "batched": lambda s: list(s.metadata.itertools_batched("abcde", 2)),
    "batched strict": lambda s: list(s.metadata.itertools_batched("abcde", 2, strict=True)),
    "batched zero": lambda s: list(s.metadata.itertools_batched("abc", 0)),
    # -- presign
    "canonical form": lambda s: [
        s.presign.build_canonical_form(m, "/v1/objects/u/org=1/k", q)
        for m, q in (("GET", "os_kid=a&OS_Duration=60&os_sig=x"), ("HEAD", ""), ("get", "b&a=1"))
    ],
    # -- errors.raise_for_status
    "raise for status ok": lambda s: [_raise_for(s, code, b"") for code in (200, 204, 301)],
    "raise for status error": lambda s: [
        _raise_for(s, code, b'{"detail":"x"}') for code in (400, 403, 404, 500)
    ],
    "raise for status error type": lambda s: _raise_for(s, 500, b"oops", "ObjectNotFound"),
    # -- metrics
    "noop backend": lambda s: (
        s.metrics.NoOpMetricsBackend().increment("x"),
        s.metrics.NoOpMetricsBackend().gauge("x", 1),
        s.metrics.NoOpMetricsBackend().distribution("x", 1, unit="byte"),
    ),
    "backend protocol": lambda s: [
        isinstance(b, s.metrics.MetricsBackend)
        for b in (s.metrics.NoOpMetricsBackend(), Recorder(), object())
    ],
    "measure operation": lambda s: _measured(s, fail=False),
    "measure failing operation": lambda s: _measured(s, fail=True),
    "metric emitter": _emitted,
    # -- tracing
    "storage span without sentry set up": _span,
}

OFFICIAL_SIDE = Side(PACKAGE)
OUR_SIDE = Side(OURS)

# case -> (official outcome, our outcome). Each is a choice this client makes on purpose.
DIFFERENT: dict[str, tuple[tuple[str, Any], tuple[str, Any]]] = {
    # Scopes and usecases are values: equal when they name the same thing (the official
    # ones compare by identity).
    "scope equal values": (("ok", False), ("ok", True)),
    "usecase equal values": (("ok", False), ("ok", True)),
    # Invalid input fails when the value is built, before any request (API §0.4); the
    # official client accepts these and fails later or sends them.
    "usecase unknown compression": (("ok", "abc"), ("raises", "ValueError")),
    "usecase bad policy": (("ok", "abc"), ("raises", "TypeError")),
    "ttl negative": (
        ("ok", "TimeToLive(delta=datetime.timedelta(days=-1, seconds=86399))"),
        ("raises", "ValueError"),
    ),
    "ttl not a timedelta": (("ok", "TimeToLive(delta=5)"), ("raises", "TypeError")),
    "key invalid pem": (("ok", "kid"), ("raises", "ValueError")),
    "parse expiration unknown": (("ok", None), ("raises", "ValueError")),
    "parse expiration empty duration": (
        ("ok", "TimeToLive(delta=datetime.timedelta(0))"),
        ("raises", "ValueError"),
    ),
    # Policies are frozen (hashable, usable as dict keys; DESIGN: values are frozen).
    "ttl hash": (("raises", "TypeError"), ("ok", True)),
    "ttl assignment": (("ok", None), ("raises", "AttributeError")),
    # Errors cross process boundaries (the official ones cannot be unpickled).
    "request error pickles": (("raises", "TypeError"), ("ok", "m")),
    "multipart error pickles": (
        ("raises", "TypeError"),
        ("ok", "Multipart upload completion failed (a): b"),
    ),
    # A key is never pickled: that would write the private key out (API §5).
    "key pickles": (("ok", "kid"), ("raises", "TypeError")),
    # Reading durations also accepts the reference server's humantime (API §2).
    "parse timedelta humantime": (("raises", "ValueError"), ("ok", 30 * DAY)),
    "parse timedelta weeks": (("raises", "ValueError"), ("ok", 14 * DAY)),
    # Bytes are not scope text: the official client would send "org=b'1'".
    "scope bytes value": (("ok", "org=b'1'"), ("raises", "ValueError")),
    # None is "manual" on the wire (PROTOCOL §4.3); the official returns None.
    "format expiration none": (("ok", None), ("ok", "manual")),
    # A str is neither bytes nor a file: ours says so with a TypeError.
    "guess mime type of text": (("raises", "AttributeError"), ("raises", "TypeError")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_behaves_like_the_official_client(name: str) -> None:
    theirs = outcome(CASES[name], OFFICIAL_SIDE)
    ours = outcome(CASES[name], OUR_SIDE)
    if name in DIFFERENT:
        assert (theirs, ours) == DIFFERENT[name]
    else:
        assert ours == theirs


def test_differences_are_cases() -> None:
    assert set(DIFFERENT) <= set(CASES)
