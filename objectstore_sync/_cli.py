"""The ``objectstore`` command (API §8).

``objectstore serve`` runs the emulator. ``put``, ``get``, ``head`` and ``rm``
talk to ``--url`` or ``$OBJECTSTORE_URL``; with neither they start an embedded
emulator over ``--data-dir`` (default ``./.objectstore``) for the duration of
the command, so they work on a machine with no server at all.

Credentials come from ``$OBJECTSTORE_TOKEN`` (a pre-made token) or
``$OBJECTSTORE_KEY_ID`` with ``$OBJECTSTORE_KEY_FILE`` (an Ed25519 private key
PEM). ``token`` mints a token with that key; ``url`` and ``presign`` print
object URLs and need ``--url`` or ``$OBJECTSTORE_URL``: a URL of the embedded
emulator would be dead as soon as the command exits.

It behaves like a Unix tool: only results on standard output, one-line errors
on standard error, exit statuses 0/1/2 (141 for a closed pipe, 130 for Ctrl-C),
control characters from the server escaped, files created under the umask.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import mimetypes
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from objectstore_core import (
    BatchResults,
    Metadata,
    ObjectNotFound,
    ObjectstoreError,
    Permission,
    RequestError,
    Scope,
    SecretKey,
    TimeToIdle,
    TimeToLive,
    Usecase,
    format_expiration,
    parse_duration,
    token_from_env,
)
from objectstore_core._paths import split_base_url
from objectstore_core._transfer import DEFAULT_PART_SIZE
from objectstore_core.emulator import parse_permission
from objectstore_sync._client import Client, Session
from objectstore_sync._progress import progress_for
from objectstore_sync._response import GetResponse
from objectstore_sync.emulator import parse_auth_key_option

__all__ = ["main"]

DEFAULT_DATA_DIR = ".objectstore"
DEFAULT_USECASE = "default"
# Commands that only read (or delete) never create the embedded store's directory.
_READ_COMMANDS = frozenset({"get", "head", "rm"})
_CREDENTIALS_HINT = (
    "set $OBJECTSTORE_TOKEN to a token, or $OBJECTSTORE_KEY_ID and $OBJECTSTORE_KEY_FILE "
    "(an Ed25519 private key PEM) to sign one"
)
_MAX_PRESIGN_SECONDS = 7 * 86_400  # a pre-signed URL lives at most 7 days


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("objectstore")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


# C0 controls, DEL and C1 controls, which a terminal may act on instead of showing,
# and the bidirectional overrides and isolates, which make it show text out of order.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# The part of that set json.dumps leaves as it is (it escapes C0 controls itself).
_JSON_UNESCAPED_RE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``): a server cannot drive the terminal."""
    return _CONTROL_RE.sub(lambda m: _escape(m.group()), text)


def _printable_json(value: Any) -> str:
    """``value`` as indented JSON, non-ASCII text kept but every control character escaped."""
    # Escaped as JSON \\u escapes, so the output still parses to the same value.
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _JSON_UNESCAPED_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _error(message: str) -> None:
    print(f"objectstore: {_printable(message)}", file=sys.stderr)


def _result(text: str) -> None:
    """Print a command's result line on standard output."""
    try:
        print(text)
    except OSError as exc:
        _raise_stdout_error(exc)


