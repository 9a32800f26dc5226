"""Tests for rat_engine.datastructures (Headers, parse_query) and header rendering in responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rat_engine.datastructures import Headers, QueryParams, parse_query
from rat_engine.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

# ---------------------------------------------------------------------------------------------
# Headers: case-insensitivity
# ---------------------------------------------------------------------------------------------


def _headers() -> Headers:
    return Headers({"Content-Type": "text/html", "X-Request-ID": "abc"})


@pytest.mark.parametrize("key", ["content-type", "Content-Type", "CONTENT-TYPE", "cOnTeNt-TyPe"])
def test_headers_lookup_any_case(key: str) -> None:
    h = _headers()
    assert h[key] == "text/html"
    assert h.get(key) == "text/html"
    assert key in h
    assert h.getlist(key) == ["text/html"]


@pytest.mark.parametrize(
    ("operation", "expected_dict", "expected_result"),
    [
        pytest.param(
            lambda h: h.get("X-MISSING"),
            {"content-type": "text/html", "x-request-id": "abc"},
            None,
            id="get-missing",
        ),
        pytest.param(
            lambda h: h.get("x-missing", "d"),
            {"content-type": "text/html", "x-request-id": "abc"},
            "d",
            id="get-default",
        ),
        pytest.param(
            lambda h: "X-Missing" in h,
            {"content-type": "text/html", "x-request-id": "abc"},
            False,
            id="in-missing",
        ),
        pytest.param(
            lambda h: 5 in h, {"content-type": "text/html", "x-request-id": "abc"}, False, id="in-non-str"
        ),
        pytest.param(lambda h: h.__delitem__("CONTENT-type"), {"x-request-id": "abc"}, None, id="del"),
        pytest.param(lambda h: h.pop("X-REQUEST-ID"), {"content-type": "text/html"}, "abc", id="pop"),
        pytest.param(
            lambda h: h.pop("X-Nope", "dflt"),
            {"content-type": "text/html", "x-request-id": "abc"},
            "dflt",
            id="pop-default",
        ),
        pytest.param(
            lambda h: h.setdefault("Content-TYPE", "other"),
            {"content-type": "text/html", "x-request-id": "abc"},
            "text/html",
            id="setdefault-existing",
        ),
        pytest.param(
            lambda h: h.setdefault("X-New", "v"),
            {"content-type": "text/html", "x-request-id": "abc", "x-new": "v"},
            "v",
            id="setdefault-new",
        ),
        pytest.param(
            lambda h: h.update({"CONTENT-TYPE": "application/json", "X-B": "1"}),
            {"content-type": "application/json", "x-request-id": "abc", "x-b": "1"},
            None,
            id="update-mapping",
        ),
        pytest.param(
            lambda h: h.update([("X-C", "2")], X_D="3"),
            {"content-type": "text/html", "x-request-id": "abc", "x-c": "2", "x_d": "3"},
            None,
            id="update-pairs-and-kwargs",
        ),
        pytest.param(
            lambda h: h.__setitem__("CONTENT-TYPE", "text/plain"),
            {"content-type": "text/plain", "x-request-id": "abc"},
            None,
            id="setitem-replaces",
        ),
    ],
)
def test_headers_operations(
    operation: Callable[[Headers], Any], expected_dict: dict[str, str], expected_result: Any
) -> None:
    h = _headers()
    assert operation(h) == expected_result
    assert dict(h) == expected_dict
    assert all(k == k.lower() for k in h)


@pytest.mark.parametrize("key", ["x-missing", "X-Missing"])
def test_headers_missing_key_errors(key: str) -> None:
    h = _headers()
    with pytest.raises(KeyError):
        h[key]
    with pytest.raises(KeyError):
        del h[key]
    with pytest.raises(KeyError):
        h.pop(key)


def test_headers_is_a_real_dict_with_lowercase_keys() -> None:
    h = Headers([("Content-Type", "a"), ("X-Custom", "b")])
    assert isinstance(h, dict)
    assert dict(h) == {"content-type": "a", "x-custom": "b"}
    assert json.loads(json.dumps(h)) == {"content-type": "a", "x-custom": "b"}
    assert list(h.keys()) == ["content-type", "x-custom"]
    assert Headers() == {}
    assert Headers(None) == {}


# ---------------------------------------------------------------------------------------------
# Headers: repeated values
# ---------------------------------------------------------------------------------------------

REPEATED = [
    # pairs, key, joined value, getlist, raw_items
    pytest.param(
        [("Accept", "a"), ("accept", "b"), ("ACCEPT", "c")],
        "accept",
        "a, b, c",
        ["a", "b", "c"],
        [("accept", "a"), ("accept", "b"), ("accept", "c")],
        id="accept-joined-comma",
    ),
    pytest.param(
        [("Cookie", "a=1"), ("cookie", "b=2")],
        "Cookie",
        "a=1; b=2",
        ["a=1", "b=2"],
        [("cookie", "a=1"), ("cookie", "b=2")],
        id="cookie-joined-semicolon",
    ),
    pytest.param(
        [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2")],
        "set-cookie",
        "a=1; Path=/, b=2",
        ["a=1; Path=/", "b=2"],
        [("set-cookie", "a=1; Path=/"), ("set-cookie", "b=2")],
        id="set-cookie",
    ),
    pytest.param(
        [("X-A", "1"), ("X-B", "2"), ("x-a", "3")],
        "x-a",
        "1, 3",
        ["1", "3"],
        [("x-a", "1"), ("x-a", "3"), ("x-b", "2")],
        id="interleaved",
    ),
    pytest.param([("X-A", "")], "x-a", "", [""], [("x-a", "")], id="single-empty"),
    pytest.param(
        [("X-A", ""), ("X-A", "")], "x-a", ", ", ["", ""], [("x-a", ""), ("x-a", "")], id="two-empty"
    ),
]


@pytest.mark.parametrize(("pairs", "key", "joined", "values", "raw"), REPEATED)
def test_headers_repeated(
    pairs: list[tuple[str, str]], key: str, joined: str, values: list[str], raw: list[tuple[str, str]]
) -> None:
    for h in (Headers(pairs), Headers.from_asgi([(k.lower().encode(), v.encode()) for k, v in pairs])):
        assert h[key] == joined
        assert h.getlist(key) == values
        assert h.getlist(key.upper()) == values
        assert h.raw_items() == raw
        clone = h.copy()
        assert clone == h and clone.raw_items() == raw and clone.getlist(key) == values


def test_headers_from_asgi_latin1() -> None:
    h = Headers.from_asgi([(b"x-name", "caf\xe9".encode("latin-1"))])
    assert h["x-name"] == "café"


def test_headers_getlist_missing() -> None:
    assert Headers().getlist("x") == []


@pytest.mark.parametrize(
    ("operation", "key", "expected_list", "expected_raw"),
    [
        pytest.param(
            lambda h: h.__setitem__("X-A", "new"), "x-a", ["new"], [("x-a", "new")], id="setitem-resets"
        ),
        pytest.param(lambda h: h.update({"X-A": "u"}), "x-a", ["u"], [("x-a", "u")], id="update-resets"),
        pytest.param(lambda h: h.__delitem__("X-A"), "x-a", [], [], id="del-clears"),
        pytest.param(lambda h: h.pop("x-a"), "x-a", [], [], id="pop-clears"),
        pytest.param(
            lambda h: (h.pop("x-a"), h.add("X-A", "3")), "x-a", ["3"], [("x-a", "3")], id="pop-then-add"
        ),
        pytest.param(
            lambda h: (h.__setitem__("x-a", "s"), h.add("x-a", "t")),
            "x-a",
            ["s", "t"],
            [("x-a", "s"), ("x-a", "t")],
            id="set-then-add",
        ),
        pytest.param(
            lambda h: h.add("x-a", "3"),
            "x-a",
            ["1", "2", "3"],
            [("x-a", "1"), ("x-a", "2"), ("x-a", "3")],
            id="add-third",
        ),
        pytest.param(
            lambda h: (h.clear(), h.add("x-a", "3")),
            "x-a",
            ["3"],
            [("x-a", "3")],
            id="clear-then-add",  # regression: clear() used to keep the stale getlist() values
        ),
    ],
)
def test_headers_multi_consistency(
    operation: Callable[[Headers], Any],
    key: str,
    expected_list: list[str],
    expected_raw: list[tuple[str, str]],
) -> None:
    h = Headers([("X-A", "1"), ("x-a", "2")])
    operation(h)
    assert h.getlist(key) == expected_list
    assert h.raw_items() == expected_raw
    # the joined dict value always agrees with getlist
    if expected_list:
        assert h[key] == ", ".join(expected_list)
    else:
        assert key not in h


def test_headers_ior_lowercases() -> None:
    # Regression: dict.__ior__ bypassed the lower-casing, storing "X-A" as is.
    h = Headers()
    h |= {"X-A": "b"}
    assert dict(h) == {"x-a": "b"}
    assert "x-a" in h


# ---------------------------------------------------------------------------------------------
# parse_query
# ---------------------------------------------------------------------------------------------

QUERY_TABLE = [
    # query, dict(last value wins), {key: getlist}
    pytest.param("", {}, {}, id="empty"),
    pytest.param("a=1", {"a": "1"}, {"a": ["1"]}, id="single"),
    pytest.param("a=1&b=2&a=3", {"a": "3", "b": "2"}, {"a": ["1", "3"], "b": ["2"]}, id="repeated"),
    pytest.param("a=&b", {"a": "", "b": ""}, {"a": [""], "b": [""]}, id="blank-values"),
    pytest.param("a", {"a": ""}, {"a": [""]}, id="bare-key"),
    pytest.param("&&a=1&&", {"a": "1"}, {"a": ["1"]}, id="empty-pairs"),
    pytest.param("q=a+b", {"q": "a b"}, {}, id="plus-is-space"),
    pytest.param("q=a%20b%2Bc", {"q": "a b+c"}, {}, id="percent-decoding"),
    pytest.param("k%20ey=v", {"k ey": "v"}, {}, id="key-decoded"),
    pytest.param("q=%E4%B8%AD%E6%96%87", {"q": "中文"}, {}, id="utf8-percent"),
    pytest.param("q=中文", {"q": "中文"}, {}, id="raw-unicode"),
    pytest.param("a=1=2", {"a": "1=2"}, {}, id="equals-in-value"),
    pytest.param("x=%zz", {"x": "%zz"}, {}, id="bad-escape-kept"),
    pytest.param("x=%", {"x": "%"}, {}, id="lone-percent"),
    pytest.param("x=%2", {"x": "%2"}, {}, id="short-escape"),
    pytest.param("x=%ff", {"x": "\ufffd"}, {}, id="invalid-utf8-replaced"),
    pytest.param("x=%E4%B8", {"x": "\ufffd"}, {}, id="truncated-utf8-replaced"),
    pytest.param("=v", {"": "v"}, {}, id="empty-key"),
    pytest.param("a=1;b=2", {"a": "1;b=2"}, {}, id="semicolon-not-a-separator"),
]


@pytest.mark.parametrize(("query", "expected", "lists"), QUERY_TABLE)
def test_parse_query(query: str, expected: dict[str, str], lists: dict[str, list[str]]) -> None:
    params = parse_query(query)
    assert isinstance(params, QueryParams)
    assert dict(params) == expected
    for key, values in lists.items():
        assert params.getlist(key) == values
    assert params.getlist("never-present") == []


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_parse_query_never_raises(query: str) -> None:
    params = parse_query(query)
    for key in params:
        assert params.getlist(key)[-1] == params[key]


# ---------------------------------------------------------------------------------------------
# Response header rendering
# ---------------------------------------------------------------------------------------------

INJECTION_VALUES = [
    "a\r\nSet-Cookie: evil",
    "a\nSet-Cookie: evil",
    "a\rSet-Cookie: evil",
    "a\r\n\r\n<html>body</html>",
    "\r\n",
    "a\x00b",
    "trailing\n",
]


def _assert_clean(raw: list[tuple[bytes, bytes]]) -> None:
    for name, value in raw:
        assert isinstance(name, bytes) and isinstance(value, bytes)
        for bad in (b"\r", b"\n", b"\x00"):
            assert bad not in value, (name, value)


@pytest.mark.parametrize("value", INJECTION_VALUES)
def test_render_headers_neutralises_crlf_in_values(value: str) -> None:
    raw = Response(headers={"X": value}).render_headers(0)
    _assert_clean(raw)
    assert raw[0] == (b"content-length", b"0")
    assert [name for name, _ in raw] == [b"content-length", b"x"]


def test_render_headers_exact_replacement() -> None:
    raw = Response(headers={"X": "a\r\nSet-Cookie: evil"}).render_headers(0)
    assert raw == [(b"content-length", b"0"), (b"x", b"a Set-Cookie: evil")]


@pytest.mark.parametrize("value", INJECTION_VALUES)
def test_render_headers_neutralises_repeated_and_media_type(value: str) -> None:
    response = Response(b"x", headers=[("X-A", "ok"), ("X-A", value)], media_type="text/plain" + value)
    response.set_cookie("sid", value)
    raw = response.render_headers(1)
    _assert_clean(raw)
    names = [name for name, _ in raw]
    assert names == [b"content-type", b"content-length", b"x-a", b"x-a", b"set-cookie"]


@pytest.mark.parametrize("value", INJECTION_VALUES)
def test_redirect_location_has_no_control_characters(value: str) -> None:
    raw = RedirectResponse("/next?x=" + value).render_headers(0)
    _assert_clean(raw)
    location = dict(raw)[b"location"]
    assert location.startswith(b"/next?x=")


@pytest.mark.parametrize(
    ("response", "length", "expected"),
    [
        pytest.param(Response(b"", 204), None, [], id="no-type-no-length"),
        pytest.param(Response(b"abc"), 3, [(b"content-length", b"3")], id="length-only"),
        pytest.param(
            HTMLResponse("hi"),
            2,
            [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"2")],
            id="html",
        ),
        pytest.param(
            JSONResponse({"a": 1}),
            7,
            [(b"content-type", b"application/json"), (b"content-length", b"7")],
            id="json",
        ),
        pytest.param(
            Response(b"x", media_type="text/plain; charset=latin-1"),
            1,
            [(b"content-type", b"text/plain; charset=latin-1"), (b"content-length", b"1")],
            id="explicit-charset-kept",
        ),
        pytest.param(
            Response(b"x", headers={"Content-Type": "text/csv"}, media_type="text/html"),
            1,
            [(b"content-length", b"1"), (b"content-type", b"text/csv")],
            id="explicit-header-wins-once",
        ),
        pytest.param(
            Response(b"x", headers={"Content-Length": "9"}),
            1,
            [(b"content-length", b"9")],
            id="explicit-length-not-duplicated",
        ),
        pytest.param(
            Response(b"", headers={"X-Name": "café"}),
            0,
            [(b"content-length", b"0"), (b"x-name", "café".encode("latin-1"))],
            id="latin1-value",
        ),
        pytest.param(
            Response(b"", headers={"X-Name": "中"}),
            0,
            [(b"content-length", b"0"), (b"x-name", b"?")],
            id="non-latin1-replaced",
        ),
    ],
)
def test_render_headers_table(
    response: Response, length: int | None, expected: list[tuple[bytes, bytes]]
) -> None:
    assert response.render_headers(length) == expected


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        ([], 0),
        ([(b"host", b"t")], 5),
        ([(b"a", b"1"), (b"a", b"22")], 5),  # a repeated header counts every pair
    ],
)
def test_headers_from_asgi_counted_gives_the_pairs_size(raw: list[tuple[bytes, bytes]], size: int) -> None:
    headers, counted = Headers.from_asgi_counted(raw)
    assert counted == size
    assert headers == Headers.from_asgi(raw)
