"""Table-driven tests for rat_engine.routing: rule compilation, precedence, converters, 404/405."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rat_engine.exceptions import RouteError
from rat_engine.routing import Match, MethodNotAllowed, NotFound, Router, compile_rule

# ---------------------------------------------------------------------------------------------
# compile_rule
# ---------------------------------------------------------------------------------------------

ACCEPTED_RULES = [
    # rule, param names, converter names, is_static
    ("/", (), (), True),
    ("/a/b", (), (), True),
    ("/a/b/", (), (), True),
    ("/a.b-c_d~e", (), (), True),
    ("/api/progress/<session_id>", ("session_id",), ("str",), False),
    ("/<int:id>", ("id",), ("int",), False),
    ("/<float:x>", ("x",), ("float",), False),
    ("/<str:s>", ("s",), ("str",), False),
    ("/<uuid:u>", ("u",), ("uuid",), False),
    ("/<path:p>", ("p",), ("path",), False),
    ("/files/<path:p>", ("p",), ("path",), False),
    ("/u/<int:id>/f/<path:p>", ("id", "p"), ("int", "path"), False),
    ("/<a>/<b>/<c>", ("a", "b", "c"), ("str", "str", "str"), False),
    ("/x/<_private>/", ("_private",), ("str",), False),
    ("/x/<CamelCase9>", ("CamelCase9",), ("str",), False),
    # <path> is the last *placeholder*; static text after it is allowed by the grammar.
    ("/<path:p>/edit", ("p",), ("path",), False),
]


@pytest.mark.parametrize(("rule", "names", "conv_names", "is_static"), ACCEPTED_RULES)
def test_compile_rule_accepts(
    rule: str, names: tuple[str, ...], conv_names: tuple[str, ...], is_static: bool
) -> None:
    compiled = compile_rule(rule)
    assert compiled.rule == rule
    assert compiled.is_static is is_static
    assert compiled.param_names == names
    assert tuple(conv.name for _, conv in compiled.converters) == conv_names
    if is_static:
        assert compiled.regex is None
        assert compiled.signature == rule
    else:
        assert compiled.regex is not None


REJECTED_RULES = [
    pytest.param("", id="empty"),
    pytest.param("a/b", id="no-leading-slash"),
    pytest.param("<x>", id="placeholder-without-slash"),
    pytest.param("//", id="double-slash-root"),
    pytest.param("/a//b", id="empty-segment"),
    pytest.param("/a/<x>//", id="empty-segment-after-placeholder"),
    pytest.param("/<foo:x>", id="unknown-converter"),
    pytest.param("/<INT:x>", id="converter-name-case-sensitive"),
    pytest.param("/<1x>", id="name-starts-with-digit"),
    pytest.param("/<int:1x>", id="typed-name-starts-with-digit"),
    pytest.param("/<a-b>", id="name-with-dash"),
    pytest.param("/<a b>", id="name-with-space"),
    pytest.param("/<>", id="empty-name"),
    pytest.param("/<int:>", id="typed-empty-name"),
    pytest.param("/<:x>", id="empty-converter"),
    pytest.param("/<int:a:b>", id="two-colons"),
    pytest.param("/<x>/<x>", id="duplicated-name"),
    pytest.param("/<int:x>/<str:x>", id="duplicated-name-different-types"),
    pytest.param("/<path:p>/<x>", id="path-not-last"),
    pytest.param("/<path:p>/<path:q>", id="two-paths"),
    pytest.param("/a<b>", id="placeholder-glued-after-static"),
    pytest.param("/<a>b", id="placeholder-glued-before-static"),
    pytest.param("/<a><b>", id="two-placeholders-one-segment"),
    pytest.param("/x-<int:id>", id="prefix-in-segment"),
    pytest.param("/<x", id="unbalanced-open"),
    pytest.param("/x>", id="unbalanced-close"),
    pytest.param("/a/<x>/b>", id="stray-close-after-placeholder"),
    pytest.param("/<<x>>", id="nested-brackets"),
    pytest.param("/<x>>", id="double-close"),
    pytest.param("/<a/b>", id="slash-inside-placeholder"),
]


@pytest.mark.parametrize("rule", REJECTED_RULES)
def test_compile_rule_rejects(rule: str) -> None:
    with pytest.raises(RouteError):
        compile_rule(rule)


@pytest.mark.parametrize("rule", [None, b"/a", 5, ["/"]])
def test_compile_rule_rejects_non_str(rule: object) -> None:
    with pytest.raises(RouteError):
        compile_rule(rule)  # type: ignore[arg-type]


def test_router_add_rejects_malformed_rule() -> None:
    router: Router[str] = Router()
    with pytest.raises(RouteError):
        router.add("/a<b>", ["GET"], "x")
    assert router.rules() == []


# ---------------------------------------------------------------------------------------------
# Router.match
# ---------------------------------------------------------------------------------------------

UID = "12345678-1234-5678-1234-567812345678"

ROUTES: list[tuple[str, tuple[str, ...], str]] = [
    ("/", ("GET",), "root"),
    ("/users/<name>", ("GET",), "user"),  # registered before the static one on purpose
    ("/users/me", ("GET",), "me"),
    ("/item/<s>", ("GET",), "item_str"),  # registered before the int one on purpose
    ("/item/<int:id>", ("GET",), "item_int"),
    ("/f/<float:x>", ("GET",), "float"),
    ("/u/<uuid:u>", ("GET",), "uuid"),
    ("/files/<path:p>", ("GET",), "files"),
    ("/api/progress/<session_id>", ("GET",), "progress"),
    ("/only-int/<int:n>", ("GET",), "only_int"),
    ("/post-only", ("POST",), "post_only"),
    ("/multi", ("GET", "PUT"), "multi_get_put"),
    ("/multi", ("DELETE",), "multi_delete"),
    ("/d/<int:id>", ("post",), "d_post"),  # lower-case method names are normalised
    ("/explicit-head", ("GET",), "eh_get"),
    ("/explicit-head", ("HEAD",), "eh_head"),
    ("/a/<x>", ("GET",), "a_x"),
    ("/<y>/b", ("GET",), "y_b"),
    ("/p/<path:p>/edit", ("GET",), "p_edit"),
]


@pytest.fixture(scope="module")
def router() -> Router[str]:
    r: Router[str] = Router()
    for rule, methods, endpoint in ROUTES:
        r.add(rule, list(methods), endpoint)
    return r


def M(endpoint: str, params: dict[str, object], rule: str) -> Match[str]:
    return Match(endpoint, params, rule)


MATCH_TABLE = [
    # static
    ("GET", "/", M("root", {}, "/")),
    ("GET", "/users/me", M("me", {}, "/users/me")),
    ("HEAD", "/users/me", M("me", {}, "/users/me")),
    ("GET", "/users/bob", M("user", {"name": "bob"}, "/users/<name>")),
    ("GET", "/users/m%C3%A9", M("user", {"name": "m%C3%A9"}, "/users/<name>")),
    ("GET", "/users/中文", M("user", {"name": "中文"}, "/users/<name>")),
    ("GET", "/users/", NotFound()),
    ("GET", "/users", NotFound()),
    ("GET", "/users/a/b", NotFound()),
    ("GET", "/USERS/me", NotFound()),
    ("GET", "", NotFound()),
    ("GET", "/nope", NotFound()),
    # int beats str whatever the registration order
    ("GET", "/item/5", M("item_int", {"id": 5}, "/item/<int:id>")),
    ("GET", "/item/+5", M("item_int", {"id": 5}, "/item/<int:id>")),
    ("GET", "/item/-3", M("item_int", {"id": -3}, "/item/<int:id>")),
    ("GET", "/item/007", M("item_int", {"id": 7}, "/item/<int:id>")),
    ("GET", "/item/abc", M("item_str", {"s": "abc"}, "/item/<s>")),
    ("GET", "/item/5.0", M("item_str", {"s": "5.0"}, "/item/<s>")),
    ("GET", "/item/5a", M("item_str", {"s": "5a"}, "/item/<s>")),
    ("GET", "/item/--5", M("item_str", {"s": "--5"}, "/item/<s>")),
    # float
    ("GET", "/f/1.5", M("float", {"x": 1.5}, "/f/<float:x>")),
    ("GET", "/f/-2", M("float", {"x": -2.0}, "/f/<float:x>")),
    ("GET", "/f/+2.5", M("float", {"x": 2.5}, "/f/<float:x>")),
    ("GET", "/f/1e3", M("float", {"x": 1000.0}, "/f/<float:x>")),
    ("GET", "/f/1E-2", M("float", {"x": 0.01}, "/f/<float:x>")),
    ("GET", "/f/.5", M("float", {"x": 0.5}, "/f/<float:x>")),
    ("GET", "/f/1.", M("float", {"x": 1.0}, "/f/<float:x>")),
    ("GET", "/f/1.2.3", NotFound()),
    ("GET", "/f/inf", NotFound()),
    ("GET", "/f/-inf", NotFound()),
    ("GET", "/f/nan", NotFound()),
    ("GET", "/f/NaN", NotFound()),
    ("GET", "/f/1e999", NotFound()),  # regex accepts, to_python rejects (not finite)
    ("GET", "/f/abc", NotFound()),
    ("GET", "/f/", NotFound()),
    ("GET", "/f/1e", NotFound()),
    # uuid
    ("GET", f"/u/{UID}", M("uuid", {"u": uuid.UUID(UID)}, "/u/<uuid:u>")),
    ("GET", f"/u/{UID.upper()}", M("uuid", {"u": uuid.UUID(UID)}, "/u/<uuid:u>")),
    ("GET", f"/u/{UID[:-1]}", NotFound()),
    ("GET", f"/u/{UID}0", NotFound()),
    ("GET", f"/u/{UID.replace('-', '')}", NotFound()),
    ("GET", "/u/1234567g-1234-5678-1234-567812345678", NotFound()),
    # path spans slashes
    ("GET", "/files/a", M("files", {"p": "a"}, "/files/<path:p>")),
    ("GET", "/files/a/b/c.txt", M("files", {"p": "a/b/c.txt"}, "/files/<path:p>")),
    ("GET", "/files/a/", M("files", {"p": "a/"}, "/files/<path:p>")),
    ("GET", "/files//x", M("files", {"p": "/x"}, "/files/<path:p>")),
    ("GET", "/files/", NotFound()),
    ("GET", "/files", NotFound()),
    ("GET", "/p/a/b/edit", M("p_edit", {"p": "a/b"}, "/p/<path:p>/edit")),
    ("GET", "/p/edit", NotFound()),
    # the seed's rule
    ("GET", "/api/progress/abc-123", M("progress", {"session_id": "abc-123"}, "/api/progress/<session_id>")),
    ("GET", "/api/progress/", NotFound()),
    # converter rejections are 404s, never exceptions
    ("GET", "/only-int/x", NotFound()),
    ("GET", "/only-int/1.5", NotFound()),
    ("GET", "/only-int/" + "9" * 5000, NotFound()),  # int() refuses > 4300 digits: ValueError
    ("GET", "/only-int/" + "9" * 50, M("only_int", {"n": int("9" * 50)}, "/only-int/<int:n>")),
    # static segments beat placeholders at the same position
    ("GET", "/a/b", M("a_x", {"x": "b"}, "/a/<x>")),
    ("GET", "/z/b", M("y_b", {"y": "z"}, "/<y>/b")),
    # 405 with sorted allowed methods; HEAD implied by GET
    ("GET", "/post-only", MethodNotAllowed(("POST",))),
    ("HEAD", "/post-only", MethodNotAllowed(("POST",))),
    ("POST", "/post-only", M("post_only", {}, "/post-only")),
    ("POST", "/users/me", MethodNotAllowed(("GET", "HEAD"))),
    ("POST", "/", MethodNotAllowed(("GET", "HEAD"))),
    ("PATCH", "/multi", MethodNotAllowed(("DELETE", "GET", "HEAD", "PUT"))),
    ("OPTIONS", "/multi", MethodNotAllowed(("DELETE", "GET", "HEAD", "PUT"))),
    ("GET", "/multi", M("multi_get_put", {}, "/multi")),
    ("HEAD", "/multi", M("multi_get_put", {}, "/multi")),
    ("PUT", "/multi", M("multi_get_put", {}, "/multi")),
    ("DELETE", "/multi", M("multi_delete", {}, "/multi")),
    ("GET", "/d/5", MethodNotAllowed(("POST",))),
    ("POST", "/d/5", M("d_post", {"id": 5}, "/d/<int:id>")),
    ("GET", "/d/x", NotFound()),  # converter rejected: not a 405
    ("POST", "/f/1.5", MethodNotAllowed(("GET", "HEAD"))),
    ("POST", "/f/nan", NotFound()),
    # an explicit HEAD route wins over the implicit GET one
    ("HEAD", "/explicit-head", M("eh_head", {}, "/explicit-head")),
    ("GET", "/explicit-head", M("eh_get", {}, "/explicit-head")),
]


@pytest.mark.parametrize(("method", "path", "expected"), MATCH_TABLE)
def test_router_match(router: Router[str], method: str, path: str, expected: object) -> None:
    result = router.match(method, path)
    assert result == expected
    if isinstance(expected, Match):
        # equal values of the right type: 5 must be int 5, not "5" or 5.0
        assert isinstance(result, Match)
        for key, value in expected.params.items():
            assert type(result.params[key]) is type(value)


# Regression: rule regexes were anchored with "$" (which also matches before a trailing "\n") and
# <path> used ".+" without DOTALL, so paths with a (percent-decoded) newline misrouted.


@pytest.mark.parametrize(
    ("rules", "path", "expected"),
    [
        pytest.param(
            [("/item/<int:id>", "int"), ("/item/<s>", "str")],
            "/item/5\n",
            M("str", {"s": "5\n"}, "/item/<s>"),
            id="int-matches-with-trailing-newline",
        ),
        pytest.param(
            [("/only-int/<int:n>", "int")],
            "/only-int/5\n",
            NotFound(),
            id="int-only-trailing-newline-should-404",
        ),
        pytest.param(
            [("/files/<path:p>", "files")],
            "/files/a\nb",
            M("files", {"p": "a\nb"}, "/files/<path:p>"),
            id="path-with-inner-newline",
        ),
        pytest.param(
            [("/files/<path:p>", "files")],
            "/files/a\n",
            M("files", {"p": "a\n"}, "/files/<path:p>"),
            id="path-trailing-newline-dropped",
        ),
        pytest.param([("/s/<s>", "s")], "/s/a\nb", M("s", {"s": "a\nb"}, "/s/<s>"), id="str-with-newline"),
        pytest.param([("/s/<s>", "s")], "/s/a\n", M("s", {"s": "a\n"}, "/s/<s>"), id="str-trailing-newline"),
    ],
)
def test_router_newlines_in_path(rules: list[tuple[str, str]], path: str, expected: object) -> None:
    r: Router[str] = Router()
    for rule, endpoint in rules:
        r.add(rule, ["GET"], endpoint)
    assert r.match("GET", path) == expected


def test_same_shape_rule_different_param_names_different_methods() -> None:
    # Regression: both rules shared one entry, so the POST handler got {"x": ...} and "/a/<x>".
    r: Router[str] = Router()
    r.add("/a/<x>", ["GET"], "ax")
    r.add("/a/<y>", ["POST"], "ay")
    assert r.match("GET", "/a/1") == Match("ax", {"x": "1"}, "/a/<x>")
    assert r.match("POST", "/a/1") == Match("ay", {"y": "1"}, "/a/<y>")


# ---------------------------------------------------------------------------------------------
# Registration: duplicates
# ---------------------------------------------------------------------------------------------

DUPLICATES = [
    pytest.param(("/s", ["GET"]), ("/s", ["GET"]), id="static-same-method"),
    pytest.param(("/s", ["GET"]), ("/s", ["get"]), id="method-case-insensitive"),
    pytest.param(("/s", ["GET", "POST"]), ("/s", ["POST"]), id="overlapping-methods"),
    pytest.param(("/a/<x>", ["GET"]), ("/a/<x>", ["GET"]), id="dynamic-same-rule"),
    pytest.param(("/a/<x>", ["GET"]), ("/a/<y>", ["GET"]), id="same-shape-other-name"),
    pytest.param(("/a/<x>", ["GET"]), ("/a/<str:x>", ["GET"]), id="implicit-vs-explicit-str"),
    pytest.param(("/a/<int:x>", ["PUT"]), ("/a/<int:y>", ["PUT"]), id="int-other-name"),
    pytest.param(("/f/<path:p>", ["GET"]), ("/f/<path:q>", ["GET"]), id="path-other-name"),
    pytest.param(("/u/<int:a>/<b>", ["GET"]), ("/u/<int:c>/<str:d>", ["GET"]), id="two-params"),
]


@pytest.mark.parametrize(("first", "second"), DUPLICATES)
def test_duplicate_registration_raises(first: tuple[str, list[str]], second: tuple[str, list[str]]) -> None:
    r: Router[str] = Router()
    r.add(first[0], first[1], "first")
    with pytest.raises(RouteError):
        r.add(second[0], second[1], "second")


@pytest.mark.parametrize(
    ("first", "second", "method", "path", "expected_endpoints"),
    [
        pytest.param(
            ("/s", ["GET"]), ("/s", ["POST"]), None, "/s", ("first", "second"), id="static-other-method"
        ),
        pytest.param(
            ("/a/<x>", ["GET"]),
            ("/a/<x>", ["DELETE"]),
            None,
            "/a/1",
            ("first", "second"),
            id="dynamic-other-method",
        ),
        pytest.param(
            ("/a/<int:x>", ["GET"]),
            ("/a/<x>", ["GET"]),
            "GET",
            "/a/q",
            ("second",),
            id="other-converter-same-method",
        ),
    ],
)
def test_non_duplicate_registration_ok(
    first: tuple[str, list[str]],
    second: tuple[str, list[str]],
    method: str | None,
    path: str,
    expected_endpoints: tuple[str, ...],
) -> None:
    r: Router[str] = Router()
    r.add(first[0], first[1], "first")
    r.add(second[0], second[1], "second")
    if method is None:
        got = tuple(r.match(m, path).endpoint for m in (first[1][0], second[1][0]))  # type: ignore[union-attr]
    else:
        got = (r.match(method, path).endpoint,)  # type: ignore[union-attr]
    assert got == expected_endpoints


def test_failed_duplicate_keeps_original() -> None:
    r: Router[str] = Router()
    r.add("/a/<x>", ["GET"], "first")
    with pytest.raises(RouteError):
        r.add("/a/<y>", ["POST", "GET"], "second")
    # POST must not have been half-registered by the failed call
    assert r.match("POST", "/a/1") == MethodNotAllowed(("GET", "HEAD"))
    assert r.match("GET", "/a/1") == Match("first", {"x": "1"}, "/a/<x>")


def test_add_without_methods_raises() -> None:
    with pytest.raises(RouteError):
        Router().add("/a", [], "x")


def test_rules_listing() -> None:
    r: Router[str] = Router()
    r.add("/s", ["GET"], "a")
    r.add("/s", ["POST"], "b")
    r.add("/d/<int:x>", ["put"], "c")
    assert sorted(r.rules()) == [("/d/<int:x>", ("PUT",)), ("/s", ("GET", "POST"))]


# ---------------------------------------------------------------------------------------------
# Property: match never raises
# ---------------------------------------------------------------------------------------------

_SEGMENT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["users", "me", "item", "f", "u", "files", "a", "b", "p", "edit", "d", "multi", UID, "1e999"]
    ),
    st.from_regex(r"[+-]?\d{0,6}(\.\d{0,4})?([eE][+-]?\d{1,4})?", fullmatch=True),
)
_PATHS = st.one_of(
    st.text(),
    st.lists(_SEGMENT, max_size=5).map(lambda segs: "/" + "/".join(segs)),
)
_ENDPOINTS = {endpoint for _, _, endpoint in ROUTES}


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", ""]),
    path=_PATHS,
)
def test_match_never_raises(router: Router[str], method: str, path: str) -> None:
    result = router.match(method, path)
    assert isinstance(result, (Match, NotFound, MethodNotAllowed))
    if isinstance(result, Match):
        assert result.endpoint in _ENDPOINTS
    if isinstance(result, MethodNotAllowed):
        assert result.allowed
        assert list(result.allowed) == sorted(set(result.allowed))
        assert method not in result.allowed


def test_a_match_keeps_the_raw_text_beside_the_converted_values() -> None:
    """``request_data["path_params"]`` is RAT Engine's: the strings of the path."""
    r: Router[str] = Router()
    r.add("/p/<float:price>/<uuid:u>/<int:n>", ["GET"], "e")
    u = "12345678-1234-5678-1234-567812345678"
    result = r.match("GET", f"/p/99/{u}/007")
    assert isinstance(result, Match)
    assert result.params == {"price": 99.0, "u": uuid.UUID(u), "n": 7}
    assert result.raw == {"price": "99", "u": u, "n": "007"}
