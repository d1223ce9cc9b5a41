"""The ``objectstore`` command: embedded emulator by default, --url / $OBJECTSTORE_URL otherwise."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectstore_sync import Client, Usecase
from objectstore_sync._cli import main
from objectstore_sync.testing import LocalServer


@pytest.fixture(autouse=True)
def _no_server_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBJECTSTORE_URL", raising=False)
    monkeypatch.delenv("OBJECTSTORE_TOKEN", raising=False)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_put_then_get_on_the_embedded_emulator(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = workdir / "README.md"
    source.write_bytes(b"# hello\n" + os.urandom(50_000))
    status, out, _ = _run(capsys, "put", "README.md")
    assert status == 0
    key = out.strip()
    assert len(key) == 36  # a server-generated UUID
    assert (workdir / ".objectstore").is_dir()
    # A later command (a new embedded emulator over the same directory) finds it.
    status, _, _ = _run(capsys, "get", key, "-o", "copy")
    assert status == 0
    assert (workdir / "copy").read_bytes() == source.read_bytes()


def test_head_prints_metadata_and_rm_deletes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "notes.txt").write_text("naïve café\n")
    status, out, _ = _run(
        capsys,
        "put",
        "notes.txt",
        "--key",
        "docs/notes.txt",
        "--meta",
        "team=ops",
        "--ttl",
        "2d",
        "--scope",
        "org=7",
    )
    assert (status, out.strip()) == (0, "docs/notes.txt")
    status, out, _ = _run(capsys, "head", "docs/notes.txt", "--scope", "org=7")
    assert status == 0
    metadata = json.loads(out)
    assert metadata["filename"] == "notes.txt"
    assert metadata["content_type"] == "text/plain"
    assert metadata["custom"] == {"team": "ops"}
    assert metadata["expiration_policy"] == "ttl:2d"
    # Scope is part of the identity: without it the object is not there.
    status, _, err = _run(capsys, "head", "docs/notes.txt")
    assert status == 1 and "not found" in err
    assert _run(capsys, "rm", "docs/notes.txt", "--scope", "org=7")[0] == 0
    status, _, err = _run(capsys, "get", "docs/notes.txt", "--scope", "org=7", "-o", "x")
    assert status == 1 and "not found" in err
    assert not (workdir / "x").exists()


def test_get_to_stdout_and_raw(workdir: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    (workdir / "data.bin").write_bytes(b"abc" * 1000)
    assert main(["put", "data.bin", "--key", "k"]) == 0
    capsysbinary.readouterr()
    assert main(["get", "k"]) == 0
    assert capsysbinary.readouterr().out == b"abc" * 1000
    assert main(["get", "k", "--raw"]) == 0
    raw = capsysbinary.readouterr().out
    assert raw[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame: stored compressed


def test_bad_input_exits_2_before_any_io(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "put", "missing.txt")
    assert status == 2 and "missing.txt" in err
    (workdir / "f").write_bytes(b"x")
    status, _, err = _run(capsys, "put", "f", "--usecase", "x")
    assert status == 2 and "usecase" in err
    status, _, err = _run(capsys, "put", "f", "--scope", "org")
    assert status == 2 and "NAME=VALUE" in err
    status, _, err = _run(capsys, "put", "f", "--ttl", "soon")
    assert status == 2 and "soon" in err
    stored = workdir / ".objectstore"
    assert not stored.exists() or not any(stored.rglob("*.json"))


def test_url_and_environment_select_a_server(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "f").write_bytes(b"remote")
    with LocalServer() as server:
        status, _, _ = _run(capsys, "put", "f", "--url", server.url, "--key", "via-flag")
        assert status == 0
        monkeypatch.setenv("OBJECTSTORE_URL", server.url)
        status, _, _ = _run(capsys, "put", "f", "--key", "via-env")
        assert status == 0
        with Client(server.url) as client:
            session = client.session(Usecase("default"))
            for key in ("via-flag", "via-env"):
                response = session.get(key)
                assert response is not None
                with response:
                    assert response.read() == b"remote"
    assert not (workdir / ".objectstore").exists()


def test_unreachable_server_exits_1(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status, _, err = _run(capsys, "head", "k", "--url", f"http://127.0.0.1:{port}")
    assert status == 1 and "connect" in err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "objectstore_sync",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:
                    assert reply.read() == b"OK"
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_as_a_module_persists_to_its_data_dir(served: str, tmp_path: Path) -> None:
    with Client(served) as client:
        session = client.session(Usecase("served"), org=1)
        session.put(b"persisted", key="k")
    with urllib.request.urlopen(f"{served}/ready", timeout=5) as reply:
        assert reply.status == 200
    assert any((tmp_path / "data").rglob("*"))
