"""Prove the browser harness works: Chromium loads a local page, runs its JS, takes a screenshot."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.browser import browser_page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>loading</title></head>
<body><h1 id="msg">harness smoke</h1>
<script>document.title = "ok-" + (1+1);</script>
</body></html>
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path not in ("/", "/index.html"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def static_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="smoke-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_chromium_runs_page_js_and_screenshots(chromium_path: str, static_site: str, tmp_path: Path) -> None:
    with browser_page(chromium_path) as page:
        page.goto(static_site)
        page.wait_for_function("document.title.startsWith('ok-')")
        assert page.title() == "ok-2"
        assert page.text_content("#msg") == "harness smoke"
        shot = tmp_path / "smoke.png"
        page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert len(data) > 0
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
