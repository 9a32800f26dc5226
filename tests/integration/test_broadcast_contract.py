"""The broadcast contract, against the real server (and the TestClient), for every backend.

Every test here runs twice: with ``memory://`` and with a real ``redis-server`` (the session
``redis_server`` fixture, flushed between tests). Streams are read with httpx (or, for many or
deliberately slow clients, with the small raw-socket client below); every read is bounded.

The clients (``HttpSSE``, ``RawSSE``) and helpers (``wait_until``, ``id_key``, ...) come from
``tests/support``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from support.broadcast import assert_strictly_increasing, data_of, redis_numsub, unique
from support.live import run_live
from support.net import wait_until
from support.sse import HttpSSE, RawSSE

from rat_engine import RatApp
from rat_engine.testing import ServerSentEvent, TestClient

pytestmark = pytest.mark.timeout(60)

TEXT = "héllo — 你好 🐀"  # must reach the wire as UTF-8, not as \u escapes
STYLES = ("fast", "sync", "async")


# -- the app under test ------------------------------------------------------------------------


def build_app(url: str, **options: Any) -> RatApp:
    """Three subscription styles, three ways to publish, and a plain route."""
    options.setdefault("sse_ping_interval", 0)
    options.setdefault("shutdown_grace", 1.0)
    app = RatApp(name="broadcast-contract", broadcast_url=url, **options)
    finished: dict[str, threading.Event] = {}
    app.config["finished"] = finished
    app.config["subscriptions"] = []

    def done(name: str) -> threading.Event:
        return finished.setdefault(name, threading.Event())

    @app.sse("/fast/<channel>")
    def fast(request_data, channel):
        subscription = app.broadcast.subscribe(channel, request_data["last_event_id"])
        app.config["subscriptions"].append(subscription)
        return subscription

    @app.sse("/sync/<channel>")
    def sync(request_data, channel):
        try:
            yield from app.broadcast.subscribe(channel, request_data["last_event_id"])
        finally:
            done(f"sync:{channel}").set()

    @app.sse("/async/<channel>")
    async def async_(request_data, channel):
        try:
            async for message in app.broadcast.subscribe(channel, request_data["last_event_id"]):
                yield message
        finally:
            done(f"async:{channel}").set()

    @app.json("/pub-sync/<channel>", methods=["POST"])
    def pub_sync(request_data, channel):
        body = request_data.json()
        return {"id": app.broadcast.publish(channel, body["data"], event=body.get("event"))}

    @app.json("/pub-async/<channel>", methods=["POST"])
    async def pub_async(request_data, channel):
        body = request_data.json()
        return {"id": await app.broadcast.apublish(channel, body["data"], event=body.get("event"))}

    @app.json("/pub-inline/<channel>", methods=["POST"], inline=True)
    def pub_inline(request_data, channel):
        body = request_data.json()
        return {"id": app.broadcast.publish(channel, body["data"], event=body.get("event"))}

    @app.route("/health")
    def health(request_data):
        return "ok"

    return app


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    server = request.getfixturevalue("redis_server")
    server.flushall()
    return str(server.url)


def subscribers(app: RatApp) -> int:
    return int(app.broadcast.stats()["subscribers"])


def wait_subscribed(app: RatApp, count: int, *channels: str, timeout: float = 10.0) -> None:
    """Until the app has ``count`` local subscribers and, with Redis, Redis itself has the
    process subscribed to every channel (only then can a PUBLISH reach it)."""
    wait_until(lambda: subscribers(app) == count, timeout=timeout, what=f"{count} subscriber(s)")
    if app.broadcast.is_distributed and channels:
        url = app.broadcast_url
        wait_until(
            lambda: min(redis_numsub(url, *channels)) >= 1, timeout=timeout, what="the Redis SUBSCRIBE"
        )


# -- 1. publish -> every subscription style, in order --------------------------------------------


def test_three_styles_receive_in_order_over_the_wire(backend_url: str) -> None:
    app = build_app(backend_url)
    channel = unique()
    with run_live(app) as server:
        streams = {style: HttpSSE(f"{server.url}/{style}/{channel}") for style in STYLES}
        try:
            assert all(s.status_code == 200 for s in streams.values())
            assert streams["fast"].response.headers["content-type"].startswith("text/event-stream")
            wait_subscribed(app, 3, channel)
            sent = []
            for i in range(30):
                event = ("tick", None, "änderung")[i % 3]
                data = {"i": i, "text": TEXT, "nested": [i, {"ok": True}]}
                sent.append((app.broadcast.publish(channel, data, event=event), event, data))
            ids = [message_id for message_id, _, _ in sent]
            assert all(isinstance(i, str) for i in ids)
            assert_strictly_increasing(ids)
            for style, stream in streams.items():
                got = stream.take(30)
                assert [e.id for e in got] == ids, style
                assert [e.event for e in got] == [ev or "message" for _, ev, _ in sent], style
                assert [data_of(e) for e in got] == [d for _, _, d in sent], style
            # The exact frame on the wire, with non-ASCII text as UTF-8 (not \\u escapes).
            raw = bytes(streams["fast"].raw).decode("utf-8")
            first_id, _, first_data = sent[0]
            assert (
                f"event: tick\nid: {first_id}\ndata: "
                + json.dumps(first_data, ensure_ascii=False, separators=(",", ":"))
                + "\n\n"
            ) in raw
            assert TEXT in raw and "\\u" not in raw
            assert raw.count("änderung") == 10
        finally:
            for stream in streams.values():
                stream.close()


@pytest.mark.parametrize("style", STYLES)
def test_three_styles_with_test_client(backend_url: str, style: str) -> None:
    app = build_app(backend_url)
    channel = unique()
    with TestClient(app) as client, client.sse(f"/{style}/{channel}", timeout=10) as stream:
        assert stream.response.status_code == 200
        wait_subscribed(app, 1, channel)
        ids = [app.broadcast.publish(channel, {"n": n, "text": TEXT}, event="n") for n in range(10)]
        got = [stream.next_event(5) for _ in ids]
        assert [e.id for e in got] == ids
        assert [e.event for e in got] == ["n"] * 10
        assert [e.json() for e in got] == [{"n": n, "text": TEXT} for n in range(10)]
        assert_strictly_increasing(ids)


@pytest.mark.redis
def test_redis_message_published_right_after_open_is_delivered(redis_server: Any) -> None:
    import asyncio

    from rat_engine.broadcast import Broadcast

    async def first_subscription_of_a_process() -> bool:
        broadcast = Broadcast(redis_server.url)
        await broadcast.start()
        try:
            channel = unique()
            await broadcast.apublish(unique("warm-up"), 0)  # the publishing connection is open
            subscription = broadcast.subscribe(channel)
            await subscription.open()
            await broadcast.apublish(channel, {"right": "after open"})
            for _ in range(50):  # up to 1 s
                if subscription.take():
                    return True
                await asyncio.sleep(0.02)
            return False
        finally:
            await broadcast.stop()

    async def main() -> list[bool]:
        return [await first_subscription_of_a_process() for _ in range(3)]

    results = asyncio.run(asyncio.wait_for(main(), 20))
    assert all(results), f"lost in {results.count(False)} of {len(results)} fresh processes"


def test_many_subscribers_on_one_channel_each_get_every_message(backend_url: str) -> None:
    app = build_app(backend_url)
    channel = unique()
    with run_live(app) as server:
        streams = [HttpSSE(f"{server.url}/{STYLES[i % 3]}/{channel}") for i in range(24)]
        try:
            wait_subscribed(app, 24, channel)
            ids = [app.broadcast.publish(channel, {"n": n}, event="many") for n in range(50)]
            for index, stream in enumerate(streams):
                got = stream.take(50)
                assert [e.id for e in got] == ids, f"subscriber {index} ({STYLES[index % 3]})"
                assert [data_of(e)["n"] for e in got] == list(range(50))
            stats = app.stats()["broadcast"]
            assert stats["published_total"] == 50
            assert stats["delivered_total"] == 50 * 24
            assert stats["dropped_total"] == 0
            assert stats["channels"] == 1 and stats["subscribers"] == 24
        finally:
            for stream in streams:
                stream.close()


def test_channels_are_isolated(backend_url: str) -> None:
    app = build_app(backend_url)
    base = unique("iso")
    names = [base, base + "x", base + ":sub", "x" + base]  # prefix-alike names must not mix
    with run_live(app) as server:
        streams = {name: HttpSSE(f"{server.url}/fast/{name}") for name in names}
        try:
            wait_subscribed(app, len(names), *names)
            expected: dict[str, list[str]] = {name: [] for name in names}
            for n in range(40):
                name = names[n % len(names)]
                expected[name].append(app.broadcast.publish(name, {"channel": name, "n": n}))
            # A channel nobody listens to: published, delivered to no one.
            app.broadcast.publish(base + "-nobody", {"channel": "nobody"})
            for name in names:  # the sentinel proves nothing else was queued before it
                expected[name].append(app.broadcast.publish(name, {"channel": name, "sentinel": True}))
            for name, stream in streams.items():
                got = stream.until_id(expected[name][-1])
                assert [e.id for e in got] == expected[name], name
                assert {data_of(e)["channel"] for e in got} == {name}
        finally:
            for stream in streams.values():
                stream.close()


def test_a_thousand_channels_with_a_subscriber_each(backend_url: str) -> None:
    app = build_app(backend_url)
    base = unique("k")
    channels = [f"{base}-{i}" for i in range(1000)]
    with run_live(app) as server:
        started = time.monotonic()
        clients: list[RawSSE] = []
        try:
            for channel in channels:
                clients.append(RawSSE(server.port, f"/fast/{channel}"))
            wait_subscribed(app, 1000, *channels, timeout=15)
            subscribed = time.monotonic()
            assert app.broadcast.stats()["channels"] == 1000
            ids = [app.broadcast.publish(channel, {"channel": channel}) for channel in channels]
            published = time.monotonic()
            for channel, client, message_id in zip(channels, clients, ids, strict=True):
                event = client.next_event(10)
                assert (event.id, data_of(event)) == (message_id, {"channel": channel})
            delivered = time.monotonic()
            print(
                f"\n[{backend_url.split(':')[0]}] 1000 channels: subscribed in {subscribed - started:.2f}s, "
                f"published in {published - subscribed:.2f}s, all read in {delivered - published:.2f}s"
            )
            assert delivered - started < 10, "topics must be cheap"
            # Nothing crossed channels: each client got exactly one event.
            ids2 = [app.broadcast.publish(channel, {"second": True}) for channel in channels[:5]]
            for client, message_id in zip(clients[:5], ids2, strict=True):
                assert client.next_event(5).id == message_id
        finally:
            for client in clients:
                client.close()
        wait_until(lambda: subscribers(app) == 0, timeout=10, what="all 1000 subscribers removed")
        assert app.broadcast.stats()["channels"] == 0
        if backend_url.startswith("redis"):
            wait_until(
                lambda: max(redis_numsub(backend_url, *channels)) == 0, what="Redis pub/sub unsubscribed"
            )


# -- 2. replay ---------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_replay_after_last_event_id_gets_exactly_the_missed_messages(backend_url: str, style: str) -> None:
    app = build_app(backend_url)
    channel = unique()
    with run_live(app) as server:
        with HttpSSE(f"{server.url}/{style}/{channel}") as first:
            wait_subscribed(app, 1, channel)
            ids = [app.broadcast.publish(channel, {"n": n}) for n in range(10)]
            seen = first.take(5)
            assert [e.id for e in seen] == ids[:5]
        wait_until(lambda: subscribers(app) == 0, what="the first stream to unsubscribe")
        ids += [app.broadcast.publish(channel, {"n": n}, event="missed") for n in range(10, 20)]
        with HttpSSE(f"{server.url}/{style}/{channel}", last_event_id=seen[-1].id) as again:
            replayed = again.take(15)
            assert [e.id for e in replayed] == ids[5:]
            assert [data_of(e)["n"] for e in replayed] == list(range(5, 20))
            assert [e.event for e in replayed] == ["message"] * 5 + ["missed"] * 10
            # Then live messages, with no duplicate of the replay in between.
            wait_subscribed(app, 1, channel)
            live = app.broadcast.publish(channel, {"n": "live"})
            event = again.next_event(5)
            assert (event.id, data_of(event), event.event) == (live, {"n": "live"}, "message")
        # "0" replays the whole history, without a resync.
        with HttpSSE(f"{server.url}/{style}/{channel}", last_event_id="0") as whole:
            got = whole.take(21)
            assert [e.id for e in got] == [*ids, live]
            assert "resync" not in {e.event for e in got}


@pytest.mark.parametrize("style", STYLES)
def test_replay_while_messages_keep_being_published(backend_url: str, style: str) -> None:
    """Reconnect again and again (with Last-Event-ID) while a thread keeps publishing: replay and
    live delivery overlap at every reconnect; the union of all the streams is every message
    exactly once, in order. (The backlog is made large enough for any replay here: a replay
    bigger than max_backlog is the subject of test_replay_longer_than_max_backlog_is_complete.)"""
    app = build_app(backend_url, broadcast_max_backlog=10_000)
    channel = unique()
    total, per_connection = 600, 25
    published: list[str] = []
    failures: list[BaseException] = []

    def publisher() -> None:
        try:
            for n in range(total):
                published.append(app.broadcast.publish(channel, {"n": n}))
                if n % 3 == 0:
                    time.sleep(0.001)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    thread = threading.Thread(target=publisher, name="test-publisher")
    segments: list[list[ServerSentEvent]] = []
    reconnects_while_publishing = 0
    last: str | None = None
    with run_live(app) as server:
        try:
            while sum(map(len, segments)) < total - 2 * per_connection:
                with HttpSSE(f"{server.url}/{style}/{channel}", last_event_id=last) as stream:
                    if not thread.is_alive() and not segments:
                        wait_subscribed(app, 1, channel)
                        thread.start()
                    segments.append(stream.take(per_connection))
                last = segments[-1][-1].id
                reconnects_while_publishing += thread.is_alive()
        finally:
            thread.join(30)
        assert not thread.is_alive() and not failures, failures
        with HttpSSE(f"{server.url}/{style}/{channel}", last_event_id=last) as stream:
            segments.append(stream.until_id(published[-1], timeout=20))
    print(
        f"\n[{backend_url.split(':')[0]}-{style}] {len(segments) - 1} reconnects, "
        f"{reconnects_while_publishing} of them while publishing"
    )
    assert reconnects_while_publishing >= 3, "the publisher finished too early: the test proved little"
    received = [e for segment in segments for e in segment]
    assert "resync" not in {e.event for e in received}
    union = [e.id for e in received]
    assert len(union) == len(set(union)), "duplicates across reconnects"
    assert union == published, "every message exactly once, in publish order"
    assert [data_of(e)["n"] for e in received] == list(range(total))


@pytest.mark.parametrize("style", ["fast", "sync"])
def test_replay_longer_than_max_backlog_is_complete(backend_url: str, style: str) -> None:
    app = build_app(backend_url, broadcast_max_backlog=256, broadcast_history=1000)
    channel = unique()
    with run_live(app) as server:
        ids = [app.broadcast.publish(channel, {"n": n}) for n in range(300)]
        with HttpSSE(f"{server.url}/{style}/{channel}", last_event_id=ids[0], read_timeout=2) as stream:
            first = stream.next_event(5)
            assert first.event != "resync", "the whole replay is in history: no gap"
            got = [first, *stream.until_id(ids[-1], timeout=10)]
        assert [e.id for e in got] == ids[1:], (
            f"{299 - len(got)} of 299 missed messages were dropped from the replay; "
            f"dropped_total={app.broadcast.stats()['dropped_total']}"
        )


@pytest.mark.parametrize(
    "backend_url",
    ["memory", pytest.param("redis", marks=pytest.mark.redis)],
    indirect=True,
)
def test_history_gap_sends_resync_first(backend_url: str) -> None:
    app = build_app(backend_url, broadcast_history=5)
    channel = unique()
    with run_live(app) as server:
        ids = [app.broadcast.publish(channel, {"n": n}) for n in range(20)]
        with HttpSSE(f"{server.url}/fast/{channel}", last_event_id=ids[0]) as stream:
            resync = stream.next_event(5)
            assert resync.event == "resync"
            assert data_of(resync) == {"channel": channel, "last_event_id": ids[0], "reason": "history_gap"}
            kept = stream.take(5)
            assert [e.id for e in kept] == ids[-5:], "then the history that is still kept, in order"
            live = app.broadcast.publish(channel, {"n": "live"})
            assert stream.next_event(5).id == live


@pytest.mark.redis
def test_redis_really_trimmed_history_sends_resync(redis_server: Any) -> None:
    redis_server.flushall()
    app = build_app(redis_server.url, broadcast_history=5)
    channel = unique()
    with run_live(app) as server:
        ids = [app.broadcast.publish(channel, {"n": n}) for n in range(300)]
        import redis

        client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
        try:
            kept = client.xlen(f"rat:stream:{channel}")
        finally:
            client.close()
        assert kept < 300, "precondition: Redis did trim the stream"
        with HttpSSE(f"{server.url}/fast/{channel}", last_event_id=ids[0]) as stream:
            first = stream.next_event(5)
            assert first.event == "resync", f"{300 - kept - 1} messages lost silently; first event: {first}"
            rest = stream.take(kept)
            assert [e.id for e in rest] == ids[-kept:]


def _far_future_id(backend_url: str) -> str:
    return "99999999" if backend_url.startswith("memory") else "99999999999999-0"


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "negative",
        "far-future",
        "not-a-redis-id",
    ],
)
def test_unknown_last_event_id_sends_resync(backend_url: str, kind: str) -> None:
    app = build_app(backend_url)
    channel = unique()
    last_id = {
        "garbage": "garbage",
        "negative": "-3",
        "far-future": _far_future_id(backend_url),
        "not-a-redis-id": "12-x",
    }[kind]
    with run_live(app) as server:
        ids = [app.broadcast.publish(channel, {"n": n}) for n in range(3)]
        with HttpSSE(f"{server.url}/fast/{channel}", last_event_id=last_id, read_timeout=2) as stream:
            first = stream.next_event(5)
            assert first.event == "resync"
            assert data_of(first) == {"channel": channel, "last_event_id": last_id, "reason": "history_gap"}
            assert first.id is None, "a resync event carries no id (the client keeps its old one)"
            live = app.broadcast.publish(channel, {"n": "live"})
            rest = stream.until_id(live, timeout=2)
            assert [e.id for e in rest][-1] == live
            assert set(e.id for e in rest) <= set(ids) | {live}
            assert_strictly_increasing([e.id for e in rest])


def test_memory_backend_restart_resyncs_then_delivers_live_messages() -> None:
    """The documented case: an id from before a memory:// restart -> resync, then live messages."""
    channel = unique()
    old_app = build_app("memory://")
    with run_live(old_app) as server, HttpSSE(f"{server.url}/fast/{channel}") as stream:
        wait_subscribed(old_app, 1, channel)
        for n in range(10):
            old_app.broadcast.publish(channel, {"n": n})
        last_seen = stream.take(10)[-1].id
    assert last_seen == "10"
    new_app = build_app("memory://")  # a restarted process: ids start at 1 again
    with (
        run_live(new_app) as server,
        HttpSSE(f"{server.url}/fast/{channel}", last_event_id=last_seen, read_timeout=2) as again,
    ):
        assert again.next_event(5).event == "resync"
        wait_subscribed(new_app, 1, channel)
        live = new_app.broadcast.publish(channel, {"n": "after restart"})
        event = again.next_event(3)
        assert (event.id, data_of(event)) == (live, {"n": "after restart"})


