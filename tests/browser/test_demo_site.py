"""The demo site (``rat_engine.demo``) driven in headless Chromium the way a person would use it.

One in-process demo server for the module (upload and log directories in temp dirs); each test
opens the site, follows links, clicks, types and waits for what a person would see. After the
live content has arrived every page is screenshotted at 1200x800: into ``docs/screenshots/``
(the README's pictures) with RAT_UPDATE_SCREENSHOTS=1, else into a temporary folder.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from support import REPO_ROOT
from support.browser import browser_page
from support.live import run_live
from support.net import wait_until

pytestmark = pytest.mark.browser

# The README's screenshots are refreshed only on request (RAT_UPDATE_SCREENSHOTS=1), so a test run
# never dirties the work tree; otherwise they go to a temporary folder and are still checked.
SCREENSHOTS = (
    REPO_ROOT / "docs" / "screenshots"
    if os.environ.get("RAT_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / f"rat_screenshots_{os.getpid()}"
)
VIEWPORT = {"width": 1200, "height": 800}
TIME_RE = re.compile(r"^\d{2}:\d{2}:\d{2}$")
NUMBER_RE = re.compile(r"^\d+$")


class Demo:
    def __init__(self, app: Any, handle: Any, upload_dir: Path, log_dir: Path) -> None:
        self.app = app
        self.handle = handle
        self.url = handle.url.rstrip("/")
        self.upload_dir = upload_dir
        self.log_dir = log_dir


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    upload_dir = tmp_path_factory.mktemp("demo-uploads")
    log_dir = tmp_path_factory.mktemp("demo-logs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAT_DEMO_UPLOAD_DIR", str(upload_dir))
        mp.setenv("RAT_DEMO_LOG_DIR", str(log_dir))
        already = "rat_engine.demo" in sys.modules
        demo_pkg = importlib.import_module("rat_engine.demo")
        from rat_engine.demo import logs, uploads

        if already:  # imported earlier with other settings: point the module constants at ours
            mp.setattr(uploads, "UPLOAD_DIR", str(upload_dir))
            mp.setattr(logs, "LOG_DIR", str(log_dir))
        assert uploads.UPLOAD_DIR == str(upload_dir) and logs.LOG_DIR == str(log_dir)

        with run_live(demo_pkg.app) as handle:
            yield Demo(demo_pkg.app, handle, upload_dir, log_dir)


@pytest.fixture
def page(chromium_path: str) -> Iterator[Page]:
    with browser_page(chromium_path, viewport=VIEWPORT) as page:
        yield page


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))
    assert (SCREENSHOTS / name).stat().st_size > 10_000, f"{name} looks empty"


def wait_for_full_bar(page: Page, selector: str) -> None:
    """Wait until the progress bar visibly spans its track (after the .25 s CSS transition)."""
    page.wait_for_function(
        "(sel) => { const b = document.querySelector(sel);"
        " return b.getBoundingClientRect().width >= b.parentElement.getBoundingClientRect().width - 1; }",
        arg=selector,
        timeout=2_000,
    )


def open_card(page: Page, demo: Demo, title: str) -> None:
    """From the home page, click the "Open →" link of the card titled ``title``."""
    page.goto(demo.url + "/")
    card = page.locator(".card").filter(has=page.get_by_role("heading", name=title))
    card.get_by_role("link", name="Open →").click()


# -- 1. home, counter and progress -----------------------------------------------------------------


def test_home_and_streams(demo: Demo, page: Page) -> None:
    page.goto(demo.url + "/")
    expect(page).to_have_title("rat_engine demo")
    expect(page.get_by_role("heading", level=1)).to_have_text("rat_engine")
    cards = page.locator(".card")
    expect(cards).to_have_count(5)
    expected = {
        "Counter & progress": "/demo/streams",
        "Upload with progress": "/demo/upload",
        "Live log tail": "/demo/logs",
        "Chat & dashboard": "/demo/chat",
        "Status": "/status",
    }
    seen = {}
    for i in range(5):
        card = cards.nth(i)
        link = card.get_by_role("link")
        expect(link).to_be_visible()
        seen[card.locator("h2").inner_text()] = link.get_attribute("href")
    assert seen == expected
    screenshot(page, "home.png")

    # The streams card: the counter starts at "–" and turns into numbers.
    open_card(page, demo, "Counter & progress")
    expect(page).to_have_url(demo.url + "/demo/streams")
    expect(page).to_have_title("Streams · rat_engine")
    counter = page.locator("#counter")
    expect(counter).to_have_text(NUMBER_RE, timeout=3_000)

    # Start the progress stream: the bar fills to 100 % and the text says "completed".
    text = page.locator("#progress-text")
    expect(text).to_have_text("idle")
    page.get_by_role("button", name="Start").click()
    expect(text).to_have_text(re.compile(r"^\d+ %$"), timeout=3_000)
    expect(text).to_have_text("completed", timeout=10_000)
    bar = page.locator("#progress")
    expect(bar).to_have_attribute("style", re.compile(r"width:\s*100%"))
    wait_for_full_bar(page, "#progress")
    expect(page.locator("#ticks")).to_have_text(re.compile(r"^#\d+ at \d{2}:\d{2}:\d{2}$"))
    screenshot(page, "streams.png")


# -- 2. upload -------------------------------------------------------------------------------------

OBSERVE_BAR = """() => {
  window.progressSeen = [];
  const bar = document.getElementById('bar');
  new MutationObserver(() => {
    const value = parseFloat(bar.style.width);
    if (!Number.isNaN(value)) window.progressSeen.push(value);
  }).observe(bar, {attributes: true, attributeFilter: ['style']});
}"""


UPLINK = 2_000_000  # bytes/s


def test_upload(demo: Demo, page: Page, tmp_path: Path) -> None:
    path = tmp_path / "holiday-photos.bin"
    path.write_bytes(os.urandom(2_500_000))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    open_card(page, demo, "Upload with progress")
    expect(page).to_have_url(demo.url + "/demo/upload")
    status = page.locator("#status")
    expect(status).to_have_text("idle")
    page.evaluate(OBSERVE_BAR)
    # Upload like a person on a ~16 Mbit/s uplink (on loopback 2.5 MB arrive in one or two chunks).
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": UPLINK},
    )

    page.set_input_files("#file", str(path))
    page.get_by_role("button", name="Upload").click()
    expect(status).to_have_text("100 % – done", timeout=15_000)
    link = page.get_by_role("link", name="download holiday-photos.bin")
    expect(link).to_be_visible()
    expect(page.locator("#bar")).to_have_attribute("style", re.compile(r"width:\s*100%"))
    wait_for_full_bar(page, "#bar")
    screenshot(page, "upload.png")

    seen = page.evaluate("window.progressSeen")
    assert seen, "the progress bar never moved"
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert seen[-1] == 100, seen
    assert len(set(seen)) >= 5 and seen[0] < 50, f"progress did not rise step by step: {seen}"

    href = link.get_attribute("href")
    assert href and href.startswith("/api/uploads/")
    response = httpx.get(demo.url + href, timeout=10)
    assert response.status_code == 200
    assert len(response.content) == path.stat().st_size
    assert hashlib.sha256(response.content).hexdigest() == digest
    assert "holiday-photos.bin" in response.headers.get("content-disposition", "")


# -- 3. logs ---------------------------------------------------------------------------------------


def tail_processes(log_dir: Path) -> list[int]:
    """PIDs of ``tail`` processes whose command line mentions ``log_dir``."""
    needle = str(log_dir).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"tail" and any(needle in arg for arg in argv):
            pids.append(int(entry.name))
    return pids


def log_streams(demo: Demo) -> list[Any]:
    """The demo server's open log-tail streams."""
    return [s for s in demo.app.connections.streams() if s.route.startswith("/api/logs/")]


