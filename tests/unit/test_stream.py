"""The stream engine in-process: a ``Stream`` driven through the ``StreamWire`` interface alone.

``FakeWire`` is all a second protocol (HTTP/2) has to offer a stream: start, write (waiting
while congested), write_nowait, end, on_disconnect, abort, release. Nothing here touches a
socket, the HTTP/1.1 exchange or the app.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rat_engine.broadcast import Broadcast
from rat_engine.settings import Limits, StreamSettings
from rat_engine.sse.response import EventStreamResponse
from rat_engine.streaming import ConnectionManager, Stream, StreamContext, StreamingResponse, StreamWire
from rat_engine.streaming.signals import Disconnected

PING = b": ping\n"


class FakeWire:
    """A StreamWire that records what a stream sends. ``congested`` holds ``write()`` (as a
    socket that stopped taking data would) and refuses ``write_nowait``."""

    def __init__(self, native: bool = True) -> None:
        self.native = native
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.writes: list[bytes] = []  # through write()
        self.direct: list[bytes] = []  # through write_nowait()
        self.log: list[bytes] = []  # both, in order
        self.ended = False
        self.aborted = False
        self.released = False
        self.congested = False
        self._drained: asyncio.Event | None = None
        self._on_lost: Callable[[], Any] | None = None
        self.gone = False

    @property
    def body(self) -> bytes:
        return b"".join(self.log)

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = dict(headers)

    async def write(self, body: bytes) -> None:
        if self.congested and not self.gone:
            self._drained = asyncio.Event()
            await self._drained.wait()
        if self.gone:
            return
        self.writes.append(body)
        self.log.append(body)

    @property
    def writable(self) -> bool:
        return not (self.congested or self.gone or not self.native)  # plain ASGI has no such path

    def write_nowait(self, body: bytes) -> bool:
        if not self.writable:
            return False
        self.direct.append(body)
        self.log.append(body)
        return True

    async def end(self, body: bytes = b"") -> None:
        if body:
            self.log.append(body)
        self.ended = True

    def on_disconnect(self, callback: Callable[[], Any]) -> None:
        self._on_lost = callback

    def abort(self) -> bool:
        self.aborted = True
        self.lose()
        return True

    def release(self) -> None:
        self.released = True
        self._on_lost = None

    # -- test controls --------------------------------------------------------------------------
    def lose(self) -> None:
        """The client goes away."""
        self.gone = True
        if self._drained is not None:
            self._drained.set()
        callback, self._on_lost = self._on_lost, None
        if callback is not None:
            callback()


def _check_protocol(wire: StreamWire) -> None:
    """mypy: FakeWire implements the StreamWire protocol."""


_check_protocol(FakeWire())


async def run_stream(
    response: StreamingResponse,
    wire: FakeWire,
    settings: StreamSettings | None = None,
    manager: ConnectionManager | None = None,
    **ctx: Any,
) -> Stream:
    context = StreamContext(settings=settings or StreamSettings(), manager=manager, route="/t", **ctx)
    stream = Stream(response, context, wire, "/t")
    if manager is not None:
        manager.open(stream)
    await stream.run()
    return stream


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- sources: each kind through the same wire ----------------------------------------------------


def sync_items() -> Iterator[Any]:
    yield "a"
    yield {"n": 1}
    yield "two\nlines"


async def async_items() -> AsyncIterator[Any]:
    yield "a"
    await asyncio.sleep(0)
    yield {"n": 1}
    yield "two\nlines"


EXPECTED_SSE = b'data: a\n\ndata: {"n":1}\n\ndata: two\ndata: lines\n\n'


@pytest.mark.parametrize(
    ("make", "native", "kind"),
    [
        (sync_items, True, "thread"),
        (async_items, True, "task"),  # stepped in the stream's own task
        (async_items, False, "task"),  # a pump task (plain ASGI servers)
        (lambda: ["a", {"n": 1}, "two\nlines"], True, "static"),
    ],
    ids=["thread", "stepped", "task-pump", "static"],
)
def test_every_source_kind_writes_the_same_frames(make: Callable[[], Any], native: bool, kind: str) -> None:
    async def main() -> tuple[FakeWire, Stream]:
        wire = FakeWire(native)
        stream = await run_stream(EventStreamResponse(make()), wire)
        return wire, stream

    wire, stream = run(main())
    assert wire.status == 200
    assert wire.headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert wire.body == EXPECTED_SSE
    assert wire.ended and wire.released
    assert stream.info.kind == kind
    assert stream.stop_reason == "finished"
    assert stream.info.events_sent == 3
    assert stream.info.bytes_sent == len(EXPECTED_SSE)  # counted once, where it is written


def test_chunked_response_uses_the_plain_framing() -> None:
    async def main() -> FakeWire:
        wire = FakeWire()
        await run_stream(StreamingResponse(iter([b"x", "y", {"k": 1}])), wire)
        return wire

    assert run(main()).body == b'xy{"k":1}\n'


def test_preamble_is_the_retry_hint() -> None:
    async def main() -> FakeWire:
        wire = FakeWire()
        await run_stream(EventStreamResponse(["x"]), wire, StreamSettings(retry=1500))
        return wire

    assert run(main()).body == b"retry: 1500\ndata: x\n\n"


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("native", [True, False], ids=["stepped", "task-pump"])
def test_a_generator_that_raises_ends_with_an_error_event(
    native: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> AsyncIterator[str]:
        yield "before"
        raise RuntimeError("secret")

    async def main() -> tuple[FakeWire, Stream]:
        wire = FakeWire(native)
        stream = await run_stream(EventStreamResponse(boom()), wire, handler="app.py:3 boom")
        return wire, stream

    wire, stream = run(main())
    # a retry back-off joins the error event's block: the browser does not reconnect at once
    assert wire.body.startswith(b"data: before\n\nretry: 30000\nevent: error\n")
    assert b"Internal Server Error" in wire.body and b"secret" not in wire.body
    assert wire.ended  # SSE ends cleanly: the error is in-band
    assert stream.source.failed
    assert any("stream generator raised [/t (app.py:3 boom)]" in r.getMessage() for r in caplog.records)


def test_debug_exposes_the_exception_text() -> None:
    def boom() -> Iterator[str]:
        raise ValueError("details")
        yield ""  # pragma: no cover

    async def main() -> FakeWire:
        wire = FakeWire()
        await run_stream(EventStreamResponse(boom()), wire, debug=True)
        return wire

    assert b"ValueError: details" in run(main()).body


def test_a_chunked_body_cut_short_gets_no_final_chunk() -> None:
    def boom() -> Iterator[bytes]:
        yield b"part"
        raise RuntimeError("disk gone")

    async def main() -> FakeWire:
        wire = FakeWire()
        await run_stream(StreamingResponse(boom()), wire)
        return wire

    wire = run(main())
    assert wire.body == b"part"
    assert not wire.ended  # the client sees the download is incomplete


# -- stopping: client gone, shutdown, timers ---------------------------------------------------------


@pytest.mark.parametrize("native", [True, False], ids=["stepped", "task-pump"])
def test_client_leaving_closes_an_async_generator_at_once(native: bool) -> None:
    closed = asyncio.Event()

    async def forever() -> AsyncIterator[str]:
        try:
            yield "hello"
            await asyncio.sleep(3600)
            yield "never"  # pragma: no cover
        finally:
            closed.set()

    async def main() -> tuple[FakeWire, Stream, float]:
        wire = FakeWire(native)
        disconnected = Disconnected()
        task = asyncio.ensure_future(
            run_stream(EventStreamResponse(forever()), wire, disconnected=disconnected)
        )
        while not wire.writes:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        wire.lose()
        stream = await asyncio.wait_for(task, 2)
        assert disconnected.is_set()
        return wire, stream, time.monotonic() - started

    wire, stream, took = run(main())
    assert stream.stop_reason == "client"
    assert not wire.ended  # nobody is there to receive the end
    assert took < 1.0


def test_client_leaving_closes_a_sync_generator_at_its_next_yield() -> None:
    closed = threading.Event()

    def ticks(disconnected: threading.Event) -> Iterator[str]:
        try:
            while not disconnected.wait(0.02):
                yield "tick"
        finally:
            closed.set()

    async def main() -> Stream:
        wire = FakeWire()
        disconnected = Disconnected()
        task = asyncio.ensure_future(
            run_stream(EventStreamResponse(ticks(disconnected)), wire, disconnected=disconnected)
        )
        while not wire.writes:
            await asyncio.sleep(0.01)
        wire.lose()
        stream = await asyncio.wait_for(task, 2)
        assert await stream.wait_closed(2)
        return stream

    stream = run(main())
    assert stream.stop_reason == "client"
    assert closed.wait(2)


def test_shutdown_sends_the_farewell_frame_once_and_ends_cleanly() -> None:
    async def forever() -> AsyncIterator[str]:
        yield "x"
        await asyncio.sleep(3600)

    async def main() -> FakeWire:
        wire = FakeWire()
        manager = ConnectionManager()
        task = asyncio.ensure_future(
            run_stream(EventStreamResponse(forever()), wire, StreamSettings(shutdown_retry=750), manager)
        )
        while not wire.writes:
            await asyncio.sleep(0.01)
        await manager.shutdown(2)
        await asyncio.wait_for(task, 2)
        assert len(manager) == 0 and manager.stats()["close_reasons"] == {"shutdown": 1}
        return wire

    wire = run(main())
    assert wire.body == b"data: x\n\n: server shutting down\nretry: 750\n"
    assert wire.ended


def test_keepalive_goes_past_a_waiting_generator_without_waking_it() -> None:
    steps = 0

    async def slow() -> AsyncIterator[str]:
        nonlocal steps
        steps += 1
        await asyncio.sleep(0.35)
        yield "late"

    async def main() -> FakeWire:
        wire = FakeWire()
        await run_stream(EventStreamResponse(slow()), wire, StreamSettings(ping_interval=0.1))
        return wire

    wire = run(main())
    assert wire.direct.count(PING) >= 2  # written by the timer, straight to the wire
    assert wire.body.endswith(b"data: late\n\n")
    assert steps == 1


def test_keepalive_goes_through_write_on_a_plain_asgi_wire() -> None:
    async def main() -> FakeWire:
        wire = FakeWire(native=False)
        release = asyncio.Event()

        async def waits() -> AsyncIterator[str]:
            await release.wait()
            yield "x"

        task = asyncio.ensure_future(
            run_stream(EventStreamResponse(waits()), wire, StreamSettings(ping_interval=0.1))
        )
        await asyncio.sleep(0.25)
        release.set()
        await asyncio.wait_for(task, 2)
        return wire

    wire = run(main())
    assert wire.direct == []  # a plain ASGI wire takes nothing past send()
    assert PING in wire.writes
    assert wire.body.endswith(b"data: x\n\n")


def test_send_timeout_aborts_a_stalled_client() -> None:
    async def main() -> tuple[FakeWire, Stream]:
        wire = FakeWire()
        wire.congested = True

        async def many() -> AsyncIterator[str]:
            while True:
                yield "x" * 100
                await asyncio.sleep(0)

        stream = await asyncio.wait_for(
            run_stream(EventStreamResponse(many()), wire, StreamSettings(send_timeout=0.2)), 3
        )
        return wire, stream

    wire, stream = run(main())
    assert wire.aborted
    assert stream.stop_reason == "send_timeout"


def test_send_timeout_under_plain_asgi_cancels_and_takes_the_cancellation_back() -> None:
    class StuckWire(FakeWire):
        def abort(self) -> bool:
            self.aborted = True
            return False  # cannot drop the connection: the stream cancels its own task

    async def main() -> tuple[StuckWire, Stream, bool]:
        wire = StuckWire(native=False)
        wire.congested = True
        stream = await asyncio.wait_for(
            run_stream(EventStreamResponse(iter(["x"] * 1000)), wire, StreamSettings(send_timeout=0.2)), 3
        )
        task = asyncio.current_task()
        assert task is not None
        return wire, stream, task.cancelling() == 0

    wire, stream, uncancelled = run(main())
    assert wire.aborted and stream.stop_reason == "send_timeout"
    assert uncancelled  # the request task goes on (the server closes the connection)


def test_max_duration_ends_the_stream_and_leaves_no_timer_behind() -> None:
    async def forever() -> AsyncIterator[str]:
        yield "x"
        await asyncio.sleep(3600)

    async def main() -> tuple[Stream, int]:
        wire = FakeWire()
        stream = await asyncio.wait_for(
            run_stream(EventStreamResponse(forever()), wire, StreamSettings(max_duration=0.2)), 3
        )
        loop = asyncio.get_running_loop()
        pending = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]
        return stream, len(pending)

    stream, pending = run(main())
    assert stream.stop_reason == "max_duration"
    assert pending == 0


def test_a_finished_stream_is_not_kept_alive_by_its_timers() -> None:
    """Defect: the max_duration TimerHandle was never cancelled, so every finished stream (its
    generator, source and context) stayed reachable from the loop until the timer fired."""

    async def main() -> list[weakref.ref[Any]]:
        refs = []
        for _ in range(20):
            gen = (item for item in ["a", "b"])
            refs.append(weakref.ref(gen))
            await run_stream(EventStreamResponse(gen), FakeWire(), StreamSettings(max_duration=3600))
        gc.collect()
        return refs

    refs = run(main())
    assert [ref() for ref in refs] == [None] * 20


# -- the registry: admission and registration in one step ------------------------------------------


def test_registry_counts_bytes_once_and_keeps_totals_after_close() -> None:
    async def main() -> ConnectionManager:
        manager = ConnectionManager()
        await run_stream(EventStreamResponse(["a", "b"]), FakeWire(), manager=manager)
        await run_stream(EventStreamResponse(["c"]), FakeWire(), manager=manager)
        return manager

    stats = run(main()).stats()
    assert stats["open_streams"] == 0
    assert stats["opened_total"] == 2
    assert stats["events_sent_total"] == 3
    assert stats["bytes_sent_total"] == len(b"data: a\n\ndata: b\n\ndata: c\n\n")
    assert stats["close_reasons"] == {"finished": 2}


@pytest.mark.parametrize(
    ("limits", "kinds", "refused_status"),
    [
        (Limits(max_streams=2), ["static"] * 3, 503),
        (Limits(max_thread_streams=1), ["thread", "thread"], 503),
        (Limits(max_streams_per_client=1), ["static", "static"], 429),
    ],
)
def test_registry_limits(limits: Limits, kinds: list[str], refused_status: int) -> None:
    from rat_engine.exceptions import StreamLimitExceeded

    async def main() -> int:
        manager = ConnectionManager(limits)
        for index, kind in enumerate(kinds):
            content: Any = iter(["x"]) if kind == "thread" else ["x"]
            stream = Stream(EventStreamResponse(content), StreamContext(client="c"), FakeWire(), "/t")
            try:
                manager.open(stream)
            except StreamLimitExceeded as exc:
                assert index == len(kinds) - 1
                return exc.status_code
        raise AssertionError("no stream was refused")

    assert run(main()) == refused_status


# -- a broadcast subscription is just another source ---------------------------------------------


async def parked_subscription(wire: FakeWire) -> tuple[Broadcast, asyncio.Future[Stream]]:
    """A memory:// broadcast and a stream of its "news" channel on ``wire``, parked on it."""
    broadcast = Broadcast("memory://")
    await broadcast.start()
    task = asyncio.ensure_future(run_stream(EventStreamResponse(broadcast.subscribe("news")), wire))
    while broadcast.stats()["subscribers"] == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)  # the loop parks on the subscription
    return broadcast, task


