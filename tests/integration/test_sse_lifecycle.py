"""SSE lifecycle against the real server: promptness, disconnect, ping, errors, backpressure,
timeouts, limits and shutdown. Timings are generous (noisy 2-core machines); the tight
figures live in bench/."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import textwrap
import threading
import time
import weakref
from collections.abc import Iterator

import httpx
import pytest
from support.live import live_subprocess, run_live
from support.net import wait_until

from rat_engine import HTTPException, RatApp, SSEEvent


class Probes:
    """What the app's generators report to the test; every test gets its own app and probes."""

    def __init__(self) -> None:
        self.events_log: list[str] = []
        self.finally_ran: dict[str, threading.Event] = {}
        self.finally_at: dict[str, float] = {}
        self.produced: dict[str, int] = {}

    def flag(self, name: str) -> threading.Event:
        return self.finally_ran.setdefault(name, threading.Event())


def build_app(probes: Probes) -> RatApp:
    app = RatApp(name="lifecycle", sse_ping_interval=0, shutdown_grace=1.0)

    @app.sse("/first-fast")
    def first_fast(request_data):
        yield "first"
        time.sleep(5)
        yield "late"

    @app.sse("/sync-forever")
    def sync_forever(request_data):
        try:
            i = 0
            while True:
                yield str(i)
                i += 1
                time.sleep(0.02)
        finally:
            probes.flag("sync-forever").set()

    @app.sse("/async-idle")
    async def async_idle(request_data):
        try:
            yield "hello"
            await asyncio.sleep(3600)
        finally:
            probes.finally_at["async-idle"] = time.monotonic()
            probes.flag("async-idle").set()

    @app.sse("/blocking-wait")
    def blocking_wait(request_data):
        yield "waiting"
        # Blocking code can wait on the disconnect flag instead of sleeping blindly.
        request_data["disconnected"].wait(60)
        probes.flag("blocking-wait").set()

    @app.sse("/ping", ping_interval=0.2)
    async def ping_route(request_data):
        yield "one"
        await asyncio.sleep(3600)

    @app.sse("/boom")
    def boom(request_data):
        yield "before"
        raise RuntimeError("secret internal detail")

    @app.sse("/bad-item")
    def bad_item(request_data):
        yield object()
        yield "after"

    @app.sse("/seed-finally")
    def seed_finally(request_data):
        try:
            for i in range(1000):
                yield json.dumps({"progress": i})
                time.sleep(0.02)
        except Exception as e:
            yield json.dumps({"type": "error", "message": str(e)})
        finally:
            probes.flag("seed-finally").set()
            yield json.dumps({"type": "closed"})

    @app.sse("/seed-finally-short")
    def seed_finally_short(request_data):
        try:
            for i in range(2):
                yield json.dumps({"progress": i})
        finally:
            yield json.dumps({"type": "closed"})

    @app.sse("/big", buffer_size=4, send_timeout=None)
    def big(request_data):
        chunk = "x" * 65536
        n = 0
        while n < 100_000:
            yield chunk
            n += 1
            probes.produced["big"] = n

    @app.sse("/short-lived", max_duration=0.5)
    async def short_lived(request_data):
        for i in range(1000):
            yield str(i)
            await asyncio.sleep(0.05)

    @app.sse("/retry", retry=3000)
    def with_retry(request_data):
        yield "x"

    @app.sse("/last-id")
    def last_id(request_data):
        yield str(request_data["last_event_id"])

    @app.sse("/many")
    def many(request_data):
        for i in range(20_000):
            yield {"i": i}

    @app.sse_json("/sse-json")
    def sse_json(request_data):
        return {"k": "值"}

    @app.sse_text("/sse-text")
    def sse_text(request_data):
        return "line one\nline two"

    @app.sse("/single-str")
    def single_str(request_data):
        return "just one"

    @app.sse("/events-typed")
    async def typed(request_data):
        yield SSEEvent("multi\nline", event="update", id=7)
        yield SSEEvent(retry=1500)
        yield SSEEvent({"a": 1}, event="json")

    @app.sse("/guarded")
    def guarded(request_data):
        probes.events_log.append("guarded-generator-ran")
        yield "secret"

    @app.before_request
    def auth(request_data):
        if request_data["path"] == "/guarded" and request_data["headers"].get("authorization") != "Bearer ok":
            raise HTTPException(401, "login required")

    return app


@pytest.fixture
def probes() -> Probes:
    return Probes()


@pytest.fixture
def server(probes: Probes) -> Iterator[tuple[RatApp, str]]:
    """A fresh app and server per test: no flag, counter or stream outlives its test."""
    app = build_app(probes)
    with run_live(app) as handle:
        yield app, handle.url


