"""Sources with a producer of their own, filling a :class:`~.buffer.StreamBuffer`:

* :class:`ThreadPump`: a **sync** iterator on its own thread. ``put`` blocks while the buffer
  is full, so a slow reader throttles the generator at its ``yield`` instead of growing memory.
  When the stream stops, the next ``put`` (or the next ``yield``) sees ``closed`` and the
  generator is closed, so its ``finally`` runs. A thread cannot be interrupted while it blocks
  inside the generator: that is what ``request_data["disconnected"]`` is for.
* :class:`TaskPump`: an async iterator as a task (servers that report a lost client only
  through ``receive()``; on rat_engine's own server async iterators are stepped instead).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import queue
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._types import SourceKind
from .buffer import StreamBuffer, wake_threadsafe
from .chunk_source import ChunkSource, Codec, StreamClosed, close_async, close_sync

if TYPE_CHECKING:
    from .stream import Stream

__all__ = ["TaskPump", "ThreadPump"]

logger = logging.getLogger(__name__)

#: While more sync-generator threads than this are alive, the interpreter's switch interval is
#: raised to at least ``_MANY_THREADS_SWITCH_INTERVAL`` (and put back once at most half as many
#: are left). Why: a thread waiting for the GIL wakes every switch interval (5 ms by default) to
#: ask the holder to let go. Thousands of generator threads back from ``time.sleep`` at once
#: then wake ~200 times a second each, which takes the whole core from the thread holding the
#: GIL (the event loop among them): waits grow, more threads wait, and nothing is delivered any
#: more (3,000 seed-style clients: 0 done in 30 s; with 50 ms, all done in 12 s; issue 11).
_MANY_THREADS = 128
_MANY_THREADS_SWITCH_INTERVAL = 0.05


class _LiveThreads:
    """How many generator threads are alive, and the switch interval to put back."""

    lock = threading.Lock()
    count = 0
    restore: float | None = None  # the interval before we raised it


def _thread_born() -> None:
    with _LiveThreads.lock:
        _LiveThreads.count += 1
        if _LiveThreads.count > _MANY_THREADS and _LiveThreads.restore is None:
            previous = sys.getswitchinterval()
            if previous < _MANY_THREADS_SWITCH_INTERVAL:
                _LiveThreads.restore = previous
                sys.setswitchinterval(_MANY_THREADS_SWITCH_INTERVAL)


def _thread_gone() -> None:
    with _LiveThreads.lock:
        _LiveThreads.count -= 1
        restore = _LiveThreads.restore
        if restore is not None and _LiveThreads.count <= _MANY_THREADS // 2:
            _LiveThreads.restore = None
            # Only if nobody else changed it meanwhile (the value reads back rounded to 1 us).
            if math.isclose(sys.getswitchinterval(), _MANY_THREADS_SWITCH_INTERVAL, abs_tol=1e-6):
                sys.setswitchinterval(restore)


class _Starter:
    """Starts stream threads on a thread of its own, so the event loop never waits in
    ``Thread.start()`` (which blocks until the new thread has taken the GIL: with thousands of
    generator threads running, 1.1 s of the loop's time over 5,000 seed-style clients).

    ``threading.stack_size`` is process-wide; it is set only around our own ``start()`` so that
    thousands of stream threads stay small without changing other libraries' threads."""

    lock = threading.Lock()
    queue: queue.SimpleQueue[tuple[threading.Thread, int, Callable[[BaseException], None]]] = (
        queue.SimpleQueue()
    )
    thread: threading.Thread | None = None

    @classmethod
    def start(
        cls, thread: threading.Thread, stack_size: int, failed: Callable[[BaseException], None]
    ) -> None:
        cls.queue.put((thread, stack_size, failed))
        with cls.lock:
            if cls.thread is None or not cls.thread.is_alive():  # first use, or after a fork
                cls.thread = threading.Thread(target=cls._run, name="rat-starter", daemon=True)
                cls.thread.start()

    @classmethod
    def _run(cls) -> None:
        while True:
            thread, stack_size, failed = cls.queue.get()
            # Only this thread starts stream threads, so nothing else sets the size meanwhile.
            previous = threading.stack_size(stack_size) if stack_size else None
            try:
                thread.start()
            except BaseException as exc:
                failed(exc)
            finally:
                if previous is not None:
                    threading.stack_size(previous)
            del thread, failed  # hold nothing of a stream while waiting for the next


class _Pump(ChunkSource):
    """A producer (thread or task) filling a :class:`StreamBuffer` the stream drains."""

    __slots__ = ("_codec", "_buffer")

    def __init__(self, codec: Codec, buffer: StreamBuffer) -> None:
        super().__init__()
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

    __slots__ = ("_iterator", "_stack_size", "_loop", "_done")

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
        # The generator runs in a copy of the request's context (context variables reach it).
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(self._run,), name=f"rat-stream-{stream.info.id}", daemon=True
        )
        _thread_born()
        _Starter.start(thread, self._stack_size, self._not_started)

    def _not_started(self, exc: BaseException) -> None:
        """The starter thread could not start this stream's thread: end the stream with the
        format's error event, as if the generator had raised."""
        _thread_gone()
        logger.error("stream thread could not start [%s]: %s", self._codec.where, exc)
        self._buffer.finish(self._codec.error_chunk(exc), threaded=True, failed=True)
        if self._done is not None and self._loop is not None:
            wake_threadsafe(self._loop, self._done)

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
            try:
                close_sync(self._iterator)
                buffer.finish(last, threaded=True, failed=failed)
                if self._done is not None and self._loop is not None:
                    wake_threadsafe(self._loop, self._done)
            finally:
                _thread_gone()


class TaskPump(_Pump):
    """Runs an async iterator as a task on the loop; :meth:`stop` cancels it."""

    __slots__ = ("_iterator", "_task")

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
            await close_async(self._iterator)
            buffer.finish(last, failed=failed)
