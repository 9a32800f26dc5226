"""``Subscription`` driven directly on an event loop with the memory backend (no sockets):
slow-subscriber policies, replay, de-duplication, closing, and the three ways to consume it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from rat_engine import RatApp
from rat_engine.broadcast import POLICIES, Broadcast, Message, Subscription
from rat_engine.sse.event import SSEEvent
from rat_engine.testing import ServerSentEvent, parse_sse

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")


def run(test: Callable[[Broadcast], Awaitable[T]], **options: Any) -> T:
    """Run ``test(broadcast)`` on a fresh loop with a started memory broadcast (bounded: 10 s)."""

    async def main() -> T:
        broadcast = Broadcast("memory://", **options)
        await broadcast.start()
        try:
            return await asyncio.wait_for(test(broadcast), 10)
        finally:
            await broadcast.stop()

    return asyncio.run(main())


def taken(subscription: Subscription) -> list[ServerSentEvent]:
    """What the stream writer would send now (the fast path's ``take()``), parsed."""
    return parse_sse(b"".join(subscription.take()).decode("utf-8"))


async def publish_many(broadcast: Broadcast, channel: str, count: int, **fields: Any) -> list[str]:
    return [await broadcast.apublish(channel, {"n": n, **fields}) for n in range(count)]


# -- drop_oldest ---------------------------------------------------------------------------------


def test_drop_oldest_keeps_the_newest_and_counts_the_dropped() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c", max_backlog=3, policy="drop_oldest")
        await subscription.open()
        ids = await publish_many(broadcast, "c", 10)
        assert not subscription.finished
        events = taken(subscription)
        assert [e.id for e in events] == ids[-3:]
        assert [e.json()["n"] for e in events] == [7, 8, 9]
        assert subscription.dropped == 7
        assert broadcast.dropped == 7
        assert broadcast.stats()["dropped_total"] == 7
        assert broadcast.stats()["delivered_total"] == 10
        # The backlog is empty now; it fills again from the next message.
        later = await broadcast.apublish("c", {"n": 10})
        assert [e.id for e in taken(subscription)] == [later]
        assert subscription.dropped == 7

    run(test)


def test_drop_oldest_is_the_default_and_counts_per_subscription() -> None:
    async def test(broadcast: Broadcast) -> None:
        slow = broadcast.subscribe("c")
        fast = broadcast.subscribe("c", max_backlog=100)
        assert (slow.policy, slow.max_backlog) == ("drop_oldest", 4)
        await slow.open()
        await fast.open()
        await publish_many(broadcast, "c", 10)
        assert (slow.dropped, fast.dropped, broadcast.dropped) == (6, 0, 6)
        assert len(taken(fast)) == 10 and len(taken(slow)) == 4

    run(test, max_backlog=4)


def test_the_backlog_never_exceeds_max_backlog() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c", max_backlog=5)
        await subscription.open()
        biggest = 0
        for n in range(200):
            await broadcast.apublish("c", {"n": n})
            biggest = max(biggest, len(subscription._items))
        assert biggest == 5
        assert subscription.dropped == 195

    run(test)


# -- disconnect -----------------------------------------------------------------------------------


def test_a_catch_up_burst_is_bounded_by_the_history_not_the_backlog() -> None:
    """After a reconnect (a failover) a backend fills the gap from its history in one burst: no
    subscriber may lose those messages to its backlog bound."""

    async def test(broadcast: Broadcast) -> None:
        subscriptions = {p: broadcast.subscribe("c", max_backlog=3, policy=p) for p in POLICIES}
        for subscription in subscriptions.values():
            await subscription.open()
        messages = [Message("c", str(n), None, {"n": n}, (n,)) for n in range(1, 11)]
        for message in messages:
            broadcast._deliver(message, catch_up=True)
        for policy, subscription in subscriptions.items():
            assert [e.id for e in taken(subscription)] == [m.id for m in messages], policy
            assert subscription.dropped == 0 and not subscription.finished

    run(test)


def test_disconnect_ends_the_subscription_when_the_backlog_overflows() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c", max_backlog=3, policy="disconnect")
        await subscription.open()
        await publish_many(broadcast, "c", 3)
        assert not subscription.finished, "a full backlog is not an overflow yet"
        await broadcast.apublish("c", {"n": 3})
        assert subscription.finished
        assert subscription.dropped >= 1 and broadcast.dropped == subscription.dropped
        # The stream writer would stop waiting: arm() refuses to wait on a finished stream.
        assert subscription.arm(asyncio.get_running_loop().create_future()) is False

    run(test)


def test_disconnect_ends_async_iteration() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c", max_backlog=2, policy="disconnect")
        await subscription.open()
        got: list[Any] = []

        async def consume() -> None:
            async for item in subscription:
                got.append(item)
                await asyncio.sleep(1)  # a consumer much slower than the publisher

        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0)
        for n in range(6):
            await broadcast.apublish("c", {"n": n})
        assert subscription.finished
        await asyncio.wait_for(consumer, 5)  # the iteration ends by itself
        assert broadcast.stats()["subscribers"] == 0, "ending the iteration unsubscribes"

    run(test)


