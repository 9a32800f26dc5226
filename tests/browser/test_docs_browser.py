"""The documentation site in headless Chromium: the home page and the RatApp reference page,
served as static files from 127.0.0.1, render with the theme's bundled assets (no request
leaves 127.0.0.1), and the built-in search finds a page. Screenshots at 1280x800 go to
``docs/screenshots/docs-site-*.png`` with RAT_UPDATE_SCREENSHOTS=1, else to a temporary folder."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from support import HOST, REPO_ROOT
from support.browser import browser_page
from support.docs_site import build_site, require_mkdocs, serve_directory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SCREENSHOTS = (
    REPO_ROOT / "docs" / "screenshots"
    if os.environ.get("RAT_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / f"rat_screenshots_{os.getpid()}"
)
VIEWPORT = {"width": 1280, "height": 800}  # wide enough for the navigation sidebar (1220 px)


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_mkdocs()
    site_dir = tmp_path_factory.mktemp("docs-site") / "site"
    result = build_site(site_dir)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    with serve_directory(site_dir) as url:
        yield url


@pytest.fixture
def page(chromium_path: str) -> Iterator[Page]:
    with browser_page(chromium_path, viewport=VIEWPORT) as page:
        page.foreign_requests = []  # type: ignore[attr-defined]
        page.console_errors = []  # type: ignore[attr-defined]

        def on_request(request: object) -> None:
            url = request.url  # type: ignore[attr-defined]
            if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname != HOST:
                page.foreign_requests.append(url)  # type: ignore[attr-defined]

        page.on("request", on_request)
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: page.console_errors.append(str(e)))  # type: ignore[attr-defined]
        yield page


def _shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    return path


def _stylesheet_applied(page: Page) -> None:
    # The theme's CSS is loaded: the header is a coloured bar, not an unstyled block.
    header = page.locator("header.md-header")
    expect(header).to_be_visible()
    background = header.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent", "rgb(255, 255, 255)"), background


def test_home_page(page: Page, site_url: str) -> None:
    response = page.goto(site_url)
    assert response is not None and response.status == 200
    expect(page).to_have_title("rat_engine")
    expect(page.locator("article h1")).to_have_text(re.compile(r"^rat_engine\b"))
    expect(page.locator("article")).to_contain_text("A first app")
    _stylesheet_applied(page)
    # The navigation lists the split guide, the reference and the changelog.
    nav = page.locator("nav.md-nav--primary")
    for title in (
        "Routing",
        "Responses and errors",
        "Hooks, middleware and CORS",
        "API reference",
        "Changelog",
    ):
        expect(nav.get_by_text(title, exact=True).first).to_be_attached()
    page.wait_for_load_state("networkidle")
    _shot(page, "docs-site-home.png")

    # Search runs in the browser on the bundled index (a web worker, no server).
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially("broadcast")
    expect(page.locator(".md-search-result__item").first).to_be_visible(timeout=15_000)

    assert page.foreign_requests == [], page.foreign_requests  # type: ignore[attr-defined]
    assert page.console_errors == [], page.console_errors  # type: ignore[attr-defined]


def test_api_reference_page(page: Page, site_url: str) -> None:
    response = page.goto(site_url + "reference/app/")
    assert response is not None and response.status == 200
    expect(page.locator("article h1")).to_have_text(re.compile(r"^RatApp\b"))
    _stylesheet_applied(page)
    # The class and its methods come from the docstrings, with their signatures.
    expect(page.locator("[id='rat_engine.RatApp']")).to_be_visible()
    route = page.locator("[id='rat_engine.RatApp.route']")
    expect(route).to_be_attached()
    expect(page.locator("article")).to_contain_text("Register the decorated function for")
    expect(page.locator("article")).to_contain_text("stream_body")
    page.wait_for_load_state("networkidle")
    _shot(page, "docs-site-reference.png")

    assert page.foreign_requests == [], page.foreign_requests  # type: ignore[attr-defined]
    assert page.console_errors == [], page.console_errors  # type: ignore[attr-defined]
