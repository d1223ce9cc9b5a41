"""The CLI's progress bar and its managed transfers of large files (issue 14 item 5)."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from objectstore_sync._cli import LARGE_FILE, main
from objectstore_sync._progress import ProgressBar, progress_for

MIB = 1024 * 1024


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_shows_bytes_rate_and_time_left() -> None:
    out, clock = Terminal(), Clock()
    bar = ProgressBar(out, "put big", clock=clock)
    clock.now += 2
    bar(10 * MIB, 40 * MIB)
    assert out.getvalue() == "\rput big  10.0 MiB / 40.0 MiB  5.0 MiB/s  ETA 0:06"
    clock.now += 0.01
    bar(11 * MIB, 40 * MIB)  # too soon: not redrawn
    assert out.getvalue().count("\r") == 1
    clock.now += 6
    bar(40 * MIB, 40 * MIB)  # the end is always drawn, without an ETA
    assert out.getvalue().rstrip(" ").endswith("\rput big  40.0 MiB / 40.0 MiB  5.0 MiB/s")
    bar.close()
    assert out.getvalue().endswith("\n")


def test_an_unknown_total_shows_bytes_and_rate_only() -> None:
    out, clock = Terminal(), Clock()
    bar = ProgressBar(out, "get k", clock=clock)
    clock.now += 1
    bar(3 * MIB, None)
    assert out.getvalue() == "\rget k  3.0 MiB  3.0 MiB/s"


def test_a_bar_only_on_a_terminal_and_not_when_quiet() -> None:
    assert progress_for(io.StringIO(), "x", quiet=False) is None
    assert progress_for(Terminal(), "x", quiet=True) is None
    assert isinstance(progress_for(Terminal(), "x", quiet=False), ProgressBar)


def _without_notice(text: str) -> str:
    """stderr without the embedded store's notice (one line per command)."""
    return "".join(
        line
        for line in text.splitlines(keepends=True)
        if not line.startswith("objectstore: no --url")
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBJECTSTORE_URL", raising=False)
    monkeypatch.delenv("OBJECTSTORE_TOKEN", raising=False)
    return tmp_path


def test_large_files_go_up_and_down_managed_with_a_bar_on_a_terminal(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = os.urandom(LARGE_FILE + MIB)
    (workdir / "big.bin").write_bytes(data)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["put", "big.bin", "--key", "big"]) == 0
    assert capsys.readouterr().out.strip() == "big"
    drawn = _without_notice(terminal.getvalue())
    assert drawn.startswith("\rput big.bin") and "MiB/s" in drawn and drawn.endswith("\n")
    assert main(["get", "big", "-o", "copy.bin"]) == 0
    assert (workdir / "copy.bin").read_bytes() == data
    assert "\rget big" in terminal.getvalue()
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(["put", "big.bin", "--key", "again", "--quiet"]) == 0
    assert main(["get", "again", "-o", "again.bin", "--quiet"]) == 0
    assert quiet.getvalue() == ""
    assert (workdir / "again.bin").read_bytes() == data


def test_no_bar_when_stderr_is_not_a_terminal(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "big.bin").write_bytes(os.urandom(LARGE_FILE + 1))
    assert main(["put", "big.bin", "--key", "big"]) == 0
    assert main(["get", "big", "-o", "copy.bin"]) == 0
    assert _without_notice(capsys.readouterr().err) == ""
    assert main(["get", "missing", "-o", "x.bin"]) == 1
    assert "not found" in capsys.readouterr().err
    assert not (workdir / "x.bin").exists()