# -- 3. unsubscribe on disconnect --------------------------------------------------------------


def test_subscribers_are_removed_when_clients_leave(backend_url: str) -> None:
    app = build_app(backend_url)
    channel = unique()
    with run_live(app) as server:
        streams = [HttpSSE(f"{server.url}/{style}/{channel}") for style in STYLES]
        try:
            wait_subscribed(app, 3, channel)
            assert any(t.name.startswith("rat-stream-") for t in threading.enumerate())
            message_id = app.broadcast.publish(channel, {"hello": 1})
            for stream in streams:
                assert stream.next_event(5).id == message_id
            if backend_url.startswith("redis"):
                assert redis_numsub(backend_url, channel) == [1], "one pub/sub subscription per process"
        finally:
            left = time.monotonic()
            for stream in streams:
                stream.close()
        wait_until(lambda: subscribers(app) == 0, timeout=3, what="subscribers removed")
        sync_done = app.config["finished"].setdefault(f"sync:{channel}", threading.Event())
        assert sync_done.wait(3), "the sync generator was not closed after its client left"
        assert app.config["finished"][f"async:{channel}"].wait(3)
        wait_until(
            lambda: not any(t.name.startswith("rat-stream-") for t in threading.enumerate()),
            timeout=3,
            what="the sync stream's thread to end",
        )
        elapsed = time.monotonic() - left
        print(
            f"\n[{backend_url.split(':')[0]}] sync stream thread ended {elapsed:.2f}s after the client left"
        )
        assert elapsed < 2.5
        assert app.broadcast.stats()["channels"] == 0
        if backend_url.startswith("redis"):
            wait_until(lambda: redis_numsub(backend_url, channel) == [0], what="the Redis unsubscribe")
        # Publishing to a channel without subscribers is fine and delivers to no one.
        before = app.broadcast.stats()["delivered_total"]
        app.broadcast.publish(channel, {"nobody": True})
        time.sleep(0.1)
        assert app.broadcast.stats()["delivered_total"] == before


