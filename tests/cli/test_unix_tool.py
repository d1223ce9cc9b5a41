"""The ``objectstore`` command behaves like a Unix tool.

It says which store it uses, never creates a store for a read, honours the
umask, stops quietly on a closed pipe, escapes control characters that come
from the server, and speaks of its own options and variables in its errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectstore_sync import Client, Usecase
from objectstore_sync._cli import main
from objectstore_sync.testing import LocalServer
from tests.auth.conftest import PRIVATE_PEM_PATH, PUBLIC_PEM


@pytest.fixture(autouse=True)
def _no_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("OBJECTSTORE_URL", "OBJECTSTORE_TOKEN", "OBJECTSTORE_KEY_ID", "OBJECTSTORE_KEY_FILE")
    for name in names:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBJECTSTORE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


# The embedded store is announced, and reads never create it.


@pytest.mark.parametrize("command", ["get", "head", "rm"])
def test_read_commands_say_which_store_and_create_no_directory(
    workdir: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    status, _, err = _run(capsys, command, "some-key")
    assert not (workdir / ".objectstore").exists()
    assert "embedded emulator" in err and "./.objectstore" in err
    assert "does not exist" in err
    assert err.count("embedded emulator") == 1
    if command == "rm":
        assert status == 0  # deleting what is not there succeeds, as on any store
    else:
        assert status == 1 and "not found" in err


def test_quiet_does_not_announce_the_store(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "f").write_bytes(b"data")
    status, out, err = _run(capsys, "put", "f", "--key", "k", "--quiet")
    assert (status, out, err) == (0, "k\n", "")
    status, _, err = _run(capsys, "head", "k", "-q")
    assert (status, err) == (0, "")


def test_a_data_dir_that_is_a_file_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "store").write_bytes(b"not a directory")
    for argv in (["head", "k"], ["put", "store"]):
        status, out, err = _run(capsys, *argv, "--data-dir", "store")
        assert (status, out) == (2, "")
        assert err == "objectstore: --data-dir 'store' is invalid: it is not a directory\n"


# -o honours the umask, keeps links and special files, and names the user's path.


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027])
def test_get_output_file_mode_follows_the_umask(
    workdir: Path, capsys: pytest.CaptureFixture[str], umask: int
) -> None:
    (workdir / "f").write_bytes(b"contents")
    with LocalServer() as server:
        assert _run(capsys, "put", "f", "--key", "k", "--url", server.url)[0] == 0
        previous = os.umask(umask)
        try:
            status, _, err = _run(capsys, "get", "k", "-o", "copy", "--url", server.url)
        finally:
            os.umask(previous)
    assert (status, err) == (0, "")  # a server given by --url is not announced
    assert (workdir / "copy").read_bytes() == b"contents"
    assert stat.S_IMODE((workdir / "copy").stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in workdir.iterdir()) == ["copy", "f"]  # no temp file left


def test_get_output_over_an_existing_file_keeps_its_mode(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "f").write_bytes(b"new contents")
    (workdir / "copy").write_bytes(b"old")
    (workdir / "copy").chmod(0o640)
    with LocalServer() as server:
        assert _run(capsys, "put", "f", "--key", "k", "--url", server.url)[0] == 0
        assert _run(capsys, "get", "k", "-o", "copy", "--url", server.url)[0] == 0
    assert (workdir / "copy").read_bytes() == b"new contents"
    assert stat.S_IMODE((workdir / "copy").stat().st_mode) == 0o640


def test_get_output_through_a_link_writes_its_target(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "f").write_bytes(b"new contents")
    (workdir / "real").write_bytes(b"old")
    (workdir / "link").symlink_to("real")
    with LocalServer() as server:
        assert _run(capsys, "put", "f", "--key", "k", "--url", server.url)[0] == 0
        assert _run(capsys, "get", "k", "-o", "link", "--url", server.url)[0] == 0
    assert (workdir / "link").is_symlink()
    assert (workdir / "real").read_bytes() == b"new contents"


def test_get_output_into_a_named_pipe_writes_into_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A special file (a pipe here, /dev/null alike) is written, never replaced by a file."""
    os.mkfifo(workdir / "pipe")
    # Held open for reading and writing, the pipe never blocks the command's open; the
    # contents are small enough to wait in the pipe's buffer.
    held = os.open(workdir / "pipe", os.O_RDWR | os.O_NONBLOCK)
    try:
        with LocalServer() as server:
            with Client(server.url) as client:
                client.session(Usecase("default")).put(b"through the pipe", key="k")
            status, _, err = _run(capsys, "get", "k", "-o", "pipe", "--url", server.url)
        assert (status, err) == (0, "")
        assert stat.S_ISFIFO((workdir / "pipe").stat().st_mode)
        assert os.read(held, 1000) == b"through the pipe"
    finally:
        os.close(held)


