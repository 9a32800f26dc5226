"""Broadcast helpers: message-id order, unique channel names, Redis subscription counts, and the
small app that the multi-process broadcast tests run in child processes."""

from __future__ import annotations

import json
import textwrap
import uuid
from typing import Any

from rat_engine.sse.parser import ServerSentEvent


def id_key(message_id: str) -> tuple[int, ...]:
    """Order of broadcast ids: memory ``"7"`` -> (7,), Redis ``"<ms>-<seq>"`` -> (ms, seq)."""
    return tuple(int(part) for part in message_id.split("-"))


def assert_strictly_increasing(ids: list[str]) -> None:
    keys = [id_key(i) for i in ids]
    assert all(a < b for a, b in zip(keys, keys[1:], strict=False)), f"ids not strictly increasing: {ids}"


def unique(prefix: str = "ch") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def data_of(event: ServerSentEvent) -> Any:
    return json.loads(event.data)


def redis_numsub(url: str, *channels: str) -> list[int]:
    """How many pub/sub connections Redis itself counts for each broadcast channel."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return [int(count) for _, count in client.pubsub_numsub(*(f"rat:live:{c}" for c in channels))]
    finally:
        client.close()


#: The app the multi-process broadcast tests run (``python bcast_app.py`` with ``RAT_PORT``, or
#: ``rat-engine run bcast_app:app --workers 2``), written to a temp file by each test.
BROADCAST_APP_MODULE = textwrap.dedent(
    '''
    """A small app for the multi-process broadcast tests (written by the test)."""
    import os

    from rat_engine import RatApp, SSEEvent

    app = RatApp(name="mp-broadcast", sse_ping_interval=0, shutdown_grace=1)


    @app.json("/publish/<channel>", methods=["POST"])
    def publish(request_data, channel):
        body = request_data.json()
        message_id = app.broadcast.publish(channel, body.get("data"), event=body.get("event"))
        return {"id": message_id, "pid": os.getpid()}


    @app.sse("/subscribe/<channel>")
    def subscribe(request_data, channel):
        return app.broadcast.subscribe(channel, request_data["last_event_id"])


    @app.sse("/hello/<channel>")
    async def hello(request_data, channel):
        yield SSEEvent({"pid": os.getpid()}, event="hello")
        async for message in app.broadcast.subscribe(channel, request_data["last_event_id"]):
            yield message


    @app.route("/pid")
    def pid(request_data):
        return str(os.getpid())


    if __name__ == "__main__":
        app.run(host="127.0.0.1", port=int(os.environ["RAT_PORT"]), log_level="warning")
    '''
)
