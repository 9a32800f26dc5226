"""How a stream reports a generator that raised: the error event with a retry back-off (no
reconnect storm), or the route's own shape (``on_error``, e.g. OpenAI-compatible)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from rat_engine import RatApp
from rat_engine.testing import TestClient


def failing(request_data: Any) -> Iterator[str]:
    yield "token"
    raise RuntimeError("model overloaded")


def openai_error(exc: BaseException) -> Any:
    return {"error": {"message": str(exc), "type": "server_error"}}


def body_of(app: RatApp, path: str) -> str:
    with TestClient(app) as client:
        return client.get(path).text


def test_the_error_event_comes_with_a_retry_back_off() -> None:
    app = RatApp()
    app.sse("/default")(failing)
    app.sse("/quick", error_retry=2000)(failing)
    app.sse("/none", error_retry=None)(failing)
    assert body_of(app, "/default") == (
        'data: token\n\nretry: 30000\nevent: error\ndata: {"type":"error","message":"Internal Server Error"}\n\n'
    )
    assert "retry: 2000\nevent: error\n" in body_of(app, "/quick")
    assert "retry:" not in body_of(app, "/none")
    assert "retry: 5000\nevent: error" in body_of(_app_with(sse_error_retry=5000), "/x")


def _app_with(**options: Any) -> RatApp:
    app = RatApp(**options)
    app.sse("/x")(failing)
    return app


def test_a_route_shapes_its_own_error_event() -> None:
    app = RatApp()
    app.sse("/v1/chat", on_error=openai_error)(failing)
    app.sse("/silent", on_error=lambda exc: None, error_retry=None)(failing)
    assert body_of(app, "/v1/chat") == (
        'data: token\n\nretry: 30000\ndata: {"error":{"message":"model overloaded","type":"server_error"}}\n\n'
    )
    assert body_of(app, "/silent") == "data: token\n\n"


def test_an_on_error_that_raises_falls_back_to_the_default(caplog: pytest.LogCaptureFixture) -> None:
    def broken(exc: BaseException) -> Any:
        raise ValueError("bug in the hook")

    app = RatApp()
    app.sse("/x", on_error=broken)(failing)
    with caplog.at_level(logging.ERROR):
        body = body_of(app, "/x")
    assert 'event: error\ndata: {"type":"error","message":"Internal Server Error"}' in body
    assert any("on_error raised" in r.getMessage() for r in caplog.records)


def test_on_error_is_for_stream_routes_only() -> None:
    with pytest.raises(TypeError):
        RatApp().json("/j", on_error=openai_error)(lambda: {})


def test_a_stream_thread_that_cannot_start_ends_its_stream_with_the_error_event(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Stream threads are started off the event loop; when the OS refuses one (thread limit),
    the stream ends with the error event instead of hanging, and the server keeps serving."""
    import threading

    real_start = threading.Thread.start

    def refuse_stream_threads(thread: threading.Thread) -> None:
        if thread.name.startswith("rat-stream-"):
            raise RuntimeError("can't start new thread")
        real_start(thread)

    app = RatApp()

    @app.sse("/progress")
    def progress(request_data: Any) -> Iterator[str]:
        yield "never"

    @app.json("/ok")
    def ok(request_data: Any) -> dict[str, bool]:
        return {"ok": True}

    monkeypatch.setattr(threading.Thread, "start", refuse_stream_threads)
    with caplog.at_level(logging.ERROR), TestClient(app) as client:
        body = client.get("/progress").text
        assert client.get("/ok").json() == {"ok": True}
    assert "never" not in body
    assert body.endswith('event: error\ndata: {"type":"error","message":"Internal Server Error"}\n\n')
    assert "stream thread could not start [/progress" in caplog.text
