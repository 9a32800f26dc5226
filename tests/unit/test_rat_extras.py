"""The rest of RAT Engine's app API, written as RAT Engine code uses it: the current-request
helpers, SPA fallback, file helpers, run state, extensions, LoggingMiddleware, and the
configuration calls that only warn."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import rat_engine
from rat_engine import LoggingMiddleware, RatApp, path_params, request
from rat_engine.testing import TestClient
from rat_engine.web_app import get_path_params


def test_current_request_helpers_reach_every_place_handler_code_runs() -> None:
    app = RatApp()

    @app.json("/sync/<int:n>")
    def sync_handler(n: int) -> Any:  # a plain def: runs on the handler thread pool
        return {"path": request()["path"], "params": path_params(), "web_app": get_path_params(), "n": n}

    @app.json("/async/<name>")
    async def async_handler(name: str) -> Any:
        await asyncio.sleep(0)
        return {"method": rat_engine.request().method, "params": path_params()}

    @app.sse("/gen/<room>")
    def generator(request_data: Any, room: str) -> Any:  # runs on its own thread
        yield {"same": request() is request_data, "params": path_params()}

    with TestClient(app) as client:
        assert client.get("/sync/7").json() == {
            "path": "/sync/7",
            "params": {"n": "7"},
            "web_app": {"n": "7"},
            "n": 7,
        }
        assert client.get("/async/bob").json() == {"method": "GET", "params": {"name": "bob"}}
        assert client.get("/gen/lobby").text == 'data: {"same":true,"params":{"room":"lobby"}}\n\n'
    with pytest.raises(RuntimeError, match="only available while a request is being handled"):
        request()


def test_spa_fallback_serves_the_page_for_client_side_routes(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<div id=app></div>")
    app = RatApp()
    app.static("/", tmp_path)
    app.enable_spa("/index.html")

    @app.json("/api/ping")
    def ping() -> Any:
        return {"pong": True}

    with TestClient(app) as client:
        page = client.get("/dashboard/settings", headers={"accept": "text/html,application/xhtml+xml"})
        api_missing = client.get("/api/nope", headers={"accept": "application/json"})
        asset_missing = client.get("/missing.js", headers={"accept": "*/*"})
        assert client.get("/api/ping").json() == {"pong": True}
        app.configure_spa(enabled=False)
        off = client.get("/dashboard", headers={"accept": "text/html"})
    assert page.status_code == 200 and page.text == "<div id=app></div>"
    assert api_missing.status_code == 404 and asset_missing.status_code == 404 and off.status_code == 404
    with pytest.raises(ValueError):
        app.enable_spa("index.html")


def test_send_file_and_send_static_file_with_a_traversal_guard(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "a.txt").write_text("A")
    (tmp_path / "secret.txt").write_text("secret")
    app = RatApp()

    @app.file("/doc")
    def doc() -> Any:
        return app.send_file(static / "a.txt", "text/plain", "a.txt")

    @app.file("/s/<path:name>")
    def stat(name: str) -> Any:
        return app.send_static_file(name, static)

    with TestClient(app) as client:
        assert client.get("/doc").headers["content-disposition"].startswith("attachment")
        assert client.get("/s/a.txt").text == "A"
        assert client.get("/s/../secret.txt").status_code == 404
        assert client.get("/s/%2e%2e/secret.txt").status_code == 404


def test_run_state_metrics_info_and_extensions() -> None:
    app = RatApp(name="stateful")
    db = object()
    app.add_extension("db", db)
    assert app.get_extension("db") is db and app.get_extension("cache") is None
    assert not app.is_running()

    @app.json("/")
    def index() -> Any:
        return {"db": app.get_extension("db") is db}

    handle = app.run(port=0, blocking=False, log_level="warning")
    try:
        assert app.is_running()
        assert httpx.get(handle.url, timeout=5).json() == {"db": True}
        info = app.get_server_info()
        assert (info["name"], info["running"], info["port"]) == ("stateful", True, handle.port)
        assert info["version"] == rat_engine.__version__
        assert "open_streams" in app.get_metrics()
    finally:
        app.stop()
    assert not app.is_running()


def test_logging_middleware_logs_each_request(caplog: pytest.LogCaptureFixture) -> None:
    app = RatApp()
    app.add_middleware(LoggingMiddleware())

    @app.json("/x")
    def x() -> Any:
        time.sleep(0.01)
        return {}

    with caplog.at_level(logging.INFO, "rat_engine.app"), TestClient(app) as client:
        client.get("/x")
        client.get("/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "rat_engine.app"]
    assert lines[0].startswith("GET /x -> 200 (") and lines[1].startswith("GET /nope -> 404 (")


@pytest.mark.parametrize(
    "call", ["enable_cache", "disable_cache", "enable_version_manager", "configure_celery"]
)
def test_configuration_calls_with_no_counterpart_warn_and_the_app_still_serves(
    call: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = RatApp()
    with caplog.at_level(logging.WARNING, "rat_engine.app"):
        getattr(app, call)(max_age=60)
    assert any(f"RAT Engine's {call}() is not available" in r.getMessage() for r in caplog.records)

    @app.json("/")
    def index() -> Any:
        return {"ok": True}

    with TestClient(app) as client:
        assert client.get("/").json() == {"ok": True}
