"""RatApp is a plain ASGI 3 app: other ASGI servers serve it, streams included."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from support.live import live_subprocess
from support.net import free_port, wait_until

APP = """
import asyncio
from rat_engine import RatApp

app = RatApp(name="asgi")

@app.json("/json")
def json_route(request_data):
    return {"method": request_data["method"], "q": request_data["query_params"].get("q")}

@app.sse("/events")
async def events(request_data):
    for i in range(3):
        yield {"i": i}
        await asyncio.sleep(0.02)

closed = []

@app.sse("/forever", ping_interval=0.2)
async def forever(request_data):
    try:
        while True:
            yield "tick"
            await asyncio.sleep(0.05)
    finally:
        closed.append(1)

@app.json("/closed")
def closed_count(request_data):
    return {"closed": len(closed)}
"""


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "uvicorn", "asgi_app:app", "--port", "{port}"],
        ["-m", "hypercorn", "-b", "127.0.0.1:{port}", "asgi_app:app"],
        ["-m", "granian", "--interface", "asgi", "--port", "{port}", "asgi_app:app"],
    ],
    ids=["uvicorn", "hypercorn", "granian-asgi"],
)
def test_foreign_asgi_server_serves_json_and_sse(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "asgi_app.py").write_text(APP)
    port = free_port()
    argv = [sys.executable, *(part.format(port=port) for part in command)]
    with live_subprocess(argv=argv, port=port, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}, timeout=20):
        response = httpx.get(f"http://127.0.0.1:{port}/json?q=1", timeout=10)
        assert response.json() == {"method": "GET", "q": "1"}
        stream = httpx.get(f"http://127.0.0.1:{port}/events", timeout=10)
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.text == 'data: {"i":0}\n\ndata: {"i":1}\n\ndata: {"i":2}\n\n'
        # Without rat_engine's own server there is no disconnect callback: the stream's watcher
        # task on ASGI receive() must notice the client leaving and close the generator.
        with httpx.stream("GET", f"http://127.0.0.1:{port}/forever", timeout=10) as live:
            lines = live.iter_lines()
            assert next(lines) == "data: tick"
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/closed", timeout=2).json()["closed"] >= 1,
            what="the generator to be closed after the client left",
        )
