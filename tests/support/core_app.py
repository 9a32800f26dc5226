"""The core HTTP test app (routing, request_data, return conventions, files, chunked streams,
errors, a slow and an async handler, an access-logged route): served in-process by
tests/app/test_core_http.py and on a real socket by tests/integration/test_core_http.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from rat_engine import JSONResponse, RatApp, Response, redirect

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


BIG_FILE_SIZE = 5 * 1024 * 1024 + 123


def write_served_files(root: Path) -> str:
    """The files ``/file/<name>`` serves: a.txt, b.json, c.png and a random 5 MiB big.bin."""
    (root / "a.txt").write_bytes(TXT_BYTES)
    (root / "b.json").write_bytes(JSON_BYTES)
    (root / "c.png").write_bytes(PNG_BYTES)
    (root / "big.bin").write_bytes(os.urandom(BIG_FILE_SIZE))
    return str(root)