def test_disconnect_never_hands_out_messages_from_after_the_gap() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c", max_backlog=3, policy="disconnect")
        await subscription.open()
        ids = await publish_many(broadcast, "c", 6)
        assert subscription.finished
        sent = [e.id for e in taken(subscription)]
        # Whatever is still sent must be a prefix of what was published (then the client's
        # Last-Event-ID lets replay fill in the rest); never messages after a hole.
        assert sent == ids[: len(sent)], f"published {ids}, would send {sent}"

    run(test)


# -- coalesce -------------------------------------------------------------------------------------


def test_coalesce_keeps_the_latest_per_event_type_in_order() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c", max_backlog=10, policy="coalesce")
        await subscription.open()
        sequence = ["progress", "progress", "status", "progress", "log", "status", "progress"]
        ids = [await broadcast.apublish("c", {"i": i}, event=ev) for i, ev in enumerate(sequence)]
        events = taken(subscription)
        latest = {ev: (ids[i], i) for i, ev in enumerate(sequence)}
        expected = sorted(latest.items(), key=lambda item: item[1][1])
        assert [(e.event, e.id, e.json()["i"]) for e in events] == [
            (ev, message_id, i) for ev, (message_id, i) in expected
        ]
        assert [e.event for e in events] == ["log", "status", "progress"]
        assert subscription.dropped == len(sequence) - 3 == broadcast.dropped

    run(test)


def test_coalesce_with_a_key_function() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe(
            "jobs", max_backlog=10, policy="coalesce", coalesce_key=lambda m: m.data["job"]
        )
        await subscription.open()
        updates = [("a", 10), ("b", 10), ("a", 20), ("c", 5), ("b", 50), ("a", 30)]
        for job, pct in updates:
            await broadcast.apublish("jobs", {"job": job, "pct": pct}, event="progress")
        events = taken(subscription)
        assert [e.json() for e in events] == [
            {"job": "c", "pct": 5},
            {"job": "b", "pct": 50},
            {"job": "a", "pct": 30},
        ]
        ids = [e.id for e in events]
        assert ids == sorted(ids, key=int), "the remaining messages keep their order"
        assert subscription.dropped == 3

    run(test)


def test_coalesce_still_bounds_distinct_keys_by_max_backlog() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c", max_backlog=3, policy="coalesce")
        await subscription.open()
        for event in "abcde":
            await broadcast.apublish("c", event, event=event)
        assert [e.event for e in taken(subscription)] == ["c", "d", "e"]
        assert subscription.dropped == 2

    run(test)


def test_coalesce_is_the_app_default_when_configured() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c")
        assert subscription.policy == "coalesce"
        await subscription.open()
        for pct in range(0, 101, 10):
            await broadcast.apublish("c", {"pct": pct}, event="progress")
        assert [e.json() for e in taken(subscription)] == [{"pct": 100}]

    run(test, policy="coalesce")


# -- invalid policy -------------------------------------------------------------------------------


def test_an_invalid_policy_is_a_value_error() -> None:
    assert set(POLICIES) == {"drop_oldest", "disconnect", "coalesce"}
    with pytest.raises(ValueError, match="bogus"):
        Broadcast("memory://", policy="bogus")

    async def test(broadcast: Broadcast) -> None:
        with pytest.raises(ValueError, match="bogus"):
            broadcast.subscribe("c", policy="bogus")
        with pytest.raises(ValueError, match="bogus"):
            Subscription(broadcast, "c", policy="bogus")
        assert broadcast.stats()["subscribers"] == 0

    run(test)


def test_an_invalid_app_policy_fails_before_serving() -> None:
    with pytest.raises(ValueError, match="bogus"):
        app = RatApp(name="bad-policy", broadcast_policy="bogus")
        app.broadcast  # noqa: B018 - constructing the broadcast validates it


def test_an_unknown_backend_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown broadcast backend"):
        Broadcast("carrier-pigeon://coop")


# -- replay, ordering, de-duplication ------------------------------------------------------------


def test_replay_then_live_without_duplicates() -> None:
    async def test(broadcast: Broadcast) -> None:
        ids = await publish_many(broadcast, "c", 5)
        subscription = broadcast.subscribe("c", ids[1])
        await subscription.open()
        live = await broadcast.apublish("c", {"n": "live"})
        events = taken(subscription)
        assert [e.id for e in events] == [*ids[2:], live]
        # The same message arriving twice (replay and live overlap) is sent once.
        duplicate = Message("c", ids[4], None, {"n": 4}, (int(ids[4]),))
        subscription.deliver(duplicate)
        assert taken(subscription) == []

    run(test)


def test_replay_of_a_gap_starts_with_resync() -> None:
    async def test(broadcast: Broadcast) -> None:
        ids = await publish_many(broadcast, "c", 10)
        subscription = broadcast.subscribe("c", ids[0])
        await subscription.open()
        events = taken(subscription)
        assert events[0].event == "resync"
        assert events[0].json() == {"channel": "c", "last_event_id": ids[0], "reason": "history_gap"}
        assert [e.id for e in events[1:]] == ids[-3:]

    run(test, history=3)


