"""Integration tests: core (non-SSE) HTTP behaviour of rat_engine over a real server.

Every test talks HTTP (httpx) to ``app.run(port=0, blocking=False)`` running on a background
thread of this process, so logging can be observed with ``caplog``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rat_engine import JSONResponse, Middleware, RatApp, Response, redirect

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
class Server:
    """A running app: its handle, URL and a keep-alive httpx client."""

    def __init__(self, app: RatApp) -> None:
        self.app = app
        self.handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="warning")
        self.url: str = self.handle.url
        self.client = httpx.Client(base_url=self.url, timeout=5.0, follow_redirects=False)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.request(method, path, **kw)

    def assert_alive(self) -> None:
        # A fresh connection, so a broken keep-alive connection cannot hide a dead server.
        with httpx.Client(base_url=self.url, timeout=5.0) as fresh:
            r = fresh.get("/")
        assert r.status_code == 200, r.text

    def close(self) -> None:
        self.client.close()
        self.handle.stop()


def _serve(app: RatApp) -> Iterator[Server]:
    server = Server(app)
    try:
        yield server
    finally:
        server.close()


def _wait_for(predicate: Any, timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    return predicate()


# ---------------------------------------------------------------------------------------------
# the main app: routing, request_data, return conventions, files, chunks, errors, concurrency
# ---------------------------------------------------------------------------------------------
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
TXT_BYTES = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
JSON_BYTES = b'{"file": true, "n": [1, 2, 3]}'

# (name, kind, return value, expected status, expected content type prefix, expected body, extra headers)
RETURN_CASES: list[tuple[str, str, Any, int, str | None, bytes | None, dict[str, str]]] = [
    ("html_str", "html", "<b>hi</b>", 200, "text/html; charset=utf-8", b"<b>hi</b>", {}),
    ("route_str", "route", "<i>r</i>", 200, "text/html; charset=utf-8", b"<i>r</i>", {}),
    (
        "json_dict",
        "json",
        {"msg": "中文", "n": 1},
        200,
        "application/json",
        '{"msg":"中文","n":1}'.encode(),
        {},
    ),
    ("json_list", "json", [1, "二", None], 200, "application/json", '[1,"二",null]'.encode(), {}),
    (
        "json_dumps_str",
        "json",
        json.dumps({"k": [1, 2], "s": "x"}),
        200,
        "application/json",
        json.dumps({"k": [1, 2], "s": "x"}).encode(),
        {},
    ),
    ("custom_str", "custom", "plain text", 200, "text/plain; charset=utf-8", b"plain text", {}),
    ("custom_bytes", "custom", b"\x00\x01\xffraw", 200, "application/octet-stream", b"\x00\x01\xffraw", {}),
    ("custom_ct", "custom", ("a,b\n1,2\n", "text/csv"), 200, "text/csv", b"a,b\n1,2\n", {}),
    ("custom_ct_status", "custom", ("a,b\n", "text/csv", 201), 201, "text/csv", b"a,b\n", {}),
    ("body_status", "custom", ("nope", 404), 404, "text/plain", b"nope", {}),
    ("body_status_headers", "custom", ("made", 201, {"X-A": "b"}), 201, "text/plain", b"made", {"x-a": "b"}),
    ("body_headers", "custom", ("hdr", {"X-A": "b"}), 200, "text/plain", b"hdr", {"x-a": "b"}),
    (
        "html_status_headers",
        "html",
        ("<p>c</p>", 202, {"X-A": "b"}),
        202,
        "text/html",
        b"<p>c</p>",
        {"x-a": "b"},
    ),
    (
        "response_obj",
        "html",
        Response(b"resp-body", 203, {"X-R": "1"}, media_type="text/x-thing"),
        203,
        "text/x-thing",
        b"resp-body",
        {"x-r": "1"},
    ),
    (
        "json_response_obj",
        "custom",
        JSONResponse({"ok": True}, 201),
        201,
        "application/json",
        b'{"ok":true}',
        {},
    ),
    ("redirect", "html", redirect("/x"), 302, None, b"", {"location": "/x"}),
    ("redirect_301", "custom", redirect("/moved", 301), 301, None, b"", {"location": "/moved"}),
    ("html_none", "html", None, 204, None, b"", {}),
    ("json_none", "json", None, 200, "application/json", b"null", {}),
]

CHUNK_DELAY = 0.3


def build_main_app(files_dir: str) -> tuple[RatApp, dict[str, Any]]:
    app = RatApp(name="core-main", max_body_size=8 * 1024 * 1024, shutdown_grace=1.0)
    state: dict[str, Any] = {"files_dir": files_dir, "uploads": []}

    @app.html("/")
    def index(request_data: dict[str, Any]) -> str:
        return "<h1>home</h1>"

    # -- routing ------------------------------------------------------------------------------
    @app.json("/static/route", methods=["GET"])
    def static_route(request_data: dict[str, Any]) -> Any:
        return {"route": "static"}

    @app.json("/name/<name>", methods=["GET"])
    def by_name(request_data: dict[str, Any], name: str) -> Any:
        return {"name": name, "type": type(name).__name__, "path_params": request_data["path_params"]}

    @app.json("/item/<int:id>", methods=["GET"])
    def by_int(request_data: dict[str, Any], id: int) -> Any:
        return {"id": id, "type": type(id).__name__}

    @app.json("/big/<int:n>", methods=["GET"])
    def big_int(request_data: dict[str, Any], n: int) -> Any:
        return {"n": n}

    @app.json("/num/<float:x>", methods=["GET"])
    def by_float(request_data: dict[str, Any], x: float) -> Any:
        return {"x": x, "type": type(x).__name__}

    @app.json("/u/<uuid:u>", methods=["GET"])
    def by_uuid(request_data: dict[str, Any], u: uuid.UUID) -> Any:
        return {"u": str(u), "is_uuid": isinstance(u, uuid.UUID)}

    @app.json("/files/<path:p>", methods=["GET"])
    def by_path(request_data: dict[str, Any], p: str) -> Any:
        return {"p": p}

    @app.json("/p/<name>", methods=["GET"])
    def percent(request_data: dict[str, Any], name: str) -> Any:
        return {"name": name}

    @app.html("/only-get")
    def only_get(request_data: dict[str, Any]) -> str:
        return "only get"

    @app.json("/jdefault")
    def jdefault(request_data: dict[str, Any]) -> Any:
        return {"method": request_data["method"]}

    @app.custom("/noreq")
    def noreq() -> str:
        return "x"

    @app.json("/only/<int:id>", methods=["GET"])
    def only_param(id: int) -> Any:  # no request_data, just the path parameter
        return {"id": id}

    @app.json("/two/<a>/<b>", methods=["GET"])
    def two(request_data: dict[str, Any], a: str) -> Any:  # declares only ``a``
        return {"a": a, "all": request_data["path_params"]}

    # -- request_data -------------------------------------------------------------------------
    @app.json("/echo", methods=["GET", "POST", "PUT"])
    def echo(request_data: Any) -> Any:
        body = request_data["body"]
        headers = request_data["headers"]
        return {
            "keys": sorted(request_data.keys()),
            "is_dict": isinstance(request_data, dict),
            "method": request_data.get("method"),
            "path": request_data["path"],
            "query_string": request_data["query_string"],
            "query_a": request_data["query_params"].getlist("a"),
            "query_b": request_data["query_params"].get("b"),
            "x_custom_mixed": headers.get("X-Custom"),
            "x_custom_item": headers["X-Custom"] if "X-Custom" in headers else None,
            "x_custom_lower": headers.get("x-custom"),
            "headers_dict": dict(request_data.get("headers", {})),
            "body_type": type(body).__name__,
            "body": body if isinstance(body, str) else body.hex(),
            "raw_body_type": type(request_data["raw_body"]).__name__,
            "raw_body_hex": request_data["raw_body"].hex(),
            "remote_addr": request_data["remote_addr"],
            "last_event_id": request_data["last_event_id"],
        }

    @app.json("/json-in", methods=["POST"])
    def json_in(request_data: Any) -> Any:
        return {"got": request_data.json()}

    @app.json("/form-in", methods=["POST"])
    def form_in(request_data: Any) -> Any:
        form = request_data.form()
        return {"fields": dict(form), "tags": form.getlist("tag")}

    @app.json("/upload", methods=["POST"])
    def upload(request_data: Any) -> Any:
        files = request_data.files()
        up = files["upload"]
        data = up.data
        state["uploads"].append(up)
        return {
            "field": request_data.form().get("field"),
            "filename": up.filename,
            "content_type": up.content_type,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }

    # -- return conventions -------------------------------------------------------------------
    for name, kind, value, *_ in RETURN_CASES:

        def make_handler(v: Any = value) -> Any:
            def handler(request_data: dict[str, Any]) -> Any:
                return v

            return handler

        app.route(f"/rv/{name}", kind=kind)(make_handler())

    # -- files --------------------------------------------------------------------------------
    @app.file("/file/<name>")
    def serve_file(request_data: dict[str, Any], name: str) -> str:
        return os.path.join(files_dir, name)

    @app.file("/file-custom")
    def serve_file_custom(request_data: dict[str, Any]) -> Any:
        return os.path.join(files_dir, "a.txt"), "application/x-custom"

    # -- chunked streams ----------------------------------------------------------------------
    @app.chunk("/chunks")
    def chunks(request_data: dict[str, Any]) -> Any:
        yield "chunk-0\n"
        for i in range(1, 4):
            time.sleep(CHUNK_DELAY)
            yield f"chunk-{i}\n"

    @app.chunk("/achunks")
    async def achunks(request_data: dict[str, Any]) -> Any:
        yield "achunk-0\n"
        for i in range(1, 4):
            await asyncio.sleep(CHUNK_DELAY)
            yield f"achunk-{i}\n"

    # -- failures -----------------------------------------------------------------------------
    @app.json("/boom", methods=["GET"])
    def boom(request_data: dict[str, Any]) -> Any:
        raise RuntimeError("secret-detail-xyz")

    # -- concurrency / async ------------------------------------------------------------------
    @app.json("/slow", methods=["GET"])
    def slow(request_data: dict[str, Any]) -> Any:
        time.sleep(0.5)
        return {"slept": True, "thread": threading.current_thread().name}

    @app.json("/async", methods=["GET"])
    async def async_handler(request_data: dict[str, Any]) -> Any:
        await asyncio.sleep(0.01)
        return {"async": True, "q": request_data["query_params"].get("q")}

    # -- access log ---------------------------------------------------------------------------
    @app.custom("/logme")
    def logme(request_data: dict[str, Any]) -> str:
        return "hello"

    return app, state


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("served")
    (root / "a.txt").write_bytes(TXT_BYTES)
    (root / "b.json").write_bytes(JSON_BYTES)
    (root / "c.png").write_bytes(PNG_BYTES)
    (root / "big.bin").write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    return str(root)


@pytest.fixture(scope="module")
def main_state(files_dir: str) -> Iterator[tuple[Server, dict[str, Any]]]:
    app, state = build_main_app(files_dir)
    try:
        for server in _serve(app):
            yield server, state
    finally:
        for up in state["uploads"]:  # see test_uploaded_files_are_closed_after_request
            up.file.close()


@pytest.fixture(scope="module")
def main(main_state: tuple[Server, dict[str, Any]]) -> Server:
    return main_state[0]


# ---------------------------------------------------------------------------------------------
# routing
# ---------------------------------------------------------------------------------------------
def test_static_route(main: Server) -> None:
    r = main.get("/static/route")
    assert r.status_code == 200
    assert r.json() == {"route": "static"}


def test_str_param(main: Server) -> None:
    r = main.get("/name/alice")
    assert r.status_code == 200
    assert r.json() == {"name": "alice", "type": "str", "path_params": {"name": "alice"}}


def test_int_param_is_int(main: Server) -> None:
    r = main.get("/item/42")
    assert r.status_code == 200
    assert r.json() == {"id": 42, "type": "int"}


def test_int_route_rejects_text_with_json_404(main: Server) -> None:
    r = main.get("/item/abc")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"error": "Not Found", "status": 404}


def test_unknown_path_is_json_404(main: Server) -> None:
    r = main.get("/definitely/not/here")
    assert r.status_code == 404
    assert r.json() == {"error": "Not Found", "status": 404}


def test_int_param_in_64_bit_range_round_trips(main: Server) -> None:
    r = main.get(f"/big/{2**63 - 1}")
    assert r.status_code == 200
    assert r.json() == {"n": 2**63 - 1}


def test_int_param_beyond_64_bits_is_json_encoded(main: Server) -> None:
    n = 99999999999999999999999
    r = main.get(f"/big/{n}")
    assert r.status_code == 200, r.text
    assert r.json() == {"n": n}


def test_float_param(main: Server) -> None:
    r = main.get("/num/2.5")
    assert r.status_code == 200
    assert r.json() == {"x": 2.5, "type": "float"}


def test_uuid_param_is_uuid(main: Server) -> None:
    u = uuid.uuid4()
    r = main.get(f"/u/{u}")
    assert r.status_code == 200
    assert r.json() == {"u": str(u), "is_uuid": True}
    assert main.get("/u/not-a-uuid").status_code == 404


def test_path_param_spans_slashes(main: Server) -> None:
    r = main.get("/files/a/b/c.txt")
    assert r.status_code == 200
    assert r.json() == {"p": "a/b/c.txt"}


def test_percent_decoding(main: Server) -> None:
    r = main.get("/p/hello%20world")
    assert r.status_code == 200
    assert r.json() == {"name": "hello world"}
    r = main.get("/p/%E4%B8%AD%E6%96%87")
    assert r.json() == {"name": "中文"}


def test_wrong_method_is_405_with_allow(main: Server) -> None:
    r = main.request("POST", "/only-get")
    assert r.status_code == 405
    allow = {m.strip() for m in r.headers["allow"].split(",")}
    assert allow == {"GET", "HEAD"}
    assert r.json() == {"error": "Method Not Allowed", "status": 405}
    # on a dynamic route too
    r = main.request("DELETE", "/item/1")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]


def test_head_on_get_route(main: Server) -> None:
    got = main.get("/rv/html_str")
    head = main.request("HEAD", "/rv/html_str")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"] == "text/html; charset=utf-8"
    assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))
    # JSON route as well
    got = main.get("/item/7")
    head = main.request("HEAD", "/item/7")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["content-type"] == got.headers["content-type"]


def test_automatic_options(main: Server) -> None:
    r = main.request("OPTIONS", "/only-get")
    assert r.status_code == 204
    assert r.content == b""
    allow = {m.strip() for m in r.headers["allow"].split(",")}
    assert {"GET", "HEAD", "OPTIONS"} <= allow
    assert "POST" not in allow
    r = main.request("OPTIONS", "/jdefault")
    assert r.status_code == 204
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["allow"].split(",")}


def test_json_decorator_defaults_to_get_and_post(main: Server) -> None:
    assert main.get("/jdefault").json() == {"method": "GET"}
    assert main.request("POST", "/jdefault").json() == {"method": "POST"}
    r = main.request("PUT", "/jdefault")
    assert r.status_code == 405
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["allow"].split(",")}


def test_handler_without_request_data(main: Server) -> None:
    r = main.get("/noreq")
    assert r.status_code == 200
    assert r.text == "x"
    r = main.get("/only/5")
    assert r.status_code == 200
    assert r.json() == {"id": 5}


def test_handler_receives_only_declared_params(main: Server) -> None:
    r = main.get("/two/first/second")
    assert r.status_code == 200
    assert r.json() == {"a": "first", "all": {"a": "first", "b": "second"}}


# ---------------------------------------------------------------------------------------------
# request_data
# ---------------------------------------------------------------------------------------------
EXPECTED_KEYS = {
    "method",
    "path",
    "query_string",
    "query_params",
    "headers",
    "body",
    "raw_body",
    "path_params",
    "remote_addr",
    "last_event_id",
}


def test_echo_keys_and_basics(main: Server) -> None:
    r = main.get("/echo?a=1&a=2&b=x%20y", headers={"X-Custom": "hello", "Last-Event-ID": "evt-42"})
    assert r.status_code == 200
    data = r.json()
    assert EXPECTED_KEYS <= set(data["keys"])
    assert data["is_dict"] is True
    assert data["method"] == "GET"
    assert data["path"] == "/echo"
    assert data["query_string"] == "a=1&a=2&b=x%20y"
    assert data["query_a"] == ["1", "2"]
    assert data["query_b"] == "x y"
    assert data["remote_addr"] == "127.0.0.1"
    assert data["last_event_id"] == "evt-42"


def test_headers_case_insensitive(main: Server) -> None:
    r = main.get("/echo", headers={"x-CUSTOM": "v1"})
    data = r.json()
    assert data["x_custom_mixed"] == "v1"
    assert data["x_custom_item"] == "v1"
    assert data["x_custom_lower"] == "v1"
    assert isinstance(data["headers_dict"], dict)
    assert data["headers_dict"].get("x-custom") == "v1"
    assert data["headers_dict"].get("host", "").startswith("127.0.0.1")


def test_last_event_id_absent_is_none(main: Server) -> None:
    assert main.get("/echo").json()["last_event_id"] is None


def test_utf8_body_is_str(main: Server) -> None:
    payload = "héllo 中文".encode()
    data = main.request("POST", "/echo", content=payload).json()
    assert data["body_type"] == "str"
    assert data["body"] == "héllo 中文"
    assert data["raw_body_type"] == "bytes"
    assert bytes.fromhex(data["raw_body_hex"]) == payload


def test_invalid_utf8_body_is_bytes(main: Server) -> None:
    payload = b"\xff\xfe\x00abc"
    data = main.request("PUT", "/echo", content=payload).json()
    assert data["body_type"] == "bytes"
    assert bytes.fromhex(data["body"]) == payload
    assert bytes.fromhex(data["raw_body_hex"]) == payload


def test_json_body(main: Server) -> None:
    r = main.request("POST", "/json-in", json={"a": [1, 2], "s": "中"})
    assert r.status_code == 200
    assert r.json() == {"got": {"a": [1, 2], "s": "中"}}


def test_invalid_json_body_is_400(main: Server) -> None:
    r = main.request("POST", "/json-in", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == 400
    main.assert_alive()


def test_urlencoded_form(main: Server) -> None:
    r = main.request("POST", "/form-in", data={"name": "Zoë", "tag": ["a", "b"]})
    assert r.status_code == 200
    data = r.json()
    assert data["fields"]["name"] == "Zoë"
    assert data["tags"] == ["a", "b"]


def test_multipart_upload_round_trips(main: Server) -> None:
    content = os.urandom(200_000) + b"\r\n--notaboundary\r\n" + bytes(range(256))
    r = main.request(
        "POST",
        "/upload",
        data={"field": "value-1"},
        files={"upload": ("report final.bin", content, "application/x-foo")},
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data == {
        "field": "value-1",
        "filename": "report final.bin",
        "content_type": "application/x-foo",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def test_uploaded_files_are_closed_after_request(main_state: tuple[Server, dict[str, Any]]) -> None:
    main, state = main_state
    for earlier in state["uploads"]:
        earlier.file.close()
    state["uploads"].clear()
    r = main.request(
        "POST", "/upload", data={"field": "x"}, files={"upload": ("f.txt", b"abc", "text/plain")}
    )
    assert r.status_code == 200
    up = state["uploads"][0]
    assert _wait_for(lambda: up.file.closed, timeout=1.0), "upload temp file still open after the response"


# ---------------------------------------------------------------------------------------------
# return conventions on the wire
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,kind,value,status,ctype,body,headers", RETURN_CASES, ids=[c[0] for c in RETURN_CASES]
)
def test_return_conventions(
    main: Server,
    name: str,
    kind: str,
    value: Any,
    status: int,
    ctype: str | None,
    body: bytes | None,
    headers: dict[str, str],
) -> None:
    r = main.get(f"/rv/{name}")
    assert r.status_code == status, r.content
    if ctype is not None:
        assert r.headers["content-type"].startswith(ctype), r.headers["content-type"]
    if body is not None:
        assert r.content == body
    for key, value_ in headers.items():
        assert r.headers.get(key) == value_


def test_json_keeps_non_ascii_raw(main: Server) -> None:
    r = main.get("/rv/json_dict")
    assert "中文".encode() in r.content
    assert b"\\u" not in r.content
    assert r.json() == {"msg": "中文", "n": 1}


def test_json_dumps_string_not_double_encoded(main: Server) -> None:
    r = main.get("/rv/json_dumps_str")
    assert r.json() == {"k": [1, 2], "s": "x"}  # an object, not a JSON string holding an object


def test_html_none_is_204_empty(main: Server) -> None:
    r = main.get("/rv/html_none")
    assert r.status_code == 204
    assert r.content == b""
    assert "content-length" not in r.headers or r.headers["content-length"] == "0"


# ---------------------------------------------------------------------------------------------
# @app.file
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,ctype,data",
    [
        ("a.txt", "text/plain", TXT_BYTES),
        ("b.json", "application/json", JSON_BYTES),
        ("c.png", "image/png", PNG_BYTES),
    ],
)
def test_file_content_type_by_extension(main: Server, name: str, ctype: str, data: bytes) -> None:
    r = main.get(f"/file/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0].strip() == ctype
    assert r.content == data
    assert r.headers["content-length"] == str(len(data))


def test_file_custom_content_type(main: Server) -> None:
    r = main.get("/file-custom")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-custom"
    assert r.content == TXT_BYTES


def test_file_missing_is_404(main: Server) -> None:
    r = main.get("/file/nope.txt")
    assert r.status_code == 404
    assert r.json()["status"] == 404
    main.assert_alive()


def test_file_etag_last_modified_and_304(main: Server) -> None:
    r = main.get("/file/a.txt")
    etag = r.headers.get("etag")
    assert etag and etag.startswith('"') and etag.endswith('"')
    assert r.headers.get("last-modified", "").endswith("GMT")
    r2 = main.get("/file/a.txt", headers={"If-None-Match": etag})
    assert r2.status_code == 304
    assert r2.content == b""
    r3 = main.get("/file/a.txt", headers={"If-None-Match": '"other"'})
    assert r3.status_code == 200 and r3.content == TXT_BYTES


def test_file_range(main: Server) -> None:
    r = main.get("/file/c.png", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 0-9/{len(PNG_BYTES)}"
    assert r.content == PNG_BYTES[:10]
    assert r.headers["content-length"] == "10"


def test_file_suffix_range(main: Server) -> None:
    r = main.get("/file/c.png", headers={"Range": "bytes=-5"})
    assert r.status_code == 206
    n = len(PNG_BYTES)
    assert r.headers["content-range"] == f"bytes {n - 5}-{n - 1}/{n}"
    assert r.content == PNG_BYTES[-5:]


def test_file_unsatisfiable_range(main: Server) -> None:
    r = main.get("/file/c.png", headers={"Range": "bytes=999999-"})
    assert r.status_code == 416
    assert r.headers.get("content-range") == f"bytes */{len(PNG_BYTES)}"


def test_file_unsatisfiable_range_is_never_5xx_and_server_survives(main: Server) -> None:
    r = main.get("/file/c.png", headers={"Range": "bytes=999999-"})
    assert r.status_code in (416, 500)  # 500 is the known bug above; the server must survive it
    main.assert_alive()
    r = main.get("/file/c.png", headers={"Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == PNG_BYTES[:4]


def test_big_file(main: Server, files_dir: str) -> None:
    with open(os.path.join(files_dir, "big.bin"), "rb") as f:
        expected = hashlib.sha256(f.read()).hexdigest()
    r = main.get("/file/big.bin")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert int(r.headers["content-length"]) == 5 * 1024 * 1024 + 123
    assert hashlib.sha256(r.content).hexdigest() == expected


# ---------------------------------------------------------------------------------------------
# @app.chunk
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path,prefix", [("/chunks", "chunk"), ("/achunks", "achunk")])
def test_chunk_stream_is_not_buffered(main: Server, path: str, prefix: str) -> None:
    with httpx.Client(base_url=main.url, timeout=5.0) as c:
        start = time.monotonic()
        with c.stream("GET", path) as r:
            assert r.status_code == 200
            assert r.headers.get("transfer-encoding") == "chunked"
            assert "content-length" not in r.headers
            arrivals: list[tuple[float, bytes]] = []
            for piece in r.iter_raw():
                arrivals.append((time.monotonic() - start, piece))
        total = time.monotonic() - start
    body = b"".join(p for _, p in arrivals)
    assert body == "".join(f"{prefix}-{i}\n" for i in range(4)).encode()
    first_at = arrivals[0][0]
    assert arrivals[0][1].startswith(f"{prefix}-0".encode())
    assert first_at < 0.25, f"first chunk after {first_at:.3f}s: response was buffered"
    assert total >= 0.9


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_handler_exception_is_generic_500_and_logged(main: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    r = main.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"error": "Internal Server Error", "status": 500}
    assert "secret-detail-xyz" not in r.text
    assert "Traceback" not in r.text

    def find() -> list[logging.LogRecord]:
        return [
            rec
            for rec in caplog.records
            if rec.levelno >= logging.ERROR and rec.name.startswith("rat_engine") and rec.exc_info
        ]

    records = _wait_for(find)
    assert records, "no ERROR record with exc_info was logged"
    rec = records[0]
    assert rec.levelno == logging.ERROR
    assert isinstance(rec.exc_info[1], RuntimeError)  # type: ignore[index]
    assert "Traceback" in caplog.text
    assert "secret-detail-xyz" in caplog.text
    assert "/boom" in rec.getMessage()
    main.assert_alive()


@pytest.fixture(scope="module")
def debug_server() -> Iterator[Server]:
    app = RatApp(name="core-debug", debug=True, shutdown_grace=1.0)

    @app.html("/")
    def index() -> str:
        return "ok"

    @app.json("/boom", methods=["GET"])
    def boom(request_data: dict[str, Any]) -> Any:
        raise ValueError("debug-visible-detail")

    yield from _serve(app)


def test_debug_app_shows_exception(debug_server: Server) -> None:
    r = debug_server.get("/boom")
    assert r.status_code == 500
    body = r.json()
    assert body["status"] == 500
    assert "debug-visible-detail" in r.text
    assert "ValueError" in r.text
    debug_server.assert_alive()


# ---------------------------------------------------------------------------------------------
# concurrency and async handlers
# ---------------------------------------------------------------------------------------------
def test_sync_handlers_do_not_block_each_other(main: Server) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with httpx.Client(base_url=main.url, timeout=5.0) as c:
                results.append(c.get("/slow").status_code)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    elapsed = time.monotonic() - start
    assert not errors
    assert results == [200, 200]
    assert elapsed < 0.9, f"two 0.5 s handlers took {elapsed:.2f}s: they ran one after the other"


def test_async_handler(main: Server) -> None:
    r = main.get("/async?q=z")
    assert r.status_code == 200
    assert r.json() == {"async": True, "q": "z"}


# ---------------------------------------------------------------------------------------------
# access log
# ---------------------------------------------------------------------------------------------
def _access_records(caplog: pytest.LogCaptureFixture, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rat_engine.access" and needle in r.getMessage()]


def test_access_log_record(main: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rat_engine.access")
    logging.getLogger("rat_engine.access").disabled = False
    marker = uuid.uuid4().hex[:8]
    r = main.get(f"/logme?m={marker}")
    assert r.status_code == 200 and r.text == "hello"
    records = _wait_for(lambda: _access_records(caplog, '"GET /logme'))
    time.sleep(0.1)  # a second (duplicate) record would show up by now
    records = _access_records(caplog, '"GET /logme')
    assert len(records) == 1, [r.getMessage() for r in records]
    rec = records[0]
    message = rec.getMessage()
    assert rec.levelno == logging.INFO
    assert "GET" in message and "/logme" in message
    assert " 200 " in message
    assert "5B" in message  # bytes sent: "hello"


def test_access_log_escapes_crlf(main: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rat_engine.access")
    logging.getLogger("rat_engine.access").disabled = False
    r = main.get("/logme%0d%0aFORGED-LINE")
    assert r.status_code == 404
    records = _wait_for(lambda: _access_records(caplog, "FORGED-LINE"))
    assert records, "no access record for the CR/LF path"
    for rec in records:
        message = rec.getMessage()
        assert "\n" not in message and "\r" not in message, repr(message)
        assert " 404 " in message
    main.assert_alive()


# ---------------------------------------------------------------------------------------------
# hooks, error handlers and middleware (their own app: they change every response)
# ---------------------------------------------------------------------------------------------
class Tracing(Middleware):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def before_request(self, request_data: dict[str, Any]) -> Any:
        self.log.append(f"{self.name}.before {request_data['path']}")
        request_data.setdefault("trace", []).append(self.name)
        return None

    def after_request(self, request_data: dict[str, Any], response: Response) -> Response:
        self.log.append(f"{self.name}.after {request_data['path']}")
        previous = response.headers.get("x-after")
        response.headers["x-after"] = f"{previous},{self.name}" if previous else self.name
        return response

    def on_error(self, request_data: dict[str, Any], error: BaseException) -> Any:
        self.log.append(f"{self.name}.on_error {type(error).__name__}")
        if isinstance(error, KeyError) and self.name == "m2":
            return {"handled_by": self.name, "error": str(error)}, 409
        return None


@pytest.fixture(scope="module")
def hooks_server() -> Iterator[tuple[Server, dict[str, list[Any]]]]:
    app = RatApp(name="core-hooks", shutdown_grace=1.0)
    record: dict[str, list[Any]] = {"sse_calls": [], "mw": []}
    app.add_middleware(Tracing("m1", record["mw"]))
    app.add_middleware(Tracing("m2", record["mw"]))

    @app.before_request
    def require_token(request_data: dict[str, Any]) -> Any:
        if request_data["path"].startswith("/secure") and request_data["headers"].get("x-token") != "t0k":
            return {"error": "unauthorized"}, 401
        return None

    @app.after_request
    def add_header(response: Response) -> None:
        response.headers["X-Hooked"] = "yes"

    @app.errorhandler(404)
    def not_found(error: Any) -> str:
        return "custom not found page"

    @app.errorhandler(ValueError)
    def value_error(request_data: dict[str, Any], error: Exception) -> Any:
        return {"handled": str(error), "path": request_data["path"]}, 422

    @app.html("/")
    def index() -> str:
        return "ok"

    @app.json("/secure/data", methods=["GET"])
    def secure_data(request_data: dict[str, Any]) -> Any:
        return {"secret": 1}

    @app.sse("/secure/sse")
    def secure_sse(request_data: dict[str, Any]) -> Any:
        record["sse_calls"].append("started")
        yield "one"
        yield "two"

    @app.sse("/open/sse")
    def open_sse(request_data: dict[str, Any]) -> Any:
        yield {"n": 1}

    @app.json("/trace", methods=["GET"])
    def trace(request_data: dict[str, Any]) -> Any:
        return {"trace": request_data.get("trace")}

    @app.json("/value-error", methods=["GET"])
    def raises_value_error(request_data: dict[str, Any]) -> Any:
        raise ValueError("bad value 7")

    @app.json("/key-error", methods=["GET"])
    def raises_key_error(request_data: dict[str, Any]) -> Any:
        raise KeyError("missing-key")

    for server in _serve(app):
        yield server, record


def test_before_request_short_circuits_normal_route(hooks_server: tuple[Server, Any]) -> None:
    server, _ = hooks_server
    r = server.get("/secure/data")
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized"}
    r = server.get("/secure/data", headers={"X-Token": "t0k"})
    assert r.status_code == 200 and r.json() == {"secret": 1}
    server.assert_alive()


def test_before_request_short_circuits_sse_route(hooks_server: tuple[Server, Any]) -> None:
    server, record = hooks_server
    record["sse_calls"].clear()
    r = server.get("/secure/sse")
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized"}
    time.sleep(0.1)
    assert record["sse_calls"] == [], "the SSE generator ran although before_request answered"
    # with the token, the stream runs
    r = server.get("/secure/sse", headers={"X-Token": "t0k"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "data: one" in r.text and "data: two" in r.text
    assert record["sse_calls"] == ["started"]
    server.assert_alive()


def test_after_request_adds_header_to_normal_and_sse(hooks_server: tuple[Server, Any]) -> None:
    server, _ = hooks_server
    r = server.get("/")
    assert r.headers.get("x-hooked") == "yes"
    r = server.get("/open/sse")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers.get("x-hooked") == "yes"
    assert 'data: {"n":1}' in r.text


def test_errorhandler_404(hooks_server: tuple[Server, Any]) -> None:
    server, _ = hooks_server
    r = server.get("/no/such/page")
    assert r.status_code == 404
    assert r.text == "custom not found page"
    server.assert_alive()


def test_errorhandler_exception_class(hooks_server: tuple[Server, Any]) -> None:
    server, _ = hooks_server
    r = server.get("/value-error")
    assert r.status_code == 422
    assert r.json() == {"handled": "bad value 7", "path": "/value-error"}
    server.assert_alive()


def test_middleware_order(hooks_server: tuple[Server, Any]) -> None:
    server, record = hooks_server
    record["mw"].clear()
    r = server.get("/trace")
    assert r.status_code == 200
    assert r.json() == {"trace": ["m1", "m2"]}  # before: registration order
    assert r.headers["x-after"] == "m2,m1"  # after: reversed
    assert record["mw"] == ["m1.before /trace", "m2.before /trace", "m2.after /trace", "m1.after /trace"]


def test_middleware_on_error(hooks_server: tuple[Server, Any]) -> None:
    server, record = hooks_server
    record["mw"].clear()
    r = server.get("/key-error")
    assert r.status_code == 409
    assert r.json() == {"handled_by": "m2", "error": "'missing-key'"}
    assert "m1.on_error KeyError" in record["mw"]
    assert "m2.on_error KeyError" in record["mw"]
    server.assert_alive()


# ---------------------------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cors_server() -> Iterator[Server]:
    app = RatApp(name="core-cors", shutdown_grace=1.0)
    app.enable_cors(allow_origins=["http://a.test"])

    @app.html("/")
    def index() -> str:
        return "ok"

    @app.json("/data", methods=["GET", "POST"])
    def data(request_data: dict[str, Any]) -> Any:
        return {"data": 1}

    yield from _serve(app)


def test_cors_preflight_allowed(cors_server: Server) -> None:
    r = cors_server.request(
        "OPTIONS",
        "/data",
        headers={
            "Origin": "http://a.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "http://a.test"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"].lower() == "content-type"
    assert "Origin" in r.headers.get("vary", "")


def test_cors_preflight_disallowed_origin(cors_server: Server) -> None:
    r = cors_server.request(
        "OPTIONS", "/data", headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "GET"}
    )
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers
    cors_server.assert_alive()


def test_cors_simple_request(cors_server: Server) -> None:
    r = cors_server.get("/data", headers={"Origin": "http://a.test"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://a.test"
    assert "Origin" in [v.strip() for v in ",".join(r.headers.get_list("vary")).split(",")]
    r = cors_server.get("/data", headers={"Origin": "http://evil.test"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    r = cors_server.get("/data")
    assert "access-control-allow-origin" not in r.headers


# ---------------------------------------------------------------------------------------------
# lifecycle hooks
# ---------------------------------------------------------------------------------------------
def test_startup_and_shutdown_hooks() -> None:
    events: list[str] = []
    app = RatApp(name="core-lifecycle", shutdown_grace=1.0)

    @app.on_startup
    def sync_start() -> None:
        events.append("sync-start")

    @app.on_startup
    async def async_start() -> None:
        await asyncio.sleep(0)
        events.append("async-start")

    @app.on_shutdown
    def sync_stop() -> None:
        events.append("sync-stop")

    @app.on_shutdown
    async def async_stop() -> None:
        await asyncio.sleep(0)
        events.append("async-stop")

    @app.html("/")
    def index() -> str:
        return "ok"

    handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="warning")
    try:
        assert events == ["sync-start", "async-start"]
        with httpx.Client(timeout=5.0) as c:
            assert c.get(handle.url + "/").status_code == 200
        assert "sync-stop" not in events
    finally:
        handle.stop()
    assert events == ["sync-start", "async-start", "sync-stop", "async-stop"]
    assert not handle.running


# ---------------------------------------------------------------------------------------------
# TestClient (in-process)
# ---------------------------------------------------------------------------------------------
def test_testclient_smoke() -> None:
    try:
        from rat_engine.testing import TestClient
    except ImportError as exc:  # pragma: no cover - depends on a parallel work item
        pytest.skip(f"rat_engine.testing is not importable: {exc}")
    app = RatApp(name="core-testclient")

    @app.html("/")
    def index() -> str:
        return "tc-home"

    @app.json("/item/<int:id>", methods=["GET"])
    def item(id: int) -> Any:
        return {"id": id}

    with TestClient(app) as c:
        r = c.get("/")
        assert r.status_code == 200
        assert r.text == "tc-home"
        assert c.get("/item/3").json() == {"id": 3}
        assert c.get("/item/x").status_code == 404


# ---------------------------------------------------------------------------------------------
# still alive after everything above
# ---------------------------------------------------------------------------------------------
def test_zz_server_still_serving(main: Server, hooks_server: tuple[Server, Any], cors_server: Server) -> None:
    main.assert_alive()
    hooks_server[0].assert_alive()
    cors_server.assert_alive()
    assert main.handle.running
