"""The emulator uses only the core's public names (DESIGN: "The emulator is one component").

Both halves of it, ``objectstore_core.emulator`` and ``objectstore_sync.emulator``,
import from ``objectstore_core`` only what its ``__all__`` exports, and never a
private ``objectstore_core._module``: the emulator reads the wire on its own
terms, so a wire-format bug in the client is not mirrored into the server
the client is tested against.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import objectstore_core
import objectstore_core.emulator
import objectstore_sync.emulator

FOLDERS = [
    Path(objectstore_core.emulator.__file__).parent,
    Path(objectstore_sync.emulator.__file__).parent,
]


def core_imports(source: str) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` for every import of the core outside the emulator package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node.lineno, alias.name, ""))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                found.append((node.lineno, node.module, alias.name))
    return [
        item
        for item in found
        if item[1].split(".")[0] == "objectstore_core"
        and not item[1].startswith("objectstore_core.emulator")
    ]


def offences(source: str) -> list[str]:
    bad = []
    public = set(objectstore_core.__all__)
    for line, module, name in core_imports(source):
        if module != "objectstore_core":
            bad.append(f"line {line}: {module} is private")
        elif name not in public:
            bad.append(f"line {line}: objectstore_core.{name or '*'} is not in __all__")
    return bad


@pytest.mark.parametrize(
    "path", [path for folder in FOLDERS for path in sorted(folder.glob("*.py"))], ids=str
)
def test_the_emulator_imports_only_public_core_names(path: Path) -> None:
    assert offences(path.read_text(encoding="utf-8")) == [], path


def test_the_check_catches_private_and_unexported_imports() -> None:
    source = (
        "import objectstore_core._models\n"
        "from objectstore_core._durations import parse_duration\n"
        "from objectstore_core import Scope, new_thing\n"
        "from objectstore_core.emulator._wire import b64url_decode\n"
        "from objectstore_core.emulator import Emulator\n"
    )
    assert offences(source) == [
        "line 1: objectstore_core._models is private",
        "line 2: objectstore_core._durations is private",
        "line 3: objectstore_core.new_thing is not in __all__",
    ]
