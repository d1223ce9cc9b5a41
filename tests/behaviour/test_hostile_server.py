"""Both twins against a broken or hostile server (issue: hardening).

Scripted loopback peers play what the emulator will not do (hand out
unsafe keys, repeat metadata headers, send a body without end); the
emulator, in process and on loopback, stores what a hostile writer could
(a decompression bomb, metadata at the server's limits). Memory bounds are
asserted by behaviour: the error comes, and the streamed alternative works
in small pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from objectstore_async.testing import AsyncInProcessTransport
from objectstore_core import IntegrityError, ProtocolError, RetryPolicy, Timeout, Usecase
from objectstore_core._download import DEFAULT_CHUNK
from objectstore_core._h1 import chunk_header
from objectstore_sync._inprocess import InProcessTransport
from objectstore_sync.emulator import Emulator
from objectstore_sync.testing import LocalServer
from tests.behaviour.peers import Peer, PeerConnection, json_response, response
from tests.behaviour.twins import COMBOS, Twin
from tests.zstd_frames import rle_frame

KIB = 1024
MIB = 1024 * KIB
NO_RETRIES = RetryPolicy(max_attempts=1)
BOMB = rle_frame(16 * MIB // (128 * KIB))  # 512 bytes of zstd that decode to 16 MiB

Serve = Callable[[Callable[[PeerConnection], None]], Peer]


# ---------------------------------------------------------- scripted peers


@pytest.fixture(params=["sync", "asyncio", "trio"])
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def serve() -> Iterator[Serve]:
    peers: list[Peer] = []

    def serve(script: Callable[[PeerConnection], None]) -> Peer:
        peer = Peer(script).start()
        peers.append(peer)
        return peer

    yield serve
    for peer in peers:
        peer.close()


@pytest.fixture
def connect(kind: str, serve: Serve) -> Iterator[Callable[..., Any]]:
    """``connect(peer, **client_kwargs)``: a blocking session of this twin on the peer."""
    twins: list[Twin] = []

    def connect(peer: Peer, **kwargs: Any) -> Any:
        twin = Twin(
            kind, peer.url, None, timeout=Timeout(connect=10, read=5), retry=NO_RETRIES, **kwargs
        )
        twins.append(twin)
        return twin.session(Usecase("hostile"), org=1)

    yield connect
    for twin in twins:
        twin.close()


def answering(data: bytes) -> Callable[[PeerConnection], None]:
    """A script: answer every request with ``data``."""

    def script(conn: PeerConnection) -> None:
        while conn.read_request() is not None:
            conn.send(data)

    return script


@pytest.mark.parametrize(
    ("key", "answer"),
    [
        (None, {"key": "\x1b[2Jsurprise"}),  # an escape sequence, for a terminal or a log
        (None, {"key": "a\x00b"}),
        (None, {"key": "line\nbreak"}),
        ("mine", {"key": "theirs"}),  # a keyed put names the key written (§3.2)
        ("mine", {"key": "mine/"}),
    ],
)
def test_a_key_the_server_should_not_have_returned_is_a_protocol_error(
    serve: Serve, connect: Callable[..., Any], key: str | None, answer: dict[str, str]
) -> None:
    session = connect(serve(answering(json_response(201 if key is None else 200, answer))))
    with pytest.raises(ProtocolError, match="answered with"):
        session.put(b"data", key=key)


def test_keys_the_server_should_return_are_taken(serve: Serve, connect: Callable[..., Any]) -> None:
    generated = "3f2b1c9e-8d4a-4f51-9c2e-0b7a6d5e4c31"
    session = connect(serve(answering(json_response(201, {"key": generated}))))
    assert session.put(b"data") == generated
    session = connect(serve(answering(json_response(200, {"key": "a b/ü"}))))
    assert session.put(b"data", key="a b/ü") == "a b/ü"


METADATA = [("content-type", "text/plain"), ("x-snme-build", "1")]
BAD_HEADS = {
    "repeated custom entry": [*METADATA, ("x-snme-build", "2")],
    "repeated origin": [*METADATA, ("x-sn-origin", "a"), ("x-sn-origin", "b")],
    "NUL in a custom value": [*METADATA, ("x-snme-evil", "a\x00b")],
}


@pytest.mark.parametrize("headers", list(BAD_HEADS.values()), ids=list(BAD_HEADS))
@pytest.mark.parametrize("operation", ["get", "head"])
def test_metadata_headers_a_server_should_not_send_are_a_protocol_error(
    serve: Serve, connect: Callable[..., Any], headers: list[tuple[str, str]], operation: str
) -> None:
    status, body = (200, b"ok") if operation == "get" else (204, b"")
    session = connect(serve(answering(response(status, body, headers))))
    with pytest.raises(ProtocolError):
        fetch_metadata(session, operation)


def fetch_metadata(session: Any, operation: str) -> Any:
    """The metadata of ``k`` by ``get`` (the response then closed) or ``head``."""
    if operation == "head":
        return session.head("k")
    got = session.get("k")
    assert got is not None
    with got:
        return got.metadata


def test_well_formed_metadata_headers_are_read(serve: Serve, connect: Callable[..., Any]) -> None:
    session = connect(serve(answering(response(200, b"ok", METADATA))))
    got = session.get("k")
    assert got is not None
    with got:
        assert got.metadata.custom == {"build": "1"}
        assert got.read() == b"ok"


def endless_chunked_body(conn: PeerConnection) -> None:
    """Answer with a chunked body that goes on until the client leaves (64 MiB at most)."""
    assert conn.read_request() is not None
    conn.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")
    piece = chunk_header(64 * KIB) + b"x" * 64 * KIB + b"\r\n"
    for _ in range(1024):
        conn.send(piece)
    conn.wait_for_close(1)


def test_an_endless_body_read_whole_stops_at_max_read_size(
    serve: Serve, connect: Callable[..., Any]
) -> None:
    session = connect(serve(endless_chunked_body), max_read_size=MIB)
    got = session.get("endless")
    assert got is not None
    with got, pytest.raises(IntegrityError, match=r"max_read_size=1048576") as info:
        got.read()
    assert info.value.key == "endless"


def test_userinfo_in_the_url_is_refused_before_connecting(kind: str, serve: Serve) -> None:
    peer = serve(answering(response(200, b"ok")))
    url = peer.url.replace("http://", "http://user:secret@")
    with pytest.raises(ValueError, match="must not contain a user name or password") as info:
        Twin(kind, url).close()
    assert "secret" not in str(info.value)
    assert peer.connection_count == 0


# ---------------------------------------------------------------- emulator


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def make_twin(request: pytest.FixtureRequest) -> Iterator[Callable[..., Twin]]:
    """``make_twin(**client_kwargs)`` for every twin and transport of the suite."""
    kind, where = request.param
    made: list[Twin] = []

    def make(**kwargs: Any) -> Twin:
        if where == "loopback":
            server: LocalServer = request.getfixturevalue("loopback_server")
            twin = Twin(kind, server.url, None, timeout=10, **kwargs)
        else:
            emulator: Emulator = request.getfixturevalue("emulator")
            transport = (
                InProcessTransport(emulator)
                if kind == "sync"
                else AsyncInProcessTransport(emulator)
            )
            twin = Twin(kind, "http://objectstore.test", transport, timeout=10, **kwargs)
        made.append(twin)
        return twin

    yield make
    for twin in made:
        twin.close()


_scopes = iter(range(1_000_000))


def new_session(twin: Twin, scope: int | None = None) -> Any:
    """A session of ``twin`` in a scope of its own (or in scope number ``scope``)."""
    return twin.session(
        Usecase("attachments"), org=17, hostile=next(_scopes) if scope is None else scope
    )


def test_a_decompression_bomb_read_whole_stops_at_max_read_size(
    make_twin: Callable[..., Twin],
) -> None:
    session = new_session(make_twin(max_read_size=MIB))
    session.put(BOMB, key="bomb", precompressed="zstd")

    got = session.get("bomb")
    assert got is not None
    with got, pytest.raises(IntegrityError, match=r"max_read_size=1048576"):
        got.read()
    assert decoded(got) <= MIB + 1  # not the other 15 MiB
    # The same object streams in small pieces, the bound notwithstanding.
    got = session.get("bomb")
    assert got is not None
    with got:
        sizes = [len(chunk) for chunk in got.iter_bytes()]
    assert sum(sizes) == 16 * MIB and max(sizes) <= DEFAULT_CHUNK


def decoded(got: Any) -> int:
    """How much of a response's payload was decoded (the twin's download state)."""
    payload = got.payload
    payload = getattr(payload, "_payload", payload)  # the async twin, seen through the portal
    count: int = payload._download.decoded
    return count


@pytest.mark.parametrize("how", ["read", "iter_bytes"])
def test_a_frame_holding_more_than_it_declares_is_refused(
    make_twin: Callable[..., Twin], how: str
) -> None:
    """It declares 2 MiB and holds 16 MiB: refused after at most one byte too many."""
    session = new_session(make_twin())
    session.put(rle_frame(128, declared=2 * MIB), key="liar", precompressed="zstd")
    got = session.get("liar")
    assert got is not None
    with got, pytest.raises(IntegrityError, match="zstd data is corrupt"):
        got.read() if how == "read" else list(got.iter_bytes())
    assert decoded(got) <= 2 * MIB + 1


def test_max_read_size_per_get_overrides_the_client(make_twin: Callable[..., Twin]) -> None:
    scope = next(_scopes)
    unbounded = new_session(make_twin(), scope)
    unbounded.put(BOMB, key="bomb", precompressed="zstd")
    got = unbounded.get("bomb", max_read_size=4 * MIB)
    assert got is not None
    with got, pytest.raises(IntegrityError, match=r"max_read_size=4194304"):
        got.read()

    bounded = new_session(make_twin(max_read_size=MIB), scope)
    got = bounded.get("bomb", max_read_size=16 * MIB)
    assert got is not None
    with got:
        assert got.read() == bytes(16 * MIB)


def test_a_raw_object_over_max_read_size_is_refused_before_reading(
    make_twin: Callable[..., Twin],
) -> None:
    session = new_session(make_twin(max_read_size=100 * KIB))
    session.put(b"r" * 200 * KIB, key="raw", compress="none")
    got = session.get("raw")
    assert got is not None
    with got, pytest.raises(IntegrityError, match=r"max_read_size=102400.*announced 204800"):
        got.read()
    session.put(b"r" * 100 * KIB, key="fits", compress="none")
    got = session.get("fits")
    assert got is not None
    with got:
        assert got.read() == b"r" * 100 * KIB


@pytest.mark.parametrize("value", [-1, 2.5, "big"])
def test_max_read_size_is_validated(make_twin: Callable[..., Twin], value: object) -> None:
    with pytest.raises(ValueError, match="max_read_size"):
        make_twin(max_read_size=value)
    session = new_session(make_twin())
    with pytest.raises(ValueError, match="max_read_size"):
        session.get("k", max_read_size=value)


def test_metadata_the_server_would_refuse_is_refused_before_sending(
    make_twin: Callable[..., Twin],
) -> None:
    session = new_session(make_twin())
    with pytest.raises(ValueError, match="3000 custom entries is too many"):
        session.put(b"x", key="many", metadata={f"k{i}": "v" for i in range(3000)})
    with pytest.raises(ValueError, match="'x-snme-big' with a value of 450000 bytes"):
        session.put(b"x", key="big", metadata={"big": "b" * 450_000})
    assert session.head("many") is None and session.head("big") is None


def test_metadata_the_server_accepts_reads_back(make_twin: Callable[..., Twin]) -> None:
    """A 300 KB value and a 100 KB filename: the response head is larger than 256 KiB."""
    session = new_session(make_twin())
    custom = {"big": "b" * 300_000, **{f"k{i}": str(i) for i in range(60)}}
    filename = "f" * 100_000
    session.put(b"x", key="large-meta", metadata=custom, filename=filename)

    head = session.head("large-meta")
    assert head is not None and head.custom == custom and head.filename == filename
    got = session.get("large-meta")
    assert got is not None
    with got:
        assert got.metadata.custom == custom and got.read() == b"x"