LARGE_FILE = DEFAULT_PART_SIZE
"""Files above this size go up as a managed upload (parallel parts, progress bar)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="objectstore",
        description="Store and fetch objects on an Objectstore server, or run the emulator.",
    )
    parser.add_argument("--version", action="version", version=f"objectstore {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the Objectstore emulator")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8888, help="port to bind (default 8888)")
    serve.add_argument(
        "--data-dir", help="keep objects in this directory (default: in memory, lost on exit)"
    )
    serve.add_argument(
        "--auth-key",
        action="append",
        default=[],
        metavar="KID=PUBLIC_KEY.pem[:perm,perm]",
        help="trust this Ed25519 public key for kid (repeatable); permissions read, write, "
        "delete (default all three)",
    )
    serve.add_argument(
        "--enforce-auth",
        action="store_true",
        help="require a valid token or pre-signed URL on every object request",
    )
    serve.add_argument(
        "--fsync",
        action=argparse.BooleanOptionalAction,
        help="flush every write to the disk before answering (default: on with --data-dir)",
    )
    serve.add_argument("--tls-cert", metavar="CERT.pem", help="serve https with this certificate")
    serve.add_argument("--tls-key", metavar="KEY.pem", help="the private key of --tls-cert")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--url", help="server URL (default $OBJECTSTORE_URL, else embedded)")
        sub.add_argument(
            "--data-dir",
            default=DEFAULT_DATA_DIR,
            help=f"storage of the embedded emulator (default ./{DEFAULT_DATA_DIR})",
        )
        sub.add_argument("--usecase", default=DEFAULT_USECASE, help="usecase (default 'default')")
        sub.add_argument(
            "--scope",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="scope component, repeatable and ordered (default: no scope)",
        )
        sub.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            help="nothing on standard error but errors (no store notice, no progress bar)",
        )

    put = commands.add_parser("put", help="upload a file (or - for stdin) and print its key")
    common(put)
    put.add_argument(
        "file", nargs="+", help="file(s) to upload (several go as one batch), or - for stdin"
    )
    put.add_argument("--key", help="object key (default: generated by the server)")
    put.add_argument("--content-type", help="media type to record")
    put.add_argument("--compress", choices=["zstd", "none"], help="compression (default zstd)")
    put.add_argument("--ttl", help="expire this long after writing, e.g. '30d' or '1h 30m'")
    put.add_argument("--tti", help="expire after this long without access")
    put.add_argument("--origin", help="origin to record (e.g. the uploader's IP)")
    put.add_argument("--filename", help="filename to record (default: the file's name)")
    put.add_argument(
        "--meta", action="append", default=[], metavar="NAME=VALUE", help="custom metadata"
    )

    get = commands.add_parser("get", help="download an object (several: a batch, into -o DIR)")
    common(get)
    get.add_argument("key", nargs="+")
    get.add_argument(
        "-o",
        "--output",
        help="write to this file (default: standard output); with several keys, a directory",
    )
    get.add_argument(
        "--raw", action="store_true", help="write stored bytes as they are (no decompression)"
    )

    head = commands.add_parser("head", help="print an object's metadata as JSON")
    common(head)
    head.add_argument("key")

    rm = commands.add_parser("rm", help="delete objects (several go as one batch)")
    common(rm)
    rm.add_argument("key", nargs="+")

    url = commands.add_parser("url", help="print an object's URL, optionally with a token")
    common(url)
    url.add_argument("key")
    url.add_argument(
        "--validity",
        type=float,
        metavar="SECONDS",
        help="embed a read-only token valid this long (needs OBJECTSTORE_KEY_ID/_KEY_FILE)",
    )

    presign = commands.add_parser("presign", help="print a pre-signed URL for an object")
    common(presign)
    presign.add_argument("key")
    presign.add_argument("--method", choices=["GET", "HEAD"], default="GET")
    presign.add_argument(
        "--duration",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="validity, at most 604800 (7 days); default 3600",
    )

    token = commands.add_parser("token", help="print a token for the usecase and scope")
    common(token)
    token.add_argument(
        "--permissions",
        metavar="PERM,PERM",
        help="read, write, delete (or object.read, ...); default all three",
    )
    token.add_argument(
        "--expiry", type=int, metavar="SECONDS", help="lifetime in seconds (default 60)"
    )
    return parser


def _pairs(values: Sequence[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise ValueError(f"{what} {value!r} is invalid: expected NAME=VALUE")
        pairs.append((name, rest))
    return pairs


def _given_url(args: argparse.Namespace) -> str | None:
    """``--url`` or ``$OBJECTSTORE_URL`` (None for neither), refused if it is no server URL."""
    source, url = "--url", str(args.url or "")
    if not url:
        source, url = "$OBJECTSTORE_URL", os.environ.get("OBJECTSTORE_URL", "").strip()
    if not url:
        return None
    try:
        split_base_url(url)
    except ValueError as exc:
        reason = str(exc).partition(" is invalid: ")[2] or str(exc)
        raise ValueError(f"{source} {url!r} is invalid: {reason}") from None
    return url


@contextlib.contextmanager
def _server_url(args: argparse.Namespace) -> Iterator[str]:
    """The URL to use: --url, $OBJECTSTORE_URL, or an embedded emulator for this command."""
    url = _given_url(args)
    if url:
        yield url
        return
    from objectstore_sync.emulator import EmulatorServer

    data_dir: str | None = args.data_dir
    where = args.data_dir if os.path.isabs(args.data_dir) else f"./{args.data_dir}"
    if os.path.exists(args.data_dir) and not os.path.isdir(args.data_dir):
        raise ValueError(f"--data-dir {args.data_dir!r} is invalid: it is not a directory")
    note = f"the embedded emulator over {where}"
    if args.command in _READ_COMMANDS and not os.path.isdir(args.data_dir):
        # Nothing is stored yet: an empty in-memory store answers the same, and a
        # read must not leave a directory behind.
        data_dir = None
        note += " (which does not exist, so the store is empty)"
    else:
        os.makedirs(args.data_dir, exist_ok=True)
    if not args.quiet:
        _error(f"no --url or $OBJECTSTORE_URL: using {note}")
    server = EmulatorServer("127.0.0.1", 0, data_dir=data_dir)
    server.start()
    try:
        yield server.url
    finally:
        server.shutdown()


@contextlib.contextmanager
def _session(args: argparse.Namespace) -> Iterator[Session]:
    scope = _scope_of(args)
    token = _token_from_env()
    with _server_url(args) as url, Client(url, token=token) as client:
        yield client.session(scope)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"$OBJECTSTORE_KEY_FILE {path!r} is invalid: it is not text") from None


def _token_from_env() -> Any:
    """$OBJECTSTORE_TOKEN, or a SecretKey from $OBJECTSTORE_KEY_ID + $OBJECTSTORE_KEY_FILE."""
    try:
        return token_from_env(os.environ, _read_text)
    except ValueError as exc:
        text = str(exc)
        if not text.startswith("secret_key "):
            raise
        # The key's own check names the Python parameter: name the variable instead.
        path = os.environ.get("OBJECTSTORE_KEY_FILE", "").strip()
        reason = text.partition(" is invalid: ")[2] or text
        raise ValueError(f"$OBJECTSTORE_KEY_FILE {path!r} is invalid: {reason}") from None


def _scope_of(args: argparse.Namespace) -> Scope:
    scope = Usecase(args.usecase).scope()
    for name, value in _pairs(args.scope, "--scope"):
        scope = scope.push(name, value)
    return scope


@contextlib.contextmanager
def _offline_session(
    args: argparse.Namespace, what: str, need_url: bool, need_key: bool
) -> Iterator[Session]:
    """A session that only builds URLs or tokens: no server is contacted or started.

    With ``need_key``, the command signs, so it needs the key variables (not a token).
    """
    url = _given_url(args)
    if not url:
        if need_url:
            raise ValueError(
                f"{what} needs --url or $OBJECTSTORE_URL: a URL of the embedded emulator "
                "would stop working when this command exits"
            )
        url = "http://127.0.0.1:8888"  # tokens do not depend on the server's address
    token = _token_from_env()
    if need_key and not isinstance(token, SecretKey):
        given = "$OBJECTSTORE_TOKEN is a ready-made token" if token else "no key is set"
        raise ValueError(
            f"{what} signs with a private key, and {given}: set $OBJECTSTORE_KEY_ID to "
            "the key's id and $OBJECTSTORE_KEY_FILE to its Ed25519 private key PEM"
        )
    with Client(url, token=token) as client:
        yield client.session(_scope_of(args))


def _metadata_json(metadata: Metadata) -> dict[str, Any]:
    return {
        "content_type": metadata.content_type,
        "compression": metadata.compression,
        "expiration_policy": format_expiration(metadata.expiration_policy)
        if metadata.expiration_policy
        else "manual",
        "time_created": metadata.time_created.isoformat() if metadata.time_created else None,
        "time_expires": metadata.time_expires.isoformat() if metadata.time_expires else None,
        "origin": metadata.origin,
        "filename": metadata.filename,
        "size": metadata.size,
        "custom": metadata.custom,
    }


def _cmd_put(args: argparse.Namespace) -> int:
    if len(args.file) > 1:
        return _cmd_put_many(args)
    args.file = args.file[0]
    if args.ttl and args.tti:
        raise ValueError("pass --ttl or --tti, not both")
    policy: TimeToLive | TimeToIdle | None = None
    if args.ttl:
        policy = TimeToLive(_positive_duration(args.ttl, "--ttl"))
    elif args.tti:
        policy = TimeToIdle(_positive_duration(args.tti, "--tti"))
    custom = dict(_pairs(args.meta, "--meta"))
    filename = args.filename
    source: Any
    if args.file == "-":
        source = sys.stdin.buffer
    else:
        if not os.path.isfile(args.file):
            raise ValueError(f"file {args.file!r} does not exist or is not a regular file")
        source = Path(args.file)  # opened by the client when the upload starts
        if filename is None:
            filename = os.path.basename(args.file)
    options: dict[str, Any] = {
        "compress": args.compress,
        "content_type": args.content_type or _guess_type(args.file),
        "metadata": custom or None,
        "expiration_policy": policy,
        "origin": args.origin,
        "filename": filename,
    }
    with _session(args) as session:
        if isinstance(source, Path) and source.stat().st_size > LARGE_FILE:
            # Large files: parallel parts, with a progress bar on a terminal (API §4).
            bar = progress_for(sys.stderr, f"put {args.file}", args.quiet)
            try:
                key = session.upload(source, args.key, progress=bar, **options)
            finally:
                if bar is not None:
                    bar.close()
        else:
            key = session.put(source, key=args.key, **options)
    _result(_printable(key))
    return 0


def _cmd_put_many(args: argparse.Namespace) -> int:
    """``put FILE FILE...``: one batch; prints each file's key, in argument order."""
    for flag, value in (("--key", args.key), ("--filename", args.filename)):
        if value is not None:
            raise ValueError(f"{flag} names one object: it cannot be used with several files")
    if args.ttl and args.tti:
        raise ValueError("pass --ttl or --tti, not both")
    policy: TimeToLive | TimeToIdle | None = None
    if args.ttl:
        policy = TimeToLive(parse_duration(args.ttl))
    elif args.tti:
        policy = TimeToIdle(parse_duration(args.tti))
    custom = dict(_pairs(args.meta, "--meta"))
    for path in args.file:
        if path == "-" or not os.path.isfile(path):
            raise ValueError(f"file {path!r} does not exist or is not a regular file")
    with _session(args) as session:
        batch = session.many()
        for path in args.file:
            # Small files are read, so they go through the batch endpoint (known size,
            # PROTOCOL §8.5); larger ones stream as individual uploads.
            source: Any = Path(path)
            if os.path.getsize(path) <= _BATCH_READ_LIMIT:
                source = Path(path).read_bytes()
            batch.put(
                source,
                compress=args.compress,
                content_type=args.content_type or _guess_type(path),
                metadata=custom or None,
                expiration_policy=policy,
                origin=args.origin,
                filename=os.path.basename(path),
            )
        results = batch.send()
    return _report(results, [f"{path}\t{{key}}" for path in args.file])


