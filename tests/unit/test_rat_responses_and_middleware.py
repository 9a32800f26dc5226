"""HttpResponse / HttpRequest / HttpMethod and RAT Engine style middleware, written the way RAT
Engine code uses them (its import lines, its call shapes), served in-process."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from rat_engine import CORSMiddleware, HttpMethod, HttpRequest, HttpResponse, RatApp
from rat_engine.testing import TestClient


def build_app(tmp_path: Path) -> RatApp:
    app = RatApp(name="rat_style")
    (tmp_path / "report.csv").write_text("a,b\n1,2\n")

    @app.custom("/made")
    def made(request_data: Any) -> Any:
        response = HttpResponse.json({"message": "Hello"}, status_code=201)
        response.set_header("X-Custom", "Value")
        return response

    @app.custom("/text")
    def text(request_data: Any) -> Any:
        return HttpResponse.text("Hello World").set_header("X-Chained", "yes")

    @app.custom("/html")
    def html(request_data: Any) -> Any:
        return HttpResponse.html("<h1>Hello</h1>")

    @app.custom("/moved")
    def moved(request_data: Any) -> Any:
        return HttpResponse.redirect("/new-path")

    @app.custom("/missing")
    def missing(request_data: Any) -> Any:
        return HttpResponse.error(404, 'Not "Found"')  # RAT's order: status first

    @app.custom("/broken")
    def broken(request_data: Any) -> Any:
        return HttpResponse.error("went wrong")  # message first, 500

    @app.custom("/live")
    def live(request_data: Any) -> Any:
        return HttpResponse.sse_text(["实时文本数据", "{not json}"])

    @app.custom("/download")
    def download(request_data: Any) -> Any:
        return HttpResponse.file(tmp_path / "report.csv", "text/csv", "report.csv")

    @app.custom("/raw")
    def raw(request_data: Any) -> Any:
        response = HttpResponse(status=202, headers={"X-A": "1"}, body="accepted")
        response.set_cors(origin="https://a.example")
        assert response.get_header("x-a") == "1" and response.get_header("x-none", "dflt") == "dflt"
        return response

    @app.json("/echo", methods=[HttpMethod.POST])
    def echo(request: HttpRequest) -> Any:
        return {"method": request.method, "path": request.path, "json": request.get_json(),
                "q": request.query_params.get("q"), "ua": request.headers.get("user-agent")}  # fmt: skip

    return app


def test_http_response_factories(tmp_path: Path) -> None:
    with TestClient(build_app(tmp_path)) as client:
        made = client.get("/made")
        assert made.status_code == 201 and made.json() == {"message": "Hello"}
        assert made.headers["x-custom"] == "Value"
        text = client.get("/text")
        assert text.text == "Hello World" and text.headers["x-chained"] == "yes"
        assert text.headers["content-type"] == "text/plain; charset=utf-8"
        assert client.get("/html").headers["content-type"] == "text/html; charset=utf-8"
        moved = client.get("/moved", follow_redirects=False)
        assert moved.status_code == 302 and moved.headers["location"] == "/new-path"
        missing = client.get("/missing")
        assert missing.status_code == 404
        assert json.loads(missing.text) == {"error": 'Not "Found"', "status": 404}  # escaped, unlike RAT's
        assert client.get("/broken").json() == {"error": "went wrong", "status": 500}
        live = client.get("/live")
        assert live.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert live.text == "data: 实时文本数据\n\ndata: {not json}\n\n"
        download = client.get("/download")
        assert download.text == "a,b\n1,2\n" and download.headers["content-type"].startswith("text/csv")
        assert "attachment" in download.headers["content-disposition"]
        raw = client.get("/raw")
        assert (raw.status_code, raw.text, raw.headers["x-a"]) == (202, "accepted", "1")
        assert raw.headers["access-control-allow-origin"] == "https://a.example"
        echo = client.post("/echo?q=rat", json={"n": 1}, headers={"user-agent": "ratclient"})
        assert echo.json() == {
            "method": "POST",
            "path": "/echo",
            "json": {"n": 1},
            "q": "rat",
            "ua": "ratclient",
        }
        assert client.get("/echo").status_code == 405


class AuthMiddleware:
    """RAT Engine's middleware shape: a plain class, attribute-style request, set_header."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None, str | None, Any]] = []

    def before_request(self, request: Any) -> Any:
        self.seen.append((request.method, request.path, request.headers.get("x-token"),
                          request.query_params.get("page"), request.body))  # fmt: skip
        if request.path.startswith("/private") and request.headers.get("x-token") != "secret":
            return HttpResponse.error(401, "unauthorized")
        return None

    def after_request(self, request: Any, response: Any) -> Any:
        response.set_header("X-Powered-By", "rat_engine")
        return response


