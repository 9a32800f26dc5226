"""The demo site (``rat_engine.demo``) driven in headless Chromium the way a person would use it.

One in-process demo server for the module (upload and log directories in temp dirs); each test
opens the site, follows links, clicks, types and waits for what a person would see. After the
live content has arrived every page is screenshotted at 1200x800 (``<page>.png``) and on a
390 px wide phone (``<page>-390.png``, a mobile viewport that honours ``<meta name=viewport>``):
into ``docs/screenshots/`` (the README's pictures) with RAT_UPDATE_SCREENSHOTS=1, else into a
temporary folder.
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
import time
import uuid
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
#: Status samples (one a second) to wait for before checking the charts; the README's picture
#: waits longer, so that the charts show the counter's ten seconds start and end.
CHART_SAMPLES = 24 if os.environ.get("RAT_UPDATE_SCREENSHOTS") == "1" else 8
PHONE_WIDTH = 390
#: A phone: 390 CSS px wide, and a mobile viewport (without <meta name=viewport> it lays out at 980 px).
PHONE = {
    "viewport": {"width": PHONE_WIDTH, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
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


@pytest.fixture
def phone(chromium_path: str) -> Iterator[Page]:
    with browser_page(chromium_path, **PHONE) as page:
        yield page


def streams_at(demo: Demo, prefix: str) -> set[int]:
    """Ids of the demo server's open streams whose path starts with ``prefix``."""
    return {s.id for s in demo.app.connections.streams() if s.path.startswith(prefix)}


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

    # Start the progress stream with an impatient double click: one stream opens, the button stays
    # disabled while it runs; the bar fills to 100 %, the text says "completed", Start is back.
    text = page.locator("#progress-text")
    expect(text).to_have_text("idle")
    start = page.get_by_role("button", name="Start")
    expect(start).to_be_enabled()
    before = streams_at(demo, "/api/progress/")
    start.dblclick()
    expect(start).to_be_disabled()
    expect(text).to_have_text(re.compile(r"^\d+ %$"), timeout=3_000)
    time.sleep(0.5)  # a second stream, had the second click opened one, is registered by now
    opened = streams_at(demo, "/api/progress/") - before
    assert len(opened) == 1, f"a double click opened {len(opened)} progress streams"
    expect(start).to_be_disabled()
    expect(text).to_have_text("completed", timeout=10_000)
    expect(start).to_be_enabled()
    bar = page.locator("#progress")
    expect(bar).to_have_attribute("style", re.compile(r"width:\s*100%"))
    wait_for_full_bar(page, "#progress")
    expect(page.locator("#ticks")).to_have_text(re.compile(r"^#\d+ at \d{2}:\d{2}:\d{2}$"))
    screenshot(page, "streams.png")


