"""Edge behaviours: cut-off downloads, return-value corners, error-handler precedence, RAT Engine
compatibility spellings. (Stall detection with pings on: test_sse_lifecycle.py.)"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from support.live import live_subprocess
from support.net import free_port

from rat_engine import CORSMiddleware, RatApp
from rat_engine.testing import TestClient


def test_chunked_download_cut_by_shutdown_looks_incomplete_but_sse_ends_cleanly():
    app = RatApp(name="cut", shutdown_grace=2, sse_ping_interval=0)

    @app.chunk("/download")
    def download(request_data):
        for i in range(10_000):
            yield f"row {i}\n"
            time.sleep(0.01)

    @app.sse("/events")
    def events(request_data):
        while True:
            yield "tick"
            time.sleep(0.01)

    handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="error")
    outcome: dict[str, object] = {}

    def read(path: str) -> None:
        try:
            with httpx.stream("GET", handle.url + path, timeout=10) as r:
                outcome[path] = b"".join(r.iter_raw())
        except httpx.HTTPError as exc:
            outcome[path] = exc

    readers = [threading.Thread(target=read, args=(p,)) for p in ("/download", "/events")]
    for reader in readers:
        reader.start()
    time.sleep(0.5)
    handle.stop()
    for reader in readers:
        reader.join(10)
    assert isinstance(outcome["/download"], httpx.RemoteProtocolError), outcome["/download"]
    sse = outcome["/events"]
    assert isinstance(sse, bytes) and sse.endswith(b": server shutting down\nretry: 2000\n")


def test_return_value_corners_and_error_handler_precedence(caplog):
    app = RatApp(name="corners")

    @app.custom("/gen")
    def gen(request_data):
        yield "a"
        yield "b"

    @app.json("/ndjson")
    def ndjson(request_data):
        yield {"a": 1}
        yield {"b": 2}

    @app.file("/bytes")
    def raw(request_data):
        return b"\x00\x01"

    @app.errorhandler(500)
    def five_hundred(error):
        return "five hundred", 500

    @app.errorhandler(ValueError)
    def value_error(error):
        return "value error", 400

    @app.json("/boom")
    def boom(request_data):
        raise ValueError("handled by the class handler")

    @app.json("/crash")
    def crash(request_data):
        raise KeyError("goes to the 500 handler")

    with TestClient(app) as client, caplog.at_level("ERROR"):
        r = client.get("/gen")
        assert (r.text, r.headers["content-type"]) == ("ab", "text/plain; charset=utf-8")
        r = client.get("/ndjson")
        assert (r.text, r.headers["content-type"]) == ('{"a":1}\n{"b":2}\n', "application/x-ndjson")
        assert client.get("/bytes").headers["content-type"] == "application/octet-stream"
        assert (client.get("/boom").status_code, client.get("/boom").text) == (400, "value error")
        assert client.get("/crash").text == "five hundred"
    handled_logs = [rec for rec in caplog.records if "handled by the class handler" in str(rec.exc_info)]
    assert handled_logs == [], "an exception an error handler answered was logged as unhandled"


def test_rat_engine_spellings_are_accepted(tmp_path: Path):
    cors = CORSMiddleware(origins=["http://a.test"], methods=["GET"], headers=["X-A"], credentials=True)
    assert cors.allow_origins == {"http://a.test"} and cors.allow_credentials
    app = RatApp(name="compat")
    with pytest.raises(TypeError, match="unknown option"):
        app.json("/x", ping_interval=3)(lambda request_data: {})
    handle = app.run(
        host="127.0.0.1",
        port=0,
        blocking=False,
        debug=True,
        enable_access_log=False,
        enable_error_log=True,
        log_level="error",
    )
    try:
        assert app.debug is True
    finally:
        handle.stop()
    # `rat-engine run app.py` (a script path) finds the script's RatApp.
    script = tmp_path / "my_service.py"
    script.write_text(
        "from rat_engine import RatApp\napp = RatApp(name='script')\n"
        "@app.json('/hi')\ndef hi(request_data):\n    return {'hi': 1}\n"
        "if __name__ == '__main__':\n    raise SystemExit('must not run')\n"
    )
    port = free_port()
    with live_subprocess(
        argv=[sys.executable, "-m", "rat_engine", "run", str(script), "--port", str(port)], port=port
    ):
        assert httpx.get(f"http://127.0.0.1:{port}/hi", timeout=5).json() == {"hi": 1}
