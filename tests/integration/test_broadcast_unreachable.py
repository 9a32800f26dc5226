"""Redis unreachable: said at startup (with the URL, without its password), and a publish that
cannot reach it is a clean 503 with one log line, not a 500 with a traceback."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
from support.live import run_live
from support.net import free_port

from rat_engine import RatApp
from rat_engine.broadcast import BroadcastUnavailable
from rat_engine.testing import TestClient


def build_app() -> RatApp:
    # Nothing listens on this port: a Redis that is down.
    app = RatApp(broadcast_url=f"redis://:s3cret@127.0.0.1:{free_port()}/0")

    @app.json("/publish", methods=["POST"])
    def publish(request_data: Any) -> Any:  # a plain def: publish() waits for the id
        return {"id": app.broadcast.publish("news", request_data.json())}

    @app.json("/apublish", methods=["POST"])
    async def apublish(request_data: Any) -> Any:
        return {"id": await app.broadcast.apublish("news", request_data.json())}

    return app


def test_unreachable_redis_is_a_warning_at_startup_and_503_on_publish(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_app()
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        startup = [r.getMessage() for r in caplog.records if "at startup" in r.getMessage()]
        caplog.clear()
        sync = client.post("/publish", json={"n": 1})
        async_ = client.post("/apublish", json={"n": 2})
    assert len(startup) == 1
    assert "redis://***@127.0.0.1:" in startup[0] and "unreachable" in startup[0]
    assert "s3cret" not in startup[0]
    for response in (sync, async_):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
        assert response.json() == {"error": "broadcast unavailable", "status": 503}
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2 and all(r.exc_info is None for r in lines)  # one line each, no traceback
    assert all("not published" in r.getMessage() for r in lines)


def test_broadcast_unavailable_is_a_connection_error() -> None:
    assert issubclass(BroadcastUnavailable, ConnectionError)  # code catching ConnectionError still works


@pytest.mark.redis
def test_subscribers_while_redis_is_down_are_told_so_and_a_new_one_gets_messages_once_back(
    redis_server_factory: Any,
) -> None:
    """Issue 15 item 8: not a silent stream. A reconnect with Last-Event-ID (no replay possible)
    gets ``retry:`` and an end: an EventSource reconnects by itself (after a 503 it would give
    up). A new subscriber is told at once that the broker is down (a comment and ``retry:``),
    stays open, and receives what is published once Redis is back."""
    redis = redis_server_factory()
    app = RatApp(broadcast_url=redis.url)

    @app.sse("/news")
    def news(request_data: Any) -> Any:
        return app.broadcast.subscribe("news", request_data["last_event_id"])

    @app.json("/publish", methods=["POST"])
    def publish(request_data: Any) -> Any:
        return {"id": app.broadcast.publish("news", request_data.json())}

    with run_live(app) as handle:
        redis.stop()
        reconnect = httpx.get(f"{handle.url}/news", headers={"last-event-id": "1-0"}, timeout=10)
        assert reconnect.status_code == 200
        assert reconnect.text == ": broadcast unavailable\nretry: 2000\n"
        with httpx.Client(timeout=10) as client, client.stream("GET", f"{handle.url}/news") as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": broadcast unavailable, waiting for it"
            assert next(lines) == "retry: 2000"
            redis.start()
            deadline = time.monotonic() + 15
            while client.post(f"{handle.url}/publish", json={"n": 7}).status_code != 200:
                assert time.monotonic() < deadline, "publishing never recovered"
                time.sleep(0.2)
            for line in lines:
                if line.startswith("data:"):
                    assert line == 'data: {"n":7}'
                    break
