"""Scenario 2 -- slow readers: clients that never read while the server produces and publishes as
fast as it can. Server memory stays bounded, the stalled streams are closed by ``sse_send_timeout``
and counted, broadcast drops are counted, and fast clients on the same routes get every event.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from support.http import get
from support.live import live_subprocess
from support.sse import AsyncSSE

from ._support import APP_SCRIPT, pick, proc_figures, raise_nofile, report, settle, stats

SEND_TIMEOUT = 2.0
SLOW_PER_ROUTE = pick(50, 100)
FAST_PER_ROUTE = 2
EVENTS = pick(2_000, 20_000)  # per fast generator stream
EVENT_SIZE = 1024
# Published on the broadcast channel: more than a stalled socket's kernel send buffer takes
# (tcp_wmem max is typically 4 MiB), so the writer blocks and the backlog overflows.
MESSAGES = pick(6_000, 12_000)
MESSAGE_SIZE = 1024
RSS_GROWTH_LIMIT_MB = 100.0

pytestmark = pytest.mark.timeout(pick(90, 300))


async def scenario(port: int, pid: int) -> dict[str, Any]:
    slow: list[AsyncSSE] = []
    routes = {
        "sync": f"/sync?n=0&interval=0&size={EVENT_SIZE}",
        "async": f"/async?n=0&interval=0&size={EVENT_SIZE}",
        "bcast": "/bcast?channel=load",
    }
    for name in ("sync", "async", "bcast"):
        for _ in range(SLOW_PER_ROUTE):
            # A tiny receive buffer and no reads: the server's socket congests almost at once.
            slow.append(await AsyncSSE.open(port, routes[name], rcvbuf=4096, read=False))
    fast_bcast = [await AsyncSSE.open(port, routes["bcast"]) for _ in range(FAST_PER_ROUTE)]
    for client in fast_bcast:
        assert await client.head() == 200
    opened = 3 * SLOW_PER_ROUTE + FAST_PER_ROUTE
    assert await asyncio.to_thread(settle, lambda: stats(port)["open_streams"] >= opened, 15), stats(port)

    peak_rss = proc_figures(pid)["rss_kb"]
    sampling = True

    async def sample() -> None:
        nonlocal peak_rss
        while sampling:
            peak_rss = max(peak_rss, proc_figures(pid)["rss_kb"])
            await asyncio.sleep(0.1)

    sampler = asyncio.ensure_future(sample())

    async def fast_generator(kind: str) -> tuple[str, list[int], bool]:
        client = await AsyncSSE.open(port, f"/{kind}?n={EVENTS}&interval=0&size={EVENT_SIZE}")
        try:
            events = await client.read_to_end(60)
            ok = all(e.data == "x" * EVENT_SIZE for e in events)
            return kind, [int(e.id or -1) for e in events], ok
        finally:
            await client.close()

    async def fast_subscriber(client: AsyncSSE) -> tuple[str, list[int], bool]:
        seqs: list[int] = []
        try:
            for _ in range(MESSAGES + 100):
                event = await client.next_event(60)
                assert event is not None, "broadcast stream ended before the 'end' event"
                payload = json.loads(event.data)
                if event.event == "end":
                    return "bcast", seqs, payload["seq"] == MESSAGES
                seqs.append(payload["seq"])
            return "bcast", seqs, False  # no "end" event
        finally:
            await client.close()

    started = time.monotonic()
    fast_tasks = [fast_generator(kind) for kind in ("sync", "async") for _ in range(FAST_PER_ROUTE)]
    fast_tasks += [fast_subscriber(c) for c in fast_bcast]
    publish = await asyncio.to_thread(
        get, port, f"/publish?channel=load&n={MESSAGES}&size={MESSAGE_SIZE}&burst=50"
    )
    assert publish.status == 200, publish
    fast_results = await asyncio.gather(*fast_tasks)
    fast_seconds = time.monotonic() - started

    # Every slow stream must be closed by the send timeout (and counted as such).
    def all_timed_out() -> bool:
        return stats(port)["close_reasons"].get("send_timeout", 0) >= 3 * SLOW_PER_ROUTE

    timed_out = await asyncio.to_thread(settle, all_timed_out, SEND_TIMEOUT + 20, 0.2)
    closed_after = time.monotonic() - started
    sampling = False
    await sampler

    # The server really dropped those sockets: draining each one ends in EOF/reset.
    async def drain(client: AsyncSSE) -> bool:
        client.resume()
        deadline = asyncio.get_running_loop().time() + 20
        try:
            for _ in range(100_000):  # bounded: a stalled socket holds a few MB at most
                data = await asyncio.wait_for(client.reader.read(1 << 20), 10)
                if not data:
                    return True
                if asyncio.get_running_loop().time() > deadline:
                    return False
            return False
        except (ConnectionError, OSError):
            return True
        except TimeoutError:
            return False
        finally:
            await client.close(rst=True)

    eof = sum(await asyncio.gather(*(drain(c) for c in slow)))
    return {
        "fast": fast_results,
        "fast_seconds": fast_seconds,
        "timed_out": bool(timed_out),
        "closed_after": closed_after,
        "slow_eof": eof,
        "peak_rss_kb": peak_rss,
    }


def test_slow_readers_are_bounded_and_dropped() -> None:
    raise_nofile()
    config = {
        "app": {
            "sse_send_timeout": SEND_TIMEOUT,
            "sse_ping_interval": 0,
            "broadcast_max_backlog": 256,
            "broadcast_history": 0,
        }
    }
    with live_subprocess(str(APP_SCRIPT), env={"REL_APP_CONFIG": json.dumps(config)}, grace=10) as server:
        pid, port = server.pid, server.port
        stats(port)
        baseline = proc_figures(pid)
        result = asyncio.run(scenario(port, pid))
        settled = settle(lambda: stats(port)["open_streams"] == 0, 10)
        final_stats = stats(port)
        settle(lambda: proc_figures(pid)["threads"] <= baseline["threads"] + 2, 10)  # best effort
        final = proc_figures(pid)
        growth_mb = (result["peak_rss_kb"] - baseline["rss_kb"]) / 1024
        bcast = final_stats["broadcast"]
        expected = {"sync": list(range(EVENTS)), "async": list(range(EVENTS)), "bcast": list(range(MESSAGES))}
        fast_summary = {
            kind: sum(1 for k, seqs, ok in result["fast"] if k == kind and ok and seqs == expected[kind])
            for kind in ("sync", "async", "bcast")
        }
        report(
            "slow_readers",
            f"{3 * SLOW_PER_ROUTE} non-reading clients (sync/async/broadcast), {EVENTS} x {EVENT_SIZE} B "
            f"events per stream, {MESSAGES} x {MESSAGE_SIZE} B published: send_timeout closes={final_stats['close_reasons'].get('send_timeout', 0)} "
            f"(all within {result['closed_after']:.1f}s), server dropped {result['slow_eof']} sockets, "
            f"broadcast dropped={bcast['dropped_total']}; RSS {baseline['rss_kb'] / 1024:.1f} -> peak "
            f"{result['peak_rss_kb'] / 1024:.1f} MB (+{growth_mb:.1f}); fast clients complete: {fast_summary} "
            f"of {FAST_PER_ROUTE} each in {result['fast_seconds']:.1f}s",
            slow_clients=3 * SLOW_PER_ROUTE,
            events=EVENTS,
            event_size=EVENT_SIZE,
            messages=MESSAGES,
            message_size=MESSAGE_SIZE,
            send_timeout=SEND_TIMEOUT,
            close_reasons=final_stats["close_reasons"],
            broadcast=bcast,
            slow_sockets_closed=result["slow_eof"],
            rss_baseline_mb=round(baseline["rss_kb"] / 1024, 1),
            rss_peak_mb=round(result["peak_rss_kb"] / 1024, 1),
            rss_growth_mb=round(growth_mb, 1),
            threads=(baseline["threads"], final["threads"]),
            fast_complete=fast_summary,
            fast_seconds=round(result["fast_seconds"], 2),
            seconds_until_all_closed=round(result["closed_after"], 2),
        )
        for kind, seqs, ok in result["fast"]:
            assert ok and seqs == expected[kind], (kind, len(seqs), seqs[:5], ok)
        assert result["timed_out"], final_stats
        assert final_stats["close_reasons"].get("send_timeout", 0) == 3 * SLOW_PER_ROUTE, final_stats
        assert result["slow_eof"] == 3 * SLOW_PER_ROUTE
        assert bcast["dropped_total"] > 0, bcast
        assert growth_mb < RSS_GROWTH_LIMIT_MB
        assert settled, final_stats
        assert final_stats["thread_streams"] == 0 and bcast["subscribers"] == 0
        assert final["threads"] <= baseline["threads"] + 2, (baseline, final)
        assert stats(port)["open_streams"] == 0  # still serving
