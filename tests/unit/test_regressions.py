"""Defects found by the core review (docs/ARCHITECTURE.md, "The layers"), each pinned by a test
that failed before its fix. Public API only, in-process (TestClient or a bare ASGI driver)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from rat_engine import RatApp
from rat_engine.broadcast.memory import MemoryBackend
from rat_engine.testing import TestClient


def test_methods_given_as_one_string_is_one_method() -> None:
    """``methods="POST"`` registered the methods O, P, S, T."""
    app = RatApp()

    @app.route("/submit", methods="POST")
    def submit() -> str:
        return "ok"

    with TestClient(app) as client:
        assert client.post("/submit").text == "ok"
        refused = client.get("/submit")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "POST"


def test_a_status_given_as_a_digit_string_is_a_status() -> None:
    """``return body, "201"`` sent ``Content-Type: 201``."""
    app = RatApp()

    @app.json("/made", methods=["POST"])
    def made() -> Any:
        return {"id": 7}, "201"

    with TestClient(app) as client:
        response = client.post("/made")
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"id": 7}


def test_an_unencodable_item_is_logged_with_route_handler_and_value(caplog: pytest.LogCaptureFixture) -> None:
    """The log said only "cannot encode stream item of type dict"."""
    app = RatApp()

    @app.sse("/feed/<room>")
    def feed(request_data: Any, room: str) -> Iterator[Any]:
        yield {"room": room, "user": {"tags": ["a", object()]}}
        yield "after"

    with caplog.at_level(logging.ERROR), TestClient(app) as client, client.sse("/feed/r1") as events:
        assert events.next_event(timeout=5).event == "error"
        assert events.next_event(timeout=5).data == "after"  # one bad item does not end the stream
    [record] = [r for r in caplog.records if "cannot encode stream item" in r.getMessage()]
    message = record.getMessage()
    assert "/feed/<room>" in message
    assert f"{__file__}:{feed.__code__.co_firstlineno} " in message and "feed" in message
    assert "item['user']['tags'][1]: object" in message


def test_finished_streams_are_not_kept_alive_by_a_max_duration_timer() -> None:
    """The max_duration TimerHandle was never cancelled: every finished stream stayed reachable
    from the event loop until it fired (an hour here)."""
    app = RatApp(sse_max_duration=3600)
    generators: list[weakref.ref[Any]] = []

    @app.sse("/short", inline=True)  # inline: no thread-pool future holds the last result
    def short(request_data: Any) -> Any:
        gen = (item for item in ["a", "b"])
        generators.append(weakref.ref(gen))
        return gen

    with TestClient(app) as client:
        for _ in range(10):
            assert client.get("/short").text == "data: a\n\ndata: b\n\n"
        # The client has the whole body a moment before the server's task has finished closing
        # the stream: give that a moment (before the fix they stayed for the whole hour).
        deadline = time.monotonic() + 3
        while True:
            gc.collect()
            alive = sum(ref() is not None for ref in generators)
            if alive == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert len(generators) == 10
    assert alive == 0


class _SlowSubscribe(MemoryBackend):
    """A backend whose subscribe awaits I/O, as Redis's does."""

    async def subscribe(self, channel: str) -> None:
        await asyncio.sleep(0.2)
        await super().subscribe(channel)


def test_concurrent_subscribers_cannot_overshoot_max_streams() -> None:
    """Admission (dispatch) and registration (the stream) were separated by the subscription's
    ``await``: with a backend that awaits I/O, every concurrent subscriber passed admission."""
    app = RatApp(max_streams=2)
    app.broadcast.backend = _SlowSubscribe(100, None)

    @app.sse("/sub/<channel>")
    def sub(request_data: Any, channel: str) -> Any:
        return app.broadcast.subscribe(channel)

    assert asyncio.run(_open_concurrently(app, [f"/sub/c{n}" for n in range(5)])) == [200, 200, 503, 503, 503]


async def _open_concurrently(app: RatApp, paths: list[str]) -> list[int]:
    """Start every request at once on one loop (a bare ASGI driver); the response statuses."""
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, lifespan_in.get, lifespan_out.put))
    await lifespan_in.put({"type": "lifespan.startup"})
    assert (await lifespan_out.get())["type"] == "lifespan.startup.complete"
    statuses: list[int] = []
    gone = asyncio.Event()

    async def request(index: int, path: str) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 40000 + index),
            "server": ("test", 80),
        }
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)

    requests = [asyncio.ensure_future(request(n, path)) for n, path in enumerate(paths)]
    await asyncio.sleep(0.8)
    result = sorted(statuses)
    gone.set()
    await asyncio.wait_for(asyncio.gather(*requests), 5)
    await lifespan_in.put({"type": "lifespan.shutdown"})
    assert (await lifespan_out.get())["type"] == "lifespan.shutdown.complete"
    await lifespan
    return result
