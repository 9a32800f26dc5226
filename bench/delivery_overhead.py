"""Python cost of one lone-message broadcast delivery, with no sockets: 1,000 subscription
streams (``return app.broadcast.subscribe(...)``'s source) on wires that take every chunk at once,
one message published per loop turn. CPU time per delivery, best of 7 rounds of 200 messages.

    bench/.venv/bin/python bench/delivery_overhead.py [TREE ...]   # default: this checkout

What it measures is the hub, the subscription, the stream's hand-past path and the flush; not
the HTTP/1.1 exchange's ``write_nowait`` nor the kernel (``fanout-lone`` in ``bench/run`` has
those). Give several checkouts (``git worktree add /tmp/old <rev>``) to compare them in one
sitting; they run alternately, three times each.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from _trees import main

SUBSCRIBERS = 1000
MESSAGES = 200
ROUNDS = 7


class _Wire:
    """A StreamWire whose socket always takes the chunk."""

    native = True
    writable = True

    def __init__(self) -> None:
        self.writes = 0
        self.lost: Any = None

    async def start(self, status: int, headers: Any) -> None:
        pass

    async def write(self, body: bytes) -> None:
        self.writes += 1

    def write_nowait(self, body: bytes) -> bool:
        self.writes += 1
        return True

    async def end(self, body: bytes = b"") -> None:
        pass

    def on_disconnect(self, callback: Any) -> None:
        self.lost = callback

    def abort(self) -> bool:
        return True

    def release(self) -> None:
        pass


async def _measure() -> float:
    from rat_engine.broadcast import Broadcast
    from rat_engine.settings import StreamSettings
    from rat_engine.sse.response import EventStreamResponse
    from rat_engine.streaming import Stream, StreamContext

    broadcast = Broadcast("memory://")
    await broadcast.start()
    settings = StreamSettings(ping_interval=0, send_timeout=None)
    wires = [_Wire() for _ in range(SUBSCRIBERS)]
    runs = []
    for wire in wires:
        context = StreamContext(settings=settings, manager=None, route="/sub")
        stream = Stream(EventStreamResponse(broadcast.subscribe("bench")), context, wire, "/sub")
        runs.append(asyncio.ensure_future(stream.run()))
    while broadcast.stats()["subscribers"] < SUBSCRIBERS:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # every stream parks on its subscription
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        for n in range(MESSAGES):
            await broadcast.apublish("bench", {"n": n})
            await asyncio.sleep(0)  # one message per loop turn
        await asyncio.sleep(0)
        best = min(best, (time.process_time() - started) / (MESSAGES * SUBSCRIBERS))
    delivered = sum(wire.writes for wire in wires)
    assert delivered >= ROUNDS * MESSAGES * SUBSCRIBERS, delivered
    for wire in wires:
        wire.lost()
    await asyncio.gather(*runs, return_exceptions=True)
    await broadcast.stop()
    return best


if __name__ == "__main__":
    main(_measure, "us per delivery", 3)