def test_subscription_frames_are_handed_past_the_parked_loop() -> None:
    async def main() -> tuple[FakeWire, Stream]:
        wire = FakeWire()
        broadcast, task = await parked_subscription(wire)
        for n in range(3):
            await broadcast.apublish("news", {"n": n})
        await asyncio.sleep(0.05)
        wire.lose()
        stream = await asyncio.wait_for(task, 2)
        await broadcast.stop()
        return wire, stream

    wire, stream = run(main())
    assert wire.direct, "publishes reached the wire without waking the stream's task"
    assert wire.body.count(b"data: {") == 3
    assert [line for line in wire.body.split(b"\n") if line.startswith(b"id:")] == [
        b"id: 1",
        b"id: 2",
        b"id: 3",
    ]
    assert stream.info.kind == "subscription" and stream.info.events_sent == 3


@pytest.mark.parametrize(
    ("bursts", "direct_writes"),
    [
        ([1, 1, 1], 3),  # lone messages, one per loop turn: each goes to the wire at once
        ([4], 2),  # a burst in one turn: the first at once, the other three corked into one write
        ([3, 1, 2], 5),
    ],
)
def test_handed_past_frames_lone_at_once_bursts_corked_in_order(
    bursts: list[int], direct_writes: int
) -> None:
    async def main() -> FakeWire:
        wire = FakeWire()
        broadcast, task = await parked_subscription(wire)
        n = 0
        for size in bursts:
            for _ in range(size):
                await broadcast.apublish("news", {"n": n})  # memory://: delivered in this turn
                n += 1
            await asyncio.sleep(0.01)  # the turn ends: corked frames are flushed
        wire.lose()
        await asyncio.wait_for(task, 2)
        await broadcast.stop()
        return wire

    wire = run(main())
    assert len(wire.direct) == direct_writes
    assert not wire.writes  # nothing needed the stream's own task
    ids = [line for line in wire.body.split(b"\n") if line.startswith(b"id:")]
    assert ids == [b"id: %d" % (i + 1) for i in range(sum(bursts))]
