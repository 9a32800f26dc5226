"""A live log viewer: the seed guide's ``tail -f`` stream over a log file the demo writes itself.

A background task appends a line to ``<log dir>/demo-service.log`` about every 0.7 s; the SSE
route is the guide's ``log_stream`` (tail -f in a subprocess, closed by ``finally`` when the
viewer leaves), reading from the demo's own directory instead of /var/log.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import tempfile
import time
from typing import Any

from .. import HTTPException, RatApp

LOG_DIR = os.environ.get("RAT_DEMO_LOG_DIR") or os.path.join(tempfile.gettempdir(), "rat_demo_logs")
SERVICE = re.compile(r"^[a-z0-9_-]{1,40}$")
_MESSAGES = [
    ("INFO", "GET /api/orders 200 12ms"),
    ("INFO", "cache hit ratio 0.93"),
    ("DEBUG", "worker heartbeat ok"),
    ("INFO", "user 42 signed in"),
    ("WARNING", "slow query: 812ms on orders_by_customer"),
    ("INFO", "POST /api/orders 201 31ms"),
    ("ERROR", "payment provider timeout, retrying (1/3)"),
    ("INFO", "job nightly-report finished in 4.2s"),
]


async def _write_demo_log(path: str) -> None:
    while True:
        level, message = random.choice(_MESSAGES)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {level:<7} {message}\n")
        await asyncio.sleep(0.7)


def register(app: RatApp) -> None:
    tasks: list[asyncio.Task[None]] = []

    @app.on_startup
    async def start_log_writer() -> None:
        os.makedirs(LOG_DIR, exist_ok=True)
        path = os.path.join(LOG_DIR, "demo-service.log")
        tasks.append(asyncio.get_running_loop().create_task(_write_demo_log(path)))

    @app.on_shutdown
    async def stop_log_writer() -> None:
        for task in tasks:
            task.cancel()
        tasks.clear()

    @app.sse("/api/logs/<service_name>")
    def log_stream(request_data: dict[str, Any], service_name: str) -> Any:
        """实时日志流 (the guide's example, reading the demo's log directory)."""
        if not SERVICE.match(service_name):
            raise HTTPException(404, "unknown service")
        process: subprocess.Popen[str] | None = None
        try:
            process = subprocess.Popen(
                ["tail", "-n", "20", "-f", os.path.join(LOG_DIR, f"{service_name}.log")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            yield json.dumps({"type": "connected", "service": service_name, "timestamp": time.time()})
            for line in iter(process.stdout.readline, ""):  # type: ignore[union-attr]
                if line:
                    yield json.dumps(
                        {
                            "type": "log",
                            "service": service_name,
                            "message": line.strip(),
                            "timestamp": time.time(),
                        }
                    )
        except Exception as e:
            yield json.dumps({"type": "error", "message": str(e)})
        finally:
            if process is not None:  # the viewer left (or the stream ended): stop tail, close its pipes
                process.terminate()
                process.wait(5)
                for pipe in (process.stdout, process.stderr):
                    if pipe is not None:
                        pipe.close()
