"""`rat-engine run mod:app --reload` restarts the worker when the code changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support.net import free_port

MODULE = """
from rat_engine import RatApp
app = RatApp(name="reloadable")

@app.json("/version")
def version(request_data):
    return {"version": VERSION}
"""


def _poll(url: str, want: int, timeout: float) -> int | None:
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            seen = httpx.get(url, timeout=1).json()["version"]
            if seen == want:
                return seen
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    return seen


def test_reload_picks_up_code_changes(tmp_path: Path):
    module = tmp_path / "reload_target.py"
    module.write_text(MODULE.replace("VERSION", "1"))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rat_engine", "run", "reload_target:app", "--reload", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the reloader spawns a worker: stop the whole group
    )
    try:
        url = f"http://127.0.0.1:{port}/version"
        assert _poll(url, 1, 20) == 1
        time.sleep(0.3)
        module.write_text(MODULE.replace("VERSION", "2"))
        assert _poll(url, 2, 20) == 2
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        output = proc.stdout.read() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
    assert "Traceback" not in output, output
    # Issue 15 item 7: no uvicorn chatter below debug, and a save is news, not a warning.
    assert "uvicorn.error" not in output, output
    assert "WARNING" not in output, output
    assert "reload_target.py' changed: restarting the worker" in output, output