_BATCH_READ_LIMIT = 1024 * 1024


def _report(results: BatchResults, lines: Sequence[str]) -> int:
    """Print each success with its template (``{key}``), each failure to stderr; exit status."""
    failed = 0
    for result, line in zip(results, lines, strict=True):
        if result.ok:
            if line:
                _result(line.format(key=_printable(str(result.key))))
        else:
            failed += 1
            _error(str(result.error))
    return 1 if failed else 0


def _positive_duration(text: str, option: str) -> timedelta:
    duration = parse_duration(text)
    if duration <= timedelta(0):
        raise ValueError(f"{option} {text!r} is invalid: it must be longer than zero")
    return duration


def _guess_type(path: str) -> str | None:
    """A media type from the file name (``notes.txt`` -> ``text/plain``), else None."""
    if path == "-":
        return None
    guessed, _encoding = mimetypes.guess_type(path)
    return guessed


def _chunks_of(response: GetResponse) -> Callable[[BinaryIO], None]:
    """A ``fill`` for ``_write_output`` that copies ``response``'s decoded bytes."""

    def fill(out: BinaryIO) -> None:
        for chunk in response.iter_bytes():
            out.write(chunk)

    return fill


def _check_output(path: str) -> None:
    """Refuse an ``-o`` path whose directory is missing, before contacting the server."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise ValueError(f"-o {path!r} is invalid: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"-o {path!r} is invalid: it is a directory")


def _write_output(path: str, fill: Callable[[BinaryIO], object]) -> None:
    """Write a download to ``-o path``: ``fill`` writes it into the open file.

    A regular file (new, or through a symbolic link) is written atomically; anything
    else that exists (``/dev/null``, a named pipe, a terminal) is written in place,
    never replaced by a file.
    """
    try:
        existing = os.stat(path)  # follows links, as writing to the path would
    except OSError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        try:
            with open(path, "wb") as out:
                fill(out)
        except OSError as exc:
            if isinstance(exc, ObjectstoreError):
                raise
            raise OSError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        return
    # A link is kept and its target replaced, as writing through it would do.
    target = os.path.realpath(path) if os.path.islink(path) else path
    kept_mode = None if existing is None else stat.S_IMODE(existing.st_mode)
    _write_atomically(target, fill, kept_mode, shown=path)


def _write_atomically(
    path: str, fill: Callable[[BinaryIO], object], kept_mode: int | None, shown: str
) -> None:
    """Write to a temporary file beside ``path`` and rename: never a half-written file.

    A new file gets mode 0666 less the umask and a file replaced keeps its mode
    (``kept_mode``), as with ``cp`` and ``curl -o``. Errors name ``shown``, the
    path the user gave.
    """
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for attempt in range(100):
        temp = os.path.join(directory, f".{name}.objectstore-{os.getpid()}-{attempt}")
        try:
            fd = os.open(temp, flags, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise OSError(f"cannot write {shown!r}: {exc.strerror}") from None
    else:
        raise OSError(f"cannot write {shown!r}: no free temporary name in {directory!r}")
    try:
        with os.fdopen(fd, "wb") as out:
            if kept_mode is not None:
                os.fchmod(out.fileno(), kept_mode)
            fill(out)
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        # A failed download (some of which are OSErrors too) is reported as it is.
        if isinstance(exc, OSError) and not isinstance(exc, ObjectstoreError):
            raise OSError(f"cannot write {shown!r}: {exc.strerror or exc}") from None
        raise


def _scope_text(args: argparse.Namespace) -> str:
    scope = ", ".join(f"{name}={value}" for name, value in _pairs(args.scope, "--scope"))
    return f"scope {scope}" if scope else "no scope"


def _not_found(args: argparse.Namespace) -> int:
    _error(f"object {args.key!r} not found (usecase {args.usecase!r}, {_scope_text(args)})")
    return 1


def _cmd_get(args: argparse.Namespace) -> int:
    if len(args.key) > 1:
        return _cmd_get_many(args)
    args.key = args.key[0]
    to_file = bool(args.output) and args.output != "-"
    if to_file:
        _check_output(args.output)
        if not args.raw:
            return _download(args)
    with _session(args) as session:
        response = session.get(args.key, decompress=not args.raw)
        if response is None:
            return _not_found(args)
        with response:
            if to_file:
                _write_output(args.output, _chunks_of(response))
            else:
                out: BinaryIO = sys.stdout.buffer
                try:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                    out.flush()
                except OSError as exc:
                    _raise_stdout_error(exc)
    return 0


def _cmd_get_many(args: argparse.Namespace) -> int:
    """``get KEY KEY... -o DIR``: one batch; each object to DIR/KEY."""
    if not args.output or args.output == "-" or not os.path.isdir(args.output):
        raise ValueError("with several keys, -o must name an existing directory")
    targets = [_inside(args.output, key) for key in args.key]
    with _session(args) as session:
        batch = session.many()
        for key in args.key:
            batch.get(key, decompress=not args.raw)
        results = batch.send()
        failed = 0
        for result, target in zip(results, targets, strict=True):
            if result.ok and result.value is None:
                _error(
                    f"object {result.key!r} not found (usecase {args.usecase!r}, "
                    f"{_scope_text(args)})"
                )
                failed += 1
            elif result.ok:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with result.value as response:
                    _write_output(target, _chunks_of(response))
            else:
                _error(str(result.error))
                failed += 1
    return 1 if failed else 0


def _inside(directory: str, key: str) -> str:
    """``directory/key``, refusing keys that would leave the directory."""
    parts = key.split("/")
    if key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"key {key!r} cannot be written under {directory!r}: unsafe path")
    return os.path.join(directory, *parts)


def _raise_stdout_error(exc: OSError) -> NoReturn:
    """Re-raise a failed write to standard output as saying so (a closed pipe stays as is)."""
    if isinstance(exc, (BrokenPipeError, ObjectstoreError)):
        raise exc
    raise OSError(f"cannot write standard output: {exc.strerror or exc}") from None


def _download(args: argparse.Namespace) -> int:
    """``get -o FILE``: a managed download (parallel ranges for raw objects), with a
    progress bar on a terminal (API §4), written by the rules of ``_write_output``."""
    bar = progress_for(sys.stderr, f"get {args.key}", args.quiet)
    try:
        with _session(args) as session:

            def fill(out: BinaryIO) -> None:
                session.download(args.key, out, concurrency=4, progress=bar)

            _write_output(args.output, fill)
    except ObjectNotFound:
        return _not_found(args)
    finally:
        if bar is not None:
            bar.close()
    return 0


def _cmd_head(args: argparse.Namespace) -> int:
    with _session(args) as session:
        metadata = session.head(args.key)
    if metadata is None:
        return _not_found(args)
    _result(_printable_json(_metadata_json(metadata)))
    return 0


def _cmd_rm(args: argparse.Namespace) -> int:
    with _session(args) as session:
        if len(args.key) == 1:
            session.delete(args.key[0])
            return 0
        batch = session.many()
        for key in args.key:
            batch.delete(key)
        return _report(batch.send(), ["" for _ in args.key])


def _seconds(value: float | None, option: str, maximum: int | None = None) -> timedelta | None:
    """``--option SECONDS`` as a duration: finite, above zero, at most ``maximum``."""
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{option} {value:g} is invalid: it must be a number of seconds above 0")
    if maximum is not None and value > maximum:
        raise ValueError(f"{option} {value:g} is invalid: it must be at most {maximum} seconds")
    return timedelta(seconds=value)


def _cmd_url(args: argparse.Namespace) -> int:
    validity = _seconds(args.validity, "--validity")
    signs = validity is not None
    what = "objectstore url --validity" if signs else "objectstore url"
    with _offline_session(args, what, need_url=True, need_key=signs) as session:
        _result(session.object_url(args.key, token_validity=validity))
    return 0


def _cmd_presign(args: argparse.Namespace) -> int:
    duration = _seconds(args.duration, "--duration", _MAX_PRESIGN_SECONDS)
    assert duration is not None  # the option has a default
    with _offline_session(args, "objectstore presign", need_url=True, need_key=True) as session:
        _result(session.presigned_object_url(args.method, args.key, duration))
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    permissions: list[Permission] | None = None
    if args.permissions is not None:
        permissions = [parse_permission(p) for p in args.permissions.split(",") if p.strip()]
    if args.expiry is not None and args.expiry <= 0:
        raise ValueError(
            f"--expiry {args.expiry} is invalid: it must be a number of seconds above 0"
        )
    with _offline_session(args, "objectstore token", need_url=False, need_key=True) as session:
        _result(session.mint_token(permissions, args.expiry))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from objectstore_sync.emulator import EmulatorServer, server_context_from_files

    if args.fsync and not args.data_dir:
        raise ValueError("--fsync needs --data-dir (objects in memory have nothing to flush)")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together: give both or neither")
    tls = None
    if args.tls_cert is not None:
        tls = server_context_from_files(args.tls_cert, args.tls_key)
    if args.data_dir:
        os.makedirs(args.data_dir, exist_ok=True)
    auth_keys = dict(parse_auth_key_option(value) for value in args.auth_key)
    fsync = bool(args.data_dir) and args.fsync is not False
    server = EmulatorServer(
        args.host,
        args.port,
        data_dir=args.data_dir,
        auth_keys=auth_keys,
        enforce_auth=args.enforce_auth,
        tls=tls,
        fsync=fsync,
    )
    storage = f"data in {args.data_dir}" if args.data_dir else "data in memory"
    if args.data_dir and not fsync:
        storage += ", no fsync"
    auth = "auth enforced" if args.enforce_auth else "auth off"
    kids = f", keys: {', '.join(sorted(auth_keys))}" if auth_keys else ""
    print(
        f"objectstore emulator listening on {server.url} ({storage}; {auth}{kids})",
        file=sys.stderr,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


_COMMANDS = {
    "serve": _cmd_serve,
    "put": _cmd_put,
    "get": _cmd_get,
    "head": _cmd_head,
    "rm": _cmd_rm,
    "url": _cmd_url,
    "presign": _cmd_presign,
    "token": _cmd_token,
}


def _stdout_closed() -> int:
    """Standard output was closed by its reader (``| head``): stop quietly, as ``cat`` does.

    Standard output is pointed at the null device so that the interpreter's last
    flush of what is still buffered cannot fail again on the way out.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 141  # 128 + SIGPIPE: what a shell reports for `cat` in the same place


