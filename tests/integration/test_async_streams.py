"""Async generator streams on rat_engine's own server, which steps them in the request task.

Pins what a user of ``async def`` generators relies on: asyncio.timeout and context variables
work inside the generator, a burst arrives complete and in order, ``finally`` blocks (even ones
that await) run when the client leaves, and a generator that swallows the cancellation still
ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

import httpx
import pytest
from support.live import run_live
from support.net import wait_until

from rat_engine import RatApp
from rat_engine.testing import SSEParser

pytestmark = pytest.mark.timeout(60)

request_tag: contextvars.ContextVar[str] = contextvars.ContextVar("request_tag", default="unset")


def make_app(log: list[str]) -> RatApp:
    app = RatApp(name="async-streams", sse_ping_interval=0)

    @app.sse("/timeout")
    async def with_timeout(request_data: Any) -> Any:
        request_tag.set("tagged")
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(5)
        except TimeoutError:
            yield {"timed_out": True, "tag": request_tag.get()}

    @app.sse("/burst/<int:n>")
    async def burst(request_data: Any, n: int) -> Any:
        for i in range(n):
            yield {"i": i}
        await asyncio.sleep(0.01)
        yield {"done": True}

    @app.sse("/forever")
    async def forever(request_data: Any) -> Any:
        try:
            while True:
                yield "tick"
                await asyncio.sleep(0.05)
        finally:
            await asyncio.sleep(0.01)  # cleanup that awaits must still complete
            log.append("forever finally")

    @app.sse("/stubborn")
    async def stubborn(request_data: Any) -> Any:
        try:
            yield "tick"
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                log.append("stubborn swallowed the cancellation")
                yield "still here"  # never sent: the client is gone
            await asyncio.sleep(30)
        finally:
            log.append("stubborn finally")

    @app.json("/stats")
    def stats(request_data: Any) -> Any:
        return app.connections.stats()

    return app


def events(response: httpx.Response) -> list[Any]:
    parser = SSEParser()
    out: list[Any] = []
    for text in response.iter_text():
        out.extend(parser.feed(text))
    return out


def test_asyncio_timeout_and_contextvars_work_inside_the_generator() -> None:
    with run_live(make_app([])) as server:
        with httpx.stream("GET", server.url + "/timeout", timeout=10) as response:
            received = events(response)
    assert [json.loads(e.data) for e in received] == [{"timed_out": True, "tag": "tagged"}]


def test_a_burst_arrives_complete_and_in_order() -> None:
    with run_live(make_app([])) as server:
        with httpx.stream("GET", server.url + "/burst/5000", timeout=10) as response:
            received = [json.loads(e.data) for e in events(response)]
        stats = httpx.get(server.url + "/stats").json()
    assert received == [{"i": i} for i in range(5000)] + [{"done": True}]
    assert stats["events_sent_total"] == 5001


@pytest.mark.parametrize("path", ["/forever", "/stubborn"])
def test_leaving_client_runs_the_generators_finally(path: str) -> None:
    log: list[str] = []
    with run_live(make_app(log)) as server:
        with httpx.stream("GET", server.url + path, timeout=10) as response:
            lines = response.iter_lines()
            assert next(lines) == "data: tick"
        wait_until(
            lambda: any("finally" in entry for entry in log), what=f"{path} finally after the client left"
        )
        wait_until(
            lambda: httpx.get(server.url + "/stats").json()["open_streams"] == 0, what="stream unregistered"
        )
        assert httpx.get(server.url + "/stats").json()["close_reasons"] == {"client": 1}
    if path == "/stubborn":
        assert log == ["stubborn swallowed the cancellation", "stubborn finally"]
    else:
        assert log == ["forever finally"]
