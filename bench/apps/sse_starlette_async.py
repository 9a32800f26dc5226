"""sse-starlette ``EventSourceResponse`` over async generators (on FastAPI + uvicorn), as its
README shows: yield dicts with a ``data`` string (and ``event``). S1 fan-out is an
asyncio.Queue per subscriber fed by the publisher task (its README's broadcast pattern); the
publisher serialises each message once. POST /start_lone/<M> (fanout-lone): sleep(0) after
every message.

fanout-textbook: GET /textbook is ``EventSourceResponse(gen())`` where the async generator puts
its own asyncio.Queue into _common.TEXTBOOK_QUEUES and yields ``{"data": json.dumps(item)}``
until the end item; POST /start_textbook/<M> runs _common.textbook_publish."""

import asyncio
import json
import time

from _common import (
    FANOUT_EVERY,
    LONE_EVERY,
    TEXTBOOK_END,
    TEXTBOOK_QUEUES,
    paced,
    start_textbook,
    stream_events,
)
from _uvicorn import run
from fastapi import FastAPI, Request
from sse_starlette.sse import EventSourceResponse

app = FastAPI()
subscribers: set[asyncio.Queue] = set()
_tasks: set[asyncio.Task] = set()


@app.get("/sub")
async def sub(request: Request):
    q: asyncio.Queue = asyncio.Queue()
    subscribers.add(q)

    async def gen():
        try:
            while True:
                item = await q.get()
                yield item
                if item.get("event") == "end":
                    break
        finally:
            subscribers.discard(q)

    return EventSourceResponse(gen())


def start_publisher(n: int, every: int) -> dict:
    async def publish():
        for i in range(n):
            msg = {"data": json.dumps({"i": i})}
            for q in tuple(subscribers):
                q.put_nowait(msg)
            if i % every == 0:
                await asyncio.sleep(0)
        for q in tuple(subscribers):
            q.put_nowait({"event": "end", "data": "END"})

    task = asyncio.create_task(publish())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"ok": True, "subscribers": len(subscribers)}


@app.post("/start/{n}")
async def start(n: int):
    return start_publisher(n, FANOUT_EVERY)


@app.post("/start_lone/{n}")
async def start_lone(n: int):
    return start_publisher(n, LONE_EVERY)


@app.get("/textbook")
async def textbook():
    async def gen():
        queue: asyncio.Queue = asyncio.Queue()
        TEXTBOOK_QUEUES.add(queue)
        try:
            while (item := await queue.get()) is not TEXTBOOK_END:
                yield {"data": json.dumps(item)}
            yield {"event": "end", "data": "END"}
        finally:
            TEXTBOOK_QUEUES.discard(queue)

    return EventSourceResponse(gen())


@app.post("/start_textbook/{n}")
async def start_textbook_route(n: int):
    return start_textbook(n)


@app.post("/start_rate/{rate}/{seconds}")
async def start_rate(rate: int, seconds: int):
    """S1 latency: ``rate`` messages a second for ``seconds`` s, each stamped when published."""

    async def publish():
        async for i in paced(rate, seconds):
            msg = {"data": json.dumps({"i": i, "t": time.time()})}
            for q in tuple(subscribers):
                q.put_nowait(msg)
        for q in tuple(subscribers):
            q.put_nowait({"event": "end", "data": "END"})

    task = asyncio.create_task(publish())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"ok": True, "subscribers": len(subscribers)}


@app.get("/stream")
async def stream():
    async def gen():
        for i in range(stream_events()):
            yield {"data": json.dumps({"i": i, "v": "hello"})}

    return EventSourceResponse(gen())


@app.get("/lone")
async def lone():
    async def gen():
        for _ in range(50):
            yield {"data": json.dumps({"t": time.time()})}
            await asyncio.sleep(0.02)

    return EventSourceResponse(gen())


@app.get("/idle")
async def idle():
    async def gen():
        yield {"data": "hi"}
        await asyncio.sleep(3600)

    return EventSourceResponse(gen())


if __name__ == "__main__":
    run(app)
