"""Scenario 4 -- shutdown under load: thousands of open streams (half sync generators on their own
threads, half async generators), then SIGTERM. Every generator's ``finally`` runs (counted in a
marker file), each client gets the farewell ``retry:`` frame and a clean end of stream, and the
process exits 0 within its grace period (plus a margin) with no traceback in its output.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support.live import live_subprocess
from support.net import wait_until
from support.sse import AsyncSSE

from ._support import APP_SCRIPT, pick, proc_figures, raise_nofile, report, stats

STREAMS = pick(1_000, 5_000)
GRACE = 5.0  # the default shutdown_grace
EXIT_MARGIN = 3.0
INTERVAL = 0.5  # seconds between events (sync generators are closed at their next yield)

pytestmark = pytest.mark.timeout(pick(90, 240))


async def open_streams(port: int) -> list[AsyncSSE]:
    gate = asyncio.Semaphore(200)

    async def one(index: int) -> AsyncSSE:
        kind = "sync" if index % 2 == 0 else "async"
        async with gate:
            client = await AsyncSSE.open(port, f"/{kind}?interval={INTERVAL}&size=8", timeout=20)
            event = await client.next_event(20)
            assert client.status == 200 and event is not None, (client.status, client.raw_head)
            return client

    return list(await asyncio.gather(*(one(i) for i in range(STREAMS))))


async def read_until_closed(clients: list[AsyncSSE], timeout: float) -> Counter[str]:
    async def one(client: AsyncSSE) -> str:
        try:
            await client.read_to_end(timeout)
        except (ConnectionError, OSError):
            return "reset"
        except TimeoutError:
            return "still open"
        finally:
            await client.close(rst=True)
        if client.parser.retry == 2000:
            return "farewell+end"
        return "end without farewell"

    return Counter(await asyncio.gather(*(one(c) for c in clients)))


def test_sigterm_with_thousands_of_streams(tmp_path: Path) -> None:
    raise_nofile()
    markers = tmp_path / "markers.txt"
    config = {
        "markers": str(markers),
        "app": {"sse_ping_interval": 0, "shutdown_grace": GRACE},
        "run": {"log_level": "info"},
    }
    with live_subprocess(
        str(APP_SCRIPT), env={"REL_APP_CONFIG": json.dumps(config)}, grace=GRACE + 15
    ) as server:
        port, pid = server.port, server.pid

        async def scenario() -> dict[str, Any]:
            opened_at = time.monotonic()
            clients = await open_streams(port)
            open_seconds = time.monotonic() - opened_at
            assert await asyncio.to_thread(wait_until, lambda: stats(port)["open_streams"] == STREAMS, 10)
            before = proc_figures(pid)
            before_stats = stats(port)
            os.kill(pid, signal.SIGTERM)
            signalled = time.monotonic()
            reading = asyncio.ensure_future(read_until_closed(clients, GRACE + EXIT_MARGIN + 5))

            def wait_exit() -> float | None:
                try:
                    server.wait(timeout=GRACE + EXIT_MARGIN + 10)
                except subprocess.TimeoutExpired:
                    return None
                return time.monotonic() - signalled

            exit_after = await asyncio.to_thread(wait_exit)
            endings = await reading
            return {
                "open_seconds": open_seconds,
                "before": before,
                "before_stats": before_stats,
                "exit_after": exit_after,
                "endings": endings,
            }

        result = asyncio.run(scenario())
    output = server.output()
    lines = markers.read_text().splitlines() if markers.exists() else []
    marks = Counter(lines)
    exit_line = next((ln for ln in output.splitlines() if ln.startswith("REL-EXIT ")), None)
    exit_counts = json.loads(exit_line.split(" ", 1)[1]) if exit_line else None
    endings = result["endings"]
    report(
        "shutdown_under_load",
        f"{STREAMS} open streams ({marks['S sync']} sync, {marks['S async']} async; opened in "
        f"{result['open_seconds']:.1f}s, {result['before']['threads']} threads, "
        f"RSS {result['before']['rss_kb'] / 1024:.0f} MB) -> SIGTERM: exit code {server.returncode} after "
        f"{result['exit_after'] if result['exit_after'] is None else round(result['exit_after'], 2)}s "
        f"(grace {GRACE}s), finally ran {marks['E sync']}+{marks['E async']}/{STREAMS}, clients: {dict(endings)}",
        streams=STREAMS,
        open_seconds=round(result["open_seconds"], 2),
        before=result["before"],
        exit_code=server.returncode,
        exit_after_s=None if result["exit_after"] is None else round(result["exit_after"], 3),
        grace_s=GRACE,
        markers=dict(marks),
        exit_counts=exit_counts,
        client_endings=dict(endings),
        traceback_in_output="Traceback" in output,
    )
    assert result["exit_after"] is not None and result["exit_after"] < GRACE + EXIT_MARGIN, result[
        "exit_after"
    ]
    assert server.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-5000:]
    assert marks["S sync"] + marks["S async"] == STREAMS, marks
    assert marks["E sync"] == marks["S sync"] and marks["E async"] == marks["S async"], marks
    assert exit_counts == {"started": STREAMS, "finished": STREAMS}, exit_counts
    assert endings == Counter({"farewell+end": STREAMS}), endings
