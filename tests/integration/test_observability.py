"""Opt-in metrics and status page, on a real server."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from rat_engine import RatApp


@pytest.fixture(scope="module")
def live():
    app = RatApp(name="observed", sse_ping_interval=0)
    app.enable_metrics()
    app.enable_status_page()

    @app.json("/hello")
    def hello(request_data):
        return {"hi": 1}

    @app.sse("/three")
    def three(request_data):
        yield from ("a", "b", "c")

    @app.sse("/hold")
    async def hold(request_data):
        yield "held"
        import asyncio

        await asyncio.sleep(3600)

    app.broadcast  # noqa: B018 - created, so broadcast metrics are exported
    handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="error")
    try:
        yield handle.url
    finally:
        handle.stop()


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing in:\n{text}"
    return float(match.group(1))


def test_prometheus_metrics_count_requests_streams_and_reasons(live):
    for _ in range(3):
        assert httpx.get(live + "/hello").status_code == 200
    httpx.get(live + "/missing")
    httpx.get(live + "/three")
    metrics = httpx.get(live + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert sample(text, 'rat_requests_total{method="GET",status="200"}') >= 4
    assert sample(text, 'rat_requests_total{method="GET",status="404"}') >= 1
    assert sample(text, 'rat_request_duration_seconds_bucket{le="+Inf"}') >= 4
    assert sample(text, "rat_stream_events_sent_total") >= 3
    assert sample(text, 'rat_streams_closed_total{reason="finished"}') >= 1
    assert sample(text, "rat_streams_open") == 0
    assert "# TYPE rat_request_duration_seconds histogram" in text
    assert sample(text, "rat_broadcast_subscribers") == 0


def test_status_page_streams_live_stats(live):
    page = httpx.get(live + "/_status")
    assert page.status_code == 200 and "EventSource('/_status/stream')" in page.text
    with httpx.stream("GET", live + "/hold", timeout=10) as held:
        held_chunks = held.iter_raw()  # kept alive: a discarded httpx iterator closes the stream
        next(held_chunks)
        deadline = time.monotonic() + 5
        with httpx.stream("GET", live + "/_status/stream", timeout=10) as status:
            buf = ""
            for chunk in status.iter_text():
                buf += chunk
                if "\n\n" in buf or time.monotonic() > deadline:
                    break
    frame = buf.split("\n\n")[0]
    assert frame.startswith("event: status\n")
    data = json.loads(frame.split("data: ", 1)[1])
    routes = [s["route"] for s in data["streams"]]
    assert "/hold" in routes and data["open_streams"] >= 2
    assert {"events_per_second", "bytes_per_second", "close_reasons"} <= set(data)