def parse(text: str) -> list[dict[str, str]]:
    """Minimal WHATWG parse of complete frames (enough for assertions here)."""
    out = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        if not frame.strip():
            continue
        event: dict[str, str] = {}
        data = []
        for line in frame.split("\n"):
            if line.startswith(":"):
                event.setdefault("comment", line[1:].strip())
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            else:
                event[field] = value
        if data:
            event["data"] = "\n".join(data)
        out.append(event)
    return out


#: One iterator per response, keyed by the response itself (an ``id()`` may be reused).
_iterators: weakref.WeakKeyDictionary[httpx.Response, Iterator[str]] = weakref.WeakKeyDictionary()


def read_frames(response: httpx.Response, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
    # One iterator per response: abandoning an httpx iterator closes the connection.
    iterator = _iterators.setdefault(response, response.iter_text())
    buf = ""
    deadline = time.monotonic() + timeout
    for chunk in iterator:
        buf += chunk
        frames = parse(buf.rsplit("\n\n", 1)[0] + "\n\n") if "\n\n" in buf else []
        if len(frames) >= count:
            return frames
        assert time.monotonic() < deadline, f"timed out; got {buf!r}"
    return parse(buf)


def test_headers_and_first_event_is_prompt(server):
    app, url = server
    started = time.monotonic()
    with httpx.stream("GET", url + "/first-fast", headers={"Accept-Encoding": "gzip"}, timeout=10) as r:
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["cache-control"].startswith("no-cache")
        assert r.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in r.headers
        frames = read_frames(r, 1)
        elapsed = time.monotonic() - started
    assert frames[0]["data"] == "first"
    assert elapsed < 2.0, f"first event took {elapsed:.2f}s: stream was buffered"


def test_disconnect_closes_sync_generator(server, probes):
    app, url = server
    with httpx.stream("GET", url + "/sync-forever", timeout=10) as r:
        frames = read_frames(r, 3)
        assert [f["data"] for f in frames[:3]] == ["0", "1", "2"]
        assert len(app.connections) >= 1
    assert probes.flag("sync-forever").wait(5), "generator finally did not run after the client left"
    wait_until(lambda: len(app.connections) == 0, what="the stream to be unregistered")
    assert app.stats()["close_reasons"].get("client", 0) >= 1


def test_disconnect_cancels_idle_async_generator_promptly(server, probes):
    app, url = server
    with httpx.stream("GET", url + "/async-idle", timeout=10) as r:
        assert read_frames(r, 1)[0]["data"] == "hello"
        closed_at = time.monotonic()
    assert probes.flag("async-idle").wait(5), "async generator finally did not run"
    latency = probes.finally_at["async-idle"] - closed_at
    assert latency < 1.0, f"finally ran {latency * 1000:.0f} ms after disconnect"


def test_disconnect_flag_wakes_blocking_generator(server, probes):
    app, url = server
    with httpx.stream("GET", url + "/blocking-wait", timeout=10) as r:
        assert read_frames(r, 1)[0]["data"] == "waiting"
    assert probes.flag("blocking-wait").wait(5), "request_data['disconnected'] was not set on disconnect"


def test_ping_comment_when_idle(server):
    app, url = server
    buf = b""
    with httpx.stream("GET", url + "/ping", timeout=10) as r:
        for chunk in r.iter_raw():
            buf += chunk
            if buf.count(b": ping\n") >= 2:
                break
    # The event, then comment lines only: no blank line, so no parser sees an empty event.
    head, rest = buf[: len(b"data: one\n\n")], buf[len(b"data: one\n\n") :]
    assert head == b"data: one\n\n"
    assert rest.count(b": ping\n") >= 2 and rest.replace(b": ping\n", b"") == b""


def test_no_ping_when_disabled(server):
    app, url = server
    buf = b""
    with pytest.raises(httpx.ReadTimeout):  # nothing at all arrives after the first event
        with httpx.stream("GET", url + "/async-idle", timeout=httpx.Timeout(10, read=1.0)) as r:
            for chunk in r.iter_raw():
                buf += chunk
    assert buf == b"data: hello\n\n"


def test_generator_exception_becomes_error_event(server, caplog):
    app, url = server
    with caplog.at_level("ERROR"):
        r = httpx.get(url + "/boom", timeout=10)
    frames = parse(r.text)
    assert frames[0]["data"] == "before"
    assert frames[1]["event"] == "error"
    payload = json.loads(frames[1]["data"])
    assert payload == {"type": "error", "message": "Internal Server Error"}
    assert "secret internal detail" not in r.text
    assert any("stream generator raised" in rec.getMessage() and rec.exc_info for rec in caplog.records)
    assert httpx.get(url + "/single-str", timeout=5).status_code == 200  # still serving


def test_unencodable_item_reports_and_continues(server):
    app, url = server
    frames = parse(httpx.get(url + "/bad-item", timeout=10).text)
    assert frames[0]["event"] == "error"
    assert frames[1]["data"] == "after"


def test_seed_finally_yield_pattern(server, probes, caplog):
    app, url = server
    # Normal end: the finally's yield is delivered.
    frames = parse(httpx.get(url + "/seed-finally-short", timeout=10).text)
    assert [json.loads(f["data"]) for f in frames][-1] == {"type": "closed"}
    # Client leaves mid-stream: close() makes the finally yield, which raises RuntimeError
    # inside the generator machinery; it must be absorbed.
    with caplog.at_level("ERROR"):
        with httpx.stream("GET", url + "/seed-finally", timeout=10) as r:
            read_frames(r, 2)
        assert probes.flag("seed-finally").wait(5)
        wait_until(lambda: len(app.connections) == 0, what="the stream to be unregistered")
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR"], caplog.text


def test_slow_reader_holds_generator_instead_of_buffering(server, probes):
    app, url = server
    probes.produced.pop("big", None)
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(2.0)
        first = probes.produced.get("big", 0)
        time.sleep(1.0)
        second = probes.produced.get("big", 0)
    finally:
        sock.close()
    # 64 KiB events: 4 buffered + server and kernel socket buffers. Unbounded would be thousands.
    assert 0 < first < 300, first
    assert second == first, "generator kept producing while the client read nothing"


@pytest.mark.parametrize("ping_interval", [0, 15])
def test_send_timeout_closes_stalled_client(ping_interval):
    """A client that stops reading is closed after send_timeout, also when the next ping is far off."""
    app = RatApp(name="stall", sse_ping_interval=ping_interval, shutdown_grace=1.0)
    closed = threading.Event()

    @app.sse("/stall", send_timeout=1.0, buffer_size=2)
    def stall(request_data):
        try:
            while True:
                yield "y" * 65536
        finally:
            closed.set()

    with run_live(app, log_level="error") as handle:
        with socket.create_connection(("127.0.0.1", handle.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(b"GET /stall HTTP/1.1\r\nHost: t\r\n\r\n")
            started = time.monotonic()
            assert closed.wait(8), (
                f"a stalled client survived send_timeout=1 with ping_interval={ping_interval}"
            )
            assert time.monotonic() - started < 8
        wait_until(
            lambda: app.stats()["close_reasons"].get("send_timeout", 0) >= 1, what="a send_timeout close"
        )


def test_max_duration_ends_stream(server):
    app, url = server
    started = time.monotonic()
    r = httpx.get(url + "/short-lived", timeout=10)
    assert time.monotonic() - started < 3
    assert 2 <= len(parse(r.text)) < 100


def test_retry_sent_first(server):
    app, url = server
    r = httpx.get(url + "/retry", timeout=10)
    assert r.text.startswith("retry: 3000\n")


def test_last_event_id_header_and_query(server):
    app, url = server
    assert parse(httpx.get(url + "/last-id", headers={"Last-Event-ID": "41"}).text)[0]["data"] == "41"
    assert parse(httpx.get(url + "/last-id?lastEventId=9").text)[0]["data"] == "9"


def test_no_hidden_event_cap(server):
    app, url = server
    frames = parse(httpx.get(url + "/many", timeout=30).text)
    assert len(frames) == 20_000
    assert json.loads(frames[-1]["data"]) == {"i": 19_999}


def test_sse_json_and_text_are_event_streams(server):
    app, url = server
    r = httpx.get(url + "/sse-json")
    assert r.headers["content-type"].startswith("text/event-stream")
    assert [json.loads(f["data"]) for f in parse(r.text)] == [{"k": "值"}]
    r = httpx.get(url + "/sse-text")
    assert r.headers["content-type"].startswith("text/event-stream")
    assert [f["data"] for f in parse(r.text)] == ["line one\nline two"]
    assert [f["data"] for f in parse(httpx.get(url + "/single-str").text)] == ["just one"]


def test_typed_events(server):
    app, url = server
    text = httpx.get(url + "/events-typed").text
    assert text.startswith("event: update\nid: 7\ndata: multi\ndata: line\n\n")
    assert "retry: 1500\n" in text
    assert 'event: json\ndata: {"a":1}\n\n' in text


def test_head_does_not_start_generator(server, probes):
    app, url = server
    probes.events_log.clear()
    r = httpx.head(url + "/guarded", headers={"Authorization": "Bearer ok"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert probes.events_log == []


def test_before_request_rejects_stream_before_generator_starts(server, probes):
    app, url = server
    probes.events_log.clear()
    r = httpx.get(url + "/guarded")
    assert r.status_code == 401
    assert probes.events_log == []
    r = httpx.get(url + "/guarded", headers={"Authorization": "Bearer ok"})
    assert parse(r.text)[0]["data"] == "secret"


def test_thread_cap_gives_503_with_retry_after():
    app = RatApp(name="cap", max_thread_streams=2, sse_ping_interval=0)
    release = threading.Event()

    @app.sse("/hold")
    def hold(request_data):
        yield "held"
        release.wait(10)

    @app.sse("/async-ok")
    async def async_ok(request_data):
        yield "fine"

    handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="error")
    try:
        with (
            httpx.Client(base_url=handle.url, timeout=10) as c1,
            httpx.Client(base_url=handle.url, timeout=10) as c2,
        ):
            with c1.stream("GET", "/hold") as a, c2.stream("GET", "/hold") as b:
                read_frames(a, 1), read_frames(b, 1)
                third = httpx.get(handle.url + "/hold", timeout=10)
                assert third.status_code == 503
                assert third.headers["retry-after"].isdigit()
                # Async streams need no thread and are still admitted.
                assert parse(httpx.get(handle.url + "/async-ok").text)[0]["data"] == "fine"
                release.set()
    finally:
        release.set()
        handle.stop()


def test_hundreds_of_seed_style_sync_clients_all_finish():
    """Seed-style generators (time.sleep between yields) must not starve each other."""
    app = RatApp(name="many", sse_ping_interval=0)

    @app.sse("/api/progress/<session_id>")
    def progress_stream(request_data, session_id):
        for progress in range(0, 101, 25):
            yield json.dumps({"type": "progress", "session_id": session_id, "progress": progress})
            time.sleep(0.5)

    handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="error")
    clients = 300

    async def one(i: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
        writer.write(f"GET /api/progress/s{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
        return data.count(b"data: ")

    async def run_all() -> list[int]:
        return await asyncio.gather(*(one(i) for i in range(clients)))

    try:
        started = time.monotonic()
        counts = asyncio.run(asyncio.wait_for(run_all(), 60))
        elapsed = time.monotonic() - started
    finally:
        handle.stop()
    assert counts == [5] * clients
    # Serially this would take 300 x 2.5 s; with a thread per stream it is about 2.5 s.
    assert elapsed < 20, elapsed


SHUTDOWN_APP = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from rat_engine import RatApp
    marker_dir = sys.argv[1]
    app = RatApp(name="shutdown", sse_ping_interval=0, shutdown_grace=3)

    def mark(name):
        open(os.path.join(marker_dir, name), "w").close()

    @app.sse("/sync/<n>")
    def sync_stream(request_data, n):
        try:
            while True:
                yield "tick"
                time.sleep(0.05)
        finally:
            mark("sync-" + n)

    @app.sse("/async/<n>")
    async def async_stream(request_data, n):
        try:
            yield "tick"
            await asyncio.sleep(3600)
        finally:
            mark("async-" + n)

    @app.on_shutdown
    def bye():
        mark("on_shutdown")

    app.run(host="127.0.0.1", port=int(os.environ["RAT_PORT"]), log_level="info")
    """
)


STREAMS_PER_KIND = 100


def test_sigterm_closes_every_stream_and_runs_finally(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(SHUTDOWN_APP)
    socks = []
    with live_subprocess(script, args=(str(tmp_path),)) as proc:
        port = proc.port
        try:
            for kind in ("sync", "async"):
                for n in range(STREAMS_PER_KIND):
                    s = socket.create_connection(("127.0.0.1", port))
                    s.sendall(f"GET /{kind}/{n} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                    socks.append(s)
            for s in socks:
                s.settimeout(5)
                seen = b""
                while b"data: tick" not in seen:
                    chunk = s.recv(4096)
                    assert chunk, seen
                    seen += chunk
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            elapsed = time.monotonic() - started
            # Each client saw its stream end with the farewell retry hint.
            tails = []
            for s in socks:
                data = b""
                try:
                    while chunk := s.recv(65536):
                        data += chunk
                except OSError:
                    pass
                tails.append(data)
        finally:
            for s in socks:
                s.close()
    output = proc.output()
    assert proc.returncode == 0, output
    assert elapsed < 5, elapsed
    markers = {p.name for p in tmp_path.iterdir()}
    expected = {f"{kind}-{n}" for kind in ("sync", "async") for n in range(STREAMS_PER_KIND)} | {
        "on_shutdown"
    }
    assert expected <= markers, sorted(expected - markers)
    assert all(b"retry: 2000" in t for t in tails)
    assert "Traceback" not in output, output
