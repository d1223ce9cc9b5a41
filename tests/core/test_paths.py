"""Tests for objectstore_core._paths: percent-encoding, keys, base URLs, targets.

PROTOCOL §2.3 (keys), §2.4 (routes), §2.5 (percent-encoding by the clients).
"""

from __future__ import annotations

import re
import string
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objectstore_core import Scope, Target, Usecase, encode_path, encode_query
from objectstore_core._config import client_config, session_target
from objectstore_core._paths import split_base_url, validate_key

fast = settings(max_examples=200, deadline=None)

text = st.text(st.characters(blacklist_categories=["Cs"]))
# PROTOCOL §2.5: unreserved plus these stay literal; everything else is %XX.
LITERAL = set(string.ascii_letters + string.digits + "-._~" + "/:@!$&'()*+,;=")
_ESCAPE_RE = re.compile(r"%[0-9A-F]{2}")

# ----------------------------------------------------------------- encode_path


# The key table of PROTOCOL §2.5, exactly.
@pytest.mark.parametrize(
    ("key", "wire"),
    [
        ("with space", "with%20space"),
        ("café", "caf%C3%A9"),
        ("100%literal", "100%25literal"),
        ("a?b#c", "a%3Fb%23c"),
        ("[x]^|", "%5Bx%5D%5E%7C"),
        ("sub!$'()*+,=delims", "sub!$'()*+,=delims"),
        ("nested/path", "nested/path"),
    ],
)
def test_protocol_key_table(key: str, wire: str) -> None:
    assert encode_path(key) == wire


@pytest.mark.parametrize(
    ("path", "wire"),
    [
        ("", ""),
        ("~tilde._-", "~tilde._-"),
        ("a:b@c;d&e", "a:b@c;d&e"),
        ('"<>`{}\\', "%22%3C%3E%60%7B%7D%5C"),
        ("\t\r\n\x00\x7f", "%09%0D%0A%00%7F"),
        ("%20", "%2520"),
        ("😀", "%F0%9F%98%80"),
        ("é", "%C3%A9"),  # upper-case hex
    ],
)
def test_encode_path_more(path: str, wire: str) -> None:
    assert encode_path(path) == wire


@pytest.mark.parametrize(
    ("query", "wire"),
    [
        ("a?b c", "a?b%20c"),
        ("upload_id=x&part_number=1", "upload_id=x&part_number=1"),
        ("os_timestamp=2026-07-01T12:00:00+00:00", "os_timestamp=2026-07-01T12:00:00+00:00"),
        ("k=caf\u00e9#x", "k=caf%C3%A9%23x"),
        ("100%", "100%25"),
    ],
)
def test_encode_query(query: str, wire: str) -> None:
    assert encode_query(query) == wire


def test_encode_path_rejects_lone_surrogates() -> None:
    with pytest.raises(ValueError):
        encode_path("\ud800")


@fast
@given(text)
def test_encode_path_round_trips_and_uses_allowed_characters(key: str) -> None:
    wire = encode_path(key)
    assert unquote(wire, errors="strict") == key
    assert set(_ESCAPE_RE.sub("", wire)) <= LITERAL, wire
    assert wire.isascii()
    # every character that may stay literal does stay literal
    assert [c for c in key if c in LITERAL] == [c for c in _ESCAPE_RE.sub("", wire)]


@fast
@given(text)
def test_encode_query_round_trips(query: str) -> None:
    wire = encode_query(query)
    assert unquote(wire, errors="strict") == query
    assert set(_ESCAPE_RE.sub("", wire)) <= LITERAL | {"?"}


# ---------------------------------------------------------------------- targets

USECASE = Usecase("attachments")
SCOPE = USECASE.for_project(42, 1337)
PREFIX = "/v1/objects/attachments/org=42;project=1337/"


@pytest.mark.parametrize(
    ("key", "wire"),
    [
        ("k", "k"),
        ("with space", "with%20space"),
        ("100%", "100%25"),
        ("%20", "%2520"),
        ("a?b", "a%3Fb"),
        ("a#b", "a%23b"),
        ("a+b", "a+b"),
        ("café", "caf%C3%A9"),
        ("😀", "%F0%9F%98%80"),
        ("a/b/c", "a/b/c"),
        ("dir/", "dir/"),
        ("/leading", "/leading"),
        ("a//b", "a//b"),
        ("a b/c d", "a%20b/c%20d"),
        ("a\nb", "a%0Ab"),
        # dot segments are escaped so HTTP stacks cannot normalise them away
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a/../b", "a/%2E%2E/b"),
        ("a/./b/.", "a/%2E/b/%2E"),
        ("...", "..."),
        (".hidden/..x", ".hidden/..x"),
        ("events/abc.json", "events/abc.json"),
    ],
)
def test_target_object(key: str, wire: str) -> None:
    target = Target("", USECASE, SCOPE)
    assert target.object(key) == PREFIX + wire


def test_target_collection() -> None:
    assert Target("", USECASE, SCOPE).collection() == PREFIX
    assert Target("", USECASE, Scope()).collection() == "/v1/objects/attachments/_/"
    assert Target("/prefix", USECASE, Scope(org=1)).collection() == (
        "/prefix/v1/objects/attachments/org=1/"
    )


def test_target_other_resources_keep_the_colon_literal() -> None:
    # PROTOCOL §2.4: routes match the raw path, so ':' must not become %3A.
    target = Target("", USECASE, Scope(org=42))
    assert target.collection("objects:batch") == "/v1/objects:batch/attachments/org=42/"
    assert target.object("db.tar.zst", "objects:multipart") == (
        "/v1/objects:multipart/attachments/org=42/db.tar.zst"
    )


