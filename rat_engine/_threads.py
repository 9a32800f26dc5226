"""The pool that runs plain (``def``) handlers off the event loop.

Why not ``loop.run_in_executor(ThreadPoolExecutor)``: under load its hop cost more than a small
handler. Every request woke its own pool thread (a burst of 64 requests woke 64 threads that
then took turns at the GIL with the loop), paid a ``concurrent.futures.Future`` plus the asyncio
future wrapping it, and one ``call_soon_threadsafe`` (a write to the loop's wake-up fd) per
result. ``ThreadPoolExecutor`` also joins its threads at exit, so one handler stuck in
``time.sleep(3600)`` kept a stopped server's process alive.

Here:

* Jobs wait in one deque. One worker is awake while jobs are waiting and takes them one after
  another, so a burst costs two GIL hand-offs (loop -> worker -> loop), not two per request.
* Results go back to the loop in batches: one wake-up per batch, asyncio futures set on the loop.
* A handler that blocks (``time.sleep``, a slow database) must not hold up the jobs behind it:
  while jobs are waiting, a watchdog on the loop checks every ``STALL_CHECK`` seconds whether a
  worker took one since the last check, and if not, wakes (or starts) another worker, up to
  ``max_workers``. So a blocked handler costs the requests queued behind it at most one check
  interval; blocking never reaches the loop.
* Workers are daemon threads started on demand, parked (not ended) when there is no work.

``submit`` keeps the ``concurrent.futures.Executor`` interface for code that wants it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["HandlerPool"]

T = TypeVar("T")

#: Seconds without a job taken, while jobs wait, before another worker is woken.
STALL_CHECK = 0.002


class _Completions:
    """Results for one event loop, handed back in batches (one wake-up of the loop per batch)."""

    __slots__ = ("done", "loop", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.done: deque[tuple[asyncio.Future[Any], bool, Any]] = deque()
        self.scheduled = False

    def put(self, future: asyncio.Future[Any], ok: bool, value: Any) -> None:
        """Worker thread. Append first, then look at ``scheduled``: a drain that has already
        cleared it will be followed by the one scheduled here, so no result is stranded."""
        self.done.append((future, ok, value))
        if not self.scheduled:
            self.scheduled = True
            try:
                self.loop.call_soon_threadsafe(self.drain)
            except RuntimeError:  # the loop is closed: nobody waits for these results any more
                self.done.clear()

    def drain(self) -> None:
        """Loop thread: clear the flag before taking results (see ``put``)."""
        self.scheduled = False
        done = self.done
        while done:
            future, ok, value = done.popleft()
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


class HandlerPool(Executor):
    """Runs plain callables on daemon threads for asyncio code (:meth:`run`), few at a time."""

    def __init__(self, max_workers: int, name: str = "rat-handler") -> None:
        self._max_workers = max(1, max_workers)
        self._name = name
        self._jobs: deque[tuple[Callable[[], Any], Any, _Completions | None]] = deque()
        # Guards the decision to park or wake a worker (so a job appended while a worker decides
        # to park is seen by one side or the other) and the thread counts.
        self._state = threading.Lock()
        self._parked: list[threading.Lock] = []
        self._threads: list[threading.Thread] = []
        self._awake = 0  # workers running or about to run jobs
        self._taken = 0  # jobs taken so far (the watchdog's measure of progress)
        self._watching: asyncio.AbstractEventLoop | None = None  # the loop the watchdog runs on
        self._shutdown = False
        self._completions: _Completions | None = None

    @property
    def threads(self) -> int:
        """Worker threads started so far."""
        return len(self._threads)

    # -- submitting ---------------------------------------------------------------------------

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``fn()`` on a worker; the returned future belongs to the running loop."""
        if self._shutdown:
            raise RuntimeError("cannot run after shutdown")
        loop = asyncio.get_running_loop()
        completions = self._completions
        if completions is None or completions.loop is not loop:
            completions = self._completions = _Completions(loop)
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.append((fn, future, completions))
        self._wake(loop)
        return future

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        future: Future[T] = Future()
        self._jobs.append(((lambda: fn(*args, **kwargs)), future, None))
        self._wake(None)
        return future

    def _wake(self, loop: asyncio.AbstractEventLoop | None) -> None:
        with self._state:
            if self._awake == 0:
                start = self._wake_one_locked()
            else:
                start = None
                # (Re)armed also when the loop it ran on is gone: a closed loop never fires it.
                watching = self._watching
                if loop is not None and (watching is None or (watching is not loop and watching.is_closed())):
                    self._watching = loop
                    loop.call_later(STALL_CHECK, self._watch, loop, self._taken)
        if start is not None:
            start.start()

    def _wake_one_locked(self) -> threading.Thread | None:
        """Wake a parked worker, or make a new one (returned, to be started outside the lock)."""
        if self._parked:
            self._awake += 1
            self._parked.pop().release()
            return None
        if len(self._threads) >= self._max_workers:
            return None
        self._awake += 1
        parker = threading.Lock()
        parker.acquire()
        thread = threading.Thread(
            target=self._work, args=(parker,), name=f"{self._name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        return thread

    def _watch(self, loop: asyncio.AbstractEventLoop, taken_then: int) -> None:
        """Loop thread, every STALL_CHECK while jobs wait: no job taken since the last look
        means every awake worker is stuck in a handler; wake another."""
        start = None
        with self._state:
            if not self._jobs or self._shutdown:
                self._watching = None
                return
            if self._taken == taken_then:
                start = self._wake_one_locked()
        if start is not None:
            start.start()
        loop.call_later(STALL_CHECK, self._watch, loop, self._taken)

    # -- the worker ---------------------------------------------------------------------------

    def _work(self, parker: threading.Lock) -> None:
        jobs = self._jobs
        while True:
            try:
                fn, future, completions = jobs.popleft()
            except IndexError:
                if not self._park(parker):
                    return
                continue
            self._taken += 1
            if completions is None:  # submit(): a concurrent.futures.Future
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:
                        future.set_exception(exc)
                continue
            try:
                value, ok = fn(), True
            except StopIteration as exc:  # an asyncio future refuses StopIteration
                value, ok = RuntimeError(f"handler raised StopIteration: {exc}"), False
            except BaseException as exc:
                value, ok = exc, False
            completions.put(future, ok, value)
            del fn, future, completions, value  # nothing of the request is held while parked

    def _park(self, parker: threading.Lock) -> bool:
        """Sleep until woken; False when the pool is shut down."""
        with self._state:
            if self._jobs:
                return True
            self._awake -= 1
            if self._shutdown:
                return False
            self._parked.append(parker)
        parker.acquire()
        return not self._shutdown

    # -- shutdown -----------------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._state:
            self._shutdown = True
            parked, self._parked = self._parked, []
        if cancel_futures:
            while True:
                try:
                    _, future, completions = self._jobs.popleft()
                except IndexError:
                    break
                if completions is None:
                    future.cancel()
                else:
                    try:
                        completions.loop.call_soon_threadsafe(future.cancel)
                    except RuntimeError:
                        pass
        for parker in parked:
            parker.release()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()
