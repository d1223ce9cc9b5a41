"""The core is sans-IO: importing it loads no network, thread or event-loop module,
and its code neither opens files, sleeps, nor defines coroutines (DESIGN.md).

Imports are checked in a fresh interpreter (the test process has long since
imported everything), comparing ``sys.modules`` before and after. Because the
interpreter may preload some of the forbidden modules itself, the subprocess
also looks through every core module's namespace for forbidden modules or
objects defined in them, which catches ``import threading`` even when
``threading`` was already loaded.

Source checks use :mod:`tokenize`, so docstrings, comments and string literals
never count, and methods merely *named* ``open`` are not calls of the builtin.
"""

from __future__ import annotations

import importlib.util
import io
import json
import pathlib
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