def test_target_with_base_path() -> None:
    target = Target("/api/store", USECASE, Scope(org=1))
    assert target.object("a b") == "/api/store/v1/objects/attachments/org=1/a%20b"


def test_scope_with_quote_and_parens_stays_literal() -> None:
    target = Target("", USECASE, Scope(app="(x)$!+'"))
    assert target.object("k") == "/v1/objects/attachments/app=(x)$!+'/k"


@fast
@given(text.filter(bool))
def test_target_object_decodes_back_to_the_key(key: str) -> None:
    wire = Target("", USECASE, SCOPE).object(key)
    assert wire.startswith(PREFIX)
    assert unquote(wire[len(PREFIX) :], errors="strict") == key
    # no dot segment an HTTP stack could remove (RFC 3986 §5.2.4)
    assert all(segment not in (".", "..") for segment in wire.split("/"))


@fast
@given(st.lists(st.sampled_from([".", "..", "a", "", "%", "é"]), min_size=1, max_size=6))
def test_target_object_with_dot_segments(segments: list[str]) -> None:
    key = "/".join(segments)
    if not key:
        return
    wire = Target("", USECASE, SCOPE).object(key)
    assert unquote(wire[len(PREFIX) :], errors="strict") == key
    assert all(segment not in (".", "..") for segment in wire.split("/"))


# ------------------------------------------------------------------ validate_key


@pytest.mark.parametrize("key", ["k", " ", "a/b", "/", "%", "😀", "x" * 5000])
def test_validate_key_accepts(key: str) -> None:
    assert validate_key(key) == key


def test_validate_key_rejects_empty() -> None:
    with pytest.raises(ValueError) as info:
        validate_key("")
    assert "''" in str(info.value)


def test_validate_key_rejects_unencodable() -> None:
    with pytest.raises(ValueError) as info:
        validate_key("a\ud800b")
    assert repr("a\ud800b") in str(info.value)


@pytest.mark.parametrize("key", [None, 1, b"k", ["k"]])
def test_validate_key_rejects_non_str(key: object) -> None:
    with pytest.raises(TypeError):
        validate_key(key)


# ---------------------------------------------------------------- split_base_url


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("http://localhost:8888", ("http", "localhost", 8888, "")),
        ("http://localhost:8888/", ("http", "localhost", 8888, "")),
        ("http://h", ("http", "h", 80, "")),
        ("https://h", ("https", "h", 443, "")),
        ("https://h/", ("https", "h", 443, "")),
        ("http://h/prefix", ("http", "h", 80, "/prefix")),
        ("http://h/prefix/", ("http", "h", 80, "/prefix")),
        ("http://h/prefix//", ("http", "h", 80, "/prefix")),
        ("https://h:8443/a/b/", ("https", "h", 8443, "/a/b")),
        ("http://127.0.0.1:8888/x", ("http", "127.0.0.1", 8888, "/x")),
        ("http://[::1]:8080/", ("http", "::1", 8080, "")),
        ("http://Objectstore.Example:80", ("http", "objectstore.example", 80, "")),
    ],
)
def test_split_base_url(url: str, parts: tuple[str, str, int, str]) -> None:
    assert split_base_url(url) == parts


@pytest.mark.parametrize(
    "url",
    [
        "",
        "localhost:8888",
        "localhost",
        "//h/path",
        "ftp://h",
        "file:///tmp/x",
        "http://",
        "http:///path",
        "http://h?x=1",
        "http://h/p?x=1",
        "http://h#frag",
        "http://h:abc",
        "http://h:99999",
        "http://h:-1",
        "http://[::1",
    ],
)
def test_split_base_url_rejects(url: str) -> None:
    with pytest.raises(ValueError) as info:
        split_base_url(url)
    assert repr(url) in str(info.value) or "Invalid" in str(info.value)


# Regression (bug found by this suite, since fixed): split_base_url uses 'parts.port or default',
#   so an explicit port 0 silently becomes 80/443 instead of being rejected
@pytest.mark.parametrize("url", ["http://h:0", "https://h:0/x"])
def test_split_base_url_rejects_port_zero(url: str) -> None:
    with pytest.raises(ValueError):
        split_base_url(url)


def test_split_base_url_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        split_base_url(b"http://h")  # type: ignore[arg-type]


# --------------------------------------------------------- config -> target


def test_session_target_from_usecase_and_kwargs() -> None:
    config = client_config("http://h:8888/prefix/")
    assert config.base_path == "/prefix"
    target = session_target(config, USECASE, {"org": 42, "project": 1337})
    assert (target.base_path, target.usecase, target.scope) == ("/prefix", USECASE, SCOPE)
    assert target.object("k") == "/prefix" + PREFIX + "k"


def test_session_target_from_scope() -> None:
    config = client_config("http://h")
    scope = SCOPE.push("app_slug", "email_app")
    target = session_target(config, scope, {})
    assert target.usecase is USECASE
    assert str(target.scope) == "org=42;project=1337;app_slug=email_app"


def test_session_target_carries_base_headers_but_never_shows_the_token() -> None:
    config = client_config("http://h", token="sekrit-token", user_agent="ua/1")
    target = session_target(config, USECASE, {"org": 1})
    headers = dict(target.headers)
    assert headers["user-agent"] == "ua/1"
    assert headers["x-os-auth"] == "Bearer sekrit-token"
    assert "sekrit" not in repr(target)


def test_session_target_rejects_ambiguous_or_incomplete_input() -> None:
    config = client_config("http://h")
    with pytest.raises(ValueError):
        session_target(config, Scope(org=1), {})  # no usecase
    with pytest.raises(ValueError):
        session_target(config, SCOPE, {"org": 1})  # both
    with pytest.raises(TypeError):
        session_target(config, "attachments", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        session_target(config, USECASE, {"org": "a.b"})
