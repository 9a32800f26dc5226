"""Core (non-SSE) HTTP behaviour of a RatApp, in-process through ``rat_engine.testing.TestClient``:
routing, request_data, return conventions, files, errors, hooks, middleware and CORS.

No socket is involved: what only a real server shows (HEAD and keep-alive on the wire, chunked
streaming timing, a 5 MiB file, concurrency of sync handlers, survival after hostile requests)
is in tests/integration/test_core_http.py, with the same app (``support.core_app``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.core_app import (
    JSON_BYTES,
    PNG_BYTES,
    RETURN_CASES,
    TXT_BYTES,
    build_main_app,
    write_served_files,
)
from support.net import wait_until

from rat_engine import Middleware, RatApp, Response, RouteError
from rat_engine.testing import TestClient

pytestmark = pytest.mark.timeout(60)

#: What the client sends as Host (and the URL base); the client address is 127.0.0.1:50000.
BASE_URL = "http://127.0.0.1:8000"


def assert_serving(client: TestClient) -> None:
    """The app still answers a normal request after whatever the test sent."""
    r = client.get("/")
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_served_files(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def main_state(files_dir: str) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    app, state = build_main_app(files_dir)
    try:
        with TestClient(app, base_url=BASE_URL) as client:
            yield client, state
    finally:
        for up in state["uploads"]:  # see test_uploaded_files_are_closed_after_request
            up.file.close()


@pytest.fixture(scope="module")
def main(main_state: tuple[TestClient, dict[str, Any]]) -> TestClient:
    return main_state[0]


# ---------------------------------------------------------------------------------------------
# routing
# ---------------------------------------------------------------------------------------------
def test_static_route(main: TestClient) -> None:
    r = main.get("/static/route")
    assert r.status_code == 200
    assert r.json() == {"route": "static"}


def test_str_param(main: TestClient) -> None:
    r = main.get("/name/alice")
    assert r.status_code == 200
    assert r.json() == {"name": "alice", "type": "str", "path_params": {"name": "alice"}}


def test_int_param_is_int(main: TestClient) -> None:
    r = main.get("/item/42")
    assert r.status_code == 200
    assert r.json() == {"id": 42, "type": "int"}


def test_int_route_rejects_text_with_json_404(main: TestClient) -> None:
    r = main.get("/item/abc")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"error": "Not Found", "status": 404}


def test_unknown_path_is_json_404(main: TestClient) -> None:
    r = main.get("/definitely/not/here")
    assert r.status_code == 404
    assert r.json() == {"error": "Not Found", "status": 404}


def test_int_param_in_64_bit_range_round_trips(main: TestClient) -> None:
    r = main.get(f"/big/{2**63 - 1}")
    assert r.status_code == 200
    assert r.json() == {"n": 2**63 - 1}


def test_int_param_beyond_64_bits_is_json_encoded(main: TestClient) -> None:
    n = 99999999999999999999999
    r = main.get(f"/big/{n}")
    assert r.status_code == 200, r.text
    assert r.json() == {"n": n}


def test_float_param(main: TestClient) -> None:
    r = main.get("/num/2.5")
    assert r.status_code == 200
    assert r.json() == {"x": 2.5, "type": "float"}


def test_uuid_param_is_uuid(main: TestClient) -> None:
    u = uuid.uuid4()
    r = main.get(f"/u/{u}")
    assert r.status_code == 200
    assert r.json() == {"u": str(u), "is_uuid": True}
    assert main.get("/u/not-a-uuid").status_code == 404


def test_path_param_spans_slashes(main: TestClient) -> None:
    r = main.get("/files/a/b/c.txt")
    assert r.status_code == 200
    assert r.json() == {"p": "a/b/c.txt"}


def test_percent_decoding(main: TestClient) -> None:
    r = main.get("/p/hello%20world")
    assert r.status_code == 200
    assert r.json() == {"name": "hello world"}
    r = main.get("/p/%E4%B8%AD%E6%96%87")
    assert r.json() == {"name": "中文"}


def test_wrong_method_is_405_with_allow(main: TestClient) -> None:
    r = main.request("POST", "/only-get")
    assert r.status_code == 405
    allow = {m.strip() for m in r.headers["allow"].split(",")}
    assert allow == {"GET", "HEAD"}
    assert r.json() == {"error": "Method Not Allowed", "status": 405}
    # on a dynamic route too
    r = main.request("DELETE", "/item/1")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]


def test_automatic_options(main: TestClient) -> None:
    r = main.request("OPTIONS", "/only-get")
    assert r.status_code == 204
    assert r.content == b""
    allow = {m.strip() for m in r.headers["allow"].split(",")}
    assert {"GET", "HEAD", "OPTIONS"} <= allow
    assert "POST" not in allow
    r = main.request("OPTIONS", "/jdefault")
    assert r.status_code == 204
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["allow"].split(",")}


def test_json_decorator_defaults_to_get_and_post(main: TestClient) -> None:
    assert main.get("/jdefault").json() == {"method": "GET"}
    assert main.request("POST", "/jdefault").json() == {"method": "POST"}
    r = main.request("PUT", "/jdefault")
    assert r.status_code == 405
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["allow"].split(",")}


def test_handler_without_request_data(main: TestClient) -> None:
    r = main.get("/noreq")
    assert r.status_code == 200
    assert r.text == "x"
    r = main.get("/only/5")
    assert r.status_code == 200
    assert r.json() == {"id": 5}


def test_handler_receives_only_declared_params(main: TestClient) -> None:
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


def test_echo_keys_and_basics(main: TestClient) -> None:
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


def test_headers_case_insensitive(main: TestClient) -> None:
    r = main.get("/echo", headers={"x-CUSTOM": "v1"})
    data = r.json()
    assert data["x_custom_mixed"] == "v1"
    assert data["x_custom_item"] == "v1"
    assert data["x_custom_lower"] == "v1"
    assert isinstance(data["headers_dict"], dict)
    assert data["headers_dict"].get("x-custom") == "v1"
    assert data["headers_dict"].get("host", "").startswith("127.0.0.1")


def test_last_event_id_absent_is_none(main: TestClient) -> None:
    assert main.get("/echo").json()["last_event_id"] is None


def test_utf8_body_is_str(main: TestClient) -> None:
    payload = "héllo 中文".encode()
    data = main.request("POST", "/echo", content=payload).json()
    assert data["body_type"] == "str"
    assert data["body"] == "héllo 中文"
    assert data["raw_body_type"] == "bytes"
    assert bytes.fromhex(data["raw_body_hex"]) == payload


def test_invalid_utf8_body_is_bytes(main: TestClient) -> None:
    payload = b"\xff\xfe\x00abc"
    data = main.request("PUT", "/echo", content=payload).json()
    assert data["body_type"] == "bytes"
    assert bytes.fromhex(data["body"]) == payload
    assert bytes.fromhex(data["raw_body_hex"]) == payload


def test_json_body(main: TestClient) -> None:
    r = main.request("POST", "/json-in", json={"a": [1, 2], "s": "中"})
    assert r.status_code == 200
    assert r.json() == {"got": {"a": [1, 2], "s": "中"}}


def test_invalid_json_body_is_400(main: TestClient) -> None:
    r = main.request("POST", "/json-in", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == 400
    assert_serving(main)


def test_urlencoded_form(main: TestClient) -> None:
    r = main.request("POST", "/form-in", data={"name": "Zoë", "tag": ["a", "b"]})
    assert r.status_code == 200
    data = r.json()
    assert data["fields"]["name"] == "Zoë"
    assert data["tags"] == ["a", "b"]


def test_multipart_upload_round_trips(main: TestClient) -> None:
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


def test_uploaded_files_are_closed_after_request(main_state: tuple[TestClient, dict[str, Any]]) -> None:
    main, state = main_state
    for earlier in state["uploads"]:
        earlier.file.close()
    state["uploads"].clear()
    r = main.request(
        "POST", "/upload", data={"field": "x"}, files={"upload": ("f.txt", b"abc", "text/plain")}
    )
    assert r.status_code == 200
    up = state["uploads"][0]
    wait_until(lambda: up.file.closed, 1.0, "the upload temp file to be closed after the response")


# ---------------------------------------------------------------------------------------------
# return conventions on the wire
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,kind,value,status,ctype,body,headers", RETURN_CASES, ids=[c[0] for c in RETURN_CASES]
)
def test_return_conventions(
    main: TestClient,
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


def test_json_keeps_non_ascii_raw(main: TestClient) -> None:
    r = main.get("/rv/json_dict")
    assert "中文".encode() in r.content
    assert b"\\u" not in r.content
    assert r.json() == {"msg": "中文", "n": 1}


def test_json_dumps_string_not_double_encoded(main: TestClient) -> None:
    r = main.get("/rv/json_dumps_str")
    assert r.json() == {"k": [1, 2], "s": "x"}  # an object, not a JSON string holding an object


def test_html_none_is_204_empty(main: TestClient) -> None:
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
def test_file_content_type_by_extension(main: TestClient, name: str, ctype: str, data: bytes) -> None:
    r = main.get(f"/file/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0].strip() == ctype
    assert r.content == data
    assert r.headers["content-length"] == str(len(data))


def test_file_custom_content_type(main: TestClient) -> None:
    r = main.get("/file-custom")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-custom"
    assert r.content == TXT_BYTES


def test_file_missing_is_404(main: TestClient) -> None:
    r = main.get("/file/nope.txt")
    assert r.status_code == 404
    assert r.json()["status"] == 404
    assert_serving(main)


def test_file_etag_last_modified_and_304(main: TestClient) -> None:
    r = main.get("/file/a.txt")
    etag = r.headers.get("etag")
    assert etag and etag.startswith('"') and etag.endswith('"')
    assert r.headers.get("last-modified", "").endswith("GMT")
    r2 = main.get("/file/a.txt", headers={"If-None-Match": etag})
    assert r2.status_code == 304
    assert r2.content == b""
    r3 = main.get("/file/a.txt", headers={"If-None-Match": '"other"'})
    assert r3.status_code == 200 and r3.content == TXT_BYTES


def test_file_range(main: TestClient) -> None:
    r = main.get("/file/c.png", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 0-9/{len(PNG_BYTES)}"
    assert r.content == PNG_BYTES[:10]
    assert r.headers["content-length"] == "10"


def test_file_suffix_range(main: TestClient) -> None:
    r = main.get("/file/c.png", headers={"Range": "bytes=-5"})
    assert r.status_code == 206
    n = len(PNG_BYTES)
    assert r.headers["content-range"] == f"bytes {n - 5}-{n - 1}/{n}"
    assert r.content == PNG_BYTES[-5:]


def test_file_unsatisfiable_range(main: TestClient) -> None:
    r = main.get("/file/c.png", headers={"Range": "bytes=999999-"})
    assert r.status_code == 416
    assert r.headers.get("content-range") == f"bytes */{len(PNG_BYTES)}"


def test_file_unsatisfiable_range_is_never_5xx_and_server_survives(main: TestClient) -> None:
    r = main.get("/file/c.png", headers={"Range": "bytes=999999-"})
    assert r.status_code in (416, 500)  # 500 is the known bug above; the server must survive it
    assert_serving(main)
    r = main.get("/file/c.png", headers={"Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == PNG_BYTES[:4]


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_handler_exception_is_generic_500_and_logged(
    main: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
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

    records = wait_until(find, 3.0, "an ERROR record with exc_info")
    rec = records[0]
    assert rec.levelno == logging.ERROR
    assert isinstance(rec.exc_info[1], RuntimeError)  # type: ignore[index]
    assert "Traceback" in caplog.text
    assert "secret-detail-xyz" in caplog.text
    assert "/boom" in rec.getMessage()
    assert_serving(main)


@pytest.fixture(scope="module")
def debug_server() -> Iterator[TestClient]:
    app = RatApp(name="core-debug", debug=True, shutdown_grace=1.0)

    @app.html("/")
    def index() -> str:
        return "ok"

    @app.json("/boom", methods=["GET"])
    def boom(request_data: dict[str, Any]) -> Any:
        raise ValueError("debug-visible-detail")

    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def test_debug_app_shows_exception(debug_server: TestClient) -> None:
    r = debug_server.get("/boom")
    assert r.status_code == 500
    body = r.json()
    assert body["status"] == 500
    assert "debug-visible-detail" in r.text
    assert "ValueError" in r.text
    assert_serving(debug_server)


# ---------------------------------------------------------------------------------------------
# async handlers (concurrency of sync handlers: tests/integration/test_core_http.py)
# ---------------------------------------------------------------------------------------------


def test_async_handler(main: TestClient) -> None:
    r = main.get("/async?q=z")
    assert r.status_code == 200
    assert r.json() == {"async": True, "q": "z"}


# ---------------------------------------------------------------------------------------------
# access log
# ---------------------------------------------------------------------------------------------
def _access_records(caplog: pytest.LogCaptureFixture, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rat_engine.access" and needle in r.getMessage()]


def test_access_log_record(main: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rat_engine.access")
    logging.getLogger("rat_engine.access").disabled = False
    marker = uuid.uuid4().hex[:8]
    r = main.get(f"/logme?m={marker}")
    assert r.status_code == 200 and r.text == "hello"
    wait_until(lambda: _access_records(caplog, '"GET /logme'), 3.0, "the access record")
    time.sleep(0.1)  # a second (duplicate) record would show up by now
    records = _access_records(caplog, '"GET /logme')
    assert len(records) == 1, [r.getMessage() for r in records]
    rec = records[0]
    message = rec.getMessage()
    assert rec.levelno == logging.INFO
    assert "GET" in message and "/logme" in message
    assert " 200 " in message
    assert "5B" in message  # bytes sent: "hello"


def test_access_log_escapes_crlf(main: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rat_engine.access")
    logging.getLogger("rat_engine.access").disabled = False
    r = main.get("/logme%0d%0aFORGED-LINE")
    assert r.status_code == 404
    records = wait_until(
        lambda: _access_records(caplog, "FORGED-LINE"), 3.0, "an access record for the CR/LF path"
    )
    for rec in records:
        message = rec.getMessage()
        assert "\n" not in message and "\r" not in message, repr(message)
        assert " 404 " in message
    assert_serving(main)


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
def hooks_server() -> Iterator[tuple[TestClient, dict[str, list[Any]]]]:
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

    with TestClient(app, base_url=BASE_URL) as client:
        yield client, record


def test_before_request_short_circuits_normal_route(hooks_server: tuple[TestClient, Any]) -> None:
    server, _ = hooks_server
    r = server.get("/secure/data")
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized"}
    r = server.get("/secure/data", headers={"X-Token": "t0k"})
    assert r.status_code == 200 and r.json() == {"secret": 1}
    assert_serving(server)


def test_before_request_short_circuits_sse_route(hooks_server: tuple[TestClient, Any]) -> None:
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
    assert_serving(server)


def test_after_request_adds_header_to_normal_and_sse(hooks_server: tuple[TestClient, Any]) -> None:
    server, _ = hooks_server
    r = server.get("/")
    assert r.headers.get("x-hooked") == "yes"
    r = server.get("/open/sse")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers.get("x-hooked") == "yes"
    assert 'data: {"n":1}' in r.text


def test_errorhandler_404(hooks_server: tuple[TestClient, Any]) -> None:
    server, _ = hooks_server
    r = server.get("/no/such/page")
    assert r.status_code == 404
    assert r.text == "custom not found page"
    assert_serving(server)


def test_errorhandler_exception_class(hooks_server: tuple[TestClient, Any]) -> None:
    server, _ = hooks_server
    r = server.get("/value-error")
    assert r.status_code == 422
    assert r.json() == {"handled": "bad value 7", "path": "/value-error"}
    assert_serving(server)


def test_middleware_order(hooks_server: tuple[TestClient, Any]) -> None:
    server, record = hooks_server
    record["mw"].clear()
    r = server.get("/trace")
    assert r.status_code == 200
    assert r.json() == {"trace": ["m1", "m2"]}  # before: registration order
    assert r.headers["x-after"] == "m2,m1"  # after: reversed
    assert record["mw"] == ["m1.before /trace", "m2.before /trace", "m2.after /trace", "m1.after /trace"]


def test_middleware_on_error(hooks_server: tuple[TestClient, Any]) -> None:
    server, record = hooks_server
    record["mw"].clear()
    r = server.get("/key-error")
    assert r.status_code == 409
    assert r.json() == {"handled_by": "m2", "error": "'missing-key'"}
    assert "m1.on_error KeyError" in record["mw"]
    assert "m2.on_error KeyError" in record["mw"]
    assert_serving(server)


# ---------------------------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cors_server() -> Iterator[TestClient]:
    app = RatApp(name="core-cors", shutdown_grace=1.0)
    app.enable_cors(allow_origins=["http://a.test"])

    @app.html("/")
    def index() -> str:
        return "ok"

    @app.json("/data", methods=["GET", "POST"])
    def data(request_data: dict[str, Any]) -> Any:
        return {"data": 1}

    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def test_cors_preflight_allowed(cors_server: TestClient) -> None:
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


def test_cors_preflight_disallowed_origin(cors_server: TestClient) -> None:
    r = cors_server.request(
        "OPTIONS", "/data", headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "GET"}
    )
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers
    assert_serving(cors_server)


def test_cors_simple_request(cors_server: TestClient) -> None:
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
# TestClient basics and registration errors
# ---------------------------------------------------------------------------------------------
def test_testclient_smoke() -> None:
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


def test_registration_errors_point_at_the_handler() -> None:
    app = RatApp(name="dup")

    @app.json("/x")
    def first(request_data: dict[str, Any]) -> Any:
        return {}

    with pytest.raises(RouteError) as info:

        @app.json("/x")
        def second(request_data: dict[str, Any]) -> Any:
            return {}

    assert "duplicate route" in str(info.value)
    assert f"{Path(__file__).name}:" in str(info.value) and "second" in str(info.value)