def wait_for_generators_to_finish(stream_ids: list[int], timeout: float = 5.0) -> None:
    """Wait until the sync-generator threads of these streams have ended (their ``finally`` ran).

    The stream is unregistered as soon as the client is gone; the generator thread only notices
    at its next ``yield`` (the next log line, ~0.7 s later) and then runs the ``finally``.
    """
    names = {f"rat-stream-{i}" for i in stream_ids}
    wait_until(
        lambda: not any(t.name in names for t in threading.enumerate()),
        timeout,
        f"stream generator threads {names} to end after the viewer left",
        interval=0.1,
    )


def open_log_viewer(page: Page, demo: Demo) -> list[int]:
    """Open the log page from the home page; return the ids of the log streams it opened."""
    before = {s.id for s in log_streams(demo)}
    open_card(page, demo, "Live log tail")
    expect(page).to_have_url(demo.url + "/demo/logs")
    expect(page.locator("#state")).to_have_text("following demo-service.log", timeout=5_000)
    return [s.id for s in log_streams(demo) if s.id not in before]


def test_logs(demo: Demo, page: Page) -> None:
    stream_ids = open_log_viewer(page, demo)
    assert stream_ids
    page.wait_for_function(
        "() => parseInt(document.getElementById('count').textContent, 10) >= 3", timeout=5_000
    )
    lines = page.locator("#log > div")
    assert lines.count() >= 3
    first = lines.first.inner_text()
    assert re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (INFO|WARNING|ERROR|DEBUG)\s", first), first

    # Lines carry their level as a class, and the non-INFO levels are drawn in their own colour.
    levelled = page.locator("#log > div.INFO, #log > div.WARNING, #log > div.ERROR, #log > div.DEBUG")
    assert levelled.count() >= 1
    coloured = page.locator("#log > div.WARNING, #log > div.ERROR, #log > div.DEBUG").first
    coloured.wait_for(state="attached", timeout=10_000)
    colour = coloured.evaluate("(el) => getComputedStyle(el).color")
    plain = page.locator("#log").evaluate("(el) => getComputedStyle(el).color")
    assert colour != plain, (colour, plain)
    screenshot(page, "logs.png")

    assert tail_processes(demo.log_dir), "no tail process while the log page is open"
    page.close()
    wait_until(
        lambda: not tail_processes(demo.log_dir), 5.0, "tail to exit after the viewer left", interval=0.1
    )
    wait_for_generators_to_finish(stream_ids)


