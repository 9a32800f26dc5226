"""Shared bits of the benchmark apps: the port, the JSON payload and the seed-style generator.

Every app is started as ``python bench/apps/NAME.py PORT`` (or with env ``BENCH_PORT``) and
binds 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator

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
