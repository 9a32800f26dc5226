"""FastAPI native SSE (``fastapi.sse.EventSourceResponse`` as response_class on an async
generator path operation, FastAPI >= 0.135); falls back to StreamingResponse with hand-framed
``data:`` lines on older FastAPI. S1 fan-out is an asyncio.Queue per subscriber, fed by the
publisher task (the broadcast pattern of the FastAPI/Starlette docs and discussions).
The publisher serialises each message once and every subscriber yields it as raw data.
POST /start_lone/<M> (fanout-lone): sleep(0) after every message.

fanout-textbook: GET /textbook is an async generator path operation that puts its own
asyncio.Queue into _common.TEXTBOOK_QUEUES and yields each item (a dict: FastAPI encodes it as
JSON) until the end item; POST /start_textbook/<M> runs _common.textbook_publish."""

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

try:
    from fastapi.sse import EventSourceResponse, ServerSentEvent

    NATIVE = True
except ImportError:  # older FastAPI: StreamingResponse, framed by hand
    from fastapi.responses import StreamingResponse

    NATIVE = False

app = FastAPI()
subscribers: set[asyncio.Queue] = set()
_tasks: set[asyncio.Task] = set()
_END = ("END", "end")

if NATIVE:

    def event(data: str, name: str | None = None):
        return ServerSentEvent(raw_data=data, event=name)

    @app.get("/sub", response_class=EventSourceResponse)
    async def sub(request: Request):
        q: asyncio.Queue = asyncio.Queue()
        subscribers.add(q)
        try:
            while True:
                data, name = await q.get()
                yield event(data, name)
                if name == "end":
                    break
        finally:
            subscribers.discard(q)

    @app.get("/stream", response_class=EventSourceResponse)
    async def stream():
        for i in range(stream_events()):
            yield {"i": i, "v": "hello"}

    @app.get("/lone", response_class=EventSourceResponse)
    async def lone():
        for _ in range(50):
            yield {"t": time.time()}
            await asyncio.sleep(0.02)

    @app.get("/idle", response_class=EventSourceResponse)
    async def idle():
        yield "hi"
        await asyncio.sleep(3600)

    @app.get("/textbook", response_class=EventSourceResponse)
    async def textbook():
        queue: asyncio.Queue = asyncio.Queue()
        TEXTBOOK_QUEUES.add(queue)
        try:
            while (item := await queue.get()) is not TEXTBOOK_END:
                yield item
            yield ServerSentEvent(raw_data="END", event="end")
        finally:
            TEXTBOOK_QUEUES.discard(queue)

else:

    def frame(data: str, name: str | None = None) -> str:
        return (f"event: {name}\n" if name else "") + f"data: {data}\n\n"

    @app.get("/sub")
    async def sub(request: Request):
        q: asyncio.Queue = asyncio.Queue()
        subscribers.add(q)

        async def gen():
            try:
                while True:
                    data, name = await q.get()
                    yield frame(data, name)
                    if name == "end":
                        break
            finally:
                subscribers.discard(q)

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.get("/stream")
    async def stream():
        async def gen():
            for i in range(stream_events()):
                yield frame(json.dumps({"i": i, "v": "hello"}))

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.get("/lone")
    async def lone():
        async def gen():
            for _ in range(50):
                yield frame(json.dumps({"t": time.time()}))
                await asyncio.sleep(0.02)

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.get("/idle")
    async def idle():
        async def gen():
            yield frame("hi")
            await asyncio.sleep(3600)

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.get("/textbook")
    async def textbook():
        async def gen():
            queue: asyncio.Queue = asyncio.Queue()
            TEXTBOOK_QUEUES.add(queue)
            try:
                while (item := await queue.get()) is not TEXTBOOK_END:
                    yield frame(json.dumps(item))
                yield frame("END", "end")
            finally:
                TEXTBOOK_QUEUES.discard(queue)

        return StreamingResponse(gen(), media_type="text/event-stream")


def start_publisher(n: int, every: int) -> dict:
    async def publish():
        for i in range(n):
            msg = (json.dumps({"i": i}), None)
            for q in tuple(subscribers):
                q.put_nowait(msg)
            if i % every == 0:
                await asyncio.sleep(0)
        for q in tuple(subscribers):
            q.put_nowait(_END)

    task = asyncio.create_task(publish())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"ok": True, "subscribers": len(subscribers), "native_sse": NATIVE}


@app.post("/start/{n}")
async def start(n: int):
    return start_publisher(n, FANOUT_EVERY)


@app.post("/start_lone/{n}")
async def start_lone(n: int):
    return start_publisher(n, LONE_EVERY)


@app.post("/start_textbook/{n}")
async def start_textbook_route(n: int):
    return {**start_textbook(n), "native_sse": NATIVE}


@app.post("/start_rate/{rate}/{seconds}")
async def start_rate(rate: int, seconds: int):
    """S1 latency: ``rate`` messages a second for ``seconds`` s, each stamped when published."""

    async def publish():
        async for i in paced(rate, seconds):
            msg = (json.dumps({"i": i, "t": time.time()}), None)
            for q in tuple(subscribers):
                q.put_nowait(msg)
        for q in tuple(subscribers):
            q.put_nowait(_END)

    task = asyncio.create_task(publish())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"ok": True, "subscribers": len(subscribers), "native_sse": NATIVE}


if __name__ == "__main__":
    run(app)