def _auth_hint(exc: RequestError, args: argparse.Namespace) -> str | None:
    """What to do about a refused credential, in the CLI's own variables, or None."""
    if exc.status not in (400, 401, 403):
        return None
    names = ("OBJECTSTORE_TOKEN", "OBJECTSTORE_KEY_ID")
    given = {name for name in names if os.environ.get(name, "").strip()}
    if not given:
        # A missing credential is answered 400 (PROTOCOL §10.5), as other bad requests are.
        if exc.status == 400:
            return f"no credentials were given; if the server needs them, {_CREDENTIALS_HINT}"
        return f"no credentials were given: {_CREDENTIALS_HINT}"
    source = "$OBJECTSTORE_TOKEN" if "OBJECTSTORE_TOKEN" in given else "$OBJECTSTORE_KEY_ID"
    if exc.status == 403:
        return (
            f"the credentials from {source} do not allow this on usecase {args.usecase!r}, "
            f"{_scope_text(args)}"
        )
    if source == "$OBJECTSTORE_TOKEN":
        return "the server refused the token in $OBJECTSTORE_TOKEN (malformed, expired or unknown)"
    return (
        "the server refused the token signed with $OBJECTSTORE_KEY_ID and "
        "$OBJECTSTORE_KEY_FILE: check that it trusts that key id with that key"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failure, 2 bad input, 130 Ctrl-C).

    A closed standard output ends the command quietly with status 141, as for ``cat``.
    """
    args = _parser().parse_args(argv)
    try:
        status = _COMMANDS[args.command](args)
        try:
            sys.stdout.flush()  # a closed pipe is found here, not in the interpreter's exit
        except OSError as exc:
            _raise_stdout_error(exc)
        return status
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        return 130
    except (ValueError, TypeError) as exc:
        _error(str(exc))
        return 2
    except RequestError as exc:
        hint = _auth_hint(exc, args)
        _error(f"{exc}; {hint}" if hint else str(exc))
        return 1
    except ObjectstoreError as exc:
        _error(str(exc))
        return 1
    except OSError as exc:
        _error(str(exc))
        return 1