def test_counter_ends_in_a_visible_finished_state(demo: Demo, page: Page) -> None:
    page.goto(demo.url + "/demo/streams")
    section = page.locator("#counter-section")
    state = page.locator("#counter-state")
    again = page.get_by_role("button", name="Run again")
    expect(state).to_have_text(re.compile(r"^running · \d+ of 10$"), timeout=3_000)
    expect(again).to_be_disabled()  # no second counter while this one runs
    # Ten values a second apart, then the server ends the stream: the page says so (no frozen "9").
    expect(state).to_have_text("✓ finished · 10 values", timeout=15_000)
    expect(section).to_have_attribute("data-state", "finished")
    expect(state).to_be_visible()
    expect(state).to_have_class(re.compile(r"\bfinished\b"))
    expect(page.locator("#counter")).to_have_text("9")
    assert not streams_at(demo, "/api/events"), "the finished counter is still streaming"
    # The badge is drawn differently from the running state.
    finished_colour = state.evaluate("(el) => getComputedStyle(el).backgroundColor")
    expect(again).to_be_enabled()
    again.click()
    expect(again).to_be_disabled()
    expect(state).to_have_text(re.compile(r"^(connecting…|running · \d+ of 10)$"))
    expect(section).to_have_attribute("data-state", "running")
    assert state.evaluate("(el) => getComputedStyle(el).backgroundColor") != finished_colour


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
    upload = page.get_by_role("button", name="Upload")

    # Upload with no file chosen: a message, and nothing is sent.
    before = streams_at(demo, "/api/uploads/")
    upload.click()
    expect(page.get_by_role("alert")).to_have_text("Choose a file first.")
    expect(status).to_have_text("idle")
    assert streams_at(demo, "/api/uploads/") == before
    expect(upload).to_be_enabled()

    page.evaluate(OBSERVE_BAR)
    # Upload like a person on a ~16 Mbit/s uplink (on loopback 2.5 MB arrive in one or two chunks).
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": UPLINK},
    )

    page.set_input_files("#file", str(path))
    expect(page.get_by_role("alert")).to_have_text("")  # choosing a file clears the message
    upload.click()
    expect(upload).to_be_disabled()  # while the file goes up (about 1.25 s at this uplink)
    expect(status).to_have_text(re.compile(r"^\d+ %$"), timeout=5_000)
    expect(upload).to_be_disabled()
    expect(status).to_have_text("100 % – done", timeout=15_000)
    expect(upload).to_be_enabled()
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


def message_texts(page: Page) -> list[str]:
    """The chat lines a tab shows, in order, as "<name><text>"."""
    return list(page.locator("#messages .message").all_inner_texts())


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

        # Both tabs show the same history (whatever earlier tests said); then the new messages.
        expect(bob.locator("#messages .message")).to_have_count(alice.locator("#messages .message").count())
        shown = alice.locator("#messages .message").count()
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
            expect(tab.locator("#messages .message")).to_have_count(shown + 3)

        # Both tabs' dashboards are live: the clock moves on.
        before = alice.locator("#time").inner_text()
        expect(alice.locator("#time")).not_to_have_text(before, timeout=3_000)
        expect(bob.locator("#open")).to_have_text(NUMBER_RE)
        assert int(bob.locator("#open").inner_text()) >= 4  # two tabs x (chat + dashboard)
        screenshot(alice, "chat.png")
    finally:
        other.close()


def stop_stream(demo: Demo, stream_id: int) -> None:
    """End one open stream from the server side, as ``max_duration`` does: the browser's
    EventSource then reconnects on its own, sending the id of the last event it got."""
    stream = demo.app.connections._live[stream_id]  # the registry keeps the Stream objects
    stream.loop.call_soon_threadsafe(stream.stop, "max_duration")


def test_chat_history_on_a_new_tab_a_reload_and_a_reconnect(demo: Demo, page: Page) -> None:
    tag = uuid.uuid4().hex[:8]
    said = [f"history {tag} one", f"history {tag} two", f"history {tag} three"]
    page.goto(demo.url + "/demo/chat")
    expect_dashboard(page)
    for text in said:
        send(page, "Alice", text)
    for text in said:
        expect_message(page, "Alice", text)
    earlier = message_texts(page)  # everything this tab shows: the history, then what it said
    assert earlier[-3:] == ["Alice" + text for text in said]

    assert page.context.browser is not None
    other = page.context.browser.new_context(viewport=VIEWPORT)
    try:
        # A new tab: the earlier messages, each exactly once, in order.
        known = streams_at(demo, "/api/chat/stream")
        bob = other.new_page()
        bob.set_default_timeout(15_000)
        bob.goto(demo.url + "/demo/chat")
        for text in said:
            expect_message(bob, "Alice", text)
        assert message_texts(bob) == earlier
        (bob_stream,) = streams_at(demo, "/api/chat/stream") - known

        # A reload: the same, again exactly once.
        page.reload()
        for text in said:
            expect_message(page, "Alice", text)
        assert message_texts(page) == earlier

        # The connection drops; a message is sent meanwhile; EventSource reconnects with
        # Last-Event-ID and gets only what it missed: no line twice, the missed one once.
        known = streams_at(demo, "/api/chat/stream")
        stop_stream(demo, bob_stream)
        wait_until(lambda: bob_stream not in streams_at(demo, "/api/chat/stream"), 5.0, "the stream to end")
        missed = f"sent while tab B was away {tag}"
        assert httpx.post(demo.url + "/api/chat", json={"name": "Carol", "text": missed}).status_code == 200
        wait_until(
            lambda: streams_at(demo, "/api/chat/stream") - known,
            10.0,
            "tab B's EventSource to reconnect",
            interval=0.1,
        )
        expect_message(bob, "Carol", missed)
        after = f"after the reconnect {tag}"
        send(page, "Alice", after)
        expect_message(bob, "Alice", after)
        assert message_texts(bob) == [*earlier, "Carol" + missed, "Alice" + after]
    finally:
        other.close()


