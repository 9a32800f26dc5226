"""The demo site served by ``rat-engine demo`` (port 8087): the seed guide's streams, live.

Everything here is an ordinary rat_engine app; read it as an example.
"""

from __future__ import annotations

import asyncio
import json
import time
from importlib import resources
from typing import Any

from .. import RatApp, SSEEvent

__all__ = ["app"]

app = RatApp(name="rat_engine_demo")


@app.html("/")
def index(request_data: dict[str, Any]) -> str:
    return resources.files(__package__).joinpath("index.html").read_text(encoding="utf-8")


# The seed guide's first example, verbatim: a counter with time.sleep in a sync generator.
@app.sse("/api/events")
def event_stream(request_data: dict[str, Any]) -> Any:
    """简单的事件流"""
    for i in range(10):
        yield json.dumps({"type": "counter", "value": i, "timestamp": time.time()})
        time.sleep(1)


# The seed guide's progress stream with a path parameter.
@app.sse("/api/progress/<session_id>")
def progress_stream(request_data: dict[str, Any], session_id: str) -> Any:
    """进度监控流"""
    yield json.dumps({"type": "init", "session_id": session_id, "status": "connected"})
    for progress in range(0, 101, 10):
        yield json.dumps({"type": "progress", "session_id": session_id, "progress": progress})
        time.sleep(0.5)
    yield json.dumps({"type": "completed", "session_id": session_id, "progress": 100})


# An async generator with named events and ids: what the original engine could not do.
@app.sse("/api/clock")
async def clock(request_data: dict[str, Any]) -> Any:
    start = int(request_data["last_event_id"] or 0)
    for tick in range(start + 1, start + 3601):
        yield SSEEvent({"tick": tick, "time": time.strftime("%H:%M:%S")}, event="tick", id=tick)
        await asyncio.sleep(1)


@app.json("/api/stats")
def stats(request_data: dict[str, Any]) -> dict[str, Any]:
    return app.stats()
