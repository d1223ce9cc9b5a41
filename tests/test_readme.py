"""The README's examples run as written, and its set-up holds on a fresh machine.

Each Python example is taken from the README itself and run against a
loopback emulator (the only change: its URL), so an example that opens a file
that does not exist, leaks a handle or lacks an import fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from objectstore_sync import Client
from objectstore_sync.testing import InProcessTransport, LocalServer

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE_URL = "http://127.0.0.1:8888"


def _python_blocks() -> list[str]:
    """Every ```python block, its indentation (inside a list item) removed."""
    blocks = []
    for indent, body in re.findall(r"^( *)```python\n(.*?)^\1```", README, re.S | re.M):
        blocks.append("\n".join(line[len(indent) :] for line in body.splitlines()))
    return blocks


def _block(marker: str) -> str:
    found = [block for block in _python_blocks() if marker in block]
    assert len(found) == 1, f"expected one README example containing {marker!r}"
    return found[0]


@pytest.fixture
def in_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_sync_quick_start_runs(
    in_empty_directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _block("from objectstore_sync import Client, TimeToLive, Usecase")
    assert EXAMPLE_URL in code
    with LocalServer() as server:
        exec(compile(code.replace(EXAMPLE_URL, server.url), "README", "exec"), {})
    out = capsys.readouterr().out
    assert "application/pdf {'source': 'billing'}" in out
    assert "b'Hello, world!'" in out


@pytest.mark.parametrize("runner", ["asyncio", "trio"])
def test_the_async_quick_start_runs_under_asyncio_and_trio(
    in_empty_directory: Path, capsys: pytest.CaptureFixture[str], runner: str
) -> None:
    code = _block("from objectstore_async import AsyncClient, Usecase")
    last = "asyncio.run(main())"
    assert last in code
    assert "trio.run(main)" in code and "trio` extra" in code
    if runner == "trio":
        code = code.replace(last, "import trio\ntrio.run(main)")
    with LocalServer() as server:
        exec(compile(code.replace(EXAMPLE_URL, server.url), "README", "exec"), {})
    assert "Metadata(" in capsys.readouterr().out


def test_the_plugin_example_has_its_imports() -> None:
    code = _block("def test_upload(objectstore_client)")
    namespace: dict[str, Any] = {}
    exec(compile(code, "README", "exec"), namespace)
    with Client("http://objectstore.test", transport=InProcessTransport()) as client:
        namespace["test_upload"](client)


def test_the_trio_extra_brings_trio() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = project["optional-dependencies"]["trio"]
    assert [name for name in extra if re.match(r"trio\b", name)]
    assert "pip install '.[trio]'" in README


def test_the_sentry_extra_brings_the_sdk_and_nothing_requires_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["optional-dependencies"]["sentry"] == ["sentry-sdk>=2"]
    assert not [name for name in project["dependencies"] if name.startswith("sentry")]
    assert "pip install 'objectstore[sentry]'" in README


def test_the_set_up_makes_a_virtualenv_first() -> None:
    assert README.index("python3 -m venv") < README.index("pip install")
    section = README[README.index("## Install") :]
    start = section.index("```sh\n") + len("```sh\n")
    commands = section[start : section.index("\n```", start)].splitlines()
    assert commands[0].startswith("python3 -m venv ")
    assert all(line.startswith("pip install") for line in commands[1:])


def test_no_sections_of_documents_outside_the_repository_are_cited() -> None:
    assert "§" not in README
    assert "PROTOCOL" not in README


def test_the_declared_license_is_shipped() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text.splitlines()[1] and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
