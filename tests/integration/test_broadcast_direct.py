"""The broadcast write-through path on rat_engine's own server.

A subscription stream whose writer is parked with nothing queued gets each published frame
written by the publisher itself (no task wake-up per subscriber). These pin what must not
change when that happens: order, completeness, the per-stream counters, pings between events,
and the fallback to the queue when a client stops reading.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest
from support.live import run_live
from support.net import wait_until
from support.sse import RawSSE

from rat_engine import RatApp
from rat_engine.testing import SSEParser

pytestmark = pytest.mark.timeout(60)


def make_app() -> RatApp:
    app = RatApp(name="direct", sse_ping_interval=0.3, broadcast_max_backlog=100_000)

    @app.sse("/sub")
    def sub(request_data: Any) -> Any:
        return app.broadcast.subscribe("c")

    @app.json("/publish/<int:n>/<int:every>", methods=["POST"])
    async def publish(request_data: Any, n: int, every: int) -> Any:
        pad = "x" * int(request_data["query_params"].get("pad", "0"))
        for i in range(n):
            await app.broadcast.apublish("c", {"i": i, "pad": pad})
            if i % every == 0:
                await asyncio.sleep(0)  # the writers park again: the next frame goes direct
        return {"subscribers": app.broadcast.stats()["subscribers"]}

    @app.json("/stats")
    def stats(request_data: Any) -> Any:
        return {
            "events": [info.events_sent for info in app.connections.streams()],
            "bytes": [info.bytes_sent for info in app.connections.streams()],
        }

    return app


class Reader(threading.Thread):
    """Reads one /sub stream with httpx, parsing events and counting ping comments."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.events: list[Any] = []
        self.raw_bytes = 0
        self.pings = 0
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        parser = SSEParser()
        with httpx.stream("GET", self.url + "/sub", timeout=30) as response:
            self.ready.set()
            for text in response.iter_text():
                self.raw_bytes += len(text.encode())
                self.pings += text.count(": ping")
                self.events.extend(parser.feed(text))
                if self.stop.is_set():
                    return


@pytest.mark.parametrize("every", [1, 7, 1000], ids=["parked-each-time", "small-bursts", "one-burst"])
def test_every_subscriber_gets_every_frame_in_order_with_counters(every: int) -> None:
    app = make_app()
    with run_live(app) as server:
        readers = [Reader(server.url) for _ in range(20)]
        for reader in readers:
            reader.start()
            assert reader.ready.wait(10)
        wait_until(lambda: httpx.get(server.url + "/stats").json()["events"] == [0] * 20, 10, "20 streams")
        answer = httpx.post(f"{server.url}/publish/500/{every}", timeout=30).json()
        assert answer == {"subscribers": 20}
        wait_until(lambda: all(len(r.events) >= 500 for r in readers), 20, "500 events each")
        time.sleep(0.7)  # two ping intervals of silence after the burst

        def counters_match_what_arrived() -> dict[str, Any] | None:
            # bytes_sent is the payload without chunk framing: what the clients decoded. Pings
            # go on meanwhile (every 0.3 s per stream): a snapshot taken while one is on its
            # way differs by that ping, so look again until one falls between two pings.
            stats: dict[str, Any] = httpx.get(server.url + "/stats").json()
            return stats if sorted(stats["bytes"]) == sorted(r.raw_bytes for r in readers) else None

        stats = wait_until(
            counters_match_what_arrived, 10, "byte counters equal to what the clients received"
        )
        for reader in readers:
            reader.stop.set()
        for reader in readers:
            assert [json.loads(e.data)["i"] for e in reader.events] == list(range(500))
            ids = [int(e.id) for e in reader.events]
            assert ids == sorted(ids) and len(set(ids)) == 500
            assert reader.pings >= 1, "pings must still come when the stream is idle"
        assert stats["events"] == [500] * 20  # the direct writes are counted like queued ones


def test_a_client_that_stops_reading_falls_back_to_the_queue_and_loses_nothing() -> None:
    app = make_app()
    with run_live(app) as server:
        stalled = RawSSE(server.port, "/sub", rcvbuf=65536)  # small window; reads nothing yet
        reader = Reader(server.url)
        reader.start()
        assert reader.ready.wait(10)
        wait_until(lambda: len(httpx.get(server.url + "/stats").json()["events"]) == 2, 10, "2 streams")
        # 12 MB per subscriber: far past what the stalled socket's buffers take, so its frames
        # must go through the queue (and its backlog) while the reading client stays direct.
        for _ in range(4):
            httpx.post(f"{server.url}/publish/1000/1?pad=3000", timeout=30)
        wait_until(lambda: len(reader.events) >= 4000, 30, "4000 events for the reading client")
        expected = [i for _ in range(4) for i in range(1000)]
        assert [json.loads(e.data)["i"] for e in reader.events] == expected
        held_back = min(httpx.get(server.url + "/stats").json()["events"])
        assert held_back < 4000, "the stalled stream was written without back-pressure"
        # Now drain the stalled client: everything arrives, in order, nothing dropped.
        received = stalled.take(4000, timeout=30)
        stalled.close()
        reader.stop.set()
        assert [json.loads(e.data)["i"] for e in received] == expected
