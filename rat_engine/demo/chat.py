"""Chat and a live dashboard shared by every open tab, on broadcast channels
(see examples/08_chat_dashboard.py)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from .. import HTTPException, RatApp


def register(app: RatApp) -> None:
    tasks: list[asyncio.Task[None]] = []

    @app.json("/api/chat", methods=["POST"])
    async def post_message(request_data: Any) -> dict[str, Any]:
        message = request_data.json()
        if not isinstance(message, dict):
            raise HTTPException(400, "expected a JSON object")
        name = str(message.get("name", "")).strip()[:40] or "anonymous"
        text = str(message.get("text", "")).strip()[:500]
        if not text:
            raise HTTPException(400, "empty message")
        message_id = await app.broadcast.apublish(
            "chat", {"name": name, "text": text, "at": time.time()}, event="chat"
        )
        return {"id": message_id}

    @app.sse("/api/chat/stream")
    def chat_stream(request_data: dict[str, Any]) -> Any:
        # Returned, not iterated: the fast path. A new tab (no Last-Event-ID) starts from "0":
        # the history the app keeps (broadcast_history); a reconnecting tab sends the id of the
        # last message it got and is replayed only what came after it, so nothing twice.
        return app.broadcast.subscribe("chat", request_data["last_event_id"] or "0")

    @app.sse("/api/dashboard/stream")
    def dashboard_stream(request_data: dict[str, Any]) -> Any:
        return app.broadcast.subscribe("dashboard", policy="coalesce", max_backlog=4)

    async def publish_stats() -> None:
        previous = app.stats()["events_sent_total"]
        while True:
            stats = app.stats()
            events = stats["events_sent_total"]
            await app.broadcast.apublish(
                "dashboard",
                {
                    "time": time.strftime("%H:%M:%S"),
                    "open_streams": stats["open_streams"],
                    "events_per_second": events - previous,
                    "events_sent": events,
                    "subscribers": stats.get("broadcast", {}).get("subscribers", 0),
                    "pid": os.getpid(),
                },
                event="stats",
            )
            previous = events
            await asyncio.sleep(1)

    @app.on_startup
    async def start_dashboard() -> None:
        tasks.append(asyncio.get_running_loop().create_task(publish_stats()))

    @app.on_shutdown
    async def stop_dashboard() -> None:
        for task in tasks:
            task.cancel()
        tasks.clear()
