"""Broadcast behind Redis Sentinel, with real processes: a primary, replicas and three sentinels
(``redis-server <conf> --sentinel``) on loopback ports; the primary is SIGKILLed (by PID) while
messages are being published.

* Two rat_engine processes on ``redis+sentinel://...?durability=replicated``, subscribers on
  both: every publish that returned is delivered to every subscriber exactly once, in order;
  ``Last-Event-ID`` replay works after the promotion; each process logs the failover with how
  long delivery was interrupted, and ``/metrics`` shows the new primary and the failover.
* While no primary is known, a publish fails within milliseconds with ``BroadcastUnavailable``
  saying so; it succeeds again once the replica is promoted.

Figures (interruption, failed publishes) are printed: run with ``-s`` to see them.
"""

from __future__ import annotations

import signal
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.broadcast import BROADCAST_APP_MODULE, id_key, redis_numsub, unique
from support.live import around_traceback, live_subprocess
from support.net import wait_until
from support.redis_sentinel import SentinelSetup, sentinel_setup
from support.sse import HttpSSE

pytestmark = [pytest.mark.timeout(150), pytest.mark.redis]

#: The multi-process broadcast app, with /metrics and its broadcast figures as JSON.
FAILOVER_APP = BROADCAST_APP_MODULE.replace(
    '\n\nif __name__ == "__main__":',
    """
app.enable_metrics("/metrics")
app.enable_status_page("/_status")


@app.json("/broadcast-stats")
def broadcast_stats(request_data):
    return app.stats().get("broadcast", {})


if __name__ == "__main__":""",
)


@pytest.fixture
def sentinels(tmp_path: Path) -> Any:
    # Two replicas: after the primary dies, the new primary still has one, so publishes that
    # wait for a replica (durability=replicated) succeed again once it has caught up.
    with sentinel_setup(tmp_path / "redis", replicas=2) as setup:
        yield setup


