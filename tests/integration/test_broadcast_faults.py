"""Redis goes away and comes back, under a real server process.

Uses a dedicated PERSISTENT redis-server (``--appendonly yes --appendfsync always``, its own
directory), killed by PID and started again on the same port, so what it stored survives.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.broadcast import (
    BROADCAST_APP_MODULE,
    assert_strictly_increasing,
    data_of,
    redis_numsub,
    unique,
)
from support.live import live_subprocess
from support.net import wait_until
from support.sse import HttpSSE

pytestmark = [pytest.mark.timeout(90), pytest.mark.redis]

OUTAGE = 4.0  # long enough that the reader is deep in its backoff when Redis returns


@pytest.fixture
def app_path(tmp_path: Path) -> Path:
    path = tmp_path / "bcast_app.py"
    path.write_text(BROADCAST_APP_MODULE, encoding="utf-8")
    return path


def post_publish(base: str, channel: str, data: Any, timeout: float = 30.0) -> httpx.Response:
    return httpx.post(f"{base}/publish/{channel}", json={"data": data}, timeout=timeout)


def test_redis_outage_and_restart(app_path: Path, persistent_redis_server: Any) -> None:
    redis = persistent_redis_server
    channel = unique("fault")
    with live_subprocess(app_path, env={"RAT_BROADCAST_URL": redis.url}, grace=5) as server:
        sub1 = HttpSSE(f"{server.url}/subscribe/{channel}", read_timeout=15)
        sub2 = HttpSSE(f"{server.url}/subscribe/{channel}", read_timeout=15)
        sub3: HttpSSE | None = None
        try:
            wait_until(lambda: redis_numsub(redis.url, channel) == [1], what="the server subscribed")
            pre = []
            for n in range(3):
                response = post_publish(server.url, channel, {"phase": "before", "n": n})
                assert response.status_code == 200, response.text
                pre.append(response.json()["id"])
            assert [e.id for e in sub1.take(3)] == pre
            sub2_seen = sub2.next_event(5).id
            assert sub2_seen == pre[0]
            sub2.close()  # this client goes away before the outage and comes back after it

            # -- outage ---------------------------------------------------------------------
            redis_pid = redis.pid
            redis.stop(sig=signal.SIGKILL)  # by PID: a crash, not a clean shutdown
            down_at = time.monotonic()
            print(f"\nkilled redis-server pid {redis_pid}")

            started = time.monotonic()
            health = httpx.get(server.url + "/pid", timeout=2)
            assert health.status_code == 200 and time.monotonic() - started < 2

            # Publishing fails with an error response, promptly; ordinary requests meanwhile work.
            result: dict[str, Any] = {}

            def failing_publish() -> None:
                began = time.monotonic()
                try:
                    result["response"] = post_publish(server.url, channel, {"phase": "outage"})
                except httpx.HTTPError as exc:
                    result["error"] = exc
                result["seconds"] = time.monotonic() - began

            publisher = threading.Thread(target=failing_publish)
            publisher.start()
            while publisher.is_alive() and time.monotonic() - started < 1:
                began = time.monotonic()
                assert httpx.get(server.url + "/pid", timeout=2).status_code == 200
                assert time.monotonic() - began < 2
                time.sleep(0.05)
            publisher.join(35)
            assert not publisher.is_alive(), "publishing hung during the outage"
            assert "response" in result, f"publish failed without an HTTP response: {result.get('error')!r}"
            assert result["response"].status_code >= 500, result["response"].text
            print(
                f"publish during the outage: HTTP {result['response'].status_code} in {result['seconds']:.3f}s"
            )
            assert result["seconds"] < 30

            # A reconnect with Last-Event-ID cannot replay now: a prompt end with a retry hint
            # (a 200: an EventSource gives up for good after a 503, it reconnects after retry:).
            began = time.monotonic()
            refused = httpx.get(
                f"{server.url}/subscribe/{channel}",
                headers={"accept": "text/event-stream", "last-event-id": pre[0]},
                timeout=30,
            )
            assert refused.status_code == 200
            assert refused.text == ": broadcast unavailable\nretry: 2000\n"
            assert time.monotonic() - began < 10
            # A new subscriber without an id is accepted and will get what comes after the outage.
            sub3 = HttpSSE(f"{server.url}/subscribe/{channel}", read_timeout=15)
            assert sub3.status_code == 200
            assert server.poll() is None, "the server process died"

            time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))

            # -- restart ----------------------------------------------------------------------
            redis.start()
            up_at = time.monotonic()
            gap: list[str] = []
            not_yet_resubscribed = 0
            for n in range(3):
                if redis_numsub(redis.url, channel) == [0]:
                    not_yet_resubscribed += 1
                response = wait_until(
                    lambda n=n: (
                        (r := post_publish(server.url, channel, {"phase": "gap", "n": n})).status_code == 200
                        and r
                    ),
                    timeout=5,
                    what="publishing to work again",
                )
                gap.append(response.json()["id"])
            if redis_numsub(redis.url, channel) != [0]:
                not_yet_resubscribed = 0  # cannot prove these were published before the resubscribe
            print(
                f"{len(gap)} published {time.monotonic() - up_at:.2f}s after the restart, "
                f"{'before' if not_yet_resubscribed else 'NOT provably before'} the pub/sub resubscribed"
            )

            wait_until(
                lambda: redis_numsub(redis.url, channel) == [1], timeout=10, what="the reader to resubscribe"
            )
            resubscribed = time.monotonic() - up_at
            first_after = sub1.next_event(10)
            delivered = time.monotonic() - up_at
            live = []
            for n in range(3):
                response = post_publish(server.url, channel, {"phase": "after", "n": n})
                assert response.status_code == 200, response.text
                live.append(response.json()["id"])
            rest = sub1.until_id(live[-1], timeout=10)
            print(
                f"reconnection observed: pub/sub resubscribed {resubscribed:.2f}s after the restart "
                f"(outage {up_at - down_at:.2f}s); first message delivered after {delivered:.2f}s"
            )
            assert delivered < 10

            after_ids = [first_after.id, *[e.id for e in rest]]
            assert after_ids == gap + live, "the gap was filled from the stream, then live: nothing lost"
            everything = [e.id for e in sub1.received]
            assert everything == pre + gap + live
            assert len(set(everything)) == len(everything), "duplicates"
            assert_strictly_increasing(everything)
            assert [data_of(e)["phase"] for e in sub1.received] == ["before"] * 3 + ["gap"] * 3 + [
                "after"
            ] * 3
            assert not_yet_resubscribed, "the gap scenario did not happen (the reader was back too early)"

            # The subscriber that joined during the outage gets everything published after it joined.
            assert [e.id for e in sub3.until_id(live[-1], timeout=10)] == gap + live

            # The client that left before the outage replays what Redis persisted (AOF) plus the rest.
            with HttpSSE(f"{server.url}/subscribe/{channel}", last_event_id=sub2_seen) as back:
                replayed = back.until_id(live[-1], timeout=10)
            assert [e.id for e in replayed] == pre[1:] + gap + live
            assert "resync" not in {e.event for e in replayed}
        finally:
            for stream in (sub1, sub2, sub3):
                if stream is not None:
                    stream.close()
        assert server.poll() is None
    output = server.output()
    assert "redis broadcast connection lost" in output
    reconnected = [line for line in output.splitlines() if "reconnected after" in line]
    assert reconnected, output[-3000:]
    print(reconnected[-1])


def test_reader_recovers_at_its_first_attempt_after_redis_returns(
    app_path: Path, persistent_redis_server: Any
) -> None:
    redis = persistent_redis_server
    channel = unique("prompt")
    with (
        live_subprocess(app_path, env={"RAT_BROADCAST_URL": redis.url}, grace=5) as server,
        HttpSSE(f"{server.url}/subscribe/{channel}", read_timeout=15) as stream,
    ):
        wait_until(lambda: redis_numsub(redis.url, channel) == [1], what="the server subscribed")
        first = post_publish(server.url, channel, {"n": 0}).json()["id"]
        assert stream.next_event(5).id == first
        redis.stop(sig=signal.SIGKILL)
        down_at = time.monotonic()
        time.sleep(2.0)  # reader attempts at ~0.1, 0.3, 0.7, 1.5, then ~3.1 s after the loss
        redis.start()
        up_at = time.monotonic()
        after = post_publish(server.url, channel, {"n": 1})
        assert after.status_code == 200, after.text
        # Delivered (from the stream, or live) only once the reader is really back.
        assert stream.next_event(12).id == after.json()["id"]
        took = time.monotonic() - up_at
        print(f"\nmessage delivered {took:.2f}s after Redis returned (outage {up_at - down_at:.2f}s)")
        # The next backoff attempt is due ~1.1 s after the restart; allow generous slack.
        assert took < 2.8, f"took {took:.2f}s: the first attempt after Redis returned failed"


def test_server_starts_while_redis_is_down_and_recovers(app_path: Path, persistent_redis_server: Any) -> None:
    redis = persistent_redis_server
    channel = unique("late")
    redis.stop()
    with live_subprocess(app_path, env={"RAT_BROADCAST_URL": redis.url}, grace=5) as server:
        assert httpx.get(server.url + "/pid", timeout=2).status_code == 200
        began = time.monotonic()
        assert post_publish(server.url, channel, {"too": "early"}).status_code >= 500
        assert time.monotonic() - began < 30
        with HttpSSE(f"{server.url}/subscribe/{channel}", read_timeout=15) as stream:
            assert stream.status_code == 200
            redis.start()
            wait_until(lambda: redis_numsub(redis.url, channel) == [1], timeout=10, what="the late subscribe")
            ids = [post_publish(server.url, channel, {"n": n}).json()["id"] for n in range(3)]
            assert [e.id for e in stream.take(3)] == ids
        assert server.poll() is None
