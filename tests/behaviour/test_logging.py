"""The ``objectstore`` logger: one DEBUG line per request, one INFO line per retry.

Both twins, in-process and over loopback, must write the same lines for the
same operations (the lines are built once, in the core's flows), and no line
may ever hold a token, a signature or a pre-signed query.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from objectstore_async._driver import adrive
from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core import Request, Response, Scope
from objectstore_core._http import Clock
from objectstore_core._log import LOGGER_NAME, redact_target
from objectstore_core._operations import _send, head_flow
from objectstore_core._paths import Target
from objectstore_core.emulator import Authenticator, Fault, FaultPlan, MemoryStorage
from objectstore_sync import RetryPolicy, SecretKey, Unauthorized, Usecase
from objectstore_sync._driver import drive
from objectstore_sync._inprocess import InProcessTransport
from objectstore_sync.emulator import Emulator
from objectstore_sync.testing import LocalServer
from tests.auth.conftest import KID, PRIVATE_PEM, PUBLIC_PEM_PATH, key_directory
from tests.behaviour.twins import COMBOS, Twin

_scopes = itertools.count()
PAYLOAD = b"a line of log " * 100

# One DEBUG line: method, path, status, duration, bytes sent and received, attempt.
LINE = re.compile(
    r"^(?P<method>[A-Z]+) (?P<path>\S+) -> (?P<status>\S+) in (?P<ms>\d+\.\d) ms, "
    r"sent (?P<sent>.+?), received (?P<received>.+?), attempt (?P<attempt>\d+)$"
)
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
FAST_RETRY = RetryPolicy(max_attempts=3, backoff=0.01, jitter=0.0)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return Emulator(MemoryStorage(lock=threading.RLock()))


class Place:
    """Where a parametrised twin talks to: its URL, transport and fault plan."""

    def __init__(self, kind: str, url: str, transport: Any, faults: FaultPlan) -> None:
        self.kind, self.url, self.transport, self.faults = kind, url, transport, faults
        self._made: list[Twin] = []

    def twin(self, **kwargs: Any) -> Twin:
        kwargs.setdefault("timeout", 10)
        made = Twin(self.kind, self.url, self.transport, **kwargs)
        self._made.append(made)
        return made

    def close(self) -> None:
        for made in self._made:
            made.close()
        self.faults.clear()


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def place(request: pytest.FixtureRequest) -> Iterator[Place]:
    kind, where = request.param
    if where == "loopback":
        running: LocalServer = request.getfixturevalue("server")
        made = Place(kind, running.url, None, running.faults)
    else:
        emulator: Emulator = request.getfixturevalue("emulator")
        transport = (
            InProcessTransport(emulator) if kind == "sync" else AsyncInProcessTransport(emulator)
        )
        made = Place(kind, "http://objectstore.test", transport, emulator.faults)
    yield made
    made.close()


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.split(".")[0] == LOGGER_NAME]


def _lines(caplog: pytest.LogCaptureFixture, level: int | None = None) -> list[str]:
    return [r.getMessage() for r in _records(caplog) if level is None or r.levelno == level]


def _parsed(line: str) -> dict[str, str]:
    match = LINE.match(line)
    assert match is not None, line
    return match.groupdict()


def _operations(session: Any) -> None:
    """put, get (read whole), head, delete of one key."""
    session.put(PAYLOAD, key="doc")
    with session.get("doc") as response:
        assert response.read() == PAYLOAD
    assert session.head("doc") is not None
    session.delete("doc")


def test_one_debug_line_per_request(place: Place, caplog: pytest.LogCaptureFixture) -> None:
    session = place.twin().session(Usecase("attachments"), org=42, test=next(_scopes))
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    _operations(session)
    records = _records(caplog)
    assert [r.levelno for r in records] == [logging.DEBUG] * 4
    assert {r.name for r in records} == {LOGGER_NAME}
    put, get, head, delete = (_parsed(r.getMessage()) for r in records)
    path = f"/v1/objects/attachments/{session.scope}/doc"
    assert [(line["method"], line["path"]) for line in (put, get, head, delete)] == [
        ("PUT", path),
        ("GET", path),
        ("HEAD", path),
        ("DELETE", path),
    ]
    assert put["status"] in ("200", "201") and get["status"] == "200"
    assert head["status"] in ("200", "204") and delete["status"] in ("200", "204")
    assert {line["attempt"] for line in (put, get, head, delete)} == {"1"}
    # The put sends the zstd frame; the get receives the same stored bytes, read to the end.
    stored = put["sent"]
    assert re.fullmatch(r"\d+ bytes", stored) and int(stored.split()[0]) < len(PAYLOAD)
    assert get["received"] == stored
    assert head["sent"] == head["received"] == "0 bytes"
    assert delete["sent"] == "0 bytes"
    assert re.fullmatch(r"\d+ bytes", put["received"])  # the JSON body naming the key


def _scope_ids(session: Any) -> str:
    return str(session.scope)


def _normalised(lines: list[str], scope: str) -> list[str]:
    return [re.sub(r" in \d+\.\d ms", " in _ ms", line).replace(scope, "SCOPE") for line in lines]


def test_both_twins_write_the_same_lines(
    server: LocalServer, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    seen = []
    for kind, where in COMBOS:
        if where == "loopback":
            twin = Twin(kind, server.url, None, timeout=10)
        else:
            transport = (
                InProcessTransport(emulator)
                if kind == "sync"
                else AsyncInProcessTransport(emulator)
            )
            twin = Twin(kind, "http://objectstore.test", transport, timeout=10)
        try:
            session = twin.session(Usecase("attachments"), org=42, test=next(_scopes))
            caplog.clear()
            _operations(session)
            seen.append((kind, where, _normalised(_lines(caplog), _scope_ids(session))))
        finally:
            twin.close()
    first = seen[0][2]
    assert len(first) == 4
    for kind, where, lines in seen[1:]:
        assert lines == first, (kind, where)


def test_a_body_closed_early_says_so(place: Place, caplog: pytest.LogCaptureFixture) -> None:
    session = place.twin().session(Usecase("attachments"), org=42, test=next(_scopes))
    session.put(PAYLOAD * 50, key="big", compress="none")
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    response = session.get("big")
    assert _lines(caplog) == []  # written when the body ends, with what it received
    response.payload.read(10)
    response.close()
    (line,) = _lines(caplog)
    parsed = _parsed(line)
    assert parsed["method"] == "GET" and parsed["status"] == "200"
    assert parsed["received"].endswith(" bytes (closed before the end)")


def test_a_retried_status_logs_an_info_line(place: Place, caplog: pytest.LogCaptureFixture) -> None:
    session = place.twin(retry=FAST_RETRY).session(
        Usecase("attachments"), org=42, test=next(_scopes)
    )
    place.faults.inject(Fault.status(503), count=1, method="PUT", path=_scope_ids(session))
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    session.put(b"retried", key="doc")
    first, retry, second = _records(caplog)
    assert (first.levelno, retry.levelno, second.levelno) == (
        logging.DEBUG,
        logging.INFO,
        logging.DEBUG,
    )
    failed, done = _parsed(first.getMessage()), _parsed(second.getMessage())
    assert (failed["status"], failed["attempt"]) == ("503", "1")
    assert done["status"] in ("200", "201") and done["attempt"] == "2"
    path = f"/v1/objects/attachments/{_scope_ids(session)}/doc"
    assert retry.getMessage() == (
        f"retrying put (PUT {path}) after status 503: waiting 0.010 s before attempt 2"
    )


def test_a_retried_reset_names_the_error(place: Place, caplog: pytest.LogCaptureFixture) -> None:
    twin = place.twin(retry=FAST_RETRY)  # a fresh client: its first request opens a connection
    session = twin.session(Usecase("attachments"), org=42, test=next(_scopes))
    place.faults.inject(Fault.reset(), count=1, method="HEAD", path=_scope_ids(session))
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    assert session.head("missing") is None
    (line,) = _lines(caplog)
    path = f"/v1/objects/attachments/{_scope_ids(session)}/missing"
    assert line == f"retrying head (HEAD {path}) after ReadError: waiting 0.010 s before attempt 2"


def test_a_batch_logs_its_requests_and_retries(
    place: Place, caplog: pytest.LogCaptureFixture
) -> None:
    session = place.twin(retry=FAST_RETRY).session(
        Usecase("attachments"), org=42, test=next(_scopes)
    )
    session.put(PAYLOAD, key="there")
    place.faults.inject(Fault.status(503), count=1, method="POST", path=_scope_ids(session))
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    batch = session.many()
    batch.put(b"small", key="new")
    batch.get("there")
    batch.head("missing")
    results = batch.send()
    assert [r.ok for r in results] == [True, True, True]
    first, retry, second = _records(caplog)
    failed, done = _parsed(first.getMessage()), _parsed(second.getMessage())
    path = f"/v1/objects:batch/attachments/{_scope_ids(session)}/"
    assert (failed["method"], failed["path"], failed["status"]) == ("POST", path, "503")
    assert (done["status"], done["attempt"], failed["attempt"]) == ("200", "2", "1")
    assert done["sent"] == failed["sent"]  # the same body, sent again
    # Written once the multipart answer was read: every byte of it is counted.
    assert re.fullmatch(r"\d+ bytes", done["received"])
    assert int(done["received"].split()[0]) > len(b"small")
    assert retry.levelno == logging.INFO
    assert retry.getMessage() == (
        f"retrying batch (POST {path}) after status 503: waiting 0.010 s before attempt 2"
    )


def test_nothing_is_logged_below_the_levels(place: Place, caplog: pytest.LogCaptureFixture) -> None:
    session = place.twin(retry=FAST_RETRY).session(
        Usecase("attachments"), org=42, test=next(_scopes)
    )
    place.faults.inject(Fault.status(503), count=1, method="PUT", path=_scope_ids(session))
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    _operations(session)
    assert _records(caplog) == []


def test_debug_off_costs_no_clock_step(caplog: pytest.LogCaptureFixture) -> None:
    """With DEBUG off a request is one SendRequest step; with it on, timed by two Clocks."""
    target = Target("", Usecase("attachments"), Scope(), ())

    def steps() -> list[str]:
        flow = head_flow(target, "doc")
        step = next(flow)
        seen = []
        while True:
            seen.append(type(step).__name__)
            reply = 1.0 if isinstance(step, Clock) else Response(404)
            try:
                step = flow.send(reply)
            except StopIteration:
                return seen

    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    assert steps() == ["SendRequest"]
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    assert steps() == ["Clock", "SendRequest", "Clock"]
    (line,) = _lines(caplog)
    assert line == "HEAD /v1/objects/attachments/_/doc -> 404 in 0.0 ms, sent 0 bytes, " + (
        "received 0 bytes, attempt 1"
    )


# ------------------------------------------------------------------ secrets


@pytest.fixture(scope="module")
def auth_server() -> Iterator[LocalServer]:
    with LocalServer(auth_keys={KID: PUBLIC_PEM_PATH}, enforce_auth=True) as running:
        yield running


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def auth_place(request: pytest.FixtureRequest) -> Place:
    kind, where = request.param
    if where == "loopback":
        running: LocalServer = request.getfixturevalue("auth_server")
        return Place(kind, running.url, None, running.faults)
    emulator = Emulator(MemoryStorage(), authorize=Authenticator(key_directory()))
    transport = (
        InProcessTransport(emulator) if kind == "sync" else AsyncInProcessTransport(emulator)
    )
    return Place(kind, "http://objectstore.test", transport, emulator.faults)


def _assert_no_secret(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    records = _records(caplog)
    assert records
    text = "\n".join([caplog.text, *(r.getMessage() for r in records)])
    assert not JWT.search(text)
    for word in ("bearer", "authorization", "os_sig", "os_exp", "os_kid", "os_duration"):
        assert word not in text.lower()
    for secret in secrets:
        assert secret not in text


def test_a_token_is_never_logged(auth_place: Place, caplog: pytest.LogCaptureFixture) -> None:
    key = SecretKey(KID, PRIVATE_PEM)
    twin = auth_place.twin(token=key, retry=FAST_RETRY)
    try:
        session = twin.session(Usecase("attachments"), org=42, test=next(_scopes))
        auth_place.faults.inject(Fault.status(503), count=1, method="PUT", path=_scope_ids(session))
        caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
        _operations(session)
        token = _unwrapped(session).mint_token()
        unauthorized = auth_place.twin(token="not-a-valid-token")
        with pytest.raises(Unauthorized):
            unauthorized.session(Usecase("attachments"), org=42).head("doc")
    finally:
        auth_place.close()
    assert len(_lines(caplog, logging.INFO)) == 1  # the retry
    assert len(_lines(caplog, logging.DEBUG)) == 6  # put twice, get, head, delete, the 401
    _header, payload, signature = token.split(".")
    _assert_no_secret(caplog, payload, signature, "not-a-valid-token")


def _unwrapped(session: Any) -> Any:
    """The twin's own session behind a blocking view (its non-I/O methods are sync)."""
    return getattr(session, "_session", session)


