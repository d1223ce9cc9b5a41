"""The core is sans-IO: importing it loads no network, thread or event-loop module,
and its code neither opens files, sleeps, nor defines coroutines; nor does it read
the clock, the environment, the CPU count or a file's metadata, or call a file
method on a caller's object (DESIGN.md).

Imports are checked in a fresh interpreter (the test process has long since
imported everything), comparing ``sys.modules`` before and after. Because the
interpreter may preload some of the forbidden modules itself, the subprocess
also looks through every core module's namespace for forbidden modules or
objects defined in them, which catches ``import threading`` even when
``threading`` was already loaded.

Source checks use :mod:`tokenize` and :mod:`ast`, so docstrings, comments and
string literals never count, and methods merely *named* ``open`` are not calls of
the builtin.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import pathlib
import re
import subprocess
import sys
import textwrap
import tokenize

import pytest

import objectstore_core

FORBIDDEN = (
    "socket",
    "_socket",
    "ssl",
    "_ssl",
    "threading",
    "asyncio",
    "_asyncio",
    "urllib3",
    "httpx",
    "httpcore",
    "h11",
    "selectors",
    "subprocess",
    "concurrent",
    "trio",
    "anyio",
)

CORE_DIR = pathlib.Path(objectstore_core.__file__).parent
REPO_ROOT = CORE_DIR.parent

_PROBE = textwrap.dedent(
    """
    import importlib, json, pathlib, sys, types

    forbidden = set(sys.argv[1].split(","))
    packages = sys.argv[2].split(",")

    def root(name):
        return name.split(".")[0]

    preloaded = sorted(n for n in sys.modules if root(n) in forbidden)
    before = set(sys.modules)
    imported = []
    for package in packages:
        module = importlib.import_module(package)
        imported.append(package)
        base = pathlib.Path(next(iter(module.__path__)))  # also for namespace packages
        for path in sorted(base.glob("*.py")):
            if path.stem != "__init__":
                importlib.import_module(f"{package}.{path.stem}")
                imported.append(f"{package}.{path.stem}")
    new = sorted(n for n in set(sys.modules) - before if root(n) in forbidden)

    references = []
    for name, module in sorted(sys.modules.items()):
        if module is None or not name.startswith(tuple(packages)):
            continue
        for attr, value in vars(module).items():
            if isinstance(value, types.ModuleType):
                origin = value.__name__
            else:
                origin = getattr(value, "__module__", None)
            if isinstance(origin, str) and root(origin) in forbidden:
                references.append(f"{name}.{attr} -> {origin}")
    print(json.dumps({
        "preloaded": preloaded, "new": new, "references": references, "imported": imported,
    }))
    """
)


def probe(*packages: str) -> dict[str, list[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(FORBIDDEN), ",".join(packages)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, list[str]] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_core_imports_nothing_forbidden() -> None:
    result = probe("objectstore_core")
    assert "objectstore_core._operations" in result["imported"]
    assert "objectstore_core._codec" in result["imported"]
    assert result["new"] == [], f"importing the core loaded {result['new']}"
    assert result["references"] == [], result["references"]


def test_emulator_imports_nothing_forbidden() -> None:
    if importlib.util.find_spec("objectstore_core.emulator") is None:
        pytest.skip("objectstore_core.emulator does not exist")
    result = probe("objectstore_core", "objectstore_core.emulator")
    assert result["new"] == [], f"importing the emulator core loaded {result['new']}"
    assert result["references"] == [], result["references"]


def test_probe_detects_a_forbidden_import(tmp_path: pathlib.Path) -> None:
    """The probe itself works: a package importing threading and socket is caught."""
    package = tmp_path / "impure_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("import socket\nfrom threading import Thread\n")
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(FORBIDDEN), "impure_pkg"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "socket" in result["new"] or "socket" in result["preloaded"]
    assert any(r.startswith("impure_pkg.mod.socket") for r in result["references"])
    assert any(r.startswith("impure_pkg.mod.Thread -> threading") for r in result["references"])


# ------------------------------------------------------------------ source scan


def violations(source: str) -> list[str]:
    """Calls of ``open``/``io.open``/``os.open``, ``time.sleep``, and coroutine syntax."""
    found: list[str] = []
    tokens = [
        tok
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE)
        and tok.type not in (tokenize.INDENT, tokenize.DEDENT)
    ]
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NAME:
            continue
        prev = tokens[i - 1].string if i > 0 else ""
        prev2 = tokens[i - 2].string if i > 1 else ""
        nxt = tokens[i + 1].string if i + 1 < len(tokens) else ""
        where = f"line {tok.start[0]}"
        if tok.string == "open" and nxt == "(" and prev not in (".", "def"):
            found.append(f"{where}: open(")
        if tok.string in ("open", "fdopen") and prev == "." and prev2 in ("io", "os", "codecs"):
            found.append(f"{where}: {prev2}.{tok.string}")
        if tok.string == "sleep" and prev == "." and prev2 == "time":
            found.append(f"{where}: time.sleep")
        if tok.string == "sleep" and prev in ("import", ","):
            # ``from time import sleep`` (possibly in a list)
            j = i
            while j > 0 and tokens[j].string != "from":
                j -= 1
            if tokens[j].string == "from" and tokens[j + 1].string == "time":
                found.append(f"{where}: from time import sleep")
        if tok.string == "async" and nxt in ("def", "with", "for"):
            found.append(f"{where}: async {nxt}")
        if tok.string == "await" and prev not in (".", "def"):
            found.append(f"{where}: await")
    return found


def core_sources() -> list[pathlib.Path]:
    return sorted(CORE_DIR.rglob("*.py"))


def test_scanner_sees_code_but_not_text() -> None:
    clean = textwrap.dedent(
        '''
        """Docstring mentioning open(path), time.sleep(1) and async def f()."""
        # comment: open(x); time.sleep(2); await y
        class Storage:
            def open(self, oid):  # a method named open is fine
                return self.backend.open(oid)
        text = "open(file) time.sleep(3) async def"
        def sleep_less(): return 1
        '''
    )
    assert violations(clean) == []
    dirty = textwrap.dedent(
        """
        import io, os, time
        from time import monotonic, sleep
        def f():
            with open("x") as fh:
                pass
            io.open("y"); os.open("z", 0); time.sleep(1)
        async def g():
            await h()
        """
    )
    found = violations(dirty)
    assert len(found) == 7, found
    for needle in ("open(", "io.open", "os.open", "time.sleep", "from time", "async def", "await"):
        assert any(needle in v for v in found), (needle, found)


def test_core_sources_found() -> None:
    names = {path.name for path in core_sources()}
    assert {"_operations.py", "_durations.py", "_codec.py", "__init__.py"} <= names


@pytest.mark.parametrize(
    "path", core_sources(), ids=lambda p: str(pathlib.Path(p).relative_to(CORE_DIR))
)
def test_core_source_does_no_io(path: pathlib.Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


# ------------------------------------------------- host state and the caller's files
#
# The core takes the time, a file's size, the CPU count and the environment as
# arguments (the twins measure them), and never calls a file method on a
# caller's object. The scan reads the syntax tree: imports are resolved
# (``from datetime import datetime as dt; dt.now()`` is ``datetime.datetime.now``),
# and text in docstrings or comments never counts.

HOST_STATE = frozenset(
    {
        "os.stat",
        "os.fstat",
        "os.lstat",
        "os.cpu_count",
        "os.process_cpu_count",
        "os.sched_getaffinity",
        "os.environ",
        "os.environb",
        "os.getenv",
        "os.open",
        "os.fdopen",
        "io.open",
        "codecs.open",
        "builtins.open",
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
        "time.process_time",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
    }
)

# Methods that read, position or describe a file: called on a payload, they
# would be I/O on the caller's object.
FILE_METHODS = frozenset(
    {"read", "readinto", "readline", "readlines", "seek", "tell", "fileno", "stat"}
    | {"read_text", "read_bytes"}
)

# Calls of those names that are not on a caller's file: (module, receiver) -> why.
NOT_A_FILE = {
    ("_download.py", "self._decoder"): "the download's own zstd or identity decoder",
    ("_codec.py", "decoder"): "decompress() reading its own ZstdDecoder",
    ("_batch_results.py", "self._real()"): "the Download a batch get's lazy one stands for",
    ("_transfer.py", "download"): "a managed download's Download, decoding a get's body",
    ("emulator/_bridge.py", "self._body"): "a BodyStream, the storage interface's body",
    ("emulator/_exchange.py", "stream"): "a BodyStream, the storage interface's body",
    ("emulator/_faults.py", "self._body"): "a BodyStream, the storage interface's body",
}

# The one clock the core reads, and why (see its docstring).
ALLOWED_HOST_STATE = {
    ("_auth.py", "_standalone_clock", "time.time"): (
        "SecretKey.token_for_scope(usecase, scope) called on its own, as in the official client"
    ),
}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local names bound by imports anywhere in ``tree``, to what they name."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _qualified(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """``os.environ`` for ``os.environ``; ``datetime.datetime.now`` for ``dt.now``."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id, "builtins.open" if node.id == "open" else None)
    if isinstance(node, ast.Attribute):
        base = _qualified(node.value, aliases)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _functions(tree: ast.AST) -> dict[ast.AST, str]:
    """Each node of ``tree`` mapped to the name of the innermost function around it."""
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = (
                child.name
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                else name
            )
            owner[child] = inner
            visit(child, inner)

    visit(tree, "<module>")
    return owner


