"""A subscriber's bounded backlog, consumed three ways.

* ``return app.broadcast.subscribe(...)`` from an ``@app.sse`` handler: the stream writer
  drains the backlog directly (no thread, no task; each message's frame was encoded once).
* ``async for message in subscription`` in an async generator.
* ``yield from subscription`` in a sync generator (blocks its thread between messages; yields
  ``None`` once a second while idle, which sends nothing but lets the stream notice a client
  that has gone).

Slow subscribers: the backlog holds at most ``max_backlog`` messages; beyond that the
``policy`` applies: ``"drop_oldest"`` (default), ``"disconnect"`` (end the stream; the browser
reconnects with ``Last-Event-ID`` and replay fills the gap), or ``"coalesce"`` (a newer message
with the same key replaces a pending one: progress bars and dashboards only need the latest).
Dropped messages are counted.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._types import SourceKind
from ..settings import POLICIES
from ..sse.event import SSEEvent
from ..streaming.chunk_source import ChunkSource
from .base import BroadcastUnavailable, Message

if TYPE_CHECKING:
    from ..streaming.stream import Stream
    from .hub import Broadcast

__all__ = ["POLICIES", "Subscription"]
#: Event type sent when a Last-Event-ID is older than the channel's history (see docs).
RESYNC_EVENT = "resync"
#: ``retry:`` (ms) for a subscriber that opened while the broker was down.
_WAIT_RETRY = 2000


def _default_key(message: Message) -> Any:
    return message.event


class Subscription(ChunkSource):
    """Messages of one channel for one consumer (see the module docstring). As the content of
    a stream it is that stream's :class:`~rat_engine.streaming.sources.ChunkSource`."""

    kind: SourceKind = "subscription"

    def __init__(
        self,
        broadcast: Broadcast,
        channel: str,
        last_event_id: str | None = None,
        max_backlog: int = 256,
        policy: str = "drop_oldest",
        coalesce_key: Callable[[Message], Any] | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown slow-subscriber policy {policy!r}; use one of {POLICIES}")
        self.broadcast = broadcast
        self.channel = channel
        self.last_event_id = last_event_id
        self.max_backlog = max(1, max_backlog)
        self.policy = policy
        self.coalesce_key = coalesce_key or _default_key
        self.dropped = 0
        self._items: collections.deque[Message | SSEEvent] = collections.deque()
        self._lock = threading.Lock()
        # Only a sync consumer (a worker thread) ever waits: the condition is made for the first.
        self._ready: threading.Condition | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._opened = False
        self._replaying = True
        self._pending: list[Message] = []
        self._last_key: tuple[int, ...] | None = None
        #: The stream this subscription is the source of (set by start()): a frame may be handed
        #: to it directly while it waits (it returns False otherwise, and the frame is queued).
        self._stream: Stream | None = None
        self.closed = False
        self.finished = False
        self.failed = False

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        """Register with the broadcast and queue the replay (idempotent)."""
        if self._opened:
            return
        self._opened = True
        try:
            await self.broadcast.check_reachable()
        except BroadcastUnavailable:
            if self.last_event_id:
                raise  # no replay possible now: the stream tells the client to come back
            # A new subscriber waits for the broker and gets what is published once it is back;
            # it is told so at once (not a silent stream), with a retry hint for its reconnects.
            self._push_control(
                SSEEvent(None, comment="broadcast unavailable, waiting for it", retry=_WAIT_RETRY)
            )
        await self.broadcast._attach(self)
        try:
            if self.last_event_id:
                self._last_key = self.broadcast.sort_key(self.last_event_id)
                result = await self.broadcast.replay(self.channel, self.last_event_id)
                if result.gap:
                    self._push_control(
                        SSEEvent(
                            {
                                "channel": self.channel,
                                "last_event_id": self.last_event_id,
                                "reason": "history_gap",
                            },
                            event=RESYNC_EVENT,
                        )
                    )
                    # The client's position means nothing any more (e.g. an id from before a
                    # restart): deliver whatever comes, in order, from here on.
                    self._last_key = None
                for message in result.messages:
                    self._accept(message, replay=True)  # bounded by the history, not the backlog
        finally:
            self._replaying = False
            pending, self._pending = self._pending, []
            for message in pending:
                self._accept(message)

    def close(self) -> None:
        """Unsubscribe; a consumer blocked on the backlog wakes and ends."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self.finished = True
            self._items.clear()
            self._notify_all()
        self._stream = None
        self._wake()
        self.broadcast._detach(self)

    # -- producer side (the broadcast, on the event loop) -------------------------------------
    def deliver(self, message: Message, catch_up: bool = False) -> None:
        """``catch_up``: filled in from the backend's history after a reconnect, so bounded by
        it as a replay is: the backlog bound does not apply."""
        if self._replaying:
            self._pending.append(message)  # live messages wait until the replay is queued
            return
        self._accept(message, replay=catch_up)

    def _accept(self, message: Message, replay: bool = False) -> None:
        # Replay and live delivery overlap; ids make every message arrive exactly once, in order.
        key = message.sort_key
        if self._last_key is not None and key <= self._last_key:
            return
        self._last_key = key
        # PERF: the writer is parked with nothing queued: hand it the frame now instead of
        # queueing it and waking a task (one task step per subscriber per message; this is
        # what kept the S1 p99 above 15 ms at 1,000 subscribers). Order is kept: only an empty
        # queue, and a woken writer (no waiter) always takes the queue path.
        stream = self._stream
        if (
            stream is not None
            and self._waiter is not None
            and not replay
            and not self._items
            and not self.finished
            and stream.write_direct(message.frame)
        ):
            return
        with self._lock:
            if self.closed or self.finished:
                return  # a "disconnect" subscription that overflowed takes nothing more
            if self.policy == "coalesce" and not replay:
                self._coalesce(message)
            if len(self._items) >= self.max_backlog and not replay:
                if self.policy == "disconnect":
                    # End the stream: the client reconnects with its last id and replay fills
                    # the gap. Queued messages after the gap must not be sent first.
                    self._count_dropped(len(self._items) + 1)
                    self._items.clear()
                    self.finished = True
                    self._notify_all()
                else:
                    self._items.popleft()
                    self._count_dropped(1)
            if not self.finished:
                self._items.append(message)
                self._notify()
        self._wake()

    def _coalesce(self, message: Message) -> None:
        wanted = self.coalesce_key(message)
        for index, queued in enumerate(self._items):
            if isinstance(queued, Message) and self.coalesce_key(queued) == wanted:
                del self._items[index]
                self._count_dropped(1)
                return

    def _count_dropped(self, count: int) -> None:
        self.dropped += count
        self.broadcast.dropped += count

    def _push_control(self, event: SSEEvent) -> None:
        with self._lock:
            self._items.append(event)
            self._notify()
        self._wake()

    def _notify(self) -> None:  # the lock is held
        if self._ready is not None:
            self._ready.notify()

    def _notify_all(self) -> None:  # the lock is held
        if self._ready is not None:
            self._ready.notify_all()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- consumer: a stream (the ChunkSource interface) ---------------------------------------
    def start(self, stream: Stream) -> None:
        self._stream = stream

    async def pull(self) -> list[bytes]:
        frames = self.take()
        if frames or self.finished:
            return frames
        waiter = asyncio.get_running_loop().create_future()
        if self.arm(waiter):
            try:
                await waiter
            finally:
                self.disarm()
        return self.take()

    def wake(self) -> None:
        self._wake()

    def take(self) -> list[bytes]:
        with self._lock:
            if not self._items:
                return []
            items = list(self._items)
            self._items.clear()
        return [item.frame if isinstance(item, Message) else item.encode() for item in items]

    def arm(self, waiter: asyncio.Future[None]) -> bool:
        with self._lock:
            if self._items or self.finished or self.closed:
                return False
            self._waiter = waiter
            return True

    def disarm(self) -> None:
        self._waiter = None

    def stop(self) -> None:
        self.close()

    # -- consumer: async iteration ------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[Message | SSEEvent]:
        return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[Message | SSEEvent]:
        try:
            await self.open()
            loop = asyncio.get_running_loop()
            while True:
                with self._lock:
                    items = list(self._items)
                    self._items.clear()
                for item in items:
                    yield item
                if self.finished:
                    return
                if not items:
                    waiter = loop.create_future()
                    if self.arm(waiter):
                        await waiter
        finally:
            self.close()

    # -- consumer: sync iteration (from a stream's worker thread) ------------------------------
    def __iter__(self) -> Iterator[Message | SSEEvent | None]:
        try:
            self.broadcast.run_coroutine(self.open())
            while True:
                with self._lock:
                    if not self._items and not self.finished:
                        if self._ready is None:
                            self._ready = threading.Condition(self._lock)
                        self._ready.wait(1.0)
                    items = list(self._items)
                    self._items.clear()
                    finished = self.finished
                if not items and not finished:
                    yield None  # idle: sends nothing, lets a stream notice its client has gone
                yield from items
                if finished:
                    return
        finally:
            self.broadcast.call_soon(self.close)
