"""``durability=replicated`` on a real primary and replica: ``publish`` returns only once the
replica has the message; a replica that does not answer makes publishing fail with
``BroadcastNotReplicated`` after ``replica_timeout`` instead of acknowledging a message that a
failover could lose. Without the setting, the same publish returns at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.net import wait_until

from rat_engine.broadcast import Broadcast, BroadcastNotReplicated, BroadcastUnavailable

pytestmark = [pytest.mark.timeout(60), pytest.mark.redis]


def _command(port: int, *args: Any) -> Any:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        return client.execute_command(*args)
    finally:
        client.close()


@pytest.fixture
def primary_and_replica(redis_server_factory: Any) -> tuple[Any, Any]:
    primary = redis_server_factory()
    replica = redis_server_factory("--replicaof", "127.0.0.1", str(primary.port))
    wait_until(
        lambda: _command(replica.port, "ROLE")[3] in (b"connected", "connected"),
        timeout=15,
        what="the replica in sync",
    )
    return primary, replica


@contextlib.contextmanager
def stalled(server: Any) -> Iterator[None]:
    """SIGSTOP the server (by PID) for the block: it neither reads nor answers."""
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


def test_replicated_publish_returns_once_the_replica_has_it(primary_and_replica: tuple[Any, Any]) -> None:
    primary, replica = primary_and_replica

    async def scenario() -> dict[str, Any]:
        durable = Broadcast(primary.url + "?durability=replicated&replica_timeout=0.3")
        plain = Broadcast(primary.url)
        await durable.start()
        await plain.start()
        subscription = durable.subscribe("jobs")
        await subscription.open()
        try:
            on_replica_at_return = []
            for n in range(30):
                message_id = await durable.apublish("jobs", n)
                entry = _command(replica.port, "XRANGE", "rat:stream:jobs", message_id, message_id)
                on_replica_at_return.append(bool(entry))
            with stalled(replica):
                began = time.monotonic()
                with pytest.raises(BroadcastNotReplicated) as refused:
                    await durable.apublish("jobs", "while the replica stalls")
                refused_after = time.monotonic() - began
                began = time.monotonic()
                plain_id = await plain.apublish("jobs", "acknowledged, not yet replicated")
                plain_after = time.monotonic() - began
            again = await durable.apublish("jobs", "the replica is back")
            return {
                "on_replica": on_replica_at_return,
                "refused": str(refused.value),
                "refused_after": refused_after,
                "plain_after": plain_after,
                "plain_id": plain_id,
                "again": again,
                "stats": durable.stats(),
            }
        finally:
            subscription.close()
            await durable.stop()
            await plain.stop()

    result = asyncio.run(scenario())
    print(
        f"\nreplica stalled: durability=replicated refused after {result['refused_after'] * 1000:.0f} ms; "
        f"without it the publish returned in {result['plain_after'] * 1000:.1f} ms"
    )
    assert all(result["on_replica"]), "a durable publish returned before the replica had it"
    assert 0.25 < result["refused_after"] < 2.0
    assert "no replica confirmed it within 0.3s" in result["refused"]
    assert result["plain_after"] < 0.25
    assert result["again"] > result["plain_id"]
    assert result["stats"]["durability"] == "replicated"
    assert result["stats"]["publish_failures_total"] == 1
    assert issubclass(BroadcastNotReplicated, BroadcastUnavailable)  # a 503 at the HTTP edge


def test_replicated_without_a_replica_fails_every_publish(redis_server: Any) -> None:
    redis_server.flushall()

    async def scenario() -> str:
        broadcast = Broadcast(redis_server.url, durability="replicated")
        await broadcast.start()
        try:
            with pytest.raises(BroadcastNotReplicated) as refused:
                await broadcast.apublish("lonely", 1)
            return str(refused.value)
        finally:
            await broadcast.stop()

    assert "no replica confirmed" in asyncio.run(scenario())