def test_get_output_into_a_missing_directory_names_the_path(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalServer() as server:
        status, _, err = _run(capsys, "get", "k", "-o", "missing/dir/file", "--url", server.url)
    assert status == 2  # refused before asking the server (which would say "not found")
    assert "-o 'missing/dir/file'" in err and "directory 'missing/dir' does not exist" in err
    assert ".objectstore-" not in err


def test_get_output_onto_a_directory_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "f").write_bytes(b"x")
    (workdir / "out").mkdir()
    with LocalServer() as server:
        assert _run(capsys, "put", "f", "--key", "k", "--url", server.url)[0] == 0
        status, _, err = _run(capsys, "get", "k", "-o", "out", "--url", server.url)
    assert (status, err) == (2, "objectstore: -o 'out' is invalid: it is a directory\n")
    assert sorted(p.name for p in workdir.iterdir()) == ["f", "out"]
    assert not any((workdir / "out").iterdir())


# Standard output closed early, full, or interrupted: quiet or named, never a traceback.


def test_get_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    payload = os.urandom(4 << 20)
    with LocalServer() as server:
        with Client(server.url) as client:
            client.session(Usecase("default")).put(payload, key="big", compress="none")
        with subprocess.Popen(
            [sys.executable, "-m", "objectstore_sync", "get", "big", "--url", server.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(),
            cwd=tmp_path,
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            assert process.stdout.read(10) == payload[:10]
            process.stdout.close()  # what `head -c 10` does
            err = process.stderr.read()
            status = process.wait()
    assert err == b""
    assert status == 141  # 128 + SIGPIPE, as a shell reports for `cat`


def test_ctrl_c_ends_a_download_without_a_traceback(tmp_path: Path) -> None:
    payload = os.urandom(8 << 20)
    with LocalServer() as server:
        with Client(server.url) as client:
            client.session(Usecase("default")).put(payload, key="big", compress="none")
        with subprocess.Popen(
            [sys.executable, "-m", "objectstore_sync", "get", "big", "--url", server.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(),
            cwd=tmp_path,
        ) as process:
            assert process.stdout is not None
            assert process.stdout.read(10) == payload[:10]  # it is writing, into a full pipe
            process.send_signal(signal.SIGINT)
            out, err = process.communicate()
    assert len(out) < len(payload) - 10  # stopped before the end
    assert (process.returncode, err) == (130, b"")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["get", "head"])
def test_a_full_standard_output_is_named(tmp_path: Path, command: str) -> None:
    with LocalServer() as server:
        with Client(server.url) as client:
            client.session(Usecase("default")).put(os.urandom(1 << 20), key="k")
        with open("/dev/full", "wb") as full:  # every write fails with ENOSPC
            done = subprocess.run(
                [sys.executable, "-m", "objectstore_sync", command, "k", "--url", server.url],
                stdout=full,
                stderr=subprocess.PIPE,
                env=_environment(),
                cwd=tmp_path,
            )
    assert done.returncode == 1
    assert done.stderr == b"objectstore: cannot write standard output: No space left on device\n"


@pytest.mark.parametrize("command", ["head", "put"])
def test_short_output_into_a_closed_pipe_is_quiet(tmp_path: Path, command: str) -> None:
    """Output small enough to sit in a buffer fails when flushed: still quiet."""
    (tmp_path / "f").write_bytes(b"x")
    with LocalServer() as server:
        with Client(server.url) as client:
            client.session(Usecase("default")).put(b"x", key="f")
        argv = ["head", "f"] if command == "head" else ["put", "f", "--key", "f"]
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before the command writes
        try:
            done = subprocess.run(
                [sys.executable, "-m", "objectstore_sync", *argv, "--url", server.url],
                stdout=write_end,
                stderr=subprocess.PIPE,
                env={**_environment(), "PYTHONUNBUFFERED": ""},
                cwd=tmp_path,
            )
        finally:
            os.close(write_end)
    assert (done.returncode, done.stderr) == (141, b"")


# Control characters from the server are escaped.


def test_printable_escapes_c0_del_c1_and_bidi_overrides() -> None:
    from objectstore_sync._cli import _printable

    assert _printable("a\x1b[2Jb\x07\x7f\x9bc\nd") == "a\\x1b[2Jb\\x07\\x7f\\x9bc\\x0ad"
    assert _printable("x\u202ey\u2066") == "x\\u202ey\\u2066"
    assert _printable("naïve café ✓") == "naïve café ✓"


def test_head_escapes_control_characters_in_stored_metadata(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = {"note": "a\x1b]0;owned\x07\x9b2J\x7f\u202eb"}
    with LocalServer() as server:
        with Client(server.url) as client:
            client.session(Usecase("default")).put(b"x", key="k", metadata=hostile)
        status, out, err = _run(capsys, "head", "k", "--url", server.url)
    assert (status, err) == (0, "")
    assert not any(char in out for char in "\x1b\x07\x9b\x7f\u202e")
    assert json.loads(out)["custom"] == hostile  # still JSON, with the same value


@pytest.fixture
def hostile_url() -> Iterator[str]:
    """A server that answers every request with a 500 whose detail holds terminal escapes."""
    body = b'{"detail": "boom\\u001b]0;owned\\u0007\\u001b[2J"}'
    head = (
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(head + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join(10)


def test_server_error_text_is_escaped(
    workdir: Path, capsys: pytest.CaptureFixture[str], hostile_url: str
) -> None:
    status, _, err = _run(capsys, "get", "k", "--url", hostile_url)
    assert status == 1
    assert "boom" in err
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b]0;owned\\x07\\x1b[2J" in err


# The CLI's own words in errors, contexts, --ttl 0, --version.


def test_signing_commands_name_the_cli_variables(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["token"],
        ["presign", "k", "--url", "http://127.0.0.1:9"],
        ["url", "k", "--validity", "60", "--url", "http://127.0.0.1:9"],
    ):
        status, out, err = _run(capsys, *argv)
        assert status == 2 and out == ""
        assert "OBJECTSTORE_KEY_ID" in err and "OBJECTSTORE_KEY_FILE" in err
        assert "Client(" not in err and "SecretKey" not in err


def test_refused_credentials_name_the_cli_variables(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "f").write_bytes(b"x")
    keys = {"reader": (PUBLIC_PEM, ["read"])}
    with LocalServer(auth_keys=keys, enforce_auth=True) as server:
        # No credentials at all: a 400, and how to give some.
        status, _, err = _run(capsys, "put", "f", "--url", server.url)
        assert status == 1 and "400" in err and "no credentials were given" in err
        assert "$OBJECTSTORE_TOKEN" in err and "$OBJECTSTORE_KEY_FILE" in err
        # A token the server cannot decode: a 401 that names where it came from.
        monkeypatch.setenv("OBJECTSTORE_TOKEN", "not.a.token")
        status, _, err = _run(capsys, "head", "f", "--url", server.url)
        assert status == 1 and "401" in err and "$OBJECTSTORE_TOKEN" in err
        assert "not.a.token" not in err
        # A valid key without the write permission: a 403 naming usecase and scope.
        monkeypatch.delenv("OBJECTSTORE_TOKEN")
        monkeypatch.setenv("OBJECTSTORE_KEY_ID", "reader")
        monkeypatch.setenv("OBJECTSTORE_KEY_FILE", str(PRIVATE_PEM_PATH))
        status, _, err = _run(capsys, "put", "f", "--url", server.url, "--scope", "org=7")
        assert status == 1 and "403" in err and "$OBJECTSTORE_KEY_ID" in err
        assert "'default'" in err and "org=7" in err
    assert "Client(" not in err and "SecretKey" not in err


@pytest.mark.parametrize("contents", [b"not a key\n", b"\xff\xfe binary"])
def test_a_bad_key_file_names_the_variable(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    contents: bytes,
) -> None:
    (workdir / "key.pem").write_bytes(contents)
    monkeypatch.setenv("OBJECTSTORE_KEY_ID", "kid")
    monkeypatch.setenv("OBJECTSTORE_KEY_FILE", "key.pem")
    status, out, err = _run(capsys, "token")
    assert (status, out) == (2, "")
    assert err.startswith("objectstore: $OBJECTSTORE_KEY_FILE 'key.pem' is invalid: ")
    assert "secret_key" not in err and "codec" not in err


def test_not_found_names_usecase_and_scope(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalServer() as server:
        argv = ["k", "--usecase", "attachments", "--scope", "org=7", "--url", server.url]
        for command in ("get", "head"):
            status, _, err = _run(capsys, command, *argv)
            assert status == 1
            assert "'k'" in err and "attachments" in err and "org=7" in err


def test_a_bad_server_url_names_where_it_came_from(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for argv in (["head", "k"], ["url", "k"]):
        status, out, err = _run(capsys, *argv, "--url", "localhost:8888")
        assert (status, out) == (2, "")
        assert err.startswith("objectstore: --url 'localhost:8888' is invalid: expected http://")
    monkeypatch.setenv("OBJECTSTORE_URL", "ftp://host")
    status, _, err = _run(capsys, "get", "k")
    assert status == 2 and err.startswith("objectstore: $OBJECTSTORE_URL 'ftp://host' is invalid")
    assert "base_url" not in err
    assert not (workdir / ".objectstore").exists()


@pytest.mark.parametrize("option", ["--ttl", "--tti"])
@pytest.mark.parametrize("value", ["0s", "0", "0d 0h"])
def test_zero_expiry_is_refused_before_any_io(
    workdir: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    (workdir / "f").write_bytes(b"x")
    status, _, err = _run(capsys, "put", "f", option, value, "-q")
    assert status == 2
    assert option in err and repr(value) in err and "longer than zero" in err
    assert not (workdir / ".objectstore").exists()


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["url", "k", "--validity", "0"], "--validity"),
        (["url", "k", "--validity", "nan"], "--validity"),
        (["presign", "k", "--duration", "-5"], "--duration"),
        (["presign", "k", "--duration", "700000"], "--duration"),
        (["token", "--expiry", "0"], "--expiry"),
    ],
)
def test_bad_lifetimes_name_the_option(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], option: str
) -> None:
    status, out, err = _run(capsys, *argv, "--url", "http://127.0.0.1:9")
    assert (status, out) == (2, "")
    assert f"{option} " in err and "seconds" in err
    assert "timedelta" not in err and "=" not in err


def test_version_from_the_console_script_and_the_module(tmp_path: Path) -> None:
    from importlib.metadata import version

    expected = f"objectstore {version('objectstore')}\n"
    script = Path(sys.executable).with_name("objectstore")
    for command in ([str(script)], [sys.executable, "-m", "objectstore_sync"]):
        done = subprocess.run(
            [*command, "--version"], capture_output=True, env=_environment(), cwd=tmp_path
        )
        assert (done.returncode, done.stdout.decode(), done.stderr) == (0, expected, b"")