def _presigned_get(target: Target, path_and_query: str) -> Any:
    response = yield from _send(target, Request("GET", path_and_query), "get", "doc")
    return response


def test_a_presigned_url_request_never_logs_its_query(
    auth_place: Place, caplog: pytest.LogCaptureFixture
) -> None:
    signer = auth_place.twin(token=SecretKey(KID, PRIVATE_PEM))
    anonymous = auth_place.twin()  # no token: the signed query alone authorises the request
    try:
        scope = next(_scopes)
        session = signer.session(Usecase("attachments"), org=42, test=scope)
        session.put(PAYLOAD, key="doc", compress="none")
        url = _unwrapped(session).presigned_object_url("GET", "doc")
        parts = urlsplit(url)
        path_and_query = f"{parts.path}?{parts.query}"
        assert "os_sig=" in path_and_query
        target = _unwrapped(
            anonymous.session(Usecase("attachments"), org=42, test=scope)
        )._flows.target
        caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
        if anonymous.portal is None:
            response, held = drive(
                _presigned_get(target, path_and_query), anonymous.client._transport
            )
            body = held.read() if held is not None else response.body
            if held is not None:
                held.close()
        else:

            async def run() -> tuple[Response, bytes]:
                flow = _presigned_get(target, path_and_query)
                response, held = await adrive(flow, anonymous.client._transport)
                if held is None:
                    return response, response.body
                data = await held.read()
                await held.aclose()
                return response, bytes(data)

            response, body = anonymous.portal.call(run)
    finally:
        auth_place.close()
    assert response.status == 200 and bytes(body) == PAYLOAD  # the server took the signature
    (line,) = _lines(caplog)
    path = f"/v1/objects/attachments/org=42;test={scope}/doc"
    assert _parsed(line)["path"] == f"{path}?[redacted]"
    signature = path_and_query.rpartition("os_sig=")[2]
    _assert_no_secret(caplog, signature, path_and_query.partition("?")[2])


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/v1/objects/u/_/k", "/v1/objects/u/_/k"),
        ("/v1/objects/u/_/k?uploads", "/v1/objects/u/_/k?uploads"),
        (
            "/v1/objects/u/_/k?upload_id=abc&part_number=2",
            "/v1/objects/u/_/k?upload_id=abc&part_number=2",
        ),
        ("/v1/objects/u/_/k?os_kid=kid&os_exp=1&os_sig=c2ln", "/v1/objects/u/_/k?[redacted]"),
        ("/v1/objects/u/_/k?x=1&OS_SIG=c2ln", "/v1/objects/u/_/k?[redacted]"),
        ("/v1/objects/u/_/k?os%5Fsig=c2ln", "/v1/objects/u/_/k?[redacted]"),
        ("/v1/objects/u/_/k?os_auth=eyJ.eyJ.c2ln", "/v1/objects/u/_/k?[redacted]"),
        ("/v1/objects/u/_/k?session=0f3a&x=1", "/v1/objects/u/_/k?session=[redacted]&x=1"),
        ("/v1/objects/u/_/k?upload_type=resumable", "/v1/objects/u/_/k?upload_type=resumable"),
    ],
)
def test_redact_target(target: str, logged: str) -> None:
    assert redact_target(target) == logged