class Collector(threading.Thread):
    """Reads one SSE stream on its own thread, noting when each event arrived. It ends when the
    stream does (closed by the test, or the server stopping) or after 90 s."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.stream = HttpSSE(url, read_timeout=30)
        self.events: list[tuple[float, Any]] = []
        self.error: BaseException | None = None
        self._deadline = time.monotonic() + 90

    def run(self) -> None:
        try:
            while time.monotonic() < self._deadline:
                event = self.stream.next_event(timeout=30)
                self.events.append((time.monotonic(), event))
        except EOFError:
            pass
        except BaseException as exc:  # reported by the test
            self.error = exc

    def ids(self) -> list[str]:
        return [e.id for _, e in list(self.events) if e.id]

    def finish(self, last_id: str, timeout: float = 20) -> list[str]:
        """Every id received once ``last_id`` has arrived (AssertionError after ``timeout`` s)."""
        wait_until(
            lambda: last_id in self.ids() or not self.is_alive(),
            timeout,
            f"{last_id} at a subscriber",
            interval=0.1,
        )
        ids = self.ids()
        assert last_id in ids, f"{len(ids)} events, the last {ids[-3:]}, then {self.error!r}"
        self.stream.close()
        return ids

    def largest_gap(self, after: float) -> float:
        """The longest silence between two deliveries, counted from ``after`` (the kill)."""
        times = [after] + [t for t, _ in self.events if t >= after]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


class Publisher(threading.Thread):
    """Publishes numbered messages through the given servers in turn, as fast as they answer;
    notes which returned (with their ids) and which failed."""

    def __init__(self, bases: list[str], channel: str, limit: int = 5000, seconds: float = 60) -> None:
        super().__init__(daemon=True)
        self.bases = bases
        self.channel = channel
        self.limit = limit
        self.seconds = seconds
        self.acked: list[tuple[float, int, str]] = []  # (monotonic, n, id)
        self.failed: list[tuple[float, int, int, float]] = []  # (monotonic, n, status, seconds)
        self.halt = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        with httpx.Client(timeout=10) as http:
            for n in range(self.limit):
                if self.halt.is_set() or time.monotonic() > deadline:
                    return
                began = time.monotonic()
                base = self.bases[n % len(self.bases)]
                try:
                    response = http.post(f"{base}/publish/{self.channel}", json={"data": {"n": n}})
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                if status == 200:
                    self.acked.append((time.monotonic(), n, response.json()["id"]))
                else:
                    self.failed.append((time.monotonic(), n, status, time.monotonic() - began))

    def acked_after(self, moment: float) -> int:
        return sum(1 for t, _, _ in self.acked if t > moment)


def test_failover_delivers_every_acknowledged_publish_once_in_order(
    tmp_path: Path, sentinels: SentinelSetup
) -> None:
    app_path = tmp_path / "failover_app.py"
    app_path.write_text(FAILOVER_APP, encoding="utf-8")
    url = sentinels.url("durability=replicated&replica_timeout=1")
    old_port = sentinels.primary_port()
    channel = unique("failover")
    env = {"RAT_BROADCAST_URL": url}
    with (
        live_subprocess(app_path, env=env, grace=5) as a,
        live_subprocess(app_path, env=env, grace=5) as b,
    ):
        readers = [Collector(f"{server.url}/subscribe/{channel}") for server in (a, a, b)]
        publisher = Publisher([a.url, b.url], channel)
        try:
            for reader in readers:
                assert reader.stream.status_code == 200
                reader.start()
            primary_url = sentinels.server_on(old_port).url
            wait_until(lambda: redis_numsub(primary_url, channel) == [2], what="both processes subscribed")

            publisher.start()
            wait_until(lambda: len(publisher.acked) >= 50, timeout=20, what="50 publishes before the kill")
            sentinels.server_on(old_port).stop(sig=signal.SIGKILL)
            killed_at = time.monotonic()
            new_port = sentinels.wait_promoted(old_port)
            promoted_at = time.monotonic()
            wait_until(
                lambda: publisher.acked_after(promoted_at) >= 50,
                timeout=30,
                what="50 publishes after the promotion",
            )
            publisher.halt.set()
            publisher.join(15)
            assert not publisher.is_alive()
            acked = [message_id for _, _, message_id in publisher.acked]
            before = [i for t, _, i in publisher.acked if t < killed_at]
            assert len(before) >= 50

            for reader in readers:
                received = reader.finish(acked[-1])
                # In order, no duplicate (the ids of every delivered message strictly increase) ...
                keys = [id_key(i) for i in received]
                assert all(x < y for x, y in zip(keys, keys[1:], strict=False)), "out of order or duplicated"
                # ... and every publish that returned is there. (A publish that failed may still
                # have been delivered: its primary had it, but no replica confirmed it in time.)
                assert [i for i in received if i in set(acked)] == acked

            # A client that was away since before the failover replays what it missed.
            with HttpSSE(f"{b.url}/subscribe/{channel}", last_event_id=before[9], read_timeout=15) as back:
                replayed = back.until_id(acked[-1], timeout=15)
            assert "resync" not in {e.event for e in replayed}
            replayed_ids = [e.id for e in replayed]
            assert [i for i in replayed_ids if i in set(acked)] == acked[10:]

            stats = [httpx.get(f"{s.url}/broadcast-stats", timeout=5).json() for s in (a, b)]
            metrics = [httpx.get(f"{s.url}/metrics", timeout=5).text for s in (a, b)]
            with HttpSSE(f"{a.url}/_status/stream") as status:
                status_broker = status.next_event(5).json()["broadcast"]
            assert 'id="broker"' in httpx.get(f"{a.url}/_status", timeout=5).text
        finally:
            publisher.halt.set()
            for reader in readers:
                reader.stream.close()

    failed = publisher.failed
    gaps = [reader.largest_gap(killed_at) for reader in readers]
    print(
        f"\nprimary :{old_port} SIGKILLed; :{new_port} promoted after {promoted_at - killed_at:.2f}s; "
        f"{len(acked)} publishes returned, {len(failed)} failed (503), none lost; "
        f"longest silence at a subscriber after the kill: {max(gaps):.2f}s "
        f"(median of the three {statistics.median(gaps):.2f}s)"
    )
    assert failed, "no publish failed: the primary was not down while publishing"
    assert all(status == 503 for _, _, status, _ in failed), failed[:5]
    assert max(seconds for _, _, _, seconds in failed) < 2.5, "a failed publish was slow"
    assert status_broker["node"] == f"127.0.0.1:{new_port}" and status_broker["failovers_total"] == 1
    for server, figures, text in zip((a, b), stats, metrics, strict=True):
        output = server.output()
        assert "Traceback" not in output, around_traceback(output)
        lines = [line for line in output.splitlines() if "redis broadcast failover" in line]
        assert lines, output[-3000:]
        assert f":{old_port} -> 127.0.0.1:{new_port}" in lines[0] and "interrupted for" in lines[0]
        print(lines[0])
        assert figures["node"] == f"127.0.0.1:{new_port}"
        assert figures["failovers_total"] == 1 and figures["reconnects_total"] >= 1
        assert figures["durability"] == "replicated"
        assert f'rat_broadcast_primary{{node="127.0.0.1:{new_port}"}} 1' in text
        assert "rat_broadcast_failovers_total 1" in text
        assert "rat_broadcast_publish_failures_total" in text


def test_no_primary_is_a_fast_clear_error_until_the_promotion(tmp_path: Path) -> None:
    import asyncio

    from rat_engine import RatApp
    from rat_engine.broadcast import BroadcastUnavailable

    with sentinel_setup(tmp_path / "redis", replicas=1) as setup:
        app = RatApp(broadcast_url=setup.url())
        old_port = setup.primary_port()

        async def scenario() -> dict[str, Any]:
            broadcast = app.broadcast
            await broadcast.start()
            subscription = broadcast.subscribe("news")
            await subscription.open()
            try:
                first = await broadcast.apublish("news", "before")
                setup.server_on(old_port).stop(sig=signal.SIGKILL)
                killed_at = time.monotonic()
                failures: list[tuple[float, str]] = []
                after: str | None = None
                while time.monotonic() - killed_at < 30 and len(failures) < 2000:
                    began = time.monotonic()
                    try:
                        after = await broadcast.apublish("news", "after")
                        break
                    except BroadcastUnavailable as exc:
                        failures.append((time.monotonic() - began, str(exc)))
                    await asyncio.sleep(0.02)
                recovered = time.monotonic() - killed_at
                assert after is not None, failures[-3:]
                delivered = [m.id async for m in _take(subscription, 2, timeout=15)]
                return {
                    "first": first,
                    "after": after,
                    "failures": failures,
                    "recovered": recovered,
                    "delivered": delivered,
                    "stats": broadcast.stats(),
                }
            finally:
                subscription.close()
                await broadcast.stop()

        result = asyncio.run(scenario())
        new_port = setup.primary_port()

    failures = result["failures"]
    slowest = max(seconds for seconds, _ in failures)
    print(
        f"\n{len(failures)} publishes refused while no primary was there (slowest {slowest * 1000:.1f} ms); "
        f"publishing worked again {result['recovered']:.2f}s after the kill"
    )
    assert failures and slowest < 1.0
    assert all("not published" in text and "s3cret" not in text for _, text in failures)
    assert any("no primary known for 'mymaster'" in text for _, text in failures), failures[-1]
    assert result["delivered"] == [result["first"], result["after"]]
    stats = result["stats"]
    assert stats["node"] == f"127.0.0.1:{new_port}" and stats["failovers_total"] == 1
    assert stats["publish_failures_total"] == len(failures)
    assert stats["topology"] == "sentinel" and stats["durability"] == "none"


async def _take(subscription: Any, count: int, timeout: float) -> Any:
    import asyncio

    iterator = subscription.__aiter__()
    for _ in range(count):
        yield await asyncio.wait_for(iterator.__anext__(), timeout)


def test_a_primary_that_stops_answering_is_left_for_the_promoted_one(tmp_path: Path) -> None:
    """SIGSTOP (by PID): the primary's connections stay open but nothing answers, as in a network
    partition or a frozen machine. The sentinels promote the replica; the process must notice by
    asking them, since its own connection never fails."""
    import asyncio
    import os

    from rat_engine.broadcast import Broadcast

    with sentinel_setup(tmp_path / "redis", replicas=1) as setup:
        old_port = setup.primary_port()
        old = setup.server_on(old_port)

        async def scenario() -> dict[str, Any]:
            broadcast = Broadcast(setup.url())
            await broadcast.start()
            subscription = broadcast.subscribe("news")
            await subscription.open()
            iterator = subscription.__aiter__()
            try:
                first = await broadcast.apublish("news", "before")
                assert (await asyncio.wait_for(iterator.__anext__(), 5)).id == first
                assert old.pid is not None
                os.kill(old.pid, signal.SIGSTOP)
                try:
                    stopped_at = time.monotonic()
                    new_port = await asyncio.to_thread(setup.wait_promoted, old_port)
                    promoted = time.monotonic() - stopped_at
                    while broadcast.stats()["failovers_total"] == 0 and time.monotonic() - stopped_at < 20:
                        await asyncio.sleep(0.05)
                    left_after = time.monotonic() - stopped_at
                    after = await broadcast.apublish("news", "after")
                    delivered = await asyncio.wait_for(iterator.__anext__(), 5)
                finally:
                    os.kill(old.pid, signal.SIGCONT)
                return {
                    "promoted": promoted,
                    "left_after": left_after,
                    "new_port": new_port,
                    "after": after,
                    "delivered": delivered.id,
                    "stats": broadcast.stats(),
                }
            finally:
                subscription.close()
                await broadcast.stop()

        result = asyncio.run(scenario())

    print(
        f"\nprimary stopped answering; promoted after {result['promoted']:.2f}s, "
        f"left by the process after {result['left_after']:.2f}s"
    )
    assert result["delivered"] == result["after"]
    assert result["stats"]["node"] == f"127.0.0.1:{result['new_port']}"
    assert result["stats"]["failovers_total"] == 1
    assert result["left_after"] - result["promoted"] < 3.5  # asked every 2 s