def test_history_ttl_expires_replay() -> None:
    async def test(broadcast: Broadcast) -> None:
        ids = await publish_many(broadcast, "c", 3)
        await asyncio.sleep(0.15)
        fresh = await broadcast.apublish("c", {"n": "fresh"})
        subscription = broadcast.subscribe("c", ids[0])
        await subscription.open()
        events = taken(subscription)
        assert [e.event for e in events] == ["resync", "message"]
        assert events[1].id == fresh

    run(test, history_ttl=0.1)


def test_last_event_id_zero_replays_everything_without_resync() -> None:
    async def test(broadcast: Broadcast) -> None:
        ids = await publish_many(broadcast, "c", 4)
        subscription = broadcast.subscribe("c", "0")
        await subscription.open()
        assert [(e.event, e.id) for e in taken(subscription)] == [("message", i) for i in ids]

    run(test)


def test_channel_without_history_and_an_id_is_a_gap() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("never-published", "7")
        await subscription.open()
        assert [e.event for e in taken(subscription)] == ["resync"]

    run(test)


# -- closing and consumption styles ---------------------------------------------------------------


def test_close_unsubscribes_and_stops_deliveries() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c")
        await subscription.open()
        await subscription.open()  # idempotent: still one subscriber
        assert broadcast.stats()["subscribers"] == 1
        await broadcast.apublish("c", 1)
        subscription.close()
        subscription.close()  # idempotent
        assert subscription.closed and subscription.finished
        assert broadcast.stats() | {"published_total": 0, "delivered_total": 0} == {
            "backend": "memory",
            "channels": 0,
            "subscribers": 0,
            "published_total": 0,
            "delivered_total": 0,
            "dropped_total": 0,
            "publish_failures_total": 0,
        }
        await broadcast.apublish("c", 2)
        assert subscription.take() == []

    run(test)


def test_close_wakes_a_waiting_async_consumer() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c")
        got: list[Any] = []

        async def consume() -> None:
            async for item in subscription:
                got.append(item)

        consumer = asyncio.ensure_future(consume())
        while broadcast.stats()["subscribers"] == 0:
            await asyncio.sleep(0.005)
        await broadcast.apublish("c", {"x": 1}, event="e")
        await asyncio.sleep(0.01)
        subscription.close()
        await asyncio.wait_for(consumer, 2)
        assert [(m.event, m.data) for m in got] == [("e", {"x": 1})]
        assert isinstance(got[0], Message) and got[0].channel == "c"

    run(test)


def test_fast_path_waiter_is_woken_by_a_message() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c")
        await subscription.open()
        waiter = asyncio.get_running_loop().create_future()
        assert subscription.arm(waiter) is True
        await broadcast.apublish("c", "hi")
        await asyncio.wait_for(waiter, 1)
        # A str is sent as SSE text (as @app.sse does), other data as JSON.
        assert [e.data for e in taken(subscription)] == ["hi"]

    run(test)


def test_resync_is_an_sse_event_not_a_message() -> None:
    async def test(broadcast: Broadcast) -> None:
        subscription = broadcast.subscribe("c", "garbage")
        items: list[Any] = []

        async def consume() -> None:
            async for item in subscription:
                items.append(item)
                return

        await asyncio.wait_for(consume(), 2)
        assert isinstance(items[0], SSEEvent) and items[0].event == "resync"

    run(test)


def test_sync_iteration_from_a_worker_thread() -> None:
    """``yield from subscription`` on a stream thread: idle ``None`` ticks, then messages; closing
    the generator unsubscribes (on the loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
    thread.start()
    broadcast = Broadcast("memory://")
    try:
        asyncio.run_coroutine_threadsafe(broadcast.start(), loop).result(5)
        iterator = iter(broadcast.subscribe("c"))
        started = time.monotonic()
        assert next(iterator) is None, "idle: a None tick, so the stream can notice a gone client"
        assert 0.5 < time.monotonic() - started < 3
        assert broadcast.stats()["subscribers"] == 1
        message_id = broadcast.publish("c", {"from": "thread"}, event="t")
        item = next(iterator)
        while item is None:
            item = next(iterator)
        assert isinstance(item, Message)
        assert (item.id, item.event, item.data) == (message_id, "t", {"from": "thread"})
        iterator.close()  # what the stream does when its client leaves
        deadline = time.monotonic() + 2
        while broadcast.stats()["subscribers"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert broadcast.stats()["subscribers"] == 0
    finally:
        asyncio.run_coroutine_threadsafe(broadcast.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_ids_are_per_channel_and_strictly_increasing() -> None:
    async def test(broadcast: Broadcast) -> None:
        a = [await broadcast.apublish("a", n) for n in range(3)]
        b = [await broadcast.apublish("b", n) for n in range(2)]
        a.append(await broadcast.apublish("a", 3))
        assert a == ["1", "2", "3", "4"] and b == ["1", "2"]
        assert broadcast.sort_key("10") > broadcast.sort_key("9")
        assert broadcast.sort_key("garbage") is None

    run(test)