# -- 5. status -------------------------------------------------------------------------------------


def chart(page: Page, name: str) -> dict[str, Any]:
    """What the status page drew in its ``name`` chart (open, eps, bps): samples, peak, routes
    and, per route, the drawn area's height in pixels."""
    return dict(
        page.evaluate(
            """(name) => {
              const svg = document.querySelector('#chart-' + name + ' svg');
              const areas = {};
              for (const area of svg.querySelectorAll('polygon')) {
                areas[area.dataset.route] = area.getBoundingClientRect().height;
              }
              const legend = [...document.querySelectorAll('#chart-' + name + ' .legend li span')]
                .map((span) => span.textContent);
              return {samples: Number(svg.dataset.samples), max: Number(svg.dataset.max), areas, legend,
                      total: svg.querySelector('polyline.total')?.getAttribute('points') || ''};
            }""",
            name,
        )
    )


def test_status_page_lists_chat_stream(demo: Demo, page: Page) -> None:
    open_card(page, demo, "Chat & dashboard")
    expect_dashboard(page)

    status = page.context.new_page()
    status.goto(demo.url + "/")
    status.locator("header").get_by_role("link", name="Status").click()
    expect(status).to_have_url(demo.url + "/status")
    expect(status).to_have_title("rat_engine status")
    # The site's header and navigation, with Status marked as the current page.
    current = status.locator('header nav a[aria-current="page"]')
    expect(current).to_have_count(1)
    expect(current).to_have_text("Status")
    expect(status.locator("header").get_by_role("link", name="Chat")).to_be_visible()
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

    # Some traffic on another route: the counter page (ten events, one a second) and a chat message.
    streams = page.context.new_page()
    streams.goto(demo.url + "/demo/streams")
    expect(streams.locator("#counter")).to_have_text(NUMBER_RE, timeout=3_000)
    send(page, "Alice", "watching the status page")
    status.wait_for_function(
        "(n) => Number(document.querySelector('#chart-eps svg').dataset.samples) >= n",
        arg=CHART_SAMPLES,
        timeout=40_000,
    )
    for name in ("open", "eps", "bps"):
        drawn = chart(status, name)
        assert drawn["samples"] >= 6, (name, drawn)
        assert drawn["max"] > 0, (name, drawn)
        assert len(drawn["total"].split()) == drawn["samples"], (name, drawn)
    # Per route: the counter's and the chat's streams have their own coloured areas, with height.
    opened = chart(status, "open")
    assert {"/api/events", "/api/chat/stream", "/api/dashboard/stream"} <= set(opened["legend"]), opened
    assert opened["areas"]["/api/chat/stream"] > 0, opened
    rates = chart(status, "eps")
    assert "/api/events" in rates["legend"], rates
    assert rates["areas"]["/api/events"] > 0, rates
    expect(status.locator("#chart-eps .empty")).to_be_hidden()
    expect(status.locator("#chart-eps .ymax")).to_have_text(re.compile(r"^\d"))
    screenshot(status, "status.png")


