"""``objectstore serve`` flags for the emulator: ``--tls-cert``/``--tls-key`` and ``--fsync``."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from objectstore_sync._cli import main
from objectstore_sync.emulator import EmulatorServer, LocalCertificate

BOUND = 20.0  # seconds the served process may take to come up, at most


@pytest.fixture
def served_servers(monkeypatch: pytest.MonkeyPatch) -> list[EmulatorServer]:
    """``serve`` run in this process, returning at once instead of serving for ever."""
    made: list[EmulatorServer] = []

    def serve_once(server: EmulatorServer) -> None:
        made.append(server)

    monkeypatch.setattr(EmulatorServer, "serve_forever", serve_once)
    return made


def _serve(capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    status = main(["serve", "--port", "0", *flags])
    return status, capsys.readouterr().err


def test_fsync_is_on_by_default_with_a_data_dir(
    served_servers: list[EmulatorServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _serve(capsys, "--data-dir", str(tmp_path / "on"))[0] == 0
    status, err = _serve(capsys, "--data-dir", str(tmp_path / "off"), "--no-fsync")
    assert status == 0 and "no fsync" in err
    assert _serve(capsys, "--data-dir", str(tmp_path / "explicit"), "--fsync")[0] == 0
    fsyncs = [server.storage.fsync for server in served_servers]  # type: ignore[attr-defined]
    assert fsyncs == [True, False, True]


def test_fsync_without_a_data_dir_is_refused(
    served_servers: list[EmulatorServer], capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _serve(capsys, "--fsync")
    assert status == 2 and "--fsync needs --data-dir" in err
    assert served_servers == []


def test_tls_flags_go_together_and_name_bad_files(
    served_servers: list[EmulatorServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certificate = LocalCertificate.create()
    cert = tmp_path / "cert.pem"
    cert.write_text(certificate.cert_pem)
    status, err = _serve(capsys, "--tls-cert", str(cert))
    assert status == 2 and "--tls-cert and --tls-key go together" in err
    status, err = _serve(capsys, "--tls-cert", str(cert), "--tls-key", str(tmp_path / "none.pem"))
    assert status == 2 and "none.pem" in err and "PEM" in err
    wrong = tmp_path / "wrong.pem"
    wrong.write_text(LocalCertificate.create().key_pem)  # another certificate's key
    status, err = _serve(capsys, "--tls-cert", str(cert), "--tls-key", str(wrong))
    assert status == 2 and "wrong.pem" in err
    assert served_servers == []


def test_serve_with_tls_flags_speaks_https(tmp_path: Path) -> None:
    certificate = LocalCertificate.create()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text(certificate.cert_pem)
    key.write_text(certificate.key_pem)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "objectstore_sync", "serve", "--port", str(port)]
    command += ["--tls-cert", str(cert), "--tls-key", str(key)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    context = certificate.client_context()
    try:
        deadline = time.monotonic() + BOUND
        while True:
            try:
                url = f"https://127.0.0.1:{port}/health"
                with urllib.request.urlopen(url, timeout=2, context=context) as reply:
                    assert reply.read() == b"OK"
                    break
            except (OSError, ssl.SSLError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=BOUND)
    assert f"https://127.0.0.1:{port}" in err
