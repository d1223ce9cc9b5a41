"""Tests for objectstore_core._models: Usecase, Scope, Permission, expiration policies.

PROTOCOL §2.1 (usecase names), §2.2 (scopes), API §1.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
import string
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from objectstore_core import Permission, Scope, TimeToIdle, TimeToLive, Usecase
from objectstore_core._models import validate_compression

# PROTOCOL §2.2, spelled out independently of the implementation's constant.
SCOPE_ALPHABET = string.ascii_letters + string.digits + "_-()$!+'"
USECASE_ALPHABET = string.ascii_letters + string.digits + "_-"

fast = settings(max_examples=150, deadline=None)


# --------------------------------------------------------------------- Usecase


@pytest.mark.parametrize(
    "name",
    ["abc", "a" * 64, "attachments", "with_under-dash", "ABC123", "---", "___", "0" * 3],
)
def test_usecase_accepts_valid_names(name: str) -> None:
    assert Usecase(name).name == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a",
        "ab",
        "a" * 65,
        "has space",
        "dot.name",
        "slash/name",
        "semi;colon",
        "eq=ual",
        "café",
        "abc\n",
        "\nabc",
        "tab\tx",
        "perc%ent",
        "ünïcode",
    ],
)
def test_usecase_rejects_invalid_names_naming_the_value(name: str) -> None:
    with pytest.raises(ValueError) as info:
        Usecase(name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", [None, 123, b"attachments", ["abc"]])
def test_usecase_rejects_non_str_names(name: object) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        Usecase(name)  # type: ignore[arg-type]


@fast
@given(st.text(max_size=70))
def test_usecase_name_rule_matches_the_protocol(name: str) -> None:
    valid = 3 <= len(name) <= 64 and all(c in USECASE_ALPHABET for c in name)
    if valid:
        assert Usecase(name).name == name
    else:
        with pytest.raises(ValueError):
            Usecase(name)


def test_usecase_defaults() -> None:
    usecase = Usecase("attachments")
    assert usecase.compression == "zstd"
    assert usecase.expiration_policy is None
    assert usecase.resumable_threshold_bytes == 256 * 1024**2


@pytest.mark.parametrize("compression", ["gzip", "ZSTD", "", None, "identity"])
def test_usecase_rejects_unknown_compression(compression: object) -> None:
    with pytest.raises(ValueError) as info:
        Usecase("attachments", compression=compression)  # type: ignore[arg-type]
    assert repr(compression) in str(info.value)


@pytest.mark.parametrize("policy", ["ttl:1d", timedelta(days=1), 3600, object()])
def test_usecase_rejects_bad_expiration_policy_type(policy: object) -> None:
    with pytest.raises(TypeError):
        Usecase("attachments", expiration_policy=policy)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", [TimeToLive(timedelta(hours=1)), TimeToIdle(timedelta(0))])
def test_usecase_accepts_expiration_policies(policy: TimeToLive | TimeToIdle) -> None:
    assert Usecase("attachments", expiration_policy=policy).expiration_policy == policy


@pytest.mark.parametrize("threshold", [-1, True, False, 1.5, "all", None, "None"])
def test_usecase_rejects_bad_resumable_threshold(threshold: object) -> None:
    with pytest.raises(ValueError):
        Usecase("attachments", resumable_threshold_bytes=threshold)  # type: ignore[arg-type]


@pytest.mark.parametrize("threshold", [0, 1, 10**12, "none"])
def test_usecase_accepts_resumable_threshold(threshold: int | str) -> None:
    usecase = Usecase("attachments", resumable_threshold_bytes=threshold)  # type: ignore[arg-type]
    assert usecase.resumable_threshold_bytes == threshold


def test_usecase_is_frozen() -> None:
    usecase = Usecase("attachments")
    with pytest.raises(dataclasses.FrozenInstanceError):
        usecase.name = "other"  # type: ignore[misc]


def test_for_project_and_for_organization() -> None:
    usecase = Usecase("attachments")
    project = usecase.for_project(42, 1337)
    assert str(project) == "org=42;project=1337"
    assert project.items == (("org", "42"), ("project", "1337"))
    assert project.usecase is usecase
    org = usecase.for_organization(42)
    assert str(org) == "org=42"
    assert org.usecase is usecase
    assert str(usecase.for_organization("abc")) == "org=abc"


def test_usecase_scope_keeps_keyword_order() -> None:
    usecase = Usecase("attachments")
    scope = usecase.scope(project=2, org=1)
    assert str(scope) == "project=2;org=1"
    assert scope.usecase is usecase


def test_usecase_scope_components_are_validated() -> None:
    with pytest.raises(ValueError):
        Usecase("attachments").for_project("a.b", 1)
    with pytest.raises(ValueError):
        Usecase("attachments").scope(org="x y")


# ----------------------------------------------------------------------- Scope


def test_empty_scope_is_underscore() -> None:
    assert str(Scope()) == "_"
    assert str(Scope.from_items(())) == "_"
    assert len(Scope()) == 0
    assert Scope().items == ()


def test_scope_wire_form_and_order() -> None:
    scope = Scope(org=42, project=1337)
    assert str(scope) == "org=42;project=1337"
    assert repr(scope) == "Scope('org=42;project=1337')"
    reverse = Scope(project=1337, org=42)
    assert str(reverse) == "project=1337;org=42"
    assert scope != reverse  # order matters (PROTOCOL §2.2)


def test_scope_accessors() -> None:
    scope = Scope(org=1, project="two")
    assert scope.items == (("org", "1"), ("project", "two"))
    assert scope.dict() == {"org": 1, "project": "two"}  # the values as given, as official
    assert list(scope) == [("org", "1"), ("project", "two")]
    assert len(scope) == 2


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (True, "True"),
        (False, "False"),
        (0, "0"),
        (42, "42"),
        (-7, "-7"),
        (10**20, "100000000000000000000"),
        ("abc", "abc"),
    ],
)
def test_scope_value_rendering(value: str | int | bool, wire: str) -> None:
    assert str(Scope(x=value)) == f"x={wire}"


def test_scope_accepts_every_allowed_character() -> None:
    scope = Scope.from_items(((SCOPE_ALPHABET, SCOPE_ALPHABET),))
    assert str(scope) == f"{SCOPE_ALPHABET}={SCOPE_ALPHABET}"


BAD_SCOPE_TEXT = [
    "",
    ".",
    "a.b",
    "a/b",
    "a=b",
    "a;b",
    "a b",
    " ",
    "café",
    "é",
    "\u2603",
    "a\nb",
    "\t",
    "a%b",
    "a?b",
    "a#b",
    "a&b",
    "a:b",
    "a,b",
    "a*b",
    'a"b',
    "a\\b",
    "a\x00b",
]


@pytest.mark.parametrize("value", BAD_SCOPE_TEXT)
def test_scope_rejects_bad_values_naming_them(value: str) -> None:
    with pytest.raises(ValueError) as info:
        Scope(org=value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("name", BAD_SCOPE_TEXT)
def test_scope_rejects_bad_names_naming_them(name: str) -> None:
    with pytest.raises(ValueError) as info:
        Scope.from_items(((name, "1"),))
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["a.b", "a b", "x=y", ""])
def test_scope_kwargs_reject_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        Scope(**{name: 1})


@pytest.mark.parametrize("value", [None, 1.5, b"1", ["1"], object()])
def test_scope_rejects_other_types(value: object) -> None:
    # ValueError naming the value, as the official client raises.
    with pytest.raises(ValueError, match="must be a str, int or bool"):
        Scope(org=value)  # type: ignore[arg-type]


def test_push_returns_a_new_scope() -> None:
    base = Scope(org=1)
    pushed = base.push("project", 2)
    assert pushed is not base
    assert str(base) == "org=1"
    assert str(pushed) == "org=1;project=2"
    assert str(pushed.push("app_slug", "email_app")) == "org=1;project=2;app_slug=email_app"
    assert str(Scope().push("org", 1)) == "org=1"


def test_push_keeps_the_usecase() -> None:
    usecase = Usecase("attachments")
    scope = usecase.for_project(42, 1337).push("app_slug", "email_app")
    assert str(scope) == "org=42;project=1337;app_slug=email_app"
    assert scope.usecase is usecase


@pytest.mark.parametrize(("name", "value"), [("a.b", 1), ("org", "a/b"), ("org", "")])
def test_push_validates(name: str, value: str | int) -> None:
    base = Scope(org=1)
    with pytest.raises(ValueError):
        base.push(name, value)
    assert str(base) == "org=1"


def test_scope_is_immutable() -> None:
    scope = Scope(org=1)
    with pytest.raises(AttributeError):
        scope._items = ()
    with pytest.raises(AttributeError):
        scope.anything = 1
    assert str(scope) == "org=1"


def test_scope_equality_and_hash() -> None:
    assert Scope(org=1) == Scope(org="1")
    assert hash(Scope(org=1)) == hash(Scope(org="1"))
    assert Scope(org=1) != Scope(org=2)
    assert Scope(org=1) != "org=1"
    assert len({Scope(org=1), Scope(org="1"), Scope(org=2)}) == 2


def test_scope_pickle_and_copy_keep_usecase() -> None:
    scope = Usecase("attachments").for_project(1, 2)
    for clone in (pickle.loads(pickle.dumps(scope)), copy.deepcopy(scope), copy.copy(scope)):
        assert clone == scope
        assert clone.usecase == scope.usecase
        assert str(clone) == "org=1;project=2"


def test_duplicate_names_are_kept_in_order() -> None:
    scope = Scope.from_items((("org", 1), ("org", 2)))
    assert str(scope) == "org=1;org=2"
    assert Scope.parse("org=1;org=2").items == (("org", "1"), ("org", "2"))


@pytest.mark.parametrize(
    ("wire", "items"),
    [
        ("_", ()),
        ("org=1", (("org", "1"),)),
        ("org=42;project=1337", (("org", "42"), ("project", "1337"))),
        ("a=True;b=(x)$!+'", (("a", "True"), ("b", "(x)$!+'"))),
    ],
)
def test_scope_parse(wire: str, items: tuple[tuple[str, str], ...]) -> None:
    scope = Scope.parse(wire)
    assert scope.items == items
    assert str(scope) == wire
    assert scope.usecase is None


@pytest.mark.parametrize(
    "wire",
    [
        "",
        "org",
        "org=",
        "=1",
        "org=1;",
        ";org=1",
        "org=1;;project=2",
        "org=1=2",
        "a.b=1",
        "org=1 ",
        "org=a b",
        "_;org=1",
        "__",
        "org=café",
    ],
)
def test_scope_parse_rejects_invalid_wire_forms(wire: str) -> None:
    with pytest.raises(ValueError) as info:
        Scope.parse(wire)
    assert repr(wire) in str(info.value) or "invalid" in str(info.value)


scope_text = st.text(alphabet=SCOPE_ALPHABET, min_size=1, max_size=12)
scope_value = scope_text | st.integers() | st.booleans()


@fast
@given(st.lists(st.tuples(scope_text, scope_value), max_size=6))
def test_scope_round_trips_through_its_wire_form(
    items: list[tuple[str, str | int | bool]],
) -> None:
    scope = Scope.from_items(tuple(items))
    wire = str(scope)
    parsed = Scope.parse(wire)
    assert parsed == scope
    assert str(parsed) == wire
    assert len(parsed) == len(items)
    assert re.fullmatch(r"_|[^;=]+=[^;=]+(;[^;=]+=[^;=]+)*", wire)


@fast
@given(scope_text, st.text(min_size=1, max_size=12))
def test_scope_rejects_any_text_outside_the_alphabet(name: str, value: str) -> None:
    if all(c in SCOPE_ALPHABET for c in value):
        assert Scope.from_items(((name, value),)).items == ((name, value),)
    else:
        with pytest.raises(ValueError):
            Scope.from_items(((name, value),))


# ------------------------------------------------------------------ Permission


def test_permission_values() -> None:
    assert Permission.OBJECT_READ.value == "object.read"
    assert Permission.OBJECT_WRITE.value == "object.write"
    assert Permission.OBJECT_DELETE.value == "object.delete"
    assert isinstance(Permission.OBJECT_READ, str)
    assert str(Permission.OBJECT_READ) == "object.read"
    assert Permission.max() == [
        Permission.OBJECT_READ,
        Permission.OBJECT_WRITE,
        Permission.OBJECT_DELETE,
    ]
    assert Permission("object.write") is Permission.OBJECT_WRITE


# ---------------------------------------------------------- expiration policies


@pytest.mark.parametrize("cls", [TimeToLive, TimeToIdle])
def test_policy_validation(cls: type[TimeToLive] | type[TimeToIdle]) -> None:
    assert cls(timedelta(0)).delta == timedelta(0)
    assert cls(timedelta(days=30)).delta == timedelta(days=30)
    with pytest.raises(ValueError):
        cls(timedelta(seconds=-1))
    for bad in (30, 1.5, "30d", None):
        with pytest.raises(TypeError):
            cls(bad)  # type: ignore[arg-type]


def test_policies_are_frozen_values() -> None:
    ttl = TimeToLive(timedelta(hours=1))
    assert ttl == TimeToLive(timedelta(hours=1))
    assert hash(ttl) == hash(TimeToLive(timedelta(hours=1)))
    tti: object = TimeToIdle(timedelta(hours=1))
    assert ttl != tti
    with pytest.raises(dataclasses.FrozenInstanceError):
        ttl.delta = timedelta(0)  # type: ignore[misc]


# ---------------------------------------------------------------- compression


@pytest.mark.parametrize("value", ["zstd", "none"])
def test_validate_compression_accepts(value: str) -> None:
    assert validate_compression(value) == value


@pytest.mark.parametrize("value", ["ZSTD", "gzip", "", None, "identity", 1])
def test_validate_compression_rejects(value: object) -> None:
    with pytest.raises(ValueError) as info:
        validate_compression(value, "compress")
    assert repr(value) in str(info.value)
    assert "compress=" in str(info.value)


def test_hot_values_built_through_their_slots_stay_frozen_values() -> None:
    import dataclasses

    from objectstore_core import Request, Response
    from objectstore_core._h1 import ResponseHead
    from objectstore_core._http import SendRequest
    from objectstore_core._values import quick_setters

    request = Request("GET", "/k", (("a", "1"),), b"x", True)
    assert request == Request("GET", "/k", (("a", "1"),), b"x", True, None)
    assert dataclasses.replace(request, method="HEAD").method == "HEAD"
    response = Response(204)
    assert response.headers == {} and response.body == b"" and response == Response(204, {})
    assert Response(200).headers is not Response(200).headers  # no shared default dict
    head = ResponseHead(200, "OK", {"a": "b"}, True)
    step = SendRequest(request)
    assert (head.status, head.keep_alive, step.credentials) == (200, True, None)
    for value, name in (
        (request, "method"),
        (response, "status"),
        (head, "reason"),
        (step, "request"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, None)
    with pytest.raises(TypeError, match="not a slot"):
        quick_setters(Request, "with_headers")
