"""The broadcast examples: a real streamed upload with live progress, and a shared chat/dashboard."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid

import httpx
from support.live import run_example as example
from support.sse import sse_data as events


def test_07_upload_streams_to_disk_with_progress_and_download(tmp_path):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    session = uuid.uuid4().hex
    with example("07_upload_channels.py", RAT_UPLOAD_DIR=str(tmp_path)) as url:
        assert "EventSource" in httpx.get(url + "/").text
        with httpx.stream("GET", url + f"/api/progress/{session}", timeout=30) as stream:
            assert json.loads(events(stream, 1)[0])["type"] == "init"
            result: dict[str, httpx.Response] = {}

            def post() -> None:
                result["r"] = httpx.post(
                    url + f"/api/upload/{session}",
                    files={"file": ("数据 report.bin", payload, "application/x-demo")},
                    timeout=30,
                )

            uploader = threading.Thread(target=post)
            uploader.start()
            messages = []
            while not messages or messages[-1]["type"] != "completed":
                batch = events(stream, 1)
                assert batch, "stream ended before completion"
                messages.append(json.loads(batch[0]))
            uploader.join(30)
        assert result["r"].status_code == 200, result["r"].text
        progress = [m["progress"] for m in messages if m["type"] == "progress"]
        assert progress == sorted(progress) and progress[-1] == 100
        done = messages[-1]
        assert done["file_size"] == len(payload) and done["filename"] == "数据 report.bin"
        download = httpx.get(url + done["download_url"], timeout=30)
        assert hashlib.sha256(download.content).digest() == hashlib.sha256(payload).digest()
        assert download.headers["content-type"] == "application/x-demo"
        assert "attachment" in download.headers["content-disposition"]
        # The file went to disk under a random name inside the session folder, never the client's name.
        saved = os.listdir(tmp_path / session)
        assert "meta.json" in saved and "数据 report.bin" not in saved
        assert httpx.get(url + "/api/progress/..%2F..%2Fetc").status_code in (400, 404)
        assert httpx.get(url + "/api/download/unknown").status_code == 404


def test_08_chat_reaches_every_tab_and_replays_on_reconnect():
    with example("08_chat_dashboard.py") as url:
        with (
            httpx.stream("GET", url + "/api/chat/stream", timeout=10) as tab1,
            httpx.stream("GET", url + "/api/chat/stream", timeout=10) as tab2,
        ):
            first = httpx.post(url + "/api/chat", json={"name": "ann", "text": "你好"}).json()["id"]
            assert json.loads(events(tab1, 1)[0])["text"] == "你好"
            assert json.loads(events(tab2, 1)[0])["name"] == "ann"
        # Both tabs gone; messages keep coming; a tab reconnecting with its last id catches up.
        httpx.post(url + "/api/chat", json={"name": "bob", "text": "missed 1"})
        httpx.post(url + "/api/chat", json={"name": "bob", "text": "missed 2"})
        with httpx.stream(
            "GET", url + "/api/chat/stream", headers={"Last-Event-ID": first}, timeout=10
        ) as again:
            assert [json.loads(e)["text"] for e in events(again, 2)] == ["missed 1", "missed 2"]
        assert httpx.post(url + "/api/chat", json={"text": ""}).status_code == 400
        with httpx.stream("GET", url + "/api/dashboard/stream", timeout=10) as dash:
            stats = json.loads(events(dash, 1)[0])
        assert {"time", "open_streams", "events_sent", "pid"} <= set(stats)
