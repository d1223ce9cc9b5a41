"""The emulator core stays sans-IO: no sockets, threads, event loops, sleeps or files."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import objectstore_core.emulator as emulator_package

FORBIDDEN_MODULES = {"socket", "threading", "asyncio", "urllib3", "httpx", "selectors", "io"}
FORBIDDEN_CALLS = {"open", "sleep"}
PACKAGE_DIR = Path(emulator_package.__file__).parent


def _sources() -> list[Path]:
    return sorted(PACKAGE_DIR.glob("*.py"))


def test_sources_import_no_io_modules_and_call_no_open_or_sleep() -> None:
    assert _sources(), "no sources found"
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                roots = set()
            assert not roots & FORBIDDEN_MODULES, f"{path.name} imports {roots}"
            if isinstance(node, ast.Call):
                func = node.func
                # Built-in open()/sleep(), and any .sleep(); storage.open() is a method.
                bare = isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS
                sleeps = isinstance(func, ast.Attribute) and func.attr == "sleep"
                assert not (bare or sleeps), f"{path.name}:{node.lineno} calls {ast.unparse(func)}"


def test_importing_the_emulator_loads_no_io_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import objectstore_core.emulator\n"
        "loaded = set(sys.modules) - before\n"
        "bad = sorted(m for m in loaded if m.split('.')[0] in "
        "{'socket', 'threading', 'asyncio', 'urllib3', 'httpx', 'selectors'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
