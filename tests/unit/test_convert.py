"""Table-driven tests for rat_engine.convert.make_response: every kind x every return shape."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from rat_engine.convert import make_response
from rat_engine.exceptions import HTTPException
from rat_engine.files import FileResponse
from rat_engine.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from rat_engine.sse.event import encode_auto, encode_json, encode_text
from rat_engine.sse.response import EventStreamResponse
from rat_engine.streaming import StreamingResponse

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
OCTET = "application/octet-stream"
SSE = "text/event-stream; charset=utf-8"

XA = {"x-a": "b"}

# kind-independent shapes of a handler's return value, for the non-streaming kinds
# (kind, rv, class, status, content_type, body, extra headers)
BODY_TABLE: list[tuple[str, Any, type, int, str | None, bytes, dict[str, str]]] = []

for _kind in ("route", "html"):
    BODY_TABLE += [
        (_kind, "hi", HTMLResponse, 200, HTML, b"hi", {}),
        (_kind, "", HTMLResponse, 200, HTML, b"", {}),
        (_kind, "中文", HTMLResponse, 200, HTML, "中文".encode(), {}),
        (_kind, b"hi", Response, 200, HTML, b"hi", {}),
        (_kind, bytearray(b"ba"), Response, 200, HTML, b"ba", {}),
        (_kind, {"a": "中"}, Response, 200, JSON, '{"a":"中"}'.encode(), {}),
        (_kind, [1, 2], Response, 200, JSON, b"[1,2]", {}),
        (_kind, [], Response, 200, JSON, b"[]", {}),
        (_kind, None, Response, 204, None, b"", {}),
        (_kind, 5, PlainTextResponse, 200, TEXT, b"5", {}),
        (_kind, 1.5, PlainTextResponse, 200, TEXT, b"1.5", {}),
        (_kind, ("nf", 404), HTMLResponse, 404, HTML, b"nf", {}),
        (_kind, ("a,b", "text/csv"), HTMLResponse, 200, "text/csv", b"a,b", {"content-type": "text/csv"}),
        (
            _kind,
            ("a,b", "text/csv", 201),
            HTMLResponse,
            201,
            "text/csv",
            b"a,b",
            {"content-type": "text/csv"},
        ),
        (_kind, ("x", 201, {"X-A": "b"}), HTMLResponse, 201, HTML, b"x", XA),
        (_kind, ("x", {"X-A": "b"}), HTMLResponse, 200, HTML, b"x", XA),
        (_kind, ("x", [("X-A", "b")]), HTMLResponse, 200, HTML, b"x", XA),
        (_kind, ("x", {"X-N": 5}), HTMLResponse, 200, HTML, b"x", {"x-n": "5"}),
        (_kind, ({"e": 1}, 400), Response, 400, JSON, b'{"e":1}', {}),
        (_kind, (None, 202), Response, 202, None, b"", {}),
        (_kind, ("x",), HTMLResponse, 200, HTML, b"x", {}),
    ]

BODY_TABLE += [
    ("json", "hi", Response, 200, JSON, b"hi", {}),  # a str is JSON text already
    ("json", '{"a": 1}', Response, 200, JSON, b'{"a": 1}', {}),
    ("json", b"[1]", Response, 200, JSON, b"[1]", {}),
    ("json", {"a": "中"}, JSONResponse, 200, JSON, '{"a":"中"}'.encode(), {}),
    ("json", [1, None], JSONResponse, 200, JSON, b"[1,null]", {}),
    ("json", None, JSONResponse, 200, JSON, b"null", {}),
    ("json", 5, JSONResponse, 200, JSON, b"5", {}),
    ("json", True, JSONResponse, 200, JSON, b"true", {}),
    ("json", ({"e": "x"}, 404), JSONResponse, 404, JSON, b'{"e":"x"}', {}),
    ("json", ("a,b", "text/csv"), Response, 200, "text/csv", b"a,b", {"content-type": "text/csv"}),
    ("json", ("a,b", "text/csv", 201), Response, 201, "text/csv", b"a,b", {"content-type": "text/csv"}),
    ("json", ({"k": 1}, 201, {"X-A": "b"}), JSONResponse, 201, JSON, b'{"k":1}', XA),
    ("json", ({"k": 1}, {"X-A": "b"}), JSONResponse, 200, JSON, b'{"k":1}', XA),
    ("json", (None, 201), JSONResponse, 201, JSON, b"null", {}),
    ("custom", "hi", PlainTextResponse, 200, TEXT, b"hi", {}),
    ("custom", b"\x00\xff", Response, 200, OCTET, b"\x00\xff", {}),
    ("custom", {"a": 1}, Response, 200, JSON, b'{"a":1}', {}),
    ("custom", [1], Response, 200, JSON, b"[1]", {}),
    ("custom", None, Response, 204, None, b"", {}),
    ("custom", 5, PlainTextResponse, 200, TEXT, b"5", {}),
    ("custom", ("nf", 404), PlainTextResponse, 404, TEXT, b"nf", {}),
    ("custom", ("a,b", "text/csv"), PlainTextResponse, 200, "text/csv", b"a,b", {"content-type": "text/csv"}),
    (
        "custom",
        ("a,b", "text/csv", 201),
        PlainTextResponse,
        201,
        "text/csv",
        b"a,b",
        {"content-type": "text/csv"},
    ),
    ("custom", (b"img", "image/png"), Response, 200, "image/png", b"img", {"content-type": "image/png"}),
    ("custom", ("x", 201, {"X-A": "b"}), PlainTextResponse, 201, TEXT, b"x", XA),
    ("custom", ("x", {"X-A": "b"}), PlainTextResponse, 200, TEXT, b"x", XA),
    # file: non-path bodies fall back to the ordinary conversions
    ("file", {"a": 1}, Response, 200, JSON, b'{"a":1}', {}),
    ("file", [1], Response, 200, JSON, b"[1]", {}),
    ("file", None, Response, 204, None, b"", {}),
    ("file", 5, PlainTextResponse, 200, TEXT, b"5", {}),
]


def _case_id(row: tuple[Any, ...]) -> str:
    return f"{row[0]}-{row[1]!r}"[:60]


@pytest.mark.parametrize(
    ("kind", "rv", "cls", "status", "content_type", "body", "headers"),
    BODY_TABLE,
    ids=[_case_id(r) for r in BODY_TABLE],
)
def test_make_response_body_kinds(
    kind: str, rv: Any, cls: type, status: int, content_type: str | None, body: bytes, headers: dict[str, str]
) -> None:
    response = make_response(rv, kind)
    assert type(response) is cls
    assert response.status_code == status
    assert response.content_type == content_type
    assert response.body == body
    assert dict(response.headers) == headers


# ---------------------------------------------------------------------------------------------
# streaming kinds
# ---------------------------------------------------------------------------------------------


def _gen() -> Any:
    yield "a"


GEN = _gen()

STREAM_TABLE: list[tuple[str, Any, type, int, str, Any, dict[str, str]]] = []
_SSE_HEADERS = {"cache-control": "no-cache, no-transform", "x-accel-buffering": "no"}
for _kind in ("sse", "sse_json", "sse_text"):
    STREAM_TABLE += [
        (_kind, "hi", EventStreamResponse, 200, SSE, "hi", _SSE_HEADERS),
        (_kind, b"hi", EventStreamResponse, 200, SSE, b"hi", _SSE_HEADERS),
        (_kind, {"a": 1}, EventStreamResponse, 200, SSE, {"a": 1}, _SSE_HEADERS),
        (_kind, [1, 2], EventStreamResponse, 200, SSE, [1, 2], _SSE_HEADERS),
        (_kind, None, EventStreamResponse, 200, SSE, None, _SSE_HEADERS),
        (_kind, 5, EventStreamResponse, 200, SSE, 5, _SSE_HEADERS),
        (_kind, GEN, EventStreamResponse, 200, SSE, GEN, _SSE_HEADERS),
        (_kind, ("x", 404), EventStreamResponse, 404, SSE, "x", _SSE_HEADERS),
        # a content type cannot change an event stream's type
        (_kind, ("x", "text/csv"), EventStreamResponse, 200, SSE, "x", _SSE_HEADERS),
        (_kind, ("x", "text/csv", 201), EventStreamResponse, 201, SSE, "x", _SSE_HEADERS),
        (_kind, ("x", 201, {"X-A": "b"}), EventStreamResponse, 201, SSE, "x", {**_SSE_HEADERS, **XA}),
        (_kind, ("x", {"X-A": "b"}), EventStreamResponse, 200, SSE, "x", {**_SSE_HEADERS, **XA}),
        (
            _kind,
            ("x", {"Cache-Control": "no-store"}),
            EventStreamResponse,
            200,
            SSE,
            "x",
            {**_SSE_HEADERS, "cache-control": "no-store"},
        ),
    ]
STREAM_TABLE += [
    ("chunk", "hi", StreamingResponse, 200, TEXT, "hi", {}),
    ("chunk", b"hi", StreamingResponse, 200, TEXT, b"hi", {}),
    ("chunk", [1, 2], StreamingResponse, 200, TEXT, [1, 2], {}),
    ("chunk", None, StreamingResponse, 200, TEXT, None, {}),
    ("chunk", GEN, StreamingResponse, 200, TEXT, GEN, {}),
    ("chunk", ("x", 404), StreamingResponse, 404, TEXT, "x", {}),
    ("chunk", ("x", "text/csv"), StreamingResponse, 200, "text/csv", "x", {"content-type": "text/csv"}),
    ("chunk", ("x", "text/csv", 201), StreamingResponse, 201, "text/csv", "x", {"content-type": "text/csv"}),
    ("chunk", ("x", 201, {"X-A": "b"}), StreamingResponse, 201, TEXT, "x", XA),
    ("chunk", ("x", {"X-A": "b"}), StreamingResponse, 200, TEXT, "x", XA),
    # a generator returned from a plain route is streamed, not str()-ed
    ("route", GEN, StreamingResponse, 200, TEXT, GEN, {}),
]

_ENCODERS = {"sse": encode_auto, "sse_json": encode_json, "sse_text": encode_text}


@pytest.mark.parametrize(
    ("kind", "rv", "cls", "status", "content_type", "content", "headers"),
    STREAM_TABLE,
    ids=[_case_id(r) for r in STREAM_TABLE],
)
def test_make_response_stream_kinds(
    kind: str, rv: Any, cls: type, status: int, content_type: str, content: Any, headers: dict[str, str]
) -> None:
    response = make_response(rv, kind)
    assert type(response) is cls
    assert response.status_code == status
    assert response.content_type == content_type
    assert response.body == b""
    assert response.content is content or response.content == content  # type: ignore[attr-defined]
    assert type(response.content) is type(content)  # type: ignore[attr-defined]
    assert dict(response.headers) == headers
    if kind in _ENCODERS:
        assert response.encoder is _ENCODERS[kind]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Response objects, passthrough and invalid tuples
# ---------------------------------------------------------------------------------------------

ALL_KINDS = ["route", "html", "json", "custom", "file", "chunk", "sse", "sse_json", "sse_text"]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_response_passthrough_is_identity(kind: str) -> None:
    original = Response(b"raw", 418, {"X-Keep": "1"}, media_type="text/x-custom")
    assert make_response(original, kind) is original
    assert original.status_code == 418
    assert original.body == b"raw"
    assert dict(original.headers) == {"x-keep": "1"}


@pytest.mark.parametrize(
    ("extras", "status", "content_type", "headers"),
    [
        ((201,), 201, HTML, {}),
        (("text/csv",), 200, "text/csv", {"content-type": "text/csv"}),
        (({"X-A": "b"},), 200, HTML, XA),
        ((201, {"X-A": "b"}), 201, HTML, XA),
        (("text/csv", 202), 202, "text/csv", {"content-type": "text/csv"}),
    ],
)
@pytest.mark.parametrize("kind", ["route", "json", "custom", "sse"])
def test_response_in_tuple(
    kind: str, extras: tuple[Any, ...], status: int, content_type: str, headers: dict[str, str]
) -> None:
    inner = HTMLResponse("<p>x</p>")
    response = make_response((inner, *extras), kind)
    assert response is inner
    assert response.status_code == status
    assert response.body == b"<p>x</p>"
    expected_type = HTML if kind == "sse" else content_type  # stream kinds never set a type
    expected_headers = headers if kind != "sse" else {k: v for k, v in headers.items() if k != "content-type"}
    assert response.content_type == expected_type
    assert dict(response.headers) == expected_headers


INVALID_TUPLES = [
    pytest.param((), id="empty"),
    pytest.param(("x", 200, "text/plain", {}), id="len-4"),
    pytest.param(("x", 200, "text/plain", {}, None), id="len-5"),
    pytest.param(("x", True), id="bool-true-status"),
    pytest.param(("x", False), id="bool-false-status"),
    pytest.param(("x", "text/csv", True), id="bool-third"),
    pytest.param(("x", 1.5), id="float-status"),
    pytest.param(("x", None), id="none-extra"),
    pytest.param(("x", b"text/csv"), id="bytes-content-type"),
    pytest.param(("x", ("X-A", "b")), id="tuple-headers"),
    pytest.param((Response(b""), True), id="response-with-bool"),
]


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("rv", INVALID_TUPLES)
def test_invalid_tuples_raise_type_error(rv: tuple[Any, ...], kind: str) -> None:
    with pytest.raises(TypeError):
        make_response(rv, kind)


@pytest.mark.parametrize("kind", ["route", "json", "custom", "html"])
def test_unserialisable_value_raises_type_error(kind: str) -> None:
    with pytest.raises(TypeError):
        make_response({"x": object()}, kind)


def test_default_kind_is_route() -> None:
    response = make_response("hi")
    assert type(response) is HTMLResponse
    assert response.content_type == HTML


# ---------------------------------------------------------------------------------------------
# file kind
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sample(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "report.txt"
    path.write_bytes(b"hello file")
    return path


@pytest.mark.parametrize(
    ("make_rv", "status", "content_type", "extra_headers"),
    [
        pytest.param(lambda p: str(p), 200, TEXT, {}, id="str-path"),
        pytest.param(lambda p: p, 200, TEXT, {}, id="pathlike"),
        pytest.param(
            lambda p: (str(p), "text/csv"), 200, "text/csv", {"content-type": "text/csv"}, id="with-mime"
        ),
        pytest.param(lambda p: (p, 206), 206, TEXT, {}, id="with-status"),
        pytest.param(
            lambda p: (str(p), "application/pdf", 201),
            201,
            "application/pdf",
            {"content-type": "application/pdf"},
            id="mime-and-status",
        ),
        pytest.param(lambda p: (p, {"X-A": "b"}), 200, TEXT, XA, id="with-headers"),
    ],
)
def test_file_kind(
    sample: pathlib.Path, make_rv: Any, status: int, content_type: str, extra_headers: dict[str, str]
) -> None:
    response = make_response(make_rv(sample), "file")
    assert type(response) is FileResponse
    assert response.path == str(sample)  # type: ignore[attr-defined]
    assert response.status_code == status
    assert response.content_type == content_type
    assert response.body == b""
    headers = dict(response.headers)
    for key in ("etag", "last-modified", "accept-ranges"):
        assert key in headers
    assert headers["accept-ranges"] == "bytes"
    for key, value in extra_headers.items():
        assert headers[key] == value


@pytest.mark.parametrize(
    "make_rv",
    [
        pytest.param(lambda d: str(d / "missing.txt"), id="missing-str"),
        pytest.param(lambda d: d / "missing.txt", id="missing-pathlike"),
        pytest.param(lambda d: (str(d / "missing.txt"), "text/csv"), id="missing-with-mime"),
        pytest.param(lambda d: str(d), id="directory"),
        pytest.param(lambda d: str(d / "nul\x00byte"), id="nul-in-path"),
    ],
)
def test_file_kind_missing_is_404(tmp_path: pathlib.Path, make_rv: Any) -> None:
    with pytest.raises(HTTPException) as info:
        make_response(make_rv(tmp_path), "file")
    assert info.value.status_code == 404
