"""The /docs page (issue 16, part 3) in headless Chromium: Swagger UI renders the app's OpenAPI
3.2 document with every asset from the app itself (no request leaves 127.0.0.1), and a person
can try ``GET /search?q=rat&limit=5`` from it and read the typed echo.

The screenshots (``openapi-docs.png``: the page; ``openapi-docs-try.png``: the search tried) go
to ``docs/screenshots/`` with RAT_UPDATE_SCREENSHOTS=1, else to a temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Request, expect
from support import REPO_ROOT
from support.browser import browser_page
from support.live import run_live
from support.openapi_app import build_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

SCREENSHOTS = (
    REPO_ROOT / "docs" / "screenshots"
    if os.environ.get("RAT_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / f"rat_screenshots_{os.getpid()}"
)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with run_live(build_app()) as handle:
        yield handle


def test_docs_page_renders_the_document_from_local_assets(chromium_path: str, server: Any) -> None:
    base = server.url.rstrip("/")
    requested: list[str] = []
    with browser_page(chromium_path, viewport={"width": 1200, "height": 900}) as page:

        def record(request: Request) -> None:
            requested.append(request.url)

        page.on("request", record)
        page.goto(f"{base}/docs")
        expect(page.locator(".information-container .title")).to_contain_text("Typed API", timeout=30_000)
        expect(page.locator(".information-container .title")).to_contain_text("1.2.3")
        expect(page.locator(".information-container .title")).to_contain_text("OAS 3.2")
        blocks = page.locator(".opblock")
        expect(blocks.first).to_be_visible()
        assert blocks.count() >= 20
        summaries = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/search" in summaries
        assert any("/stream/rooms/" in s for s in summaries)
        assert page.locator(".errors-wrapper").count() == 0  # Swagger UI found nothing wrong
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        overview = SCREENSHOTS / "openapi-docs.png"
        page.screenshot(path=str(overview))

        # A person tries the typed search: q=rat, limit=5, and reads the echo.
        search = page.locator("#operations-default-search_get")
        search.locator(".opblock-summary").click()
        search.get_by_role("button", name="Try it out").click()
        search.locator("tr[data-param-name='q'] input").fill("rat")
        search.locator("tr[data-param-name='limit'] input").fill("5")
        search.get_by_role("button", name="Execute").click()
        response = search.locator(".live-responses-table .response-col_description pre").first
        expect(response).to_contain_text('"q": "rat"', timeout=15_000)
        expect(response).to_contain_text('"limit": 5')
        expect(search.locator(".request-url pre")).to_contain_text("/search?q=rat&limit=5")

        tried = SCREENSHOTS / "openapi-docs-try.png"
        search.screenshot(path=str(tried))
    for shot in (overview, tried):
        assert shot.read_bytes().startswith(b"\x89PNG")
    hosts = {urlsplit(url).netloc for url in requested if not url.startswith("data:")}
    assert hosts == {urlsplit(base).netloc}, requested
    assert any(url.endswith("/docs/assets/swagger-ui-bundle.js") for url in requested)
    assert any(url.endswith("/openapi.json") for url in requested)
