"""Scenario 10 -- admission limits: ``max_streams`` -> 503 + Retry-After, ``max_streams_per_client``
-> 429 + Retry-After, ``max_thread_streams`` -> 503 (async streams still admitted); a refused
request never starts its generator; ordinary requests keep working; every limit recovers as soon
as streams close.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest
from support.http import fetch_json
from support.live import run_live
from support.net import wait_until
from support.sse import AsyncSSE

from rat_engine import RatApp

from ._support import pick, report

ROUNDS = pick(3, 20)  # fill / refuse / recover cycles per limit

started: Counter[str] = Counter()
_lock = threading.Lock()


def build_app(**limits: Any) -> RatApp:
    app = RatApp(name="limits", sse_ping_interval=0, **limits)

    @app.sse("/sync")
    def sync_stream(request_data: dict[str, Any]) -> Any:
        with _lock:
            started["sync"] += 1
        while not request_data["disconnected"].wait(0.05):
            yield "tick"

    @app.sse("/async")
    async def async_stream(request_data: dict[str, Any]) -> Any:
        with _lock:
            started["async"] += 1
        while True:
            yield "tick"
            await asyncio.sleep(0.05)

    @app.json("/ping", methods=["GET"])
    async def ping() -> dict[str, Any]:
        return {"ok": True}

    return app


async def open_ok(port: int, path: str) -> AsyncSSE:
    client = await AsyncSSE.open(port, path)
    assert await client.head() == 200, client.raw_head
    assert (await client.next_event(5)) is not None
    return client


async def refused(port: int, path: str) -> tuple[int | None, str | None]:
    client = await AsyncSSE.open(port, path)
    try:
        status = await client.head()
        head = client.raw_head.decode("latin-1").lower()
        retry_after = next(
            (ln.split(":", 1)[1].strip() for ln in head.split("\r\n") if ln.startswith("retry-after:")), None
        )
        return status, retry_after
    finally:
        await client.close()


def run_limit(
    limits: dict[str, Any], fill: list[str], extra: str, expected: int, still_ok: str | None = None
) -> dict[str, Any]:
    """Open ``fill`` streams, check ``extra`` is refused with ``expected`` (+ Retry-After) and
    ``still_ok`` is admitted, close one stream, check ``extra`` is admitted; ROUNDS times."""
    app = build_app(**limits)
    outcomes: Counter[str] = Counter()
    with run_live(app) as handle:
        port = handle.port

        async def scenario() -> None:
            for _ in range(ROUNDS):
                streams = [await open_ok(port, path) for path in fill]
                before = dict(started)
                for _ in range(3):
                    status, retry_after = await refused(port, extra)
                    outcomes[f"refused {status}"] += 1
                    assert status == expected, status
                    assert retry_after is not None and int(retry_after) >= 1, retry_after
                assert dict(started) == before, "a refused stream started its generator"
                assert (await fetch_json(port, "/ping"))["ok"] is True
                outcomes["ping while full"] += 1
                if still_ok is not None:
                    other = await open_ok(port, still_ok)
                    outcomes[f"{still_ok} admitted while full"] += 1
                    await other.close()
                    await asyncio.to_thread(
                        wait_until, lambda: len(app.connections) == len(fill), 5, interval=0.02
                    )
                # Recovery: one stream closes, the refused request now gets in.
                await streams.pop().close(rst=True)
                assert await asyncio.to_thread(
                    wait_until, lambda: len(app.connections) < len(fill), 5, interval=0.02
                )
                streams.append(await open_ok(port, extra))
                outcomes["admitted after a close"] += 1
                for stream in streams:
                    await stream.close()
                assert await asyncio.to_thread(
                    wait_until, lambda: len(app.connections) == 0, 5, interval=0.02
                )

        asyncio.run(scenario())
        stats = app.stats()
    return {"outcomes": dict(outcomes), "stats": stats}


@pytest.mark.parametrize(
    "name,limits,fill,extra,expected,still_ok",
    [
        ("max_streams", {"max_streams": 4}, ["/sync", "/async", "/sync", "/async"], "/async", 503, None),
        (
            "max_streams_per_client",
            {"max_streams_per_client": 3},
            ["/async", "/sync", "/async"],
            "/sync",
            429,
            None,
        ),
        (
            "max_thread_streams",
            {"max_thread_streams": 3},
            ["/sync", "/sync", "/sync"],
            "/sync",
            503,
            "/async",
        ),
    ],
)
def test_limit_refuses_then_recovers(
    name: str, limits: dict[str, Any], fill: list[str], extra: str, expected: int, still_ok: str | None
) -> None:
    started.clear()
    result = run_limit(limits, fill, extra, expected, still_ok)
    stats = result["stats"]
    report(
        f"limits[{name}]",
        f"{name}={list(limits.values())[0]}: {ROUNDS} fill/refuse/recover rounds -> {result['outcomes']}; "
        f"rejected_total={stats['rejected_total']}, open_streams after={stats['open_streams']}, "
        f"thread_streams after={stats['thread_streams']}",
        limits=limits,
        rounds=ROUNDS,
        outcomes=result["outcomes"],
        rejected_total=stats["rejected_total"],
        close_reasons=stats["close_reasons"],
    )
    assert result["outcomes"][f"refused {expected}"] == 3 * ROUNDS
    assert result["outcomes"]["admitted after a close"] == ROUNDS
    assert stats["rejected_total"] == 3 * ROUNDS
    assert stats["open_streams"] == 0 and stats["thread_streams"] == 0
