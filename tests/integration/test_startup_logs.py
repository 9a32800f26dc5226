"""What a newcomer sees on start and stop: rat_engine's one line with the URL, not uvicorn's
chatter (docs/running.md promises uvicorn's lines only at log_level="debug")."""

from __future__ import annotations

import httpx
from support.live import live_subprocess

APP = """
import os
from rat_engine import RatApp
app = RatApp(name="quiet_start")

@app.json("/")
def index():
    return {"ok": True}

app.run(host="127.0.0.1", port=int(os.environ["RAT_PORT"]), log_level=os.environ.get("LEVEL", "info"))
"""


def test_start_and_stop_print_only_rat_engine_lines() -> None:
    with live_subprocess(APP) as proc:
        assert httpx.get(proc.url, timeout=5).json() == {"ok": True}
    assert proc.returncode == 0
    lines = [line for line in proc.output().splitlines() if line.strip()]
    assert not [line for line in lines if "uvicorn" in line], lines
    assert any(f"quiet_start listening on http://127.0.0.1:{proc.port}" in line for line in lines)
    assert all("rat_engine." in line for line in lines), lines  # our lines only (the access log too)


def test_debug_level_shows_uvicorns_lines() -> None:
    with live_subprocess(APP, env={"LEVEL": "debug"}) as proc:
        httpx.get(proc.url, timeout=5)
    assert "uvicorn.error: Started server process" in proc.output()
