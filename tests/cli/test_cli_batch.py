"""The CLI with several arguments: ``put FILE...``, ``get KEY... -o DIR`` and ``rm KEY...``
go as one batch (on the embedded emulator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import _run


@pytest.fixture(autouse=True)
def _no_server_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBJECTSTORE_URL", raising=False)
    monkeypatch.delenv("OBJECTSTORE_TOKEN", raising=False)


def test_put_get_rm_of_several_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    files = {"a.txt": b"alpha", "b.json": b"{}", "big.bin": b"\x01" * (2 * 1024 * 1024)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    status, out, err = _run(capsys, "put", *files)
    assert status == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert [name for name, _ in lines] == list(files)
    keys = [key for _, key in lines]

    (tmp_path / "out").mkdir()
    status, _, err = _run(capsys, "get", *keys, "missing", "-o", "out")
    assert status == 1 and "'missing' not found" in err
    for key, data in zip(keys, files.values(), strict=True):
        assert (tmp_path / "out" / key).read_bytes() == data

    status, _, err = _run(capsys, "rm", *keys)
    assert status == 0, err
    status, _, _ = _run(capsys, "get", keys[0], "-o", "gone")
    assert status == 1


def test_bad_multi_arguments_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    assert _run(capsys, "put", "a", "b", "--key", "k")[0] == 2
    assert _run(capsys, "put", "a", "nope")[0] == 2
    assert _run(capsys, "get", "k1", "k2")[0] == 2  # no -o directory
    (tmp_path / "dir").mkdir()
    status, _, err = _run(capsys, "get", "k1", "../escape", "-o", "dir")
    assert status == 2 and "unsafe path" in err
