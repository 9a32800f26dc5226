"""Per-request cost of rat_engine's HTTP/1.1 protocol alone (no socket, no framework): a GET
fed to ``RatHttpProtocol.data_received`` on a fake transport, answered by a bare ASGI app with a
fixed-length body. Best of 40 rounds of 2,000 requests, on uvloop.

    bench/.venv/bin/python bench/protocol_overhead.py [TREE ...]   # default: this checkout

Give several checkouts (``git worktree add /tmp/old <rev>``) to compare them in one sitting;
they run alternately, three times each.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from _trees import main

REQUEST = b"GET /json HTTP/1.1\r\nHost: x\r\nUser-Agent: b\r\nAccept: */*\r\n\r\n"


class _Transport:
    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _measure() -> float:
    from rat_engine.server.protocol import RatHttpProtocol

    config = SimpleNamespace(
        loaded=True, loaded_app=_app, root_path="", timeout_keep_alive=5, limit_concurrency=None
    )
    state = SimpleNamespace(connections=set(), tasks=set(), default_headers=[], total_requests=0)
    protocol = RatHttpProtocol(config, state, {}, asyncio.get_running_loop())
    protocol.connection_made(_Transport())
    best = float("inf")
    for _ in range(40):
        started = time.perf_counter()
        for _ in range(2000):
            protocol.data_received(REQUEST)
            await asyncio.sleep(0)
        best = min(best, (time.perf_counter() - started) / 2000)
    return best


if __name__ == "__main__":
    main(_measure, "us/request", 2)
