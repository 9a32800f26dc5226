"""rat_engine, async scenarios (S1 fanout, S2 stream + lone latency, S4 idle) in one app.

/sub         broadcast fast path: ``return app.broadcast.subscribe("bench")``
POST /start/<M>  publishes M small dicts with ``await app.broadcast.apublish`` (sleep(0) every
             4 messages), then one ``event: end``
POST /start_lone/<M>  fanout-lone: the same with sleep(0) after every message
/textbook    fanout-textbook: @app.sse async generator over its own asyncio.Queue in
             _common.TEXTBOOK_QUEUES, yielding each dict until the end item
POST /start_textbook/<M>  fanout-textbook: _common.textbook_publish (put_nowait into every queue)
POST /start_rate/<R>/<S>  S1 latency: R messages per second for S seconds, each
             ``{"i": i, "t": time.time()}`` stamped when it is published, then ``event: end``
/stream      @app.sse async generator yielding BENCH_STREAM_EVENTS dicts
/lone        one ``{"t": time.time()}`` every 20 ms, 50 times
/idle        one event, then ``await asyncio.sleep(3600)``

BENCH_COMPRESS=1 (the "rat_engine gzip" / "rat_engine zstd" rows): ``app.enable_compression()``
with its defaults, so every stream whose client sends ``Accept-Encoding`` is compressed per
event. Unset (every other row): no compression configured at all, as before.
"""

import asyncio
import os
import time

from _common import (
    FANOUT_EVERY,
    HOST,
    LONE_EVERY,
    TEXTBOOK_END,
    TEXTBOOK_QUEUES,
    fanout_messages,
    paced,
    port,
    start_textbook,
    stream_events,
)
from rat_engine import RatApp, SSEEvent

app = RatApp(
    name="bench_async",
    # No subscriber may be cut or lose messages in S1: the peers' queues are unbounded.
    broadcast_max_backlog=max(4096, fanout_messages() + 16),
    max_streams=20_000,
)
if os.environ.get("BENCH_COMPRESS"):
    app.enable_compression()
_tasks: set[asyncio.Task] = set()


@app.sse("/sub")
def sub(request_data):
    return app.broadcast.subscribe("bench")


def start_publisher(n: int, every: int) -> dict:
    async def run():
        for i in range(n):
            await app.broadcast.apublish("bench", {"i": i})
            if i % every == 0:
                await asyncio.sleep(0)
        await app.broadcast.apublish("bench", "END", event="end")

    task = asyncio.get_running_loop().create_task(run())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"ok": True, "subscribers": app.broadcast.stats()["subscribers"]}


@app.json("/start/<int:n>", methods=["POST"])
async def start(request_data, n):
    return start_publisher(n, FANOUT_EVERY)


@app.json("/start_lone/<int:n>", methods=["POST"])
async def start_lone(request_data, n):
    return start_publisher(n, LONE_EVERY)


@app.sse("/textbook")
async def textbook(request_data):
    queue: asyncio.Queue = asyncio.Queue()
    TEXTBOOK_QUEUES.add(queue)
    try:
        while (item := await queue.get()) is not TEXTBOOK_END:
            yield item
        yield SSEEvent("END", event="end")
    finally:
        TEXTBOOK_QUEUES.discard(queue)


@app.json("/start_textbook/<int:n>", methods=["POST"])
async def start_textbook_route(request_data, n):
    return start_textbook(n)


@app.json("/start_rate/<int:rate>/<int:seconds>", methods=["POST"])
async def start_rate(request_data, rate, seconds):
    async def run():
        async for i in paced(rate, seconds):
            await app.broadcast.apublish("bench", {"i": i, "t": time.time()})
        await app.broadcast.apublish("bench", "END", event="end")

    task = asyncio.get_running_loop().create_task(run())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"ok": True, "subscribers": app.broadcast.stats()["subscribers"]}


@app.sse("/stream")
async def stream(request_data):
    for i in range(stream_events()):
        yield {"i": i, "v": "hello"}


@app.sse("/lone")
async def lone(request_data):
    for _ in range(50):
        yield {"t": time.time()}
        await asyncio.sleep(0.02)


@app.sse("/idle")
async def idle(request_data):
    yield "hi"
    await asyncio.sleep(3600)


if __name__ == "__main__":
    app.run(HOST, port(), log_level="warning", access_log=False, backlog=4096)
