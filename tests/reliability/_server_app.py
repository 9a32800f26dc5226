"""The reliability suite's server, run as a SUBPROCESS (its threads, fds and RSS are read from
/proc/<pid>). Configured by the ``REL_APP_CONFIG`` environment variable (JSON):

    {"app": {RatApp keyword arguments}, "run": {app.run keyword arguments},
     "markers": "/path/file"  (generators append "S <kind>" / "E <kind>" lines),
     "ticker": 0.02           (publish to channel "tick" every N s while it has subscribers)}

Routes:
    /stats                 app.stats() + pid + threading.active_count()   (async: no pool thread)
    /ping                  {"ok": true}
    /plain                 {"ok": true} from a plain handler (runs on the handler thread pool)
    /sync?n=&interval=&size=      sync generator: SSEEvent(id=i, data=payload) n times (0: forever)
    /async?n=&interval=&size=     async generator, same
    /bcast?channel=        broadcast fast path: return app.broadcast.subscribe(channel, last_event_id)
    /publish?channel=&n=&size=&burst=&event=     publish n numbered messages (in a background task)
    /boom/sync, /boom/async        generators that yield one event then raise RuntimeError
    /hang/sync, /hang/async        handlers that never return (time.sleep / asyncio.sleep 3600 s)

After the server stops, one line ``REL-EXIT {json}`` reports the generator start/finally counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

from rat_engine import RatApp, SSEEvent

CONFIG: dict[str, Any] = json.loads(os.environ.get("REL_APP_CONFIG", "{}"))
app = RatApp(name="reliability", **CONFIG.get("app", {}))

_counts_lock = threading.Lock()
COUNTS: dict[str, int] = {"started": 0, "finished": 0}
_markers_fd = (
    os.open(CONFIG["markers"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    if CONFIG.get("markers")
    else None
)


def _mark(what: str, kind: str) -> None:
    with _counts_lock:
        COUNTS["started" if what == "S" else "finished"] += 1
    if _markers_fd is not None:
        os.write(_markers_fd, f"{what} {kind}\n".encode())


def _params(request_data: dict[str, Any]) -> tuple[int, float, str]:
    q = request_data["query_params"]
    n = int(q.get("n", "0"))
    interval = float(q.get("interval", "0.01"))
    size = int(q.get("size", "16"))
    return n, interval, "x" * size


@app.json("/stats", methods=["GET"])
async def stats_route() -> dict[str, Any]:
    stats = app.stats()
    stats["pid"] = os.getpid()
    stats["threads"] = threading.active_count()
    with _counts_lock:
        stats["generators"] = dict(COUNTS)
    return stats


@app.json("/ping", methods=["GET"])
async def ping() -> dict[str, Any]:
    return {"ok": True}


@app.json("/plain", methods=["GET"])
def plain() -> dict[str, Any]:
    return {"ok": True, "thread": threading.current_thread().name}


@app.sse("/sync")
def sync_stream(request_data: dict[str, Any]) -> Any:
    n, interval, payload = _params(request_data)
    _mark("S", "sync")
    try:
        i = 0
        while n == 0 or i < n:
            yield SSEEvent(payload, id=i)
            i += 1
            if interval:
                time.sleep(interval)
    finally:
        _mark("E", "sync")


@app.sse("/async")
async def async_stream(request_data: dict[str, Any]) -> Any:
    n, interval, payload = _params(request_data)
    _mark("S", "async")
    try:
        i = 0
        while n == 0 or i < n:
            yield SSEEvent(payload, id=i)
            i += 1
            await asyncio.sleep(interval)
    finally:
        _mark("E", "async")


@app.sse("/bcast")
async def bcast(request_data: dict[str, Any]) -> Any:
    channel = request_data["query_params"].get("channel", "tick")
    return app.broadcast.subscribe(channel, request_data["last_event_id"])


_publishers: set[asyncio.Task[Any]] = set()


async def _publish(channel: str, n: int, size: int, burst: int, event: str | None) -> None:
    pad = "p" * size
    for i in range(n):
        await app.broadcast.apublish(channel, {"seq": i, "pad": pad}, event=event)
        if burst and i % burst == burst - 1:
            await asyncio.sleep(0.001)
    await app.broadcast.apublish(channel, {"seq": n, "end": True}, event="end")


@app.json("/publish", methods=["GET", "POST"])
async def publish(request_data: dict[str, Any]) -> dict[str, Any]:
    q = request_data["query_params"]
    task = asyncio.get_running_loop().create_task(
        _publish(
            q.get("channel", "load"),
            int(q.get("n", "100")),
            int(q.get("size", "64")),
            int(q.get("burst", "50")),
            q.get("event"),
        )
    )
    _publishers.add(task)
    task.add_done_callback(_publishers.discard)
    return {"started": True}


@app.sse("/boom/sync")
def boom_sync(request_data: dict[str, Any]) -> Any:
    yield "before the failure"
    raise RuntimeError("boom-secret-detail sync")


@app.sse("/boom/async")
async def boom_async(request_data: dict[str, Any]) -> Any:
    yield "before the failure"
    raise RuntimeError("boom-secret-detail async")


@app.json("/hang/sync", methods=["GET"])
def hang_sync() -> dict[str, Any]:
    time.sleep(3600)
    return {"woke": True}


@app.json("/hang/async", methods=["GET"])
async def hang_async() -> dict[str, Any]:
    await asyncio.sleep(3600)
    return {"woke": True}


async def _ticker(interval: float) -> None:
    i = 0
    while True:
        await asyncio.sleep(interval)
        if app.stats().get("broadcast", {}).get("subscribers"):
            i += 1
            await app.broadcast.apublish("tick", {"tick": i})


@app.on_startup
def _start_ticker() -> None:
    if CONFIG.get("ticker"):
        task = asyncio.get_running_loop().create_task(_ticker(float(CONFIG["ticker"])))
        _publishers.add(task)


if __name__ == "__main__":
    run_options: dict[str, Any] = {"log_level": "warning", "access_log": False}
    run_options.update(CONFIG.get("run", {}))
    app.run(host="127.0.0.1", port=int(os.environ["RAT_PORT"]), **run_options)
    with _counts_lock:
        print("REL-EXIT " + json.dumps(COUNTS), flush=True)