# -- 6. on a phone ---------------------------------------------------------------------------------

PAGES = {
    "home": "/",
    "streams": "/demo/streams",
    "upload": "/demo/upload",
    "logs": "/demo/logs",
    "chat": "/demo/chat",
    "status": "/status",
}


def wait_for_live_content(page: Page, name: str) -> None:
    """What a person waits for on each page before looking (and before the screenshot)."""
    if name == "streams":
        expect(page.locator("#counter")).to_have_text(NUMBER_RE, timeout=3_000)
        expect(page.locator("#ticks")).to_have_text(re.compile(r"^#\d+ at "), timeout=3_000)
    elif name == "upload":
        page.get_by_role("button", name="Upload").click()  # no file chosen: the page says so
        expect(page.get_by_role("alert")).to_have_text("Choose a file first.")
    elif name == "logs":
        expect(page.locator("#log > div")).not_to_have_count(0, timeout=5_000)
    elif name == "chat":
        expect_dashboard(page)
    elif name == "status":
        page.wait_for_function(
            "(n) => Number(document.querySelector('#chart-eps svg').dataset.samples) >= n",
            arg=3 if CHART_SAMPLES < 20 else 12,
            timeout=30_000,
        )


def assert_fits_the_phone(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"{page.url}: the page is {width} px wide on a {PHONE_WIDTH} px phone"


@pytest.mark.parametrize("name", list(PAGES))
def test_pages_fit_a_phone(demo: Demo, phone: Page, name: str) -> None:
    path = PAGES[name]
    if name == "status":  # something to chart besides the status page's own stream
        phone.context.new_page().goto(demo.url + "/demo/streams")
    phone.goto(demo.url + path)
    viewport = phone.locator('meta[name="viewport"]')
    expect(viewport).to_have_count(1)
    expect(viewport).to_have_attribute("content", "width=device-width, initial-scale=1")
    wait_for_live_content(phone, name)
    assert_fits_the_phone(phone)

    # The header fits: every link is on screen (the navigation wraps under the brand).
    links = phone.locator("header a")
    expect(links).to_have_count(6)
    for i in range(6):
        link = links.nth(i)
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, (
            link.inner_text(),
            box,
        )
    # The current page is marked, for screen readers and visibly.
    current = phone.locator('header a[aria-current="page"]')
    expect(current).to_have_count(1)
    expect(current).to_have_attribute("href", path)
    if name != "home":  # home's current link is the brand, drawn apart anyway
        style = (
            "(el) => { const s = getComputedStyle(el); return [s.color, s.borderBottomColor, s.fontWeight]; }"
        )
        other = phone.locator('header nav a:not([aria-current="page"])').first
        assert current.evaluate(style) != other.evaluate(style)
    if name != "chat":  # the chat's picture shows a long word wrapped (next test)
        screenshot(phone, f"{name}-390.png")


def test_long_words_wrap_in_the_chat_on_a_phone(demo: Demo, phone: Page) -> None:
    phone.goto(demo.url + "/demo/chat")
    expect_dashboard(phone)
    word = "Supercalifragilistic" * 12 + uuid.uuid4().hex  # 240+ characters, no space
    send(phone, "Pat", word)
    line = phone.locator("#messages .message").filter(has_text=word)
    expect(line).to_have_count(1)
    box = phone.locator("#messages")
    overflow = box.evaluate("(el) => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the message box scrolls sideways by {overflow} px"
    assert line.evaluate("(el) => el.getBoundingClientRect().height") > 60  # wrapped onto several lines
    assert_fits_the_phone(phone)
    screenshot(phone, "chat-390.png")

    # An empty message is not sent, and the page says why.
    before = phone.locator("#messages .message").count()
    phone.get_by_role("button", name="Send").click()
    expect(phone.get_by_role("alert")).to_have_text("Type a message first.")
    phone.wait_for_timeout(300)
    expect(phone.locator("#messages .message")).to_have_count(before)
