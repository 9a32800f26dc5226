"""Scenario 5 -- dependency faults: generators that raise, and handlers that hang forever (a
``time.sleep(3600)`` in a plain handler, an ``await asyncio.sleep(3600)`` in an async one). The rest
of the server keeps serving requests and streams; a failing stream gets an ``error`` event that
hides the exception text; other streams lose nothing.

Redis killed and restarted mid-stream is covered by tests/integration/test_broadcast_faults.py
(``test_redis_outage_and_restart``); it is not duplicated here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from typing import Any

import pytest
from support import HOST
from support.http import fetch_json
from support.live import live_subprocess
from support.sse import AsyncSSE

from ._support import APP_SCRIPT, pick, proc_figures, report, stats

HANGS = pick(8, 32)  # per kind; below handler_threads (64), so the pool still has threads
BOOMS = pick(20, 500)  # failing streams per kind
NORMAL = pick(200, 5_000)  # normal requests while all that is going on

pytestmark = pytest.mark.timeout(pick(60, 300))


async def hang(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return reader, writer


async def scenario(port: int) -> dict[str, Any]:
    steady = {kind: await AsyncSSE.open(port, f"/{kind}?interval=0.02&size=8") for kind in ("sync", "async")}
    for client in steady.values():
        assert (await client.next_event(5)) is not None
    hangs = [await hang(port, f"/hang/{kind}") for kind in ("sync", "async") for _ in range(HANGS)]
    await asyncio.sleep(0.3)

    leaks: list[str] = []
    boom_results: Counter[str] = Counter()

    async def boom(kind: str) -> None:
        client = await AsyncSSE.open(port, f"/boom/{kind}")
        try:
            events = await client.read_to_end(10)
        finally:
            await client.close()
        if b"boom-secret" in client.raw_head or any("boom-secret" in e.data for e in events):
            leaks.append(kind)
        shape = [e.event for e in events]
        if (
            shape == ["message", "error"]
            and json.loads(events[1].data) == {"type": "error", "message": "Internal Server Error"}
            and events[0].data == "before the failure"
        ):
            boom_results[f"{kind}: data + error event"] += 1
        else:
            boom_results[f"{kind}: unexpected {shape}"] += 1

    statuses: Counter[str] = Counter()

    async def normal(index: int) -> None:
        path = ("/ping", "/plain")[index % 2]
        try:
            body = await fetch_json(port, path, timeout=5)
            statuses["ok" if body.get("ok") else "bad body"] += 1
        except Exception as exc:  # noqa: BLE001 - counted and asserted on
            statuses[type(exc).__name__] += 1

    async def new_streams() -> int:
        ok = 0
        for i in range(10):
            client = await AsyncSSE.open(port, ("/sync?n=3&interval=0", "/async?n=3&interval=0")[i % 2])
            try:
                events = await client.read_to_end(5)
            finally:
                await client.close()
            ok += [e.id for e in events] == ["0", "1", "2"]
        return ok

    gate = asyncio.Semaphore(10)

    async def gated(coro: Any) -> Any:
        async with gate:
            return await coro

    started = time.monotonic()
    results = await asyncio.gather(
        *(gated(boom(kind)) for kind in ("sync", "async") for _ in range(BOOMS)),
        *(gated(normal(i)) for i in range(NORMAL)),
        new_streams(),
    )
    busy_seconds = time.monotonic() - started
    new_ok = results[-1]

    # The hung requests are still hanging (no answer), and nothing else is affected by them.
    unanswered = 0
    for reader, _ in hangs:
        try:
            await asyncio.wait_for(reader.read(1), 0.05)
        except TimeoutError:
            unanswered += 1
    mid_stats = await asyncio.to_thread(stats, port)

    # The steady streams never missed an event: ids are contiguous from 0.
    steady_ids: dict[str, int] = {}
    for kind, client in steady.items():
        ids = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and len(ids) < 1_000:
            event = await client.next_event(5)
            assert event is not None
            ids.append(int(event.id or -1))
        assert ids == list(range(1, len(ids) + 1)), (kind, ids[:10])
        steady_ids[kind] = ids[-1]
        await client.close()
    for _, writer in hangs:
        writer.transport.abort()
    return {
        "boom": dict(boom_results),
        "leaks": leaks,
        "statuses": dict(statuses),
        "new_streams_ok": new_ok,
        "unanswered_hangs": unanswered,
        "mid_stats": mid_stats,
        "steady_last_id": steady_ids,
        "busy_seconds": busy_seconds,
    }


def test_faults_do_not_spread() -> None:
    config = {"app": {"sse_ping_interval": 0, "shutdown_grace": 1}, "run": {"log_level": "error"}}
    with live_subprocess(str(APP_SCRIPT), env={"REL_APP_CONFIG": json.dumps(config)}, grace=1) as server:
        result = asyncio.run(scenario(server.port))
        final_stats = stats(server.port)
        figures = proc_figures(server.pid)
        report(
            "dependency_faults",
            f"{HANGS} hung plain + {HANGS} hung async handlers, {2 * BOOMS} failing generators, {NORMAL} normal "
            f"requests in {result['busy_seconds']:.1f}s: normal={result['statuses']}, failing streams="
            f"{result['boom']}, exception text leaked={len(result['leaks'])}, new streams ok="
            f"{result['new_streams_ok']}/10, steady streams reached id {result['steady_last_id']} with no gap, "
            f"hung requests still unanswered={result['unanswered_hangs']}/{2 * HANGS}",
            hangs_per_kind=HANGS,
            failing_streams=2 * BOOMS,
            normal_requests=NORMAL,
            statuses=result["statuses"],
            boom=result["boom"],
            leaks=len(result["leaks"]),
            new_streams_ok=result["new_streams_ok"],
            unanswered_hangs=result["unanswered_hangs"],
            close_reasons=final_stats["close_reasons"],
            threads=figures["threads"],
        )
        assert result["statuses"] == {"ok": NORMAL}, result["statuses"]
        assert result["boom"] == {"sync: data + error event": BOOMS, "async: data + error event": BOOMS}
        assert not result["leaks"]
        assert result["new_streams_ok"] == 10
        assert result["unanswered_hangs"] == 2 * HANGS
        assert result["mid_stats"]["open_streams"] == 2  # only the two steady streams
        assert final_stats["open_streams"] == 0


def _sigterm_exit_seconds(
    path: str, count: int, grace: float, wait: float
) -> tuple[float | None, str, int | None]:
    config = {"app": {"shutdown_grace": grace}, "run": {"log_level": "warning"}}
    socks: list[socket.socket] = []
    with live_subprocess(str(APP_SCRIPT), env={"REL_APP_CONFIG": json.dumps(config)}, grace=2) as server:
        try:
            for _ in range(count):
                sock = socket.create_connection((HOST, server.port), timeout=5)
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                socks.append(sock)
            time.sleep(0.5)
            assert stats(server.port)["open_streams"] == 0  # still serving
            os.kill(server.pid, signal.SIGTERM)
            signalled = time.monotonic()
            try:
                server.wait(timeout=wait)
                exit_after: float | None = time.monotonic() - signalled
            except subprocess.TimeoutExpired:
                exit_after = None
        finally:
            for sock in socks:
                sock.close()
    return exit_after, server.output(), server.returncode


@pytest.mark.parametrize(
    "path",
    [
        "/hang/async",
        "/hang/sync",
    ],
)
def test_sigterm_exits_despite_hung_handlers(path: str) -> None:
    grace = 1.0
    # uvicorn waits int(grace) + 1 s for connections, then cancels them.
    limit = int(grace) + 1 + 3.0
    exit_after, output, code = _sigterm_exit_seconds(path, 2, grace, limit + 1)
    report(
        f"sigterm_with_hung_handler[{path}]",
        f"2 requests hung in {path}, shutdown_grace {grace}s: "
        + (
            f"exited (code {code}) {exit_after:.2f}s after SIGTERM"
            if exit_after is not None
            else f"still running {limit + 1:.0f}s after SIGTERM (killed)"
        ),
        path=path,
        exit_after_s=None if exit_after is None else round(exit_after, 3),
        exit_code=code,
        limit_s=limit,
    )
    assert exit_after is not None and exit_after < limit, output[-2000:]
    assert code == 0, output[-2000:]
