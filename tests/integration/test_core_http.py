"""Core HTTP behaviour that only a real socket shows: HEAD and keep-alive on the wire, chunked
streaming timing, a 5 MiB file, concurrent sync handlers, start/stop hooks of a real server, and
the server surviving error responses.

The app is ``support.core_app`` served by ``run_live`` (a background thread of this process);
everything else about it (routing, request_data, return values, files, hooks, CORS) is tested
in-process in tests/app/test_core_http.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.core_app import PNG_BYTES, build_main_app, write_served_files
from support.live import run_live

from rat_engine import RatApp

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_served_files(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def server(files_dir: str) -> Iterator[Any]:
    app, state = build_main_app(files_dir)
    try:
        with run_live(app) as handle:
            yield handle
    finally:
        for up in state["uploads"]:
            up.file.close()


@pytest.fixture(scope="module")
def main(server: Any) -> Iterator[httpx.Client]:
    """A keep-alive client of the live server."""
    with httpx.Client(base_url=server.url, timeout=5.0, follow_redirects=False) as client:
        yield client


def assert_serving(server: Any) -> None:
    """Running, and answering on a fresh connection (a broken keep-alive connection cannot hide a
    dead server)."""
    assert server.running
    with httpx.Client(base_url=server.url, timeout=5.0) as fresh:
        r = fresh.get("/")
    assert r.status_code == 200, r.text


def test_head_on_get_route(main: httpx.Client) -> None:
    got = main.get("/rv/html_str")
    head = main.head("/rv/html_str")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"] == "text/html; charset=utf-8"
    assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))
    # JSON route as well
    got = main.get("/item/7")
    head = main.head("/item/7")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["content-type"] == got.headers["content-type"]


def test_big_file(main: httpx.Client, files_dir: str) -> None:
    with open(os.path.join(files_dir, "big.bin"), "rb") as f:
        expected = hashlib.sha256(f.read()).hexdigest()
    r = main.get("/file/big.bin")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert int(r.headers["content-length"]) == 5 * 1024 * 1024 + 123
    assert hashlib.sha256(r.content).hexdigest() == expected


@pytest.mark.parametrize("path,prefix", [("/chunks", "chunk"), ("/achunks", "achunk")])
def test_chunk_stream_is_not_buffered(server: Any, path: str, prefix: str) -> None:
    with httpx.Client(base_url=server.url, timeout=5.0) as c:
        start = time.monotonic()
        with c.stream("GET", path) as r:
            assert r.status_code == 200
            assert r.headers.get("transfer-encoding") == "chunked"
            assert "content-length" not in r.headers
            arrivals: list[tuple[float, bytes]] = []
            for piece in r.iter_raw():
                arrivals.append((time.monotonic() - start, piece))
        total = time.monotonic() - start
    body = b"".join(p for _, p in arrivals)
    assert body == "".join(f"{prefix}-{i}\n" for i in range(4)).encode()
    first_at = arrivals[0][0]
    assert arrivals[0][1].startswith(f"{prefix}-0".encode())
    assert first_at < 0.25, f"first chunk after {first_at:.3f}s: response was buffered"
    assert total >= 0.9


def test_sync_handlers_do_not_block_each_other(server: Any) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=5.0) as c:
                results.append(c.get("/slow").status_code)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    elapsed = time.monotonic() - start
    assert not errors
    assert results == [200, 200]
    assert elapsed < 0.9, f"two 0.5 s handlers took {elapsed:.2f}s: they ran one after the other"


def test_server_survives_error_responses(server: Any, main: httpx.Client) -> None:
    """Errors (a handler exception, bad input, missing file, bad range, wrong method, a CR/LF
    path) are answered on the same keep-alive connection, which goes on serving; so does the server."""
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/boom", {}, 500),
        ("POST", "/json-in", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ("GET", "/file/nope.txt", {}, 404),
        ("GET", "/file/c.png", {"headers": {"Range": "bytes=999999-"}}, 416),
        ("POST", "/only-get", {}, 405),
        ("GET", "/logme%0d%0aFORGED-LINE", {}, 404),
        ("GET", "/item/not-an-int", {}, 404),
    ]
    for method, path, options, status in cases:
        r = main.request(method, path, **options)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        again = main.get("/")  # the same keep-alive connection
        assert again.status_code == 200 and again.text == "<h1>home</h1>", (method, path)
    r = main.get("/file/c.png", headers={"Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == PNG_BYTES[:4]
    assert_serving(server)


def test_startup_and_shutdown_hooks() -> None:
    events: list[str] = []
    app = RatApp(name="core-lifecycle", shutdown_grace=1.0)

    @app.on_startup
    def sync_start() -> None:
        events.append("sync-start")

    @app.on_startup
    async def async_start() -> None:
        await asyncio.sleep(0)
        events.append("async-start")

    @app.on_shutdown
    def sync_stop() -> None:
        events.append("sync-stop")

    @app.on_shutdown
    async def async_stop() -> None:
        await asyncio.sleep(0)
        events.append("async-stop")

    @app.html("/")
    def index() -> str:
        return "ok"

    with run_live(app) as handle:
        assert events == ["sync-start", "async-start"]
        with httpx.Client(timeout=5.0) as c:
            assert c.get(handle.url + "/").status_code == 200
        assert "sync-stop" not in events
    assert events == ["sync-start", "async-start", "sync-stop", "async-stop"]
    assert not handle.running
