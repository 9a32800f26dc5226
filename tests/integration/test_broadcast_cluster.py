"""Broadcast on a real Redis Cluster (``redis+cluster://``): three primaries made with
``redis-cli --cluster create`` on loopback ports.

* A channel's stream and live key share a hash slot (``{channel}``); live delivery is sharded
  pub/sub (``SSUBSCRIBE`` on the primary of that slot, nothing on classic pub/sub); two
  rat_engine processes deliver every message once, in order, on channels spread over the
  primaries, and ``Last-Event-ID`` replay works across them.
* With a replica per primary, the primary of a channel's slot is SIGKILLed while messages are
  published: the cluster promotes the replica, the subscriber's process resubscribes there and
  fills the gap; every publish that returned is delivered once, in order.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.broadcast import BROADCAST_APP_MODULE, assert_strictly_increasing, unique
from support.live import around_traceback, live_subprocess
from support.net import wait_until
from support.redis_cluster import ClusterSetup, cluster_setup
from support.sse import HttpSSE

pytestmark = [pytest.mark.timeout(150), pytest.mark.redis]


def _command(port: int, *args: Any) -> Any:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        return client.execute_command(*args)
    finally:
        client.close()


def channels_on_distinct_primaries(cluster: ClusterSetup, count: int) -> list[str]:
    """``count`` channel names whose slots belong to ``count`` different primaries."""
    found: dict[int, str] = {}
    for _ in range(200):
        channel = unique("shard")
        owner = cluster.owner_of(f"rat:stream:{{{channel}}}").port
        found.setdefault(owner, channel)
        if len(found) == count:
            return list(found.values())
    raise AssertionError("could not spread channels over the primaries")


def shard_subscribers(cluster: ClusterSetup, channel: str) -> tuple[int, int]:
    """(sharded, classic) pub/sub subscriptions to ``channel``'s live key on its primary."""
    owner = cluster.owner_of(f"rat:live:{{{channel}}}").port
    key = f"rat:live:{{{channel}}}"
    sharded = _command(owner, "PUBSUB", "SHARDNUMSUB", key)
    classic = _command(owner, "PUBSUB", "NUMSUB", key)
    return int(sharded[1]), int(classic[1])


def test_cluster_shards_channels_and_delivers_across_processes(tmp_path: Path) -> None:
    app_path = tmp_path / "bcast_app.py"
    app_path.write_text(BROADCAST_APP_MODULE, encoding="utf-8")
    with cluster_setup(tmp_path / "cluster") as cluster:
        channels = channels_on_distinct_primaries(cluster, 3)
        env = {"RAT_BROADCAST_URL": cluster.url()}
        with (
            live_subprocess(app_path, env=env, grace=5) as a,
            live_subprocess(app_path, env=env, grace=5) as b,
            httpx.Client(timeout=10) as http,
        ):
            streams = {
                (server.port, channel): HttpSSE(f"{server.url}/subscribe/{channel}")
                for server in (a, b)
                for channel in channels
            }
            try:
                for channel in channels:
                    wait_until(
                        lambda c=channel: shard_subscribers(cluster, c) == (2, 0),
                        what=f"both processes on {channel}'s shard (sharded pub/sub only)",
                    )
                sent: dict[str, list[str]] = {c: [] for c in channels}
                for n in range(30):
                    channel = channels[n % 3]
                    via = (a, b)[n % 2]
                    response = http.post(f"{via.url}/publish/{channel}", json={"data": {"n": n}})
                    assert response.status_code == 200, response.text
                    sent[channel].append(response.json()["id"])
                for (_, channel), stream in streams.items():
                    got = [e.id for e in stream.take(10)]
                    assert got == sent[channel]
                    assert_strictly_increasing(got)
                # The stream and the live key live on the same primary (one hash slot).
                for channel in channels:
                    owner = cluster.owner_of(f"rat:live:{{{channel}}}")
                    assert int(_command(owner.port, "XLEN", f"rat:stream:{{{channel}}}")) == 10
                # Replay: a client that saw the first three reconnects to the other process.
                with HttpSSE(f"{b.url}/subscribe/{channels[0]}", last_event_id=sent[channels[0]][2]) as back:
                    replayed = back.take(7)
                assert [e.id for e in replayed] == sent[channels[0]][3:]
                assert "resync" not in {e.event for e in replayed}
            finally:
                for stream in streams.values():
                    stream.close()
        for server in (a, b):
            assert "Traceback" not in server.output(), around_traceback(server.output())