def test_logs_viewer_leaves_no_open_pipes(demo: Demo, page: Page) -> None:
    with warnings.catch_warnings(record=True) as caught:  # process-wide: sees the server's threads
        warnings.simplefilter("always", ResourceWarning)
        stream_ids = open_log_viewer(page, demo)
        assert stream_ids
        expect(page.locator("#log > div").first).to_be_attached(timeout=5_000)
        page.close()
        wait_for_generators_to_finish(stream_ids)
        gc.collect()
    unclosed = [str(w.message) for w in caught if "unclosed file" in str(w.message)]
    assert not unclosed, f"the log stream left tail's pipes to the finalizer: {unclosed}"


# -- 4. chat ---------------------------------------------------------------------------------------


def expect_dashboard(page: Page) -> None:
    expect(page.locator("#time")).to_have_text(TIME_RE, timeout=3_000)
    expect(page.locator("#open")).to_have_text(NUMBER_RE, timeout=3_000)
    expect(page.locator("#sent")).to_have_text(NUMBER_RE, timeout=3_000)


def send(page: Page, name: str, text: str) -> None:
    page.get_by_placeholder("name").fill(name)
    page.get_by_placeholder("message").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_placeholder("message")).to_have_value("")


def expect_message(page: Page, name: str, text: str) -> None:
    line = page.locator("#messages .message").filter(has_text=text)
    expect(line).to_have_count(1)
    expect(line.locator(".who")).to_have_text(name)
    expect(line).to_have_text(name + text)


def test_chat_between_two_tabs(demo: Demo, page: Page) -> None:
    alice = page
    assert alice.context.browser is not None
    other = alice.context.browser.new_context(viewport=VIEWPORT)
    try:
        bob = other.new_page()
        bob.set_default_timeout(15_000)
        open_card(alice, demo, "Chat & dashboard")
        bob.goto(demo.url + "/")
        bob.locator("header").get_by_role("link", name="Chat").click()
        for tab in (alice, bob):
            expect(tab).to_have_url(demo.url + "/demo/chat")
            expect_dashboard(tab)

        send(alice, "Alice", "hello from tab A")
        for tab in (alice, bob):
            expect_message(tab, "Alice", "hello from tab A")
        send(bob, "Bob", "hi Alice, tab B here")
        for tab in (alice, bob):
            expect_message(tab, "Bob", "hi Alice, tab B here")

        send(alice, "Alice", "this is <b>bold</b>?")
        for tab in (alice, bob):
            expect_message(tab, "Alice", "this is <b>bold</b>?")
            expect(tab.locator("#messages b")).to_have_count(0)  # text, not markup
            expect(tab.locator("#messages .message")).to_have_count(3)

        # Both tabs' dashboards are live: the clock moves on.
        before = alice.locator("#time").inner_text()
        expect(alice.locator("#time")).not_to_have_text(before, timeout=3_000)
        expect(bob.locator("#open")).to_have_text(NUMBER_RE)
        assert int(bob.locator("#open").inner_text()) >= 4  # two tabs x (chat + dashboard)
        screenshot(alice, "chat.png")
    finally:
        other.close()


# -- 5. status -------------------------------------------------------------------------------------


def test_status_page_lists_chat_stream(demo: Demo, page: Page) -> None:
    open_card(page, demo, "Chat & dashboard")
    expect_dashboard(page)

    status = page.context.new_page()
    status.goto(demo.url + "/")
    status.locator("header").get_by_role("link", name="Status").click()
    expect(status).to_have_url(demo.url + "/status")
    expect(status).to_have_title("rat_engine status")
    expect(status.locator("#open")).to_have_text(NUMBER_RE, timeout=3_000)
    assert int(status.locator("#open").inner_text()) >= 1
    row = status.locator("#streams tr").filter(
        has=status.locator("td", has_text=re.compile(r"^/api/chat/stream$"))
    )
    expect(row.first).to_be_visible(timeout=3_000)
    # Live: the totals move on with the next update (the dashboard publishes every second).
    events = status.locator("#events")
    expect(events).to_have_text(NUMBER_RE)
    expect(events).not_to_have_text(events.inner_text(), timeout=3_000)
    expect(status.locator("#eps")).to_have_text(re.compile(r"^\d+(\.\d+)?$"))
    expect(row.first).to_be_visible()
    screenshot(status, "status.png")
