"""Routes with stream_body=True read the request body as it arrives."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from rat_engine import RatApp


@pytest.fixture(scope="module")
def live():
    app = RatApp(name="stream-body", max_body_size=1024)
    seen: dict[str, list[float]] = {}

    @app.json("/chunks", methods=["POST"], stream_body=True, max_body_size=10_000_000)
    async def chunks(request_data):
        sizes, arrival = [], []
        assert request_data["body"] is None
        async for chunk in request_data.stream():
            sizes.append(len(chunk))
            arrival.append(time.monotonic())
        seen["arrival"] = arrival
        return {"total": sum(sizes), "chunks": len(sizes)}

    @app.json("/sync-chunks", methods=["POST"], stream_body=True)
    def sync_chunks(request_data):
        return {"total": sum(len(c) for c in request_data.iter_body())}

    @app.json("/small", methods=["POST"])
    def small(request_data):
        return {"n": len(request_data.raw_body)}

    handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="error")
    try:
        yield handle.url, seen
    finally:
        handle.stop()


def test_body_is_read_while_it_arrives(live):
    url, seen = live
    release = threading.Event()

    def body():
        yield b"a" * 1000
        release.wait(5)
        yield b"b" * 1000

    def let_go():
        time.sleep(0.5)
        release.set()

    threading.Thread(target=let_go).start()
    started = time.monotonic()
    r = httpx.post(url + "/chunks", content=body(), timeout=10)
    assert r.json() == {"total": 2000, "chunks": 2}
    first, last = seen["arrival"][0] - started, seen["arrival"][-1] - started
    assert first < 0.4 <= last, (first, last)  # the handler saw chunk 1 before chunk 2 was sent


def test_route_limit_overrides_app_limit_and_413_still_applies(live):
    url, _ = live
    assert httpx.post(url + "/chunks", content=b"x" * 50_000).json()["total"] == 50_000
    assert httpx.post(url + "/small", content=b"x" * 5000).status_code == 413
    assert httpx.post(url + "/sync-chunks", content=b"x" * 5000).status_code == 413
    assert httpx.post(url + "/sync-chunks", content=b"x" * 500).json() == {"total": 500}