def test_cluster_failover_of_a_channels_primary(tmp_path: Path) -> None:
    from rat_engine.broadcast import Broadcast, BroadcastUnavailable

    with cluster_setup(tmp_path / "cluster", replicas=1) as cluster:
        channel = unique("shard")
        owner = cluster.owner_of(f"rat:stream:{{{channel}}}")

        async def scenario() -> dict[str, Any]:
            publisher, subscriber = Broadcast(cluster.url()), Broadcast(cluster.url())
            await publisher.start()
            await subscriber.start()
            subscription = subscriber.subscribe(channel)
            await subscription.open()
            received: list[tuple[float, str]] = []

            async def consume() -> None:
                async for message in subscription:
                    received.append((time.monotonic(), message.id))

            reader = asyncio.get_running_loop().create_task(consume())
            acked: list[str] = []
            failures = 0
            killed_at = 0.0
            try:
                wait = time.monotonic() + 10
                while shard_subscribers(cluster, channel) != (1, 0) and time.monotonic() < wait:
                    await asyncio.sleep(0.05)
                began = time.monotonic()
                while time.monotonic() - began < 40 and len(acked) < 5000:
                    try:
                        acked.append(await publisher.apublish(channel, len(acked)))
                    except BroadcastUnavailable:
                        failures += 1
                    if len(acked) == 100 and not killed_at:
                        owner.stop(sig=signal.SIGKILL)
                        killed_at = time.monotonic()
                    if killed_at and len(acked) >= 200:
                        break
                    await asyncio.sleep(0.005)
                deadline = time.monotonic() + 15
                while (not received or received[-1][1] != acked[-1]) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                return {
                    "acked": acked,
                    "failures": failures,
                    "received": received,
                    "killed_at": killed_at,
                    "stats": subscriber.stats(),
                }
            finally:
                reader.cancel()
                subscription.close()
                await publisher.stop()
                await subscriber.stop()

        result = asyncio.run(scenario())
        new_owner = cluster.owner_of(f"rat:stream:{{{channel}}}")

    acked, received = result["acked"], [i for _, i in result["received"]]
    assert result["killed_at"] and len(acked) >= 200, (len(acked), result["failures"])
    assert_strictly_increasing(received)  # once each, in order
    # Every publish that returned is there (one that failed may have been delivered all the
    # same: its primary ran it and died before the reply left).
    assert [i for i in received if i in set(acked)] == acked
    times = [result["killed_at"]] + [t for t, _ in result["received"] if t >= result["killed_at"]]
    silence = max(b - a for a, b in zip(times, times[1:], strict=False))
    stats = result["stats"]
    print(
        f"\nprimary :{owner.port} of {channel}'s slot SIGKILLed, :{new_owner.port} promoted; "
        f"{len(acked)} publishes returned, {result['failures']} failed, none lost; "
        f"longest silence at the subscriber {silence:.2f}s; reader's interruption "
        f"{stats['last_interruption_seconds']:.2f}s"
    )
    assert new_owner is not owner
    assert stats["failovers_total"] == 1 and f"127.0.0.1:{new_owner.port}" in stats["node"]
    assert f"127.0.0.1:{owner.port}" not in stats["node"]


def test_a_cluster_primary_that_stops_answering_is_left(tmp_path: Path) -> None:
    """SIGSTOP (by PID) the primary of a channel's slot: its connections stay open and silent.
    The cluster promotes its replica; a process that only subscribes must notice it from the
    slot map, since its own connection never fails."""
    import os

    from rat_engine.broadcast import Broadcast

    with cluster_setup(tmp_path / "cluster", replicas=1) as cluster:
        channel = unique("frozen")
        owner = cluster.owner_of(f"rat:stream:{{{channel}}}")

        async def scenario() -> dict[str, Any]:
            subscriber = Broadcast(cluster.url())
            await subscriber.start()
            subscription = subscriber.subscribe(channel)
            await subscription.open()
            iterator = subscription.__aiter__()
            try:
                while shard_subscribers(cluster, channel) != (1, 0):
                    await asyncio.sleep(0.05)
                assert owner.pid is not None
                os.kill(owner.pid, signal.SIGSTOP)
                try:
                    stopped_at = time.monotonic()
                    new_owner = await asyncio.to_thread(
                        cluster.wait_owner_changes, f"rat:stream:{{{channel}}}", owner
                    )
                    promoted = time.monotonic() - stopped_at
                    while subscriber.stats()["failovers_total"] == 0 and time.monotonic() - stopped_at < 25:
                        await asyncio.sleep(0.05)
                    left_after = time.monotonic() - stopped_at
                    # Published by another process, straight to the new primary.
                    publisher = Broadcast(cluster.url())
                    await publisher.start()
                    try:
                        after = await publisher.apublish(channel, "after")
                    finally:
                        await publisher.stop()
                    delivered = await asyncio.wait_for(iterator.__anext__(), 10)
                finally:
                    os.kill(owner.pid, signal.SIGCONT)
                return {
                    "promoted": promoted,
                    "left_after": left_after,
                    "new_owner": new_owner.port,
                    "after": after,
                    "delivered": delivered.id,
                    "stats": subscriber.stats(),
                }
            finally:
                subscription.close()
                await subscriber.stop()

        result = asyncio.run(scenario())

    print(
        f"\ncluster primary stopped answering; replica promoted after {result['promoted']:.2f}s, "
        f"left by the subscribing process after {result['left_after']:.2f}s"
    )
    assert result["delivered"] == result["after"]
    assert result["stats"]["failovers_total"] == 1
    assert f"127.0.0.1:{result['new_owner']}" in result["stats"]["node"]
    assert result["left_after"] - result["promoted"] < 3.5  # the slot map is read every 2 s
