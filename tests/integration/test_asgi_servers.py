"""RatApp is a plain ASGI 3 app: other ASGI servers serve it, streams included."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
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
    proc = subprocess.Popen(
        [sys.executable, *(part.format(port=port) for part in command)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/json?q=1", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert response.json() == {"method": "GET", "q": "1"}
        stream = httpx.get(f"http://127.0.0.1:{port}/events", timeout=10)
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.text == 'data: {"i":0}\n\ndata: {"i":1}\n\ndata: {"i":2}\n\n'
        # Without rat_engine's own server there is no disconnect callback: the stream's watcher
        # task on ASGI receive() must notice the client leaving and close the generator.
        with httpx.stream("GET", f"http://127.0.0.1:{port}/forever", timeout=10) as live:
            lines = live.iter_lines()
            assert next(lines) == "data: tick"
        deadline = time.monotonic() + 5
        while httpx.get(f"http://127.0.0.1:{port}/closed", timeout=2).json()["closed"] < 1:
            assert time.monotonic() < deadline, "the generator was not closed after the client left"
            time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