def host_violations(source: str, module: str = "") -> list[str]:
    """Reads of the clock, environment, CPU count or file metadata, and file method calls."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    owner = _functions(tree)
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        if (module, owner.get(node, "<module>"), what) not in ALLOWED_HOST_STATE:
            found.append(f"line {getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in HOST_STATE:
                    report(node, f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Load):
            name = _qualified(node, aliases)
            if isinstance(node, ast.Attribute) and name in HOST_STATE:
                report(node, name)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and _qualified(func, aliases) in HOST_STATE:
                report(node, f"{func.id}()")
            elif isinstance(func, ast.Attribute) and func.attr in FILE_METHODS:
                receiver = ast.unparse(func.value)
                if (module, receiver) not in NOT_A_FILE:
                    report(node, f"{receiver}.{func.attr}()")
    return found


def test_host_scan_sees_code_but_not_text() -> None:
    clean = textwrap.dedent(
        '''
        """Docs may say os.environ, time.time(), datetime.now() and file.read()."""
        import datetime as dt
        from datetime import UTC, timedelta
        # a comment: os.stat(path), date.today()
        class Storage:
            def open(self, oid): return self.backend.open(oid)  # a method named open
        def when(now: float) -> float: return now + timedelta(seconds=1).total_seconds()
        stamp = dt.datetime.fromtimestamp(0, UTC)
        '''
    )
    assert host_violations(clean) == []
    dirty = textwrap.dedent(
        """
        import os, time
        import datetime as dt
        from datetime import date, datetime
        from os import environ
        from time import monotonic as tick
        def f(upload, path):
            os.stat(path); os.fstat(3); os.cpu_count(); os.environ.get("X"); os.getenv("X")
            time.time(); tick(); time.monotonic(); datetime.now(); dt.datetime.utcnow()
            date.today(); open(path)
            upload.read(10); upload.seek(0); upload.tell(); upload.fileno()
        """
    )
    found = host_violations(dirty)
    for needle in (
        "os.stat",
        "os.fstat",
        "os.cpu_count",
        "os.environ",
        "os.getenv",
        "from os import environ",
        "time.time",
        "from time import monotonic",
        "tick()",
        "time.monotonic",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.date.today",
        "open()",
        "upload.read()",
        "upload.seek()",
        "upload.tell()",
        "upload.fileno()",
    ):
        assert any(needle in v for v in found), (needle, found)


def _module(path: pathlib.Path) -> str:
    return path.relative_to(CORE_DIR).as_posix()


# The emulator's handler included: its clock is given by the emulator's I/O
# side (objectstore_sync.emulator.wall_clock), as the twins give the core theirs.
@pytest.mark.parametrize("path", core_sources(), ids=_module)
def test_core_source_reads_no_host_state(path: pathlib.Path) -> None:
    """No clock, environment, CPU count, file metadata or file method in the core."""
    assert host_violations(path.read_text(encoding="utf-8"), _module(path)) == []


def test_allowances_are_still_needed() -> None:
    """Every exception above names code that still exists (else it must be removed)."""
    for module, receiver in NOT_A_FILE:
        source = (CORE_DIR / module).read_text(encoding="utf-8")
        assert re.search(rf"\b{re.escape(receiver)}\.(\w+)\(", source), (module, receiver)
    for module, function, _ in ALLOWED_HOST_STATE:
        source = (CORE_DIR / module).read_text(encoding="utf-8")
        assert f"def {function}(" in source, (module, function)