def test_rat_style_middleware_objects() -> None:
    app = RatApp()
    middleware = AuthMiddleware()
    app.add_middleware(middleware)

    @app.json("/private/data", methods=["GET", "POST"])
    def private() -> Any:
        return {"ok": True}

    with TestClient(app) as client:
        refused = client.get("/private/data?page=2")
        allowed = client.post("/private/data", content="hello", headers={"x-token": "secret"})
    assert refused.status_code == 401 and refused.json() == {"error": "unauthorized", "status": 401}
    assert refused.headers["x-powered-by"] == "rat_engine"
    assert allowed.json() == {"ok": True} and allowed.headers["x-powered-by"] == "rat_engine"
    assert middleware.seen == [
        ("GET", "/private/data", None, "2", ""),
        ("POST", "/private/data", "secret", None, "hello"),
    ]


def test_an_asgi_middleware_class_is_still_refused_clearly() -> None:
    class NotOne:
        def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(TypeError, match="before_request/after_request"):
        RatApp().add_middleware(NotOne())
    with pytest.raises(TypeError):
        RatApp().add_middleware(AuthMiddleware)  # the class, not an instance


def test_cors_middleware_without_arguments_allows_no_origin_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, "rat_engine.middleware"):
        CORSMiddleware()
        CORSMiddleware(origins=["*"])
    messages = [r.getMessage() for r in caplog.records]
    assert "CORS: allowed origins: none (pass allow_origins=[...])" in messages
    assert "CORS: any origin" in messages


def test_http_method_is_a_string() -> None:
    assert HttpMethod.GET == "GET" and f"{HttpMethod.POST}" == "POST"


def test_request_data_can_be_echoed_as_json() -> None:
    """A common RAT debugging handler returns ``{"request_data": request_data}``."""
    app = RatApp()

    @app.json("/echo/<int:n>", methods=["POST"])
    def echo(request_data: Any, n: int) -> Any:
        request_data.form()  # parses the upload: files hold file objects
        return {"request_data": request_data, "n": n}

    @app.sse("/stream")
    def stream(request_data: Any) -> Any:
        yield {"request_data": request_data}

    with TestClient(app) as client:
        echoed = client.post("/echo/7?a=1", files={"up": ("f.txt", b"\xff\xfe bytes")}, data={"k": "v"})
        streamed = client.get("/stream")
    body = echoed.json()
    assert echoed.status_code == 200 and body["n"] == 7
    data = body["request_data"]
    assert data["query"] == "a=1" and data["query_params"] == {"a": "1"}
    assert data["path_params"] == {"n": "7"}  # RAT's strings; the argument n is the int 7
    assert isinstance(data["raw_body"], str)  # bytes as text (invalid UTF-8 replaced)
    event = json.loads(streamed.text.removeprefix("data: "))
    assert event["request_data"]["disconnected"] is False  # the stop flag as a bool


def test_a_hook_refusal_gets_the_json_error_shape() -> None:
    app = RatApp()

    @app.before_request
    def auth(request_data: Any) -> Any:
        if request_data["path"] == "/private":
            return "unauthorized", 401
        if request_data["path"] == "/teapot":
            return "<p>I am a teapot page</p>", 200  # not an error: converted as before
        return None

    @app.json("/private")
    def private() -> Any:
        return {}

    @app.json("/teapot")
    def teapot() -> Any:
        return {}

    with TestClient(app) as client:
        refused = client.get("/private")
        page = client.get("/teapot")
    assert refused.status_code == 401
    assert refused.json() == {"error": "unauthorized", "status": 401}
    assert page.text == "<p>I am a teapot page</p>" and page.headers["content-type"].startswith("text/html")
