"""Every seed-guide example runs as a real program and behaves as the guide promises."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest
from support.live import run_example as example
from support.sse import sse_data as events


def test_01_simple_counter_streams_each_event_as_it_is_yielded():
    with example("01_simple_sse.py") as url:
        started = time.monotonic()
        with httpx.stream("GET", url + "/api/events", timeout=10) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            first = events(r, 1)
            first_after = time.monotonic() - started
            more = events(r, 1)
    assert json.loads(first[0])["value"] == 0
    assert json.loads(more[0])["value"] == 1
    assert first_after < 1.0, "the first event waited for the generator's time.sleep"


def test_02_progress_with_path_parameter_and_curl_format():
    with example("02_progress_params.py") as url:
        r = httpx.get(url + "/api/progress/test123", headers={"Accept": "text/event-stream"}, timeout=20)
    frames = [f for f in r.text.split("\n\n") if f]
    payloads = [json.loads(f.removeprefix("data: ")) for f in frames]
    assert payloads[0] == {"type": "init", "session_id": "test123", "status": "connected"}
    assert [p["progress"] for p in payloads[1:-1]] == list(range(0, 101, 10))
    assert payloads[-1] == {"type": "completed", "session_id": "test123", "progress": 100}
    assert all(f.startswith("data: {") for f in frames)  # the curl output of the guide


def test_03_manual_frames_are_sent_as_written():
    with example("03_manual_format.py") as url:
        body = httpx.get(url + "/api/custom", timeout=10).text
    assert body == ('data: {"type": "custom"}\n\nevent: notification\ndata: {"alert": "New message"}\n\n')


def test_04_upload_progress_end_to_end(tmp_path):
    payload = os.urandom(300_000)
    with example("04_upload_progress.py", RAT_UPLOAD_DIR=str(tmp_path), RAT_UPLOAD_DELAY="0.02") as url:
        page = httpx.get(url + "/")
        assert "EventSource" in page.text
        created = httpx.post(
            url + "/api/upload", files={"file": ("report.bin", payload, "application/x-demo")}
        )
        assert created.status_code == 200, created.text
        session_id = created.json()["session_id"]
        messages = [
            json.loads(e) for e in events(httpx.get(url + f"/api/progress/{session_id}", timeout=30), 1000)
        ]
        assert messages[0]["type"] == "init"
        progress = [m["progress"] for m in messages if m["type"] == "progress"]
        assert progress and progress == sorted(progress)
        done = messages[-1]
        assert done["type"] == "completed" and done["file_size"] == len(payload)
        download = httpx.get(url + done["download_url"])
        assert download.content == payload
        assert download.headers["content-type"] == "application/x-demo"
        # Reconnecting after completion gets init + completed at once (the guide's fast path).
        again = [json.loads(e)["type"] for e in events(httpx.get(url + f"/api/progress/{session_id}"), 10)]
        assert again == ["init", "completed"]
        assert httpx.get(url + "/api/download/nope").status_code == 404


def _tail_processes(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "tail" in cmdline and marker in cmdline:
                pids.append(int(entry.name))
    return pids


def test_05_log_tail_leaves_no_tail_process_behind():
    service = f"rat_engine_test_{uuid.uuid4().hex[:8]}"
    log_file = Path(f"/var/log/{service}.log")
    try:
        log_file.write_text("")
    except OSError:
        pytest.skip("/var/log is not writable here (the example tails /var/log/<service>.log verbatim)")
    try:
        with example("05_log_stream.py") as url:
            with httpx.stream("GET", url + f"/api/logs/{service}", timeout=10) as r:
                assert json.loads(events(r, 1)[0])["type"] == "connected"
                with log_file.open("a") as f:
                    f.write("first line\n")
                line = json.loads(events(r, 1)[0])
                assert line["type"] == "log" and line["message"] == "first line"
                assert len(_tail_processes(service)) == 1
            # The client left; the generator closes at its next yield, i.e. the next log line.
            with log_file.open("a") as f:
                f.write("second line\n")
            deadline = time.monotonic() + 5
            while _tail_processes(service) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _tail_processes(service) == [], "tail -f was left running"
    finally:
        log_file.unlink(missing_ok=True)


def test_06_best_practices_streams():
    with example("06_best_practices.py") as url:
        with httpx.stream("GET", url + "/api/safe-stream", timeout=10) as r:
            assert [json.loads(e) for e in events(r, 2)] == [{"progress": 0}, {"progress": 1}]
        debug = [
            json.loads(e) for e in events(httpx.get(url + "/api/debug-stream", headers={"X-Trace": "1"}), 11)
        ]
        info = debug[0]["request_info"]
        assert info["method"] == "GET" and info["path"] == "/api/debug-stream"
        assert info["headers"]["x-trace"] == "1"
        assert [d["data"] for d in debug[1:]] == list(range(10))
        chunks = [json.loads(e) for e in events(httpx.get(url + "/api/memory-efficient"), 10)]
        assert len(chunks) == 5 and chunks[0]["chunk"][0] == 0
        with httpx.stream("GET", url + "/api/non-blocking", timeout=10) as r:
            assert json.loads(events(r, 1)[0]) == {"item": 0, "cached": True}
        with httpx.stream("GET", url + "/api/blocking", timeout=10) as r:
            assert json.loads(events(r, 1)[0]) == {"rows": 1}
        with httpx.stream("GET", url + "/api/timeout-stream", timeout=10) as r:
            assert "timestamp" in json.loads(events(r, 1)[0])
        with httpx.stream("GET", url + "/api/heartbeat-stream", timeout=10) as r:
            assert r.status_code == 200  # its first heartbeat is 30 s away; the server pings at 15 s
