"""Redis unreachable: said at startup (with the URL, without its password), and a publish that
cannot reach it is a clean 503 with one log line, not a 500 with a traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest
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
