"""A real browser's EventSource (headless Debian Chromium) reads rat_engine streams exactly."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from support.browser import browser_page
from support.live import run_live

from rat_engine import RatApp, SSEEvent

pytestmark = pytest.mark.browser

MULTILINE = "multi\nline\r\nthree\rfour"
CHINESE = "中文数据 ✓ — ünïcode"

PAGE = """<!doctype html><meta charset="utf-8"><title>es</title><script>
window.results = [];
const es = new EventSource('/stream');
const keep = (kind) => (e) => window.results.push({kind, type: e.type, data: e.data, id: e.lastEventId});
es.onmessage = keep('message');
es.addEventListener('update', keep('update'));
es.addEventListener('notification', keep('notification'));
es.addEventListener('done', (e) => { keep('done')(e); es.close(); });
</script>"""

RECONNECT_PAGE = """<!doctype html><meta charset="utf-8"><script>
window.results = [];
const es = new EventSource('/reconnect');
es.onmessage = (e) => window.results.push({data: e.data, id: e.lastEventId, t: performance.now()});
es.addEventListener('done', (e) => { window.results.push({data: e.data, id: e.lastEventId}); es.close(); });
</script>"""

# The guide's JavaScript client, verbatim, with the one function it assumes the page defines.
SEED_CLIENT_PAGE = """<!doctype html><meta charset="utf-8"><script>
window.bar = [];
function updateProgressBar(p) { window.bar.push(p); }
// 连接 SSE 流
const eventSource = new EventSource('/api/progress/session123');

// 监听消息
eventSource.onmessage = function(event) {
    const data = JSON.parse(event.data);
    console.log('收到消息:', data);
    
    switch(data.type) {
        case 'init':
            console.log('连接已建立:', data.session_id);
            break;
        case 'progress':
            updateProgressBar(data.progress);
            break;
        case 'completed':
            console.log('任务完成');
            eventSource.close();
            break;
        case 'error':
            console.error('错误:', data.message);
            break;
    }
};

// 错误处理
eventSource.onerror = function(event) {
    console.error('SSE 连接错误:', event);
};
</script>"""


def build_app() -> RatApp:
    app = RatApp(name="browser")
    connections: list[str | None] = []

    @app.html("/page")
    def page(request_data):
        return PAGE

    @app.html("/reconnect-page")
    def reconnect_page(request_data):
        return RECONNECT_PAGE

    @app.html("/seed-client")
    def seed_client(request_data):
        return SEED_CLIENT_PAGE

    @app.sse("/stream")
    async def stream(request_data):
        yield "plain"
        yield MULTILINE
        yield CHINESE
        yield {"json": "值", "n": 1}
        yield SSEEvent({"k": "值"}, event="update", id="42")
        yield f"event: notification\ndata: {json.dumps({'alert': 'New message'})}\n\n"
        await asyncio.sleep(0.05)
        yield SSEEvent("bye", event="done")

    @app.sse("/reconnect")
    def reconnect(request_data):
        last = request_data["last_event_id"]
        connections.append(last)
        if last is None:
            yield SSEEvent("first", id="1", retry=300)
            return  # the server ends the stream; the browser reconnects after ~300 ms
        yield SSEEvent(f"resumed after {last}", event="done", id="2")

    # The guide's progress example (shortened sleeps).
    @app.sse("/api/progress/<session_id>")
    def progress_stream(request_data, session_id):
        yield json.dumps({"type": "init", "session_id": session_id, "status": "connected"})
        for progress in range(0, 101, 10):
            yield json.dumps({"type": "progress", "session_id": session_id, "progress": progress})
            time.sleep(0.02)
        yield json.dumps({"type": "completed", "session_id": session_id, "progress": 100})

    app.config["connections"] = connections
    return app


@pytest.fixture(scope="module")
def live():
    app = build_app()
    with run_live(app) as handle:
        yield app, handle.url


def test_eventsource_receives_text_exactly_and_named_events(live, chromium_path):
    app, url = live
    with browser_page(chromium_path) as page:
        page.goto(url + "/page")
        page.wait_for_function("window.results.some(r => r.kind === 'done')", timeout=10_000)
        results = page.evaluate("window.results")
    assert [(r["kind"], r["data"]) for r in results] == [
        ("message", "plain"),
        ("message", MULTILINE.replace("\r\n", "\n").replace("\r", "\n")),
        ("message", CHINESE),
        ("message", json.dumps({"json": "值", "n": 1}, ensure_ascii=False, separators=(",", ":"))),
        ("update", '{"k":"值"}'),
        ("notification", '{"alert": "New message"}'),
        ("done", "bye"),
    ]
    assert results[4]["id"] == "42"
    assert results[6]["id"] == "42"  # lastEventId persists until a new id arrives


def test_browser_reconnects_with_last_event_id_after_retry_hint(live, chromium_path):
    app, url = live
    app.config["connections"].clear()
    with browser_page(chromium_path) as page:
        page.goto(url + "/reconnect-page")
        page.wait_for_function("window.results.length >= 2", timeout=10_000)
        results = page.evaluate("window.results")
    assert results[0] == {"data": "first", "id": "1", "t": results[0]["t"]}
    assert results[1] == {"data": "resumed after 1", "id": "2"}
    assert app.config["connections"][:2] == [None, "1"]


def test_seed_javascript_client_runs_verbatim(live, chromium_path):
    app, url = live
    with browser_page(chromium_path) as page:
        console: list[str] = []
        page.on("console", lambda msg: console.append(msg.text))
        page.goto(url + "/seed-client")
        page.wait_for_function("window.bar.length === 11", timeout=10_000)
        page.wait_for_timeout(300)
        bar = page.evaluate("window.bar")
    assert bar == list(range(0, 101, 10))
    assert any("连接已建立: session123" in line for line in console), console
    assert any("任务完成" in line for line in console), console
    assert not any("SSE 连接错误" in line for line in console), console
