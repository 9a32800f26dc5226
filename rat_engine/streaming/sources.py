"""Where a running stream's chunks come from: the :class:`ChunkSource` interface and its kinds.

A :class:`~.stream.Stream` knows only this interface. The kinds:

* :class:`ThreadPump`: a **sync** iterator on its own thread, putting chunks into a bounded
  :class:`StreamBuffer`. ``put`` blocks while the buffer is full, so a slow reader throttles the
  generator at its ``yield`` instead of growing memory. When the stream stops, the next ``put``
  (or the next ``yield``) sees ``closed`` and the generator is closed, so its ``finally`` runs.
  A thread cannot be interrupted while it blocks inside the generator: that is what the
  stream's ``disconnected`` flag (``request_data["disconnected"]``) is for.
* :class:`SteppedSource`: an **async** iterator stepped by the stream's own task
  (:mod:`.stepping`): no task, no buffer; what it makes without waiting is coalesced; stopping
  cancels it where it waits. Used when the server reports a lost client by callback.
* :class:`TaskPump`: an async iterator as a task filling a buffer (servers that report a lost
  client only through ``receive()``).
* :class:`StaticSource`: a value or a list given whole.
* Any other object implementing :class:`ChunkSource` is used as it is (a broadcast
  ``Subscription`` does: the stream drains its backlog directly).

A generator that ignores ``GeneratorExit`` (``finally: yield ...``) makes ``close()`` raise
``RuntimeError``; that is absorbed and logged at debug level.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import _json
from .._types import SourceKind
from . import stepping

if TYPE_CHECKING:
    from .stream import Stream

logger = logging.getLogger(__name__)

__all__ = [
    "ChunkEncoder",
    "ChunkSource",
    "Codec",
    "ErrorEncoder",
    "OwnCancels",
    "StaticSource",
    "SteppedSource",
    "StreamBuffer",
    "StreamClosed",
    "TaskPump",
    "ThreadPump",
    "close_unstarted",
    "open_source",
]

#: Turns an item into bytes (or None: nothing to send); raising means "cannot encode".
ChunkEncoder = Callable[[Any], "bytes | None"]
#: Turns an exception from the generator into a final chunk (an SSE ``error`` event), or None.
ErrorEncoder = Callable[[BaseException], "bytes | None"]

_thread_start_lock = threading.Lock()


class StreamClosed(Exception):
    """The consumer has gone; raised inside the producer so it stops at its next ``yield``."""


class ChunkSource(ABC):
    """What a running stream pulls chunks from (the one interface ``Stream`` uses).

    Called on the event loop, in this order: :meth:`open` (may fail: the stream answers 503),
    :meth:`start`, then :meth:`pull` until it returns nothing with :attr:`finished` set, and
    :meth:`aclose` at the end whatever happened. :meth:`stop` and :meth:`wake` may come at any
    time from callbacks (the client left, a timer fired).
    """

    kind: SourceKind
    #: Nothing more will come (the producer ended, or the source was stopped).
    finished: bool = False
    #: The producer ended with an exception (its error chunk, if any, was the last one).
    failed: bool = False

    async def open(self) -> None:  # noqa: B027 - optional step
        """Prepare before the response starts (a subscription registers and queues its replay)."""

    @abstractmethod
    def start(self, stream: Stream) -> None:
        """Begin producing (start a thread or task); ``stream`` takes direct hand-offs."""

    @abstractmethod
    async def pull(self) -> list[bytes]:
        """The next chunks, waiting while there are none; ``[]`` when woken with nothing new
        (the stream then checks why) or at the end (:attr:`finished`)."""

    @abstractmethod
    def wake(self) -> None:
        """Make a waiting :meth:`pull` return now (a keep-alive is due, the stream stops)."""

    @abstractmethod
    def stop(self) -> None:
        """No more chunks are wanted: make the producer end (idempotent)."""

    async def aclose(self) -> None:  # noqa: B027 - optional step
        """Release what is left (in the stream's task, after the last pull)."""

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until the producer has really ended (a generator's ``finally`` ran)."""
        return True


class OwnCancels:
    """Cancellations of the stream's task that the stream made itself (to interrupt a generator
    where it waits, or a stalled write under a plain ASGI server), so they can be taken back
    instead of ending the request."""

    __slots__ = ("task", "count")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.count = 0

    def cancel(self) -> bool:
        if self.task is None:
            return False
        self.count += 1
        self.task.cancel()
        return True

    def take_back(self) -> bool:
        """Undo our cancellations; False if there were none (the cancellation is someone else's)."""
        task, own = self.task, self.count
        if not own or task is None:
            return False
        self.count = 0
        for _ in range(own):
            if task.cancelling():
                task.uncancel()
        return True


class Codec:
    """Items to chunks for one stream, and the log lines that say which route failed."""

    __slots__ = ("encode", "error_chunk", "where")

    def __init__(self, encode: ChunkEncoder, error_chunk: ErrorEncoder, where: str) -> None:
        self.encode = encode
        self.error_chunk = error_chunk
        #: Route and handler (``/api/x (app.py:12 progress)``), for log lines.
        self.where = where

    def chunk(self, item: Any) -> bytes | None:
        """``item`` encoded; an item that cannot be becomes an error chunk (the stream goes on)."""
        try:
            return self.encode(item)
        except Exception as exc:
            logger.error(
                "cannot encode stream item of type %s [%s]: %s%s",
                type(item).__name__,
                self.where,
                exc,
                _culprit(item),
                exc_info=exc,
            )
            return self.error_chunk(exc)

    def failure(self, exc: BaseException) -> bytes | None:
        logger.error("stream generator raised [%s]", self.where, exc_info=exc)
        return self.error_chunk(exc)


def _culprit(item: Any, path: str = "item", depth: int = 0) -> str:
    """Where inside a container the first value JSON cannot encode sits (`` (at item["a"][2]:
    set)``), or "" if the container is not the problem."""
    if depth > 20 or not isinstance(item, (dict, list, tuple)):
        return ""
    pairs = item.items() if isinstance(item, dict) else enumerate(item)
    for key, value in pairs:
        here = f"{path}[{key!r}]"
        try:
            _json.dumps(value)
        except Exception:
            inner = _culprit(value, here, depth + 1)
            return inner or f" (at {here}: {type(value).__name__})"
    return ""


# -- a bounded buffer between a producer (thread or task) and the stream ----------------------
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
            _wake(waiter)

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
                _wake(waiter)

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
            _wake_threadsafe(self._loop, waiter)

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
            _wake(waiter)

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
                _wake_threadsafe(self._loop, waiter)
            else:
                _wake(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _wake_threadsafe(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None]) -> None:
    try:
        loop.call_soon_threadsafe(_wake, waiter)
    except RuntimeError:
        pass  # the loop is closed (process shutting down): nobody is waiting any more


# -- the kinds of source ------------------------------------------------------------------------
class _Pump(ChunkSource):
    """A producer (thread or task) filling a :class:`StreamBuffer` the stream drains."""

    def __init__(self, codec: Codec, buffer: StreamBuffer) -> None:
        self._codec = codec
        self._buffer = buffer

    async def pull(self) -> list[bytes]:
        buffer = self._buffer
        chunks = await buffer.pull()
        if not chunks:
            self.finished = buffer.finished or buffer.closed
            self.failed = buffer.failed
        return chunks

    def wake(self) -> None:
        self._buffer.wake()

    def stop(self) -> None:
        self._buffer.close()
        self.finished = True


class ThreadPump(_Pump):
    """Runs a sync iterator on a dedicated thread (so ``time.sleep`` in it starves nobody)."""

    kind: SourceKind = "thread"

    def __init__(self, iterator: Iterator[Any], codec: Codec, buffer: StreamBuffer, stack_size: int) -> None:
        super().__init__(codec, buffer)
        self._iterator = iterator
        self._stack_size = stack_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None

    def start(self, stream: Stream) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        thread = threading.Thread(target=self._run, name=f"rat-stream-{stream.info.id}", daemon=True)
        # threading.stack_size is process-wide; set it only around our own start() so that
        # thousands of stream threads stay small without changing other libraries' threads.
        with _thread_start_lock:
            previous = threading.stack_size(self._stack_size) if self._stack_size else None
            try:
                thread.start()
            finally:
                if previous is not None:
                    threading.stack_size(previous)

    async def wait_closed(self, timeout: float) -> bool:
        """Wait (without blocking the loop or a worker thread) until the generator is closed."""
        if self._done is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except TimeoutError:
            return False
        return True

    def _run(self) -> None:
        buffer, codec = self._buffer, self._codec
        last: bytes | None = None
        failed = False
        try:
            for item in self._iterator:
                if buffer.closed:
                    raise StreamClosed
                chunk = codec.chunk(item)
                if chunk is not None:
                    buffer.put_blocking(chunk)
        except StreamClosed:
            pass
        except Exception as exc:
            last, failed = codec.failure(exc), True
        finally:
            _close_sync(self._iterator)
            buffer.finish(last, threaded=True, failed=failed)
            if self._done is not None and self._loop is not None:
                _wake_threadsafe(self._loop, self._done)


class TaskPump(_Pump):
    """Runs an async iterator as a task on the loop; :meth:`stop` cancels it."""

    kind: SourceKind = "task"

    def __init__(self, iterator: AsyncIterator[Any], codec: Codec, buffer: StreamBuffer) -> None:
        super().__init__(codec, buffer)
        self._iterator = iterator
        self._task: asyncio.Task[None] | None = None

    def start(self, stream: Stream) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        self._buffer.close()
        self.finished = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait_closed(self, timeout: float) -> bool:
        if self._task is None:
            return True
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        return bool(done)

    async def _run(self) -> None:
        buffer, codec = self._buffer, self._codec
        last: bytes | None = None
        failed = False
        try:
            async for item in self._iterator:
                chunk = codec.chunk(item)
                if chunk is not None:
                    await buffer.put(chunk)
        except (StreamClosed, asyncio.CancelledError):
            pass
        except Exception as exc:
            last, failed = codec.failure(exc), True
        finally:
            await _close_async(self._iterator)
            buffer.finish(last, failed=failed)


class SteppedSource(ChunkSource):
    """An async iterator stepped by the stream's own task (see :mod:`.stepping`).

    :meth:`pull` runs the generator until it waits (or ``limit`` items are made) and returns
    what it made; the next :meth:`pull` awaits, on the generator's behalf, what it waits on.
    While it does, :meth:`stop` cancels the stream's task there (taken back through
    ``cancels``), so the generator's ``finally`` runs at once.
    """

    kind: SourceKind = "task"

    def __init__(self, iterator: AsyncIterator[Any], codec: Codec, limit: int, cancels: OwnCancels) -> None:
        self._iterator = iterator
        self._codec = codec
        self._limit = limit
        self._cancels = cancels
        self._step: stepping.Step | None = None  # the generator's step, while it waits
        self._waiting = False  # pull() is awaiting inside the generator
        self.finished = False
        self.failed = False

    def start(self, stream: Stream) -> None:
        pass

    async def pull(self) -> list[bytes]:
        batch: list[bytes] = []
        if self.finished:
            return batch
        codec, limit = self._codec, self._limit
        try:
            step, self._step = self._step, None
            if step is not None:
                self._waiting = True
                try:
                    item = await stepping.finish(step)
                finally:
                    # However finish() ended, the step is over: an item, the end, or an
                    # exception the generator raised (or let through).
                    self._waiting = False
                chunk = codec.chunk(item)
                if chunk is not None:
                    batch.append(chunk)
            while len(batch) < limit:
                item, step = stepping.start_next(self._iterator)
                if step is not None:  # it waits: what it made so far goes out first
                    self._step = step
                    break
                chunk = codec.chunk(item)
                if chunk is not None:
                    batch.append(chunk)
        except StopAsyncIteration:
            self.finished = True
        except asyncio.CancelledError:
            if not self._cancels.take_back():
                raise  # not ours: the server is cancelling this request
            self.finished = True
        except Exception as exc:
            last = codec.failure(exc)
            if last is not None:
                batch.append(last)
            self.finished = self.failed = True
        return batch

    def wake(self) -> None:
        pass  # it wakes when the generator does; keep-alives are written past it meanwhile

    def stop(self) -> None:
        self.finished = True
        if self._waiting:
            self._cancels.cancel()

    async def aclose(self) -> None:
        step, self._step = self._step, None
        if step is not None:
            await stepping.abandon(step)
        await _close_async(self._iterator)
        self._cancels.take_back()


class StaticSource(ChunkSource):
    """Chunks known up front (content the handler returned whole: a list, a value)."""

    kind: SourceKind = "static"

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def start(self, stream: Stream) -> None:
        pass

    async def pull(self) -> list[bytes]:
        chunks, self._chunks = self._chunks, []
        self.finished = True
        return chunks

    def wake(self) -> None:
        pass

    def stop(self) -> None:
        self._chunks = []
        self.finished = True


def open_source(
    content: Any,
    codec: Codec,
    buffer_size: int,
    stack_size: int,
    cancels: OwnCancels,
    stepped: bool,
) -> ChunkSource:
    """The source for a response's ``content``; ``stepped``: async iterators run in the
    stream's own task (the server reports a lost client by callback)."""
    if isinstance(content, ChunkSource):
        return content
    if hasattr(content, "__aiter__"):
        iterator = content.__aiter__()
        if stepped:
            return SteppedSource(iterator, codec, buffer_size, cancels)
        return TaskPump(iterator, codec, StreamBuffer(asyncio.get_running_loop(), buffer_size))
    if _is_lazy_iterable(content):
        buffer = StreamBuffer(asyncio.get_running_loop(), buffer_size)
        return ThreadPump(iter(content), codec, buffer, stack_size)
    items = content if isinstance(content, (list, tuple)) else [content]
    chunks = [chunk for chunk in map(codec.chunk, items) if chunk is not None]
    return StaticSource(chunks)


def _is_lazy_iterable(content: Any) -> bool:
    if isinstance(content, (list, tuple, str, bytes, bytearray, dict)):
        return False
    return inspect.isgenerator(content) or hasattr(content, "__iter__")


def close_unstarted(content: Any) -> None:
    """Close a generator that will never be run (HEAD, a refused stream): its ``finally`` runs."""
    if inspect.isgenerator(content):
        _close_sync(content)
    elif isinstance(content, ChunkSource):
        content.stop()


def _close_sync(iterator: Any) -> None:
    close = getattr(iterator, "close", None)
    if close is None:
        return
    try:
        close()
    except RuntimeError as exc:
        # A ``finally: yield ...`` ignores GeneratorExit; nothing more can be sent anyway.
        logger.debug("generator did not close cleanly: %s", exc)
    except Exception:
        logger.exception("generator raised while closing")


async def _close_async(iterator: Any) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except RuntimeError as exc:
        logger.debug("async generator did not close cleanly: %s", exc)
    except asyncio.CancelledError:
        pass
    except Exception:
        logger.exception("async generator raised while closing")
