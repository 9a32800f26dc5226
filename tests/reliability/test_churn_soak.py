"""Scenario 1 -- churn soak: clients connect to a sync-generator, an async-generator and a
broadcast fast-path route, read a few events and vanish (half with a clean close, half with an
abrupt RST), for the profile's duration. Afterwards the server process must be back where it
started: threads, open fds, the connection registry, broadcast subscribers, RSS.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import pytest
from support.live import live_subprocess
from support.net import wait_until
from support.sse import AsyncSSE

from ._support import APP_SCRIPT, pick, proc_figures, raise_nofile, report, settle, stats

DURATION = pick(8.0, 300.0)  # seconds of churn
MAX_CLIENTS = pick(40_000, 2_000_000)  # ... and never more clients than this
CONCURRENCY = pick(200, 300)  # clients in flight at any moment
WARMUP = pick(2.0, 10.0)
SETTLE = pick(10.0, 20.0)  # seconds allowed for the server to get back to its baseline
THREAD_MARGIN = 2
FD_MARGIN = 2
RSS_MARGIN_MB = pick(15.0, 25.0)
ROUTES = ("/sync?interval=0.02&size=32", "/async?interval=0.02&size=32", "/bcast?channel=tick")

pytestmark = pytest.mark.timeout(DURATION + WARMUP + 120)


async def churn(port: int, seconds: float, max_clients: int, concurrency: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    issued = 0
    outcome: Counter[str] = Counter()
    errors: Counter[str] = Counter()

    async def client_loop() -> None:
        nonlocal issued
        while loop.time() < deadline and issued < max_clients:
            index = issued
            issued += 1
            route = ROUTES[index % 3]
            rst = (index // 3) % 2 == 1  # alternate per route: half RST, half clean close
            wanted = 1 + index % 3
            client: AsyncSSE | None = None
            try:
                client = await AsyncSSE.open(port, route, timeout=10)
                status = await client.head(10)
                if status != 200:
                    errors[f"status {status}"] += 1
                    continue
                for _ in range(wanted):
                    if await client.next_event(10) is None:
                        errors["stream ended early"] += 1
                        break
                else:
                    outcome["rst" if rst else "clean"] += 1
                    outcome[route.split("?")[0]] += 1
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                errors[type(exc).__name__] += 1
            finally:
                if client is not None:
                    await client.close(rst=rst)

    started = loop.time()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    elapsed = loop.time() - started
    return {"issued": issued, "elapsed": elapsed, "outcome": dict(outcome), "errors": dict(errors)}


def settled(port: int, pid: int, baseline: dict[str, int]) -> dict[str, Any] | None:
    s = stats(port)
    figures = proc_figures(pid)
    ok = (
        s["open_streams"] == 0
        and s["thread_streams"] == 0
        and s["broadcast"]["subscribers"] == 0
        and figures["threads"] <= baseline["threads"] + THREAD_MARGIN
        and figures["fds"] <= baseline["fds"] + FD_MARGIN
    )
    return {"stats": s, "proc": figures} if ok else None


def test_churn_soak_leaves_nothing_behind() -> None:
    raise_nofile()
    config = {"ticker": 0.02, "app": {"sse_ping_interval": 0}}
    with live_subprocess(str(APP_SCRIPT), env={"REL_APP_CONFIG": json.dumps(config)}, grace=10) as server:
        pid, port = server.pid, server.port
        initial = proc_figures(pid)
        # Warm-up: same mix, so lazily created things (thread arenas, caches) exist at the baseline.
        warm = asyncio.run(churn(port, WARMUP, MAX_CLIENTS, CONCURRENCY))
        assert not warm["errors"], warm
        wait_until(lambda: stats(port)["open_streams"] == 0, SETTLE, "warm-up streams closed")
        time.sleep(1.0)
        baseline = proc_figures(pid)

        peak = dict(baseline)
        samples = 0

        async def run_with_sampling() -> dict[str, Any]:
            nonlocal samples
            task = asyncio.ensure_future(churn(port, DURATION, MAX_CLIENTS, CONCURRENCY))
            while not task.done():
                figures = proc_figures(pid)
                samples += 1
                for key, value in figures.items():
                    peak[key] = max(peak[key], value)
                await asyncio.wait({task}, timeout=0.5)
            return task.result()

        result = asyncio.run(run_with_sampling())
        settle_started = time.monotonic()
        after = settle(lambda: settled(port, pid, baseline), SETTLE, interval=0.25)
        settle_seconds = time.monotonic() - settle_started
        final_stats = stats(port)
        final = proc_figures(pid)
        rate = result["issued"] / result["elapsed"] if result["elapsed"] else 0.0

        report(
            "churn_soak",
            f"{result['issued']} clients in {result['elapsed']:.1f}s ({rate:.0f}/s, {CONCURRENCY} in flight), "
            f"clean={result['outcome'].get('clean', 0)} rst={result['outcome'].get('rst', 0)} "
            f"errors={sum(result['errors'].values())}; threads {baseline['threads']}->{final['threads']} "
            f"(peak {peak['threads']}), fds {baseline['fds']}->{final['fds']} (peak {peak['fds']}), "
            f"RSS {initial['rss_kb'] / 1024:.1f} MB start, {baseline['rss_kb'] / 1024:.1f} MB after warm-up, "
            f"{final['rss_kb'] / 1024:.1f} MB after (peak {peak['rss_kb'] / 1024:.1f}); "
            f"open_streams={final_stats['open_streams']} subscribers={final_stats['broadcast']['subscribers']} "
            f"settled in {settle_seconds:.1f}s",
            clients=result["issued"],
            seconds=round(result["elapsed"], 2),
            clients_per_second=round(rate, 1),
            concurrency=CONCURRENCY,
            outcome=result["outcome"],
            errors=result["errors"],
            warmup_clients=warm["issued"],
            initial=initial,
            baseline=baseline,
            peak=peak,
            final=final,
            settle_seconds=round(settle_seconds, 2),
            close_reasons=final_stats["close_reasons"],
            opened_total=final_stats["opened_total"],
            generators=final_stats["generators"],
            broadcast=final_stats["broadcast"],
        )

        assert not result["errors"], result
        assert result["issued"] >= pick(500, 10_000), result  # it really churned
        assert after is not None, f"server did not settle: {final_stats} {final} baseline={baseline}"
        assert final_stats["open_streams"] == 0 and final_stats["thread_streams"] == 0
        assert final_stats["broadcast"]["subscribers"] == 0
        assert final_stats["broadcast"]["channels"] == 0
        gens = final_stats["generators"]
        assert gens["started"] == gens["finished"], gens  # every generator's finally ran
        # Every stream opened was closed and counted (warm-up included).
        assert sum(final_stats["close_reasons"].values()) == final_stats["opened_total"]
        assert final["threads"] <= baseline["threads"] + THREAD_MARGIN
        assert final["fds"] <= baseline["fds"] + FD_MARGIN
        assert final["rss_kb"] / 1024 <= baseline["rss_kb"] / 1024 + RSS_MARGIN_MB, (baseline, final)
        # Still serving.
        assert stats(port)["open_streams"] == 0
