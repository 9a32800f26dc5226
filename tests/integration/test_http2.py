"""HTTP/2 on the real server: curl (Debian's, with nghttp2) by prior knowledge, by
``Upgrade: h2c`` and by ALPN over TLS; httpx with ``http2=True`` holding two streams on one
connection; the h2 library over a socket for shutdown and a stalled stream."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
from h2.errors import ErrorCodes
from support import HOST
from support.live import run_live
from support.prereq import require_or_skip
from support.tls import certificate

from rat_engine import RatApp

pytestmark = pytest.mark.timeout(60)


def make_app(closed: list[str] | None = None) -> RatApp:
    app = RatApp(name="h2-live")
    gone = closed if closed is not None else []

    @app.json("/api/hello")
    def hello(request_data: Any) -> Any:
        return {"hello": "h2", "scheme": request_data["scheme"]}

    @app.sse("/progress/<session_id>")
    def progress(request_data: Any, session_id: str) -> Any:
        for n in range(5):
            yield {"session": session_id, "progress": n * 25}

    @app.sse("/ticks/<name>")
    async def ticks(request_data: Any, name: str) -> Any:
        try:
            n = 0
            while True:
                n += 1
                yield f"{name} {n}"
                await asyncio.sleep(0.01)
        finally:
            gone.append(name)

    @app.sse("/big/<name>", send_timeout=0.5)
    async def big(request_data: Any, name: str) -> Any:
        try:
            while True:
                yield "y" * 4000
                await asyncio.sleep(0)
        finally:
            gone.append(name)

    @app.sse("/news")
    async def news(request_data: Any) -> Any:
        return app.broadcast.subscribe("news")

    @app.json("/publish/<int:n>", methods=["POST"])
    async def publish(request_data: Any, n: int) -> Any:
        for i in range(n):
            app.broadcast.publish("news", {"n": i})
        return {"published": n}

    return app


@pytest.fixture(scope="module")
def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        require_or_skip("curl", "apt-get install curl")
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    if "nghttp2" not in version:
        require_or_skip("curl with HTTP/2", "Debian's curl (built with nghttp2)")
    return str(path)


@pytest.fixture(scope="module")
def h2c_server() -> Iterator[Any]:
    with run_live(make_app(), h2c=True) as handle:
        yield handle


def run_curl(curl: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [curl, "-sS", "-N", "--max-time", "10", "-w", "\\nversion=%{http_version}", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )


# -- curl ---------------------------------------------------------------------------------------------
def test_curl_prior_knowledge_streams_sse_over_h2c(curl: str, h2c_server: Any) -> None:
    done = run_curl(curl, "--http2-prior-knowledge", f"{h2c_server.url}/progress/s1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("version=2")
    frames = [line for line in done.stdout.splitlines() if line.startswith("data: ")]
    assert frames == [f'data: {{"session":"s1","progress":{n * 25}}}' for n in range(5)]


def test_curl_upgrade_h2c_gets_101_then_http2(curl: str, h2c_server: Any) -> None:
    done = run_curl(curl, "--http2", "-v", f"{h2c_server.url}/api/hello")
    assert done.returncode == 0, done.stderr
    assert "101 Switching Protocols" in done.stderr
    assert done.stdout.endswith("version=2")
    assert '"hello":"h2"' in done.stdout


def test_curl_http1_still_works_on_an_h2c_port(curl: str, h2c_server: Any) -> None:
    done = run_curl(curl, "--http1.1", f"{h2c_server.url}/api/hello")
    assert done.returncode == 0 and done.stdout.endswith("version=1.1")


def test_prior_knowledge_without_h2c_is_told_to_use_http1(curl: str) -> None:
    with run_live(make_app()) as handle:
        refused = run_curl(curl, "-v", "--http2-prior-knowledge", f"{handle.url}/api/hello")
        assert refused.returncode == 16  # an HTTP/2 answer (GOAWAY), not a dropped connection
        assert "GOAWAY, error=13" in refused.stderr  # 13: HTTP_1_1_REQUIRED
        plain = run_curl(curl, f"{handle.url}/api/hello")  # the server serves on
        assert plain.returncode == 0 and '"hello":"h2"' in plain.stdout


def test_curl_over_tls_negotiates_h2_by_alpn(curl: str, tmp_path: Any) -> None:
    cert = certificate(tmp_path)
    with run_live(make_app(), ssl_certfile=cert.certfile, ssl_keyfile=cert.keyfile) as handle:
        done = run_curl(
            curl, "--http2", "--cacert", str(cert.certfile), f"https://localhost:{handle.port}/progress/t"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.endswith("version=2")
        assert done.stdout.count("data: ") == 5
        http1 = run_curl(
            curl, "--http1.1", "--cacert", str(cert.certfile), f"https://localhost:{handle.port}/api/hello"
        )
        assert http1.stdout.endswith("version=1.1") and '"scheme":"https"' in http1.stdout


# -- httpx: two streams on one connection ------------------------------------------------------------
def test_httpx_two_streams_share_one_connection_and_closing_the_client_runs_both_finallys(
    tmp_path: Any,
) -> None:
    """httpx (httpcore 1.x) sends no RST_STREAM when one response is closed: the server cannot
    tell, so that generator ends with the connection (or by ``send_timeout`` once the stream's
    window fills). A client that resets a stream is tested below with the h2 library."""
    cert = certificate(tmp_path)
    closed: list[str] = []
    with run_live(make_app(closed), ssl_certfile=cert.certfile, ssl_keyfile=cert.keyfile) as handle:
        url = f"https://localhost:{handle.port}"

        async def go() -> None:
            verify = ssl.create_default_context(cafile=str(cert.certfile))
            async with httpx.AsyncClient(http2=True, verify=verify, timeout=10) as client:
                async with client.stream("GET", f"{url}/ticks/left") as left:
                    async with client.stream("GET", f"{url}/ticks/right") as right:
                        assert left.http_version == right.http_version == "HTTP/2"
                        assert len(client._transport._pool.connections) == 1  # one connection, two streams
                        left_lines = left.aiter_lines()
                        right_lines = right.aiter_lines()
                        assert (await anext(left_lines)).startswith("data: left")
                        assert (await anext(right_lines)).startswith("data: right")
                    seen = 0
                    async for line in left_lines:  # the other stream goes on
                        if line.startswith("data: left"):
                            seen += 1
                            if seen == 20:
                                break
                    assert "left" not in closed
            deadline = time.monotonic() + 5
            while not {"left", "right"} <= set(closed):
                assert time.monotonic() < deadline, f"finally blocks run: {closed}"
                await asyncio.sleep(0.02)

        asyncio.run(go())


def test_a_client_reset_runs_that_generators_finally_and_its_sibling_streams_on() -> None:
    closed: list[str] = []
    with run_live(make_app(closed), h2c=True) as handle:
        client = SocketClient(handle.port)
        try:
            gone = client.get("/ticks/gone")
            stays = client.get("/ticks/stays")
            client.pump(2, until=lambda: client.body(gone) and client.body(stays))
            client.conn.reset_stream(gone, ErrorCodes.CANCEL)
            client.flush()
            client.pump(3, until=lambda: "gone" in closed)
            assert "gone" in closed
            before = client.body(stays).count(b"data: ")
            client.pump(0.5)
            assert client.body(stays).count(b"data: ") > before
            assert "stays" not in closed and not client.closed
        finally:
            client.close()


# -- the h2 library over a socket -------------------------------------------------------------------
class SocketClient:
    """A minimal HTTP/2 client: h2's state machine on a real socket (prior knowledge)."""

    def __init__(self, port: int, **settings: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings({h2.settings.SettingCodes[k]: v for k, v in settings.items()})
        self.events: list[Any] = []
        self.closed = False
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def get(self, path: str) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "localhost")]
        self.conn.send_headers(stream_id, fields, end_stream=True)
        self.flush()
        return stream_id

    def pump(self, seconds: float, ack: set[int] | None = None, until: Any = None) -> None:
        """Read for up to ``seconds``, handing back the window of the streams in ``ack``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.closed:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                self.closed = True
                break
            events = self.conn.receive_data(data)
            self.events += events
            for event in events:
                if isinstance(event, h2.events.DataReceived) and (ack is None or event.stream_id in ack):
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if not self.closed:
                try:
                    self.flush()
                except OSError:
                    self.closed = True
            if until is not None and until():
                break

    def body(self, stream_id: int) -> bytes:
        return b"".join(
            e.data for e in self.events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )

    def close(self) -> None:
        self.sock.close()


def test_server_stop_sends_the_farewell_on_every_stream_then_goaway() -> None:
    with run_live(make_app(), h2c=True) as handle:
        client = SocketClient(handle.port)
        try:
            ids = [client.get(f"/ticks/s{i}") for i in range(3)]
            client.pump(2, until=lambda: all(client.body(sid) for sid in ids))
            stopper = threading.Thread(target=handle.stop)
            stopper.start()
            client.pump(10, until=lambda: client.closed)
            stopper.join(15)
            kinds = [type(e).__name__ for e in client.events]
            assert "ConnectionTerminated" in kinds
            goaway_at = kinds.index("ConnectionTerminated")
            for sid in ids:
                ends = [
                    i
                    for i, e in enumerate(client.events)
                    if isinstance(e, h2.events.StreamEnded) and e.stream_id == sid
                ]
                assert ends and ends[0] < goaway_at, f"stream {sid} did not end before GOAWAY"
                assert b"retry:" in client.body(sid)[-40:]
        finally:
            client.close()


def test_a_stalled_stream_is_reset_after_send_timeout_and_its_sibling_flows() -> None:
    closed: list[str] = []
    with run_live(make_app(closed), h2c=True) as handle:
        # Per-stream window 16 KB; only the sibling's window is handed back.
        client = SocketClient(handle.port, INITIAL_WINDOW_SIZE=16384)
        try:
            stalled = client.get("/big/stalled")
            flowing = client.get("/ticks/flowing")
            client.pump(3, ack={flowing}, until=lambda: "stalled" in closed)
            resets = [
                e for e in client.events if isinstance(e, h2.events.StreamReset) and e.stream_id == stalled
            ]
            assert resets and resets[0].error_code == ErrorCodes.CANCEL
            assert len(client.body(stalled)) <= 16384
            before = client.body(flowing).count(b"data: ")
            client.pump(0.5, ack={flowing})
            assert client.body(flowing).count(b"data: ") > before
            assert not client.closed and "flowing" not in closed
        finally:
            client.close()


def test_broadcast_frames_reach_every_h2_stream_on_one_connection() -> None:
    with run_live(make_app(), h2c=True) as handle:
        client = SocketClient(handle.port)
        try:
            ids = [client.get("/news") for _ in range(5)]
            client.pump(0.5)  # the five subscriptions open (their heads arrive)
            assert httpx.post(f"{handle.url}/publish/50", timeout=5).json() == {"published": 50}
            client.pump(5, until=lambda: all(client.body(sid).count(b"data: ") >= 50 for sid in ids))
            for sid in ids:
                frames = [line for line in client.body(sid).split(b"\n") if line.startswith(b"data: ")]
                assert frames == [b'data: {"n":%d}' % i for i in range(50)], sid
        finally:
            client.close()


def test_compressed_sse_over_h2_decodes_to_the_same_events(curl: str) -> None:
    app = make_app()
    app.enable_compression()
    with run_live(app, h2c=True) as handle:
        done = run_curl(
            curl, "--http2-prior-knowledge", "--compressed", "-D", "-", f"{handle.url}/progress/z"
        )
        assert done.returncode == 0, done.stderr
        head, _, body = done.stdout.partition("\n\n")  # text mode: CRLF read as LF
        assert "content-encoding:" in head.lower()
        frames = [line for line in body.splitlines() if line.startswith("data: ")]
        assert frames == [f'data: {{"session":"z","progress":{n * 25}}}' for n in range(5)]
