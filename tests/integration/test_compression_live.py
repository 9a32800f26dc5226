"""Compression on the real server: each event decodes when it is sent (not at the end), for
every coding, every kind of stream source, broadcast write-through and keep-alives; curl's
``--compressed`` and a browser's EventSource read it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from support.browser import browser_page
from support.net import wait_until
from support.prereq import require_or_skip
from support.sse import RawSSE

from rat_engine import RatApp
from rat_engine.compression.codecs import STREAM_PREFERENCE
from rat_engine.compression.negotiate import choose_encoding

INTERVAL = 0.4
EVENTS = 4


def build_app() -> RatApp:
    app = RatApp(name="compressed", sse_ping_interval=15)
    app.enable_compression(min_size=512)

    @app.sse("/ticks")
    async def ticks(request_data: Any) -> AsyncIterator[Any]:
        for n in range(EVENTS):
            yield {"n": n, "sent": time.time(), "payload": "repetitive text " * 4}
            await asyncio.sleep(INTERVAL)

    @app.sse("/sync-ticks")
    def sync_ticks(request_data: Any) -> Iterator[Any]:
        for n in range(EVENTS):
            yield {"n": n, "sent": time.time(), "payload": "repetitive text " * 4}
            time.sleep(INTERVAL)

    @app.sse("/quiet", ping_interval=0.25)
    async def quiet(request_data: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(1.2)
        yield {"n": 0, "sent": time.time()}

    @app.sse("/news")
    def news(request_data: Any) -> Any:
        return app.broadcast.subscribe("news")

    @app.json("/data")
    def data() -> Any:
        return {"rows": [{"id": n, "name": "row", "flags": [True, False]} for n in range(300)]}

    @app.route("/page")
    def page() -> str:
        return """<!doctype html><meta charset="utf-8"><script>
window.results = [];
const es = new EventSource('/ticks');
es.onmessage = (e) => { window.results.push(JSON.parse(e.data).n);
  if (window.results.length === 4) es.close(); };
