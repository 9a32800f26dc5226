"""Move items from a user's generator into a bounded buffer that the response writer drains.

Theory of operation:

* One :class:`StreamBuffer` per stream: a list of encoded chunks with a size cap. The writer
  (on the event loop) takes everything queued at once, so a fast producer is coalesced into
  large writes while a lone event still goes out immediately.
* A **sync** iterator runs on its own thread (:class:`ThreadPump`). ``put`` blocks while the
  buffer is full, so a slow reader throttles the generator at its ``yield`` instead of growing
  memory. When the stream stops (client gone, shutdown, timeout) the next ``put`` (or the next
  ``yield``) sees ``closed`` and the pump calls ``close()`` on the generator, so its ``finally``
  runs. A thread cannot be interrupted while it blocks inside the generator, which is why the
  stream also exposes a ``disconnected`` flag that blocking code can check.
* An **async** iterator runs as a task on the loop (:class:`TaskPump`); stopping cancels the task,
  so the generator's ``finally`` runs at once.
* The seed's ``finally: yield ...`` pattern makes ``close()`` raise ``RuntimeError`` ("generator
  ignored GeneratorExit"); that is absorbed and logged at debug level.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ..sse.event import error_event

logger = logging.getLogger(__name__)

__all__ = ["StreamBuffer", "StreamClosed", "TaskPump", "ThreadPump", "describe_error"]

#: Turns an item into bytes (or None: nothing to send); raising means "cannot encode".
ChunkEncoder = Callable[[Any], "bytes | None"]
#: Turns an exception from the generator into a final chunk (an SSE ``error`` event), or None.
ErrorEncoder = Callable[[BaseException], "bytes | None"]

_thread_start_lock = threading.Lock()


class StreamClosed(Exception):
    """The consumer has gone; raised inside the producer so it stops at its next ``yield``."""


def describe_error(exc: BaseException, expose: bool) -> str:
    """The message a client sees for ``exc``: its text only when errors are exposed (debug)."""
    if expose:
        return f"{type(exc).__name__}: {exc}"
    return "Internal Server Error"


def sse_error_encoder(expose: bool) -> ErrorEncoder:
    return lambda exc: error_event(describe_error(exc, expose))


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

    def arm(self, waiter: asyncio.Future[None]) -> bool:
        """Have the producer wake ``waiter`` on its next chunk; False if there is already news."""
        with self._lock:
            if self._items or self.finished or self.closed:
                return False
            self._consumer = waiter
            return True

    def disarm(self) -> None:
        with self._lock:
            self._consumer = None

    def close(self) -> None:
        """The consumer is gone: wake and stop every producer."""
        with self._lock:
            self.closed = True
            self._items.clear()
            if self._not_full is not None:
                self._not_full.notify_all()
            producer, self._producer = self._producer, None
        if producer is not None and not producer.done():
            producer.set_result(None)

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

    def put_nowait(self, chunk: bytes) -> None:
        """Append without a size check (content the handler returned whole, e.g. a list)."""
        with self._lock:
            self._items.append(chunk)

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


class ThreadPump:
    """Runs a sync iterator on a dedicated thread (so ``time.sleep`` in it starves nobody)."""

    def __init__(
        self,
        iterator: Iterator[Any],
        encode: ChunkEncoder,
        on_error: ErrorEncoder,
        buffer: StreamBuffer,
        name: str,
        stack_size: int,
    ) -> None:
        self._iterator = iterator
        self._encode = encode
        self._on_error = on_error
        self._buffer = buffer
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stack_size = stack_size
        self._done: asyncio.Future[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._done = loop.create_future()
        # threading.stack_size is process-wide; set it only around our own start() so that
        # thousands of stream threads stay small without changing other libraries' threads.
        with _thread_start_lock:
            previous = threading.stack_size(self._stack_size) if self._stack_size else None
            try:
                self._thread.start()
            finally:
                if previous is not None:
                    threading.stack_size(previous)

    def stop(self) -> None:
        self._buffer.close()

    async def wait(self, timeout: float) -> bool:
        """Wait (without blocking the loop or a worker thread) until the generator is closed."""
        if self._done is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except TimeoutError:
            return False
        return True

    def _run(self) -> None:
        buffer = self._buffer
        last: bytes | None = None
        failed = False
        try:
            for item in self._iterator:
                if buffer.closed:
                    raise StreamClosed
                chunk = _encode_or_error(self._encode, self._on_error, item)
                if chunk is not None:
                    buffer.put_blocking(chunk)
        except StreamClosed:
            pass
        except Exception as exc:
            logger.error("stream generator raised", exc_info=exc)
            last, failed = self._on_error(exc), True
        finally:
            _close_sync(self._iterator)
            buffer.finish(last, threaded=True, failed=failed)
            if self._done is not None:
                _wake_threadsafe(self._loop, self._done)


class TaskPump:
    """Runs an async iterator as a task on the loop; :meth:`stop` cancels it."""

    def __init__(
        self,
        iterator: AsyncIterator[Any],
        encode: ChunkEncoder,
        on_error: ErrorEncoder,
        buffer: StreamBuffer,
    ) -> None:
        self._iterator = iterator
        self._encode = encode
        self._on_error = on_error
        self._buffer = buffer
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        self._buffer.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait(self, timeout: float) -> bool:
        if self._task is None:
            return True
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        return bool(done)

    async def _run(self) -> None:
        buffer = self._buffer
        last: bytes | None = None
        failed = False
        try:
            async for item in self._iterator:
                chunk = _encode_or_error(self._encode, self._on_error, item)
                if chunk is not None:
                    await buffer.put(chunk)
        except (StreamClosed, asyncio.CancelledError):
            pass
        except Exception as exc:
            logger.error("stream generator raised", exc_info=exc)
            last, failed = self._on_error(exc), True
        finally:
            await _close_async(self._iterator)
            buffer.finish(last, failed=failed)


def _encode_or_error(encode: ChunkEncoder, on_error: ErrorEncoder, item: Any) -> bytes | None:
    try:
        return encode(item)
    except Exception as exc:
        # One bad item must not kill the stream: report it and keep going.
        logger.error("cannot encode stream item of type %s", type(item).__name__, exc_info=exc)
        return on_error(exc)


def _close_sync(iterator: Any) -> None:
    close = getattr(iterator, "close", None)
    if close is None:
        return
    try:
        close()
    except RuntimeError as exc:
        # The seed's `finally: yield ...` ignores GeneratorExit; nothing more can be sent anyway.
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
