"""A bounded buffer between one producer (a thread or a task) and the stream that drains it.

The consumer takes *everything* queued at once, so a fast producer is coalesced into large
writes while a lone chunk still goes out at once. A producer thread blocks while it is full
(a slow reader holds the generator at its ``yield``); closing it wakes everyone.
"""

from __future__ import annotations

import asyncio
import threading

from .chunk_source import StreamClosed

__all__ = ["StreamBuffer", "wake", "wake_threadsafe"]


class StreamBuffer:
    """Bounded FIFO of chunks between one producer (thread or task) and the loop-side writer."""

    __slots__ = (
        "_loop",
        "_items",
        "_max",
        "_lock",
        "_not_full",
        "_consumer",
        "_producer",
        "closed",
        "finished",
        "failed",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, max_items: int) -> None:
        self._loop = loop
        # A list, not a deque: take() empties it whole, and an empty deque costs ~600 bytes.
        self._items: list[bytes] = []
        self._max = max(1, max_items)
        self._lock = threading.Lock()
        # Made when a producer thread first has to block (only sync streams ever do).
        self._not_full: threading.Condition | None = None
        self._consumer: asyncio.Future[None] | None = None
        self._producer: asyncio.Future[None] | None = None
        self.closed = False  # consumer gone: producers must stop
        self.finished = False  # producer done: nothing more will arrive
        self.failed = False  # the producer ended with an exception

    # -- consumer side (event loop thread) -------------------------------------------------
    def take(self) -> list[bytes]:
        """Everything queued (possibly nothing)."""
        with self._lock:
            if not self._items:
                return []
            items, self._items = self._items, []
            if self._not_full is not None:
                self._not_full.notify_all()
            producer, self._producer = self._producer, None
        if producer is not None and not producer.done():
            producer.set_result(None)
        return items

    async def pull(self) -> list[bytes]:
        """What is queued, waiting for the producer while nothing is."""
        items = self.take()
        if items:
            return items
        if self.finished or self.closed:
            return self.take()  # what arrived just before the end
        waiter = self._loop.create_future()
        with self._lock:
            armed = not (self._items or self.finished or self.closed)
            if armed:
                self._consumer = waiter
        if armed:
            try:
                await waiter
            finally:
                self._consumer = None
        return self.take()

    def wake(self) -> None:
        with self._lock:
            waiter, self._consumer = self._consumer, None
        if waiter is not None:
            wake(waiter)

    def close(self) -> None:
        """The consumer is gone: wake and stop every producer (and a waiting consumer)."""
        with self._lock:
            self.closed = True
            self._items.clear()
            if self._not_full is not None:
                self._not_full.notify_all()
            producer, self._producer = self._producer, None
            consumer, self._consumer = self._consumer, None
        for waiter in (producer, consumer):
            if waiter is not None:
                wake(waiter)

    # -- producer side -----------------------------------------------------------------------
    def put_blocking(self, chunk: bytes) -> None:
        """Append from a worker thread, blocking while full. Raises StreamClosed once closed."""
        with self._lock:
            while len(self._items) >= self._max and not self.closed:
                if self._not_full is None:
                    self._not_full = threading.Condition(self._lock)
                self._not_full.wait()
            if self.closed:
                raise StreamClosed
            self._items.append(chunk)
            waiter, self._consumer = self._consumer, None
        if waiter is not None:
            wake_threadsafe(self._loop, waiter)

    async def put(self, chunk: bytes) -> None:
        """Append from a task on the loop, waiting while full. Raises StreamClosed once closed."""
        while True:
            with self._lock:
                if self.closed:
                    raise StreamClosed
                if len(self._items) < self._max:
                    self._items.append(chunk)
                    waiter, self._consumer = self._consumer, None
                    break
                space: asyncio.Future[None] = self._loop.create_future()
                self._producer = space
            await space
        if waiter is not None:
            wake(waiter)

    def finish(self, last_chunk: bytes | None = None, threaded: bool = False, failed: bool = False) -> None:
        """The producer is done (``last_chunk``, e.g. an error event, is queued first)."""
        with self._lock:
            if last_chunk is not None and not self.closed:
                self._items.append(last_chunk)
            self.finished = True
            self.failed = failed
            waiter, self._consumer = self._consumer, None
        if waiter is not None:
            if threaded:
                wake_threadsafe(self._loop, waiter)
            else:
                wake(waiter)


def wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def wake_threadsafe(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None]) -> None:
    try:
        loop.call_soon_threadsafe(wake, waiter)
    except RuntimeError:
        pass  # the loop is closed (process shutting down): nobody is waiting any more
