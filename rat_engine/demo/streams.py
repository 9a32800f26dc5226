"""The seed guide's counter and progress streams, verbatim in spirit, plus an async clock."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from .. import RatApp, SSEEvent


def register(app: RatApp) -> None:
    @app.sse("/api/events")
    def event_stream(request_data: dict[str, Any]) -> Any:
        """简单的事件流 (the guide's first example: a sync generator with time.sleep)."""
        for i in range(10):
            yield json.dumps({"type": "counter", "value": i, "timestamp": time.time()})
            time.sleep(1)

    @app.sse("/api/progress/<session_id>")
    def progress_stream(request_data: dict[str, Any], session_id: str) -> Any:
        """进度监控流 (the guide's progress example)."""
        yield json.dumps({"type": "init", "session_id": session_id, "status": "connected"})
        for progress in range(0, 101, 10):
            yield json.dumps({"type": "progress", "session_id": session_id, "progress": progress})
            time.sleep(0.5)
        yield json.dumps({"type": "completed", "session_id": session_id, "progress": 100})

    @app.sse("/api/clock")
    async def clock(request_data: dict[str, Any]) -> Any:
        """Named events with ids; a reconnecting browser resumes from Last-Event-ID."""
        start = (
            int(request_data["last_event_id"] or 0)
            if str(request_data["last_event_id"] or "0").isdigit()
            else 0
        )
        for tick in range(start + 1, start + 3601):
            yield SSEEvent({"tick": tick, "time": time.strftime("%H:%M:%S")}, event="tick", id=tick)
            await asyncio.sleep(1)

    @app.json("/api/stats")
    def stats(request_data: dict[str, Any]) -> dict[str, Any]:
        return app.stats()
