"""Broadcast behind Redis Sentinel: what a failover costs, and what durability="replicated" costs
(issue 18). Real redis-server processes on 127.0.0.1: a primary, two replicas, three sentinels
(the test helpers in tests/support/redis_sentinel.py start them and stop them by PID).

    .venv/bin/python bench/broadcast_failover.py [--runs 5] [--publishes 3000] [--smoke] [--json FILE]

1. cost: the latency of one publish (sequential, one publisher) with durability none and
   replicated, in alternating blocks; and publishes/s with 16 concurrent publishers.
2. failover: one process publishes as fast as it can, another subscribes; the primary is
   SIGKILLed. Longest silence at the subscriber, the reader's own interruption figure, how long
   publishing failed, and acknowledged messages lost (not in the new primary's stream, not
   delivered), for each durability.
3. lagging replicas: both replicas are stalled (SIGSTOP) for 0.8 s while 16 KB messages are
   published, then the primary is SIGKILLed and the replicas resume: what asynchronous
   replication loses, and what durability=replicated refuses instead.

Every figure is the median over --runs fresh setups (a shared 2-core machine is noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import redis  # noqa: E402
from rat_engine.broadcast import Broadcast, BroadcastUnavailable  # noqa: E402
from support.redis_sentinel import SentinelSetup  # noqa: E402

CHANNEL = "bench"
HISTORY = 1_000_000  # nothing is trimmed: the stream is the record of what survived


def new_setup(workdir: Path, replicas: int = 2) -> SentinelSetup:
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is not on PATH (apt-get install redis-server)")
    setup = SentinelSetup(executable, workdir, replicas)
    setup.start()
    try:
        setup.wait_ready()
    except BaseException:
        setup.stop()
        raise
    return setup


def url_for(setup: SentinelSetup, durability: str) -> str:
    return setup.url("durability=replicated&replica_timeout=0.5" if durability == "replicated" else "")


# -- 1. cost ------------------------------------------------------------------------------------


async def measure_cost(setup: SentinelSetup, publishes: int, rounds: int = 6) -> dict[str, Any]:
    brokers = {d: Broadcast(url_for(setup, d), history=1000) for d in ("none", "replicated")}
    for broker in brokers.values():
        await broker.start()
    latencies: dict[str, list[float]] = {d: [] for d in brokers}
    try:
        for broker in brokers.values():  # warm-up: connections, script cache
            for n in range(50):
                await broker.apublish(CHANNEL, n)
        block = max(1, publishes // rounds)
        for _ in range(rounds):
            for durability, broker in brokers.items():
                for n in range(block):
                    began = time.perf_counter()
                    await broker.apublish(CHANNEL, {"n": n, "text": "x" * 100})
                    latencies[durability].append(time.perf_counter() - began)
        concurrent: dict[str, float] = {}
        for durability, broker in brokers.items():

            async def worker(broker: Broadcast = broker) -> None:
                for n in range(block // 4 + 1):
                    await broker.apublish(CHANNEL, {"n": n})

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(16)))
            concurrent[durability] = 16 * (block // 4 + 1) / (time.perf_counter() - began)
    finally:
        for broker in brokers.values():
            await broker.stop()
    out: dict[str, Any] = {}
    for durability, values in latencies.items():
        values.sort()
        out[durability] = {
            "median_us": statistics.median(values) * 1e6,
            "p90_us": values[int(len(values) * 0.9)] * 1e6,
            "p99_us": values[int(len(values) * 0.99)] * 1e6,
            "concurrent16_per_s": concurrent[durability],
        }
    return out


# -- 2. and 3. failover -------------------------------------------------------------------------


async def failover_run(setup: SentinelSetup, durability: str, lagging: bool) -> dict[str, Any]:
    url = url_for(setup, durability)
    publisher, subscriber = Broadcast(url, history=HISTORY), Broadcast(url, history=HISTORY)
    await publisher.start()
    await subscriber.start()
    subscription = subscriber.subscribe(CHANNEL)
    await subscription.open()
    received: list[tuple[float, str]] = []

    async def consume() -> None:
        async for message in subscription:
            received.append((time.monotonic(), message.id))

    reader = asyncio.get_running_loop().create_task(consume())
    old_port = setup.primary_port()
    primary = setup.server_on(old_port)
    acked: list[tuple[float, str]] = []
    failed = 0
    payload = "x" * 16_000 if lagging else "x" * 100
    began = time.monotonic()
    stalled_at = killed_at = 0.0
    try:
        await asyncio.sleep(0.5)  # the subscriber's SUBSCRIBE is in place
        while time.monotonic() - began < 40:
            try:
                message_id = await publisher.apublish(CHANNEL, {"n": len(acked), "p": payload})
                acked.append((time.monotonic(), message_id))
            except BroadcastUnavailable:
                failed += 1
                await asyncio.sleep(0.001)
            elapsed = time.monotonic() - began
            if lagging and not stalled_at and elapsed > 1.0:
                for replica in setup.replicas:
                    assert replica.pid is not None
                    os.kill(replica.pid, signal.SIGSTOP)
                stalled_at = time.monotonic()
            if not killed_at and elapsed > (1.8 if lagging else 1.0):
                primary.stop(sig=signal.SIGKILL)
                killed_at = time.monotonic()
                if lagging:
                    for replica in setup.replicas:
                        assert replica.pid is not None
                        os.kill(replica.pid, signal.SIGCONT)
            if killed_at and sum(1 for t, _ in acked if t > killed_at) >= 300:
                break
            if not lagging:
                await asyncio.sleep(0)  # a steady stream, not a burst per loop turn
        deadline = time.monotonic() + 10
        while received and acked and received[-1][1] != acked[-1][1] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stats = subscriber.stats()
    finally:
        reader.cancel()
        subscription.close()
        await publisher.stop()
        await subscriber.stop()
    new_port = setup.primary_port()
    client = redis.Redis(host="127.0.0.1", port=new_port, socket_timeout=10)
    try:
        stored = {i.decode() for i, _ in client.xrange(f"rat:stream:{CHANNEL}")}
    finally:
        client.close()
    delivered = {i for _, i in received}
    acked_ids = [i for _, i in acked]
    after_kill = [t for t, _ in received if t >= killed_at]
    silence = max((b - a for a, b in zip([killed_at, *after_kill], after_kill, strict=False)), default=0.0)
    first_ok = next((t for t, _ in acked if t > killed_at), None)
    return {
        "acked": len(acked_ids),
        "failed": failed,
        "lost_from_stream": sum(1 for i in acked_ids if i not in stored),
        "never_delivered": sum(1 for i in acked_ids if i not in delivered),
        "acked_before_kill": sum(1 for t, _ in acked if t < killed_at),
        "acked_while_stalled": sum(1 for t, _ in acked if stalled_at and stalled_at <= t < killed_at),
        "silence_s": silence,
        "reader_interruption_s": stats.get("last_interruption_seconds"),
        "publish_down_s": (first_ok - killed_at) if first_ok else None,
        "failovers": stats.get("failovers_total"),
    }


def run_failovers(runs: int, lagging: bool) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {"none": [], "replicated": []}
    for run in range(runs):
        for durability in ("none", "replicated"):
            with tempfile.TemporaryDirectory(prefix="rat-failover-") as workdir:
                setup = new_setup(Path(workdir))
                try:
                    result = asyncio.run(failover_run(setup, durability, lagging))
                finally:
                    setup.stop()
            results[durability].append(result)
            print(
                f"  run {run + 1} {'lagging' if lagging else 'failover'} {durability}: {result}", flush=True
            )
    return results


def median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh setups per scenario and durability")
    parser.add_argument("--publishes", type=int, default=3000, help="publishes per durability for the cost")
    parser.add_argument("--smoke", action="store_true", help="one run, few publishes (~1 min)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    runs, publishes = (1, 600) if args.smoke else (args.runs, args.publishes)

    with tempfile.TemporaryDirectory(prefix="rat-cost-") as workdir:
        setup = new_setup(Path(workdir))
        try:
            cost = asyncio.run(measure_cost(setup, publishes))
        finally:
            setup.stop()
    print("cost of one publish (primary + 2 replicas on loopback, sequential):")
    for durability, figures in cost.items():
        print(
            f"  {durability:10s} median {figures['median_us']:7.0f} us  p90 {figures['p90_us']:7.0f} us  "
            f"p99 {figures['p99_us']:7.0f} us  16 concurrent: {figures['concurrent16_per_s']:6.0f}/s"
        )
    failover = run_failovers(runs, lagging=False)
    lagging = run_failovers(runs, lagging=True)

    print(f"\nmedians over {runs} run(s) per row:")
    print(
        "scenario  durability  acked  failed  lost(stream)  lost(never delivered)  silence  reader  publish down"
    )
    for name, results in (("failover", failover), ("lagging", lagging)):
        for durability, rows in results.items():
            cells = [median_of(rows, k) for k in ("acked", "failed", "lost_from_stream", "never_delivered")]
            timing = [median_of(rows, k) for k in ("silence_s", "reader_interruption_s", "publish_down_s")]
            print(
                f"{name:9s} {durability:10s} "
                + " ".join(f"{c:6.0f}" if c is not None else "     -" for c in cells)
                + "   "
                + " ".join(f"{t:6.2f}s" if t is not None else "      -" for t in timing)
                + f"   (lost per run: {[r['lost_from_stream'] for r in rows]})"
            )
    if args.json:
        args.json.write_text(
            json.dumps({"cost": cost, "failover": failover, "lagging": lagging}, indent=2), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
