"""aiohttp + aiohttp-sse, async: ``async with sse_response(request) as resp: await
resp.send(...)`` as its README shows, on uvloop. S1 fan-out is an asyncio.Queue per
subscriber fed by the publisher task (the README's chat example pattern); the publisher
serialises each message once. POST /start_lone/<M> (fanout-lone): sleep(0) after every message.

fanout-textbook: GET /textbook puts its own asyncio.Queue into _common.TEXTBOOK_QUEUES and
``await resp.send(json.dumps(item))`` for each item until the end item; POST
/start_textbook/<M> runs _common.textbook_publish."""

import asyncio
import json
import time

import uvloop
from _common import (
    BACKLOG,
    FANOUT_EVERY,
    HOST,
    LONE_EVERY,
    TEXTBOOK_END,
    TEXTBOOK_QUEUES,
    paced,
    port,
    start_textbook,
    stream_events,
)
from aiohttp import web
from aiohttp_sse import sse_response

subscribers: set[asyncio.Queue] = set()
_tasks: set[asyncio.Task] = set()


async def sub(request):
    q: asyncio.Queue = asyncio.Queue()
    subscribers.add(q)
    try:
        async with sse_response(request) as resp:
            while True:
                data, name = await q.get()
                await resp.send(data, event=name)
                if name == "end":
                    break
    finally:
        subscribers.discard(q)
    return resp


def start_publisher(n: int, every: int):
    async def publish():
        for i in range(n):
            msg = (json.dumps({"i": i}), None)
            for q in tuple(subscribers):
                q.put_nowait(msg)
            if i % every == 0:
                await asyncio.sleep(0)
        for q in tuple(subscribers):
            q.put_nowait(("END", "end"))

    task = asyncio.create_task(publish())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return web.json_response({"ok": True, "subscribers": len(subscribers)})


async def start(request):
    return start_publisher(int(request.match_info["n"]), FANOUT_EVERY)


async def start_lone(request):
    return start_publisher(int(request.match_info["n"]), LONE_EVERY)


async def textbook(request):
    queue: asyncio.Queue = asyncio.Queue()
    TEXTBOOK_QUEUES.add(queue)
    try:
        async with sse_response(request) as resp:
            while (item := await queue.get()) is not TEXTBOOK_END:
                await resp.send(json.dumps(item))
            await resp.send("END", event="end")
    finally:
        TEXTBOOK_QUEUES.discard(queue)
    return resp


async def start_textbook_route(request):
    return web.json_response(start_textbook(int(request.match_info["n"])))


async def start_rate(request):
    """S1 latency: ``rate`` messages a second for ``seconds`` s, each stamped when published."""
    rate, seconds = int(request.match_info["rate"]), int(request.match_info["seconds"])

    async def publish():
        async for i in paced(rate, seconds):
            msg = (json.dumps({"i": i, "t": time.time()}), None)
            for q in tuple(subscribers):
                q.put_nowait(msg)
        for q in tuple(subscribers):
            q.put_nowait(("END", "end"))

    task = asyncio.create_task(publish())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return web.json_response({"ok": True, "subscribers": len(subscribers)})


async def stream(request):
    async with sse_response(request) as resp:
        for i in range(stream_events()):
            await resp.send(json.dumps({"i": i, "v": "hello"}))
    return resp


async def lone(request):
    async with sse_response(request) as resp:
        for _ in range(50):
            await resp.send(json.dumps({"t": time.time()}))
            await asyncio.sleep(0.02)
    return resp


async def idle(request):
    async with sse_response(request) as resp:
        await resp.send("hi")
        await asyncio.sleep(3600)
    return resp


app = web.Application()
app.router.add_get("/sub", sub)
app.router.add_post("/start/{n}", start)
app.router.add_post("/start_lone/{n}", start_lone)
app.router.add_get("/textbook", textbook)
app.router.add_post("/start_textbook/{n}", start_textbook_route)
app.router.add_post("/start_rate/{rate}/{seconds}", start_rate)
app.router.add_get("/stream", stream)
app.router.add_get("/lone", lone)
app.router.add_get("/idle", idle)

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host=HOST, port=port(), access_log=None, backlog=BACKLOG, print=None)