</script>"""

    return app


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[RatApp, Any]]:
    from support.live import run_live

    app = build_app()
    with run_live(app) as handle:
        yield app, handle


def read_timed(stream: RawSSE) -> list[tuple[int, float]]:
    """(n, delay) per event: delay from the moment the server yielded it to its decoding here."""
    got = []
    for _ in range(EVENTS):
        event = stream.next_event(timeout=5)
        data = json.loads(event.data)
        got.append((data["n"], time.time() - data["sent"]))
    return got


@pytest.mark.parametrize(
    ("offer", "coding"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),  # Chromium's offer: zstd first
        ("gzip, deflate, br", "gzip"),  # streams prefer gzip to br (memory per stream)
    ],
)
def test_each_event_decodes_when_it_is_sent(live: Any, offer: str, coding: str) -> None:
    _, handle = live
    with RawSSE(handle.port, "/ticks", accept_encoding=offer) as stream:
        timed = read_timed(stream)
        assert stream.headers["content-encoding"] == coding
        assert stream.headers["vary"] == "Accept-Encoding"
    assert [n for n, _ in timed] == list(range(EVENTS))
    # Sent INTERVAL apart: each arrives long before the next one is even made.
    assert max(delay for _, delay in timed) < INTERVAL * 0.75, timed


def test_a_sync_generator_stream_is_compressed_too(live: Any) -> None:
    _, handle = live
    with RawSSE(handle.port, "/sync-ticks", accept_encoding="gzip") as stream:
        timed = read_timed(stream)
        assert stream.headers["content-encoding"] == "gzip"
    assert max(delay for _, delay in timed) < INTERVAL * 0.75, timed


def test_identity_gets_the_stream_as_it_is(live: Any) -> None:
    _, handle = live
    with RawSSE(handle.port, "/ticks", accept_encoding="identity") as stream:
        timed = read_timed(stream)
        assert "content-encoding" not in stream.headers
        assert stream.headers["vary"] == "Accept-Encoding"
    assert len(timed) == EVENTS


def test_keepalives_go_through_the_compressor(live: Any) -> None:
    _, handle = live
    with RawSSE(handle.port, "/quiet", accept_encoding="gzip") as stream:
        stream.read_headers()
        decoded = b""
        deadline = time.monotonic() + 5
        while b"data:" not in decoded and time.monotonic() < deadline:
            decoded += stream._more(deadline) or b""
    assert decoded.count(b": ping\n") >= 2  # each decodable on arrival, before the event
    assert decoded.index(b": ping") < decoded.index(b"data:")


def test_broadcast_frames_are_compressed_per_subscriber(live: Any) -> None:
    app, handle = live
    with (
        RawSSE(handle.port, "/news", accept_encoding="gzip") as gz,
        RawSSE(handle.port, "/news", accept_encoding="zstd") as zs,
        RawSSE(handle.port, "/news", accept_encoding="identity") as plain,
    ):
        for stream in (gz, zs, plain):
            stream.read_headers()
        wait_until(lambda: app.broadcast.stats()["subscribers"] >= 3, 5, what="3 subscribers")
        for n in range(5):
            app.broadcast.publish("news", {"n": n, "headline": "the same words again"})
            time.sleep(0.05)
        results = {name: [json.loads(e.data)["n"] for e in s.take(5, timeout=5)] for name, s in
                   (("gzip", gz), ("zstd", zs), ("identity", plain))}  # fmt: skip
        assert (gz.headers["content-encoding"], zs.headers["content-encoding"]) == ("gzip", "zstd")
    assert results == {"gzip": [0, 1, 2, 3, 4], "zstd": [0, 1, 2, 3, 4], "identity": [0, 1, 2, 3, 4]}


def _curl() -> str:
    curl = shutil.which("curl")
    if curl is None:
        require_or_skip("curl", "not on PATH (apt-get install curl)")
    assert curl is not None
    return curl


def test_curl_compressed_reads_a_json_route_and_a_stream(live: Any) -> None:
    _, handle = live
    curl = _curl()
    head = subprocess.run(
        [curl, "-s", "--compressed", "-D", "-", "-o", "/dev/null", handle.url + "/data"],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    assert "content-encoding: " in head.stdout.lower()
    body = subprocess.run(
        [curl, "-s", "--compressed", handle.url + "/data"], capture_output=True, timeout=20, check=True
    ).stdout
    assert json.loads(body)["rows"][299]["id"] == 299
    stream = subprocess.run(
        [curl, "-sN", "--compressed", "--max-time", "10", handle.url + "/ticks"],
        capture_output=True, timeout=20, check=True,
    ).stdout  # fmt: skip
    assert [json.loads(line[6:])["n"] for line in stream.split(b"\n") if line.startswith(b"data: ")] == [
        0,
        1,
        2,
        3,
    ]


@pytest.mark.browser
def test_a_browser_eventsource_reads_a_compressed_stream(live: Any, chromium_path: str) -> None:
    app, handle = live
    seen: list[str] = []
    done = threading.Event()

    @app.after_request
    def note_encoding(request_data: Any, response: Any) -> None:
        if request_data["path"] == "/ticks":
            seen.append(request_data["headers"].get("accept-encoding", ""))
            done.set()
            # what the dispatcher will choose for this stream, from the browser's own offer
            assert app.compression is not None
            seen.append(str(choose_encoding(seen[0], app.compression.usable, STREAM_PREFERENCE)))

    with browser_page(chromium_path) as page:
        page.goto(handle.url + "/page")
        page.wait_for_function("window.results.length === 4", timeout=10_000)
        results = page.evaluate("window.results")
    assert results == [0, 1, 2, 3]
    assert done.wait(5) and "gzip" in seen[0]  # the browser offered compression ...
    assert seen[1] == "zstd"  # ... and its stream was compressed (Chromium offers zstd)