# -- 4. where publishing works ---------------------------------------------------------------


def test_publish_from_thread_async_handler_sync_handler_and_inline_handler(backend_url: str) -> None:
    app = build_app(backend_url)
    channel = unique()
    with (
        run_live(app) as server,
        HttpSSE(f"{server.url}/fast/{channel}") as stream,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        wait_subscribed(app, 1, channel)
        result: dict[str, Any] = {}

        def worker() -> None:
            result["id"] = app.broadcast.publish(channel, {"from": "thread"}, event="t")

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(10)
        assert stream.next_event(5).id == result["id"]

        r_sync = http.post(f"/pub-sync/{channel}", json={"data": {"from": "sync"}, "event": "s"})
        assert r_sync.status_code == 200, r_sync.text
        r_async = http.post(
            f"/pub-async/{channel}", json={"data": {"from": "async", "text": TEXT}, "event": "a"}
        )
        assert r_async.status_code == 200, r_async.text
        r_inline = http.post(f"/pub-inline/{channel}", json={"data": {"from": "inline"}})
        assert r_inline.status_code == 200, r_inline.text
        assert r_inline.json() == {"id": None}, "publish() on the loop schedules and returns None"
        got = stream.take(3)
        assert [e.id for e in got[:2]] == [r_sync.json()["id"], r_async.json()["id"]]
        assert [(e.event, data_of(e)) for e in got] == [
            ("s", {"from": "sync"}),
            ("a", {"from": "async", "text": TEXT}),
            ("message", {"from": "inline"}),
        ]
        assert_strictly_increasing([result["id"], *[e.id for e in got]])
        stats = app.stats()["broadcast"]
        assert stats["published_total"] == 4 and stats["delivered_total"] == 4


def test_publish_before_the_app_serves_raises() -> None:
    app = RatApp(name="not-serving")
    with pytest.raises(RuntimeError, match="not running"):
        app.broadcast.publish("x", {"too": "early"})


def test_app_stats_count_published_delivered_and_dropped(backend_url: str) -> None:
    app = build_app(backend_url)
    busy, quiet, empty = unique("busy"), unique("quiet"), unique("empty")
    with run_live(app) as server:
        streams = [HttpSSE(f"{server.url}/{style}/{busy}") for style in STYLES]
        streams.append(HttpSSE(f"{server.url}/fast/{quiet}"))
        try:
            wait_subscribed(app, 4, busy, quiet)
            stats = app.stats()["broadcast"]
            assert stats["backend"] == backend_url.split(":")[0]
            assert (stats["channels"], stats["subscribers"]) == (2, 4)
            for n in range(5):
                app.broadcast.publish(busy, {"n": n})
            for n in range(2):
                app.broadcast.publish(quiet, {"n": n})
            app.broadcast.publish(empty, {"n": 0})
            for stream in streams[:3]:
                stream.take(5)
            streams[3].take(2)
            stats = wait_until(
                lambda: (s := app.stats()["broadcast"])["delivered_total"] == 17 and s,
                what="delivered_total == 17",
            )
            assert stats["published_total"] == 8
            assert stats["dropped_total"] == 0
        finally:
            for stream in streams:
                stream.close()


# -- 5. slow subscribers on the wire ---------------------------------------------------------


def test_slow_fast_path_subscriber_is_bounded_and_does_not_hold_back_a_fast_one(backend_url: str) -> None:
    max_backlog = 256
    app = build_app(backend_url, broadcast_max_backlog=max_backlog, sse_send_timeout=None)
    channel = unique()
    total, payload = 5000, "x" * 1024
    with run_live(app) as server:
        slow = RawSSE(server.port, f"/fast/{channel}", rcvbuf=4096)  # never reads
        fast = RawSSE(server.port, f"/fast/{channel}")
        received: list[str] = []
        reader_error: list[BaseException] = []

        def read_fast() -> None:
            try:
                while len(received) < total:
                    received.append(fast.next_event(20).id or "")
            except BaseException as exc:
                reader_error.append(exc)

        reader = threading.Thread(target=read_fast, name="fast-reader")
        try:
            wait_subscribed(app, 2, channel)
            slow_sub, fast_sub = app.config["subscriptions"]
            reader.start()
            biggest = 0
            ids = []
            started = time.monotonic()
            for n in range(total):
                ids.append(app.broadcast.publish(channel, {"n": n, "pad": payload}))
                if n % 25 == 0:
                    biggest = max(biggest, len(slow_sub._items), len(fast_sub._items))
                if n % 250 == 249:  # a fast reader keeps up: let it (the test machine may be slow)
                    wait_until(
                        lambda n=n: len(received) >= n - 100 or reader_error,
                        timeout=20,
                        what="the fast reader to keep up",
                    )
            reader.join(30)
            elapsed = time.monotonic() - started
            assert not reader_error, reader_error
            assert received == ids, "the fast subscriber got every message, in order"
            stats = app.broadcast.stats()
            print(
                f"\n[{backend_url.split(':')[0]}] {total} x 1 KB in {elapsed:.2f}s; slow subscriber dropped "
                f"{slow_sub.dropped}, largest backlog seen {biggest}"
            )
            assert stats["dropped_total"] > 0
            assert slow_sub.dropped == stats["dropped_total"] and fast_sub.dropped == 0
            assert biggest <= max_backlog and len(slow_sub._items) <= max_backlog
            # The server is still fine.
            assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        finally:
            slow.close()
            fast.close()
            reader.join(5)
        wait_until(lambda: subscribers(app) == 0, timeout=5, what="both subscribers removed")


_DISCONNECT_BUG = (
    "BUG: policy='disconnect' clears the backlog and sets finished on overflow, but "
    "Subscription._accept() keeps queueing later messages (it checks `closed`, not `finished`), "
    "and the stream writer take()s them before it notices `finished`: the client receives "
    "messages from after the gap, its Last-Event-ID jumps past the dropped ones, and replay can "
    "never fill them in (exactly-once consumers lose messages silently)"
)


def test_disconnect_policy_never_skips_and_replay_fills_in(backend_url: str) -> None:
    """A slow subscriber is cut off; it reconnects with its Last-Event-ID and gets the rest:
    everything exactly once, in order (the point of the ``disconnect`` policy)."""
    app = build_app(
        backend_url, broadcast_max_backlog=16, broadcast_policy="disconnect", sse_send_timeout=None
    )
    channel = unique()
    payload = "y" * 8192  # 8 MB in all: more than the kernel buffers between server and client
    with run_live(app) as server:
        slow = RawSSE(server.port, f"/fast/{channel}", rcvbuf=4096)
        try:
            assert slow.read_headers(5) == 200
            wait_subscribed(app, 1, channel)
            ids = [app.broadcast.publish(channel, {"n": n, "pad": payload}) for n in range(1000)]
            slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # now read quickly
            first = slow.rest(timeout=15)  # the server ends this stream: backlog overflowed
        finally:
            slow.close()
        assert first and slow.ended
        assert app.config["subscriptions"][0].dropped > 0
        second = []
        if first[-1].id != ids[-1]:
            with HttpSSE(f"{server.url}/fast/{channel}", last_event_id=first[-1].id) as again:
                second = again.until_id(ids[-1], timeout=15)
    union = [e.id for e in first + second]
    assert "resync" not in {e.event for e in first + second}
    missing = [i for i in ids if i not in set(union)]
    assert not missing, (
        f"{len(missing)} messages lost: the first stream wrote messages queued after the overflow "
        f"(first stream ended at {first[-1].id}; first missing {missing[:3]})"
    )
    assert union == ids
