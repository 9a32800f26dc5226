"""Why HTTP/2: a page in headless Chromium opens 12 EventSources to one origin. Over HTTP/1.1
the browser holds 6 connections per origin, so 6 streams get events and 6 hang; over HTTP/2
(TLS, ALPN) all 12 share one connection and all get events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.browser import browser_page
from support.live import run_live
from support.tls import certificate

from rat_engine import RatApp

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

STREAMS = 12

PAGE = """<!doctype html><meta charset="utf-8"><title>12 streams</title><script>
window.counts = new Array(STREAMS).fill(0);
for (let i = 0; i < window.counts.length; i++) {
  const es = new EventSource('/ticks/' + i);
  es.onmessage = () => { window.counts[i] += 1; };
}
</script>""".replace("STREAMS", str(STREAMS))


def make_app() -> RatApp:
    app = RatApp(name="h2-browser")

    @app.html("/")
    def page(request_data: Any) -> str:
        return PAGE

    @app.sse("/ticks/<int:n>")
    async def ticks(request_data: Any, n: int) -> Any:
        while True:
            yield f"stream {n}"
            await asyncio.sleep(0.1)

    return app


def streams_with_events(page: Any) -> tuple[int, str]:
    """After the page has had time to open every stream: how many got events, over what."""
    page.wait_for_function("window.counts.filter(c => c > 0).length >= 6", timeout=15_000)
    page.wait_for_timeout(2_500)  # the hanging ones would have had 25 ticks by now
    live = page.evaluate("window.counts.filter(c => c > 0).length")
    protocol = page.evaluate(
        "performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".map(e => e.nextHopProtocol).filter(Boolean)[0] || ''"
    )
    return int(live), str(protocol)


def test_http1_caps_a_page_at_six_streams(chromium_path: str) -> None:
    with run_live(make_app()) as handle, browser_page(chromium_path) as page:
        page.goto(handle.url + "/")
        live, protocol = streams_with_events(page)
        assert protocol == "http/1.1"
        assert live == 6, f"{live} of {STREAMS} streams got events over HTTP/1.1"


def test_http2_carries_all_twelve_streams(chromium_path: str, tmp_path: Any) -> None:
    cert = certificate(tmp_path)
    with (
        run_live(make_app(), ssl_certfile=cert.certfile, ssl_keyfile=cert.keyfile) as handle,
        browser_page(chromium_path, ignore_https_errors=True) as page,
    ):
        page.goto(f"https://localhost:{handle.port}/")
        live, protocol = streams_with_events(page)
        assert protocol == "h2"
        assert live == STREAMS, f"{live} of {STREAMS} streams got events over HTTP/2"
