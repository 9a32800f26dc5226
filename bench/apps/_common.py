"""Shared bits of the benchmark apps: the port, the JSON payload, the seed-style generator and
the textbook fan-out hub (fanout-textbook).

Every app is started as ``python bench/apps/NAME.py PORT`` (or with env ``BENCH_PORT``) and
binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator

HOST = "127.0.0.1"
PAYLOAD = {"hello": "world", "n": 1}
BACKLOG = 4096  # the same listen backlog for every server (S3 connects 1000 clients at once)


def port() -> int:
    if len(sys.argv) > 1 and sys.argv[1].isdigit():
        return int(sys.argv[1])
    return int(os.environ.get("BENCH_PORT", "8000"))


def sse_events() -> int:
    return int(os.environ.get("BENCH_SSE_EVENTS", "10"))


def sse_interval() -> float:
    return float(os.environ.get("BENCH_SSE_INTERVAL", "1.0"))


def progress(session_id: str) -> Iterator[str]:
    """The seed's habit: a plain generator that yields JSON text and blocks in time.sleep."""
    events, interval = sse_events(), sse_interval()
    for i in range(events):
        yield json.dumps({"type": "progress", "session_id": session_id, "progress": i})
        time.sleep(interval)


def progress_frames(session_id: str) -> Iterator[str]:
    """The same generator, framed by hand (for frameworks that do not frame SSE themselves)."""
    for data in progress(session_id):
        yield f"data: {data}\n\n"


def fanout_messages() -> int:
    """S1: messages per trigger (the app only sizes buffers with it)."""
    return int(os.environ.get("BENCH_FANOUT_MESSAGES", "2000"))


def stream_events() -> int:
    """S2: events in the single /stream response."""
    return int(os.environ.get("BENCH_STREAM_EVENTS", "200000"))


# S1 fanout publishers: ``await asyncio.sleep(0)`` after message i when ``i % every == 0``.
# POST /start/<M> uses 4 (several messages per loop turn, which a server may fold into one
# write per subscriber); POST /start_lone/<M> (fanout-lone) uses 1: one message per loop turn.
FANOUT_EVERY, LONE_EVERY = 4, 1


MAX_RATE, MAX_SECONDS = 10_000, 120  # /start_rate bounds: no endpoint publishes forever


async def paced(rate: int, seconds: int) -> AsyncIterator[int]:
    """S1 latency: yield 0 .. rate*seconds-1, message i at start + i/rate on the loop's clock
    (an absolute schedule: a late message does not push the later ones back). Returns one
    interval after the last message, so the caller's ``end`` event (and the teardown of every
    stream it causes) does not land on the last measured message."""
    rate, seconds = max(1, min(rate, MAX_RATE)), max(1, min(seconds, MAX_SECONDS))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(rate * seconds + 1):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if i < rate * seconds:
            yield i


def sse_clients() -> int:
    """S3: how many clients the run opens (Flask sizes its thread pool with it)."""
    return int(os.environ.get("BENCH_SSE_CLIENTS", "1000"))


# -- fanout-textbook ----------------------------------------------------------------------------
# The idiom the frameworks' docs and answers show, the same in every app: each subscriber's
# handler creates its own asyncio.Queue, adds it to this module-level set, and sends what
# ``await queue.get()`` returns (serialising it itself, in the framework's own way) until
# TEXTBOOK_END; the publisher puts every message into every queue, one loop turn per message.
TEXTBOOK_QUEUES: set[asyncio.Queue] = set()
TEXTBOOK_END = {"end": True}  # compared by identity: ``item is TEXTBOOK_END``
_textbook_tasks: set[asyncio.Task] = set()


async def textbook_publish(n: int) -> None:
    for i in range(n):
        item = {"i": i}
        for queue in tuple(TEXTBOOK_QUEUES):
            queue.put_nowait(item)
        await asyncio.sleep(0)
    for queue in tuple(TEXTBOOK_QUEUES):
        queue.put_nowait(TEXTBOOK_END)


def start_textbook(n: int) -> dict:
    """POST /start_textbook/<M>: start the publisher task; the answer's JSON body."""
    task = asyncio.get_running_loop().create_task(textbook_publish(n))
    _textbook_tasks.add(task)
    task.add_done_callback(_textbook_tasks.discard)
    return {"ok": True, "subscribers": len(TEXTBOOK_QUEUES)}
