"""Real clients read THE SAME rat_engine stream identically.

Four independent SSE readers against one live app:

* ``curl -sN`` (bytes compared with the exact expected wire bytes, then parsed with the package's
  WHATWG parser ``rat_engine.sse.parser.SSEParser``),
* the Python ``httpx-sse`` client,
* Node's ``eventsource`` npm package (``tests/clients/node_reader.mjs``; installed by
  ``scripts/test`` with ``npm ci --prefix tests/clients``),
* headless Chromium's native ``EventSource`` (``tests/support/browser.py``).

Each yields ``(event type, data, lastEventId)`` triples; every list must equal the others and the
hand-written ``EXPECTED`` (derived from the WHATWG "event stream interpretation" rules, not from
any client). The Last-Event-ID / reconnect behaviour is compared the same way on ``/resume``, and
the seed guide's ``curl -N`` command runs verbatim against the seed's progress example.

Missing ``curl`` / ``node`` + ``npm ci`` / Chromium skip the affected tests, or fail them under
``RAT_REQUIRE_ALL=1`` (CI).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from support.browser import browser_page
from support.prereq import require_or_skip

from rat_engine import RatApp, SSEEvent
from rat_engine.sse.parser import SSEParser

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent

Triple = tuple[str, str, str]

CHINESE = "中文：你好，世界 😀🐀"

# -- the stream, its exact wire bytes, and what a WHATWG client must dispatch ---------------------
#
# Frames that dispatch nothing (comments) still go on the wire; `retry:` sets the reconnection time
# but is not part of the triple; `id:` persists: every later event carries lastEventId "7".

WIRE = (
    b"data: plain\n\n"
    b"data: a\ndata: b\n\n"
    b"data: c\ndata: d\n\n"  # "c\r\nd": the format cannot carry a CR, so CRLF becomes two lines
    + f"data: {CHINESE}\n\n".encode()
    + 'data: {"name":"值","emoji":"🚀"}\n\n'.encode()
    + b"event: update\nid: 7\ndata: payload\n\n"
    b"retry: 1500\ndata: with retry\n\n"
    b": note\n\n"  # SSEEvent(comment="note")
    b": comment\n\n"  # preformatted comment frame
    b"event: notification\ndata: x\n\n"  # preformatted frame
    b"data: \n\n"  # "" -> one empty data line: dispatched with data ""
    b"data:   indented\n\n"  # only the one space after the colon is dropped
)

EXPECTED: list[Triple] = [
    ("message", "plain", ""),
    ("message", "a\nb", ""),
    ("message", "c\nd", ""),
    ("message", CHINESE, ""),
    ("message", '{"name":"值","emoji":"🚀"}', ""),
    ("update", "payload", "7"),
    ("message", "with retry", "7"),
    # ": note" and ": comment" dispatch nothing
    ("notification", "x", "7"),
    ("message", "", "7"),
    ("message", "  indented", "7"),
]

# httpx-sse (<= 0.4.3 at least) dispatches a phantom empty event for a comment-only block once an
# id has been seen (upstream issue florimondmanca/httpx-sse#35; WHATWG dispatches nothing when the
# data buffer is empty). Our stream has two such blocks after `id: 7`. Accepted ONLY in exactly
# these positions, and only for httpx-sse; a fixed httpx-sse must produce EXPECTED.
HTTPX_SSE_ISSUE_35: list[Triple] = [*EXPECTED[:7], ("message", "", "7"), ("message", "", "7"), *EXPECTED[7:]]

# /resume: first connection ends after `id: 7` (+ `retry: 200`); a reconnect with Last-Event-ID 7
# gets the "resumed" event.
RESUME_EXPECTED: list[Triple] = [("message", "first", "7"), ("resumed", "resumed after 7", "8")]

# The seed's documented curl output for `progress_stream` (examples/02_progress_params.py).
SEED_MESSAGES = (
    [{"type": "init", "session_id": "test123", "status": "connected"}]
    + [{"type": "progress", "session_id": "test123", "progress": p} for p in range(0, 101, 10)]
    + [{"type": "completed", "session_id": "test123", "progress": 100}]
)
SEED_CURL = 'curl -N -H "Accept: text/event-stream" http://localhost:8087/api/progress/test123'

PAGE = """<!doctype html><meta charset="utf-8"><title>clients</title><script>
window.results = [];
window.finished = false;
window.errors = 0;
const params = new URLSearchParams(location.search);
const until = params.get('until');
const es = new EventSource(params.get('src'));
const keep = (e) => {
  window.results.push({type: e.type, data: e.data, lastEventId: e.lastEventId});
  if (until && e.type === until) { es.close(); window.finished = true; }
};
for (const t of ['message', 'update', 'notification', 'resumed']) es.addEventListener(t, keep);
es.onerror = () => {
  window.errors++;
  // The server ended a finite stream: stop the browser's reconnect.
  if (!until && window.results.length > 0) { es.close(); window.finished = true; }
};
</script>"""


# -- the app ----------------------------------------------------------------------------------------


def build_app() -> RatApp:
    app = RatApp(name="clients")
    resume_log: list[tuple[str, str | None]] = []
    app.config["resume_log"] = resume_log

    @app.html("/page")
    def page(request_data):
        return PAGE

    @app.sse("/stream")
    def stream(request_data):
        yield "plain"
        yield "a\nb"
        yield "c\r\nd"
        yield CHINESE
        yield {"name": "值", "emoji": "🚀"}
        yield SSEEvent("payload", event="update", id="7")
        yield SSEEvent("with retry", retry=1500)
        yield SSEEvent(comment="note")
        yield ": comment\n\n"
        yield "event: notification\ndata: x\n\n"
        yield ""
        yield "  indented"

    @app.sse("/resume")
    def resume(request_data):
        last = request_data["last_event_id"]
        resume_log.append((request_data["query_params"].get("client", "?"), last))
        if last is None:
            yield SSEEvent("first", id="7", retry=200)
            return  # the stream ends; EventSource clients reconnect after 200 ms
        yield SSEEvent(f"resumed after {last}", event="resumed", id="8")

    # -- the seed's example, verbatim (examples/02_progress_params.py) --
    @app.sse("/api/progress/<session_id>")
    def progress_stream(request_data, session_id):
        """进度监控流"""
        # 发送初始状态
        yield json.dumps({"type": "init", "session_id": session_id, "status": "connected"})

        # 模拟进度更新
        for progress in range(0, 101, 10):
            yield json.dumps({"type": "progress", "session_id": session_id, "progress": progress})
            time.sleep(0.5)

        # 发送完成消息
        yield json.dumps({"type": "completed", "session_id": session_id, "progress": 100})

    return app


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[RatApp, Any]]:
    app = build_app()
    handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="warning")
    try:
        yield app, handle
    finally:
        handle.stop()


# -- prerequisites ----------------------------------------------------------------------------------


def curl_exe() -> str:
    exe = shutil.which("curl")
    if exe is None:
        require_or_skip("curl", "not on PATH (apt-get install curl)")
    assert exe is not None
    return exe


def node_exe() -> str:
    """`node`, with the locked `eventsource` package installed under tests/clients/node_modules.

    eventsource is pinned to 5.1.5: 4.x (the last major declaring Node 20 support) gives each
    MessageEvent the *event's own* id as lastEventId (blank for an event without `id:`), against
    WHATWG; fixed in 5.1.1 (EventSource/eventsource#358). 5.x declares node >= 22.12 but runs, and
    is tested here, on the machine's Node 20.
    """
    exe = shutil.which("node")
    if exe is None:
        require_or_skip("node", "not on PATH (Node.js >= 20 and npm are needed for the Node client)")
    assert exe is not None
    installed = HERE / "node_modules" / "eventsource" / "package.json"
    if not installed.is_file():
        require_or_skip(
            "npm package eventsource", "tests/clients/node_modules missing: run npm ci --prefix tests/clients"
        )
    locked = json.loads((HERE / "package-lock.json").read_text())["packages"]["node_modules/eventsource"]
    version = json.loads(installed.read_text())["version"]
    assert version == locked["version"], (
        f"tests/clients/node_modules has eventsource {version}, package-lock.json pins "
        f"{locked['version']}: run npm ci --prefix tests/clients"
    )
    return exe


# -- the four readers -------------------------------------------------------------------------------


def parse(text: str) -> list[Triple]:
    return [(e.event, e.data, e.id or "") for e in SSEParser().feed(text)]


def curl_get(url: str, *headers: str) -> bytes:
    cmd = [curl_exe(), "-sN"]
    for header in headers:
        cmd += ["-H", header]
    done = subprocess.run([*cmd, url], capture_output=True, timeout=20, check=False)
    assert done.returncode == 0, f"curl exit {done.returncode}: {done.stderr.decode(errors='replace')}"
    return done.stdout


def read_curl(url: str) -> list[Triple]:
    return parse(curl_get(url).decode("utf-8"))


def read_httpx_sse(url: str, last_event_id: str | None = None) -> list[Triple]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    with httpx.Client(timeout=20) as client, connect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(sse.event, sse.data, sse.id) for sse in source.iter_sse()]


def read_node(url: str, *options: str) -> list[Triple]:
    cmd = [node_exe(), str(HERE / "node_reader.mjs"), url, *options]
    done = subprocess.run(cmd, capture_output=True, timeout=30, check=False, cwd=HERE)
    assert done.returncode == 0, (
        f"node_reader exit {done.returncode}\nstdout: {done.stdout.decode(errors='replace')}\n"
        f"stderr: {done.stderr.decode(errors='replace')}"
    )
    return [
        (e["type"], e["data"], e["lastEventId"]) for e in map(json.loads, done.stdout.decode().splitlines())
    ]


def read_browser(chromium_path: str, base_url: str, src: str, until: str | None = None) -> list[Triple]:
    query = httpx.QueryParams({"src": src, **({"until": until} if until else {})})
    with browser_page(chromium_path) as page:
        page.goto(f"{base_url}/page?{query}")
        page.wait_for_function("window.finished", timeout=15_000)
        results = page.evaluate("window.results")
    return [(r["type"], r["data"], r["lastEventId"]) for r in results]


# Every client's reading of /stream, so the agreement test compares the very lists the per-client
# tests checked (and reads the missing ones itself when run alone, e.g. with -k).
READINGS: dict[str, list[Triple]] = {}


def reading(name: str, read: Callable[[], list[Triple]]) -> list[Triple]:
    if name not in READINGS:
        READINGS[name] = read()
    return READINGS[name]


# -- /stream: one stream, four clients --------------------------------------------------------------


def test_curl_bytes_are_exactly_the_wire_format(live):
    _, handle = live
    raw = curl_get(handle.url + "/stream")
    assert raw == WIRE
    READINGS["curl"] = parse(raw.decode("utf-8"))
    assert READINGS["curl"] == EXPECTED


def test_httpx_sse_reads_the_stream(live):
    _, handle = live
    got = reading("httpx-sse", lambda: read_httpx_sse(handle.url + "/stream"))
    assert got in (EXPECTED, HTTPX_SSE_ISSUE_35), got


def test_node_eventsource_reads_the_stream(live):
    _, handle = live
    got = reading("node eventsource", lambda: read_node(handle.url + "/stream"))
    assert got == EXPECTED


@pytest.mark.browser
def test_chromium_eventsource_reads_the_stream(live, chromium_path):
    _, handle = live
    got = reading("chromium", lambda: read_browser(chromium_path, handle.url, "/stream"))
    assert got == EXPECTED


@pytest.mark.browser
def test_all_four_clients_agree(live, chromium_path):
    _, handle = live
    url = handle.url + "/stream"
    lists = {
        "curl": reading("curl", lambda: read_curl(url)),
        "httpx-sse": reading("httpx-sse", lambda: read_httpx_sse(url)),
        "node eventsource": reading("node eventsource", lambda: read_node(url)),
        "chromium": reading("chromium", lambda: read_browser(chromium_path, handle.url, "/stream")),
    }
    if lists["httpx-sse"] == HTTPX_SSE_ISSUE_35:
        # Undo exactly the two known phantom events (see HTTPX_SSE_ISSUE_35), nothing else.
        lists["httpx-sse"] = lists["httpx-sse"][:7] + lists["httpx-sse"][9:]
    for name, got in lists.items():
        assert got == lists["curl"], f"{name} disagrees with curl"
        assert got == EXPECTED, name


# -- Last-Event-ID: set by hand where the client allows it, sent by the client on reconnect -------


def test_last_event_id_curl_and_httpx_sse(live):
    """curl and httpx-sse don't reconnect: do it as a client would, with the id they parsed."""
    app, handle = live
    log = app.config["resume_log"]
    log.clear()
    url = handle.url + "/resume"

    first = curl_get(url + "?client=curl")
    parser = SSEParser()
    curl_events = [(e.event, e.data, e.id or "") for e in parser.feed(first.decode())]
    assert parser.last_event_id == "7" and parser.retry == 200
    second = curl_get(url + "?client=curl", f"Last-Event-ID: {parser.last_event_id}")
    curl_events += [(e.event, e.data, e.id or "") for e in parser.feed(second.decode())]
    assert curl_events == RESUME_EXPECTED

    httpx_events = read_httpx_sse(url + "?client=httpx-sse")
    httpx_events += read_httpx_sse(url + "?client=httpx-sse", last_event_id=httpx_events[-1][2])
    assert httpx_events == RESUME_EXPECTED

    assert log == [("curl", None), ("curl", "7"), ("httpx-sse", None), ("httpx-sse", "7")]


def test_last_event_id_node_eventsource(live):
    """The Node client reconnects by itself with Last-Event-ID, and can set it via `fetch`."""
    app, handle = live
    log = app.config["resume_log"]
    log.clear()
    url = handle.url + "/resume"

    assert read_node(url + "?client=node", "--until", "resumed") == RESUME_EXPECTED
    assert read_node(url + "?client=node-set", "--last-event-id", "7", "--until", "resumed") == [
        RESUME_EXPECTED[1]
    ]
    assert log == [("node", None), ("node", "7"), ("node-set", "7")]


@pytest.mark.browser
def test_last_event_id_chromium(live, chromium_path):
    """A page cannot set Last-Event-ID; the browser sends it on its own reconnect."""
    app, handle = live
    log = app.config["resume_log"]
    log.clear()
    got = read_browser(chromium_path, handle.url, "/resume?client=chromium", until="resumed")
    assert got == RESUME_EXPECTED
    assert log == [("chromium", None), ("chromium", "7")]


# -- the seed's curl command, verbatim ------------------------------------------------------------


def test_seed_curl_command_verbatim(live):
    _, handle = live
    command = SEED_CURL.replace(":8087/", f":{handle.port}/")
    argv = shlex.split(command)
    argv[0] = curl_exe()
    started = time.monotonic()
    arrivals: list[tuple[float, bytes]] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        try:
            assert proc.stdout is not None
            for line in iter(proc.stdout.readline, b""):
                arrivals.append((time.monotonic() - started, line))
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    output = b"".join(line for _, line in arrivals).decode("utf-8")

    # Exactly the seed's documented format: `data: <json.dumps(...)>` lines, each followed by a
    # blank line, in order.
    assert output == "".join(f"data: {json.dumps(m)}\n\n" for m in SEED_MESSAGES)
    lines = output.split("\n")
    assert lines[0] == 'data: {"type": "init", "session_id": "test123", "status": "connected"}'
    assert lines[2] == 'data: {"type": "progress", "session_id": "test123", "progress": 0}'
    assert lines[-3] == 'data: {"type": "completed", "session_id": "test123", "progress": 100}'
    assert all(
        re.fullmatch(r'data: \{"type": "\w+", "session_id": "test123", .*\}', ln) for ln in lines[0::2][:-1]
    )
    assert all(ln == "" for ln in lines[1::2])
    # -N: events arrive as they are produced (init at once, completed after 11 x 0.5 s).
    assert arrivals[0][0] < 2.0, arrivals[0]
    assert arrivals[-1][0] - arrivals[0][0] >= 5.0, (arrivals[0][0], arrivals[-1][0])


def test_node_eventsource_is_pinned_exactly():
    """package.json pins eventsource exactly and node_modules holds that version (npm ci)."""
    node_exe()
    package = json.loads((HERE / "package.json").read_text())
    pinned = package["dependencies"]["eventsource"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"pin eventsource exactly, not {pinned!r}"
    installed = json.loads((HERE / "node_modules" / "eventsource" / "package.json").read_text())
    assert installed["version"] == pinned
