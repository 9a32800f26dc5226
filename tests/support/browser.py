"""Drive Debian's headless Chromium (/usr/bin/chromium) from tests with Playwright's sync API.

Playwright's own browser downloads are never used (no ``playwright install``): the browser is the
distribution's ``chromium`` package, launched through ``executable_path``.

    from support.browser import browser_page

    def test_x(chromium_path):
        with browser_page(chromium_path) as page:
            page.goto(url)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

LAUNCH_TIMEOUT_MS = 60_000
DEFAULT_TIMEOUT_MS = 15_000


@contextlib.contextmanager
def browser_page(
    chromium_path: str = "/usr/bin/chromium",
    *,
    viewport: dict[str, int] | None = None,
    extra_args: list[str] | None = None,
    **context_options: Any,
) -> Iterator[Page]:
    """Yield a fresh Playwright ``Page`` in headless Chromium; close page, browser and driver on exit."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[*CHROMIUM_ARGS, *(extra_args or [])],
            timeout=LAUNCH_TIMEOUT_MS,
        )
        try:
            context = browser.new_context(
                viewport=viewport or {"width": 1024, "height": 768}, **context_options
            )
            try:
                page = context.new_page()
                page.set_default_timeout(DEFAULT_TIMEOUT_MS)
                yield page
            finally:
                context.close()
        finally:
            browser.close()
