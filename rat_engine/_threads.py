"""A thread pool whose threads never keep the process alive.

``concurrent.futures.ThreadPoolExecutor`` joins its workers at interpreter exit, so one plain
handler stuck in ``time.sleep(3600)`` would keep a stopped server's process from exiting. Plain
handlers run here instead: daemon threads, started on demand up to ``max_workers``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["DaemonThreadPool"]

T = TypeVar("T")
_STOP = object()


class DaemonThreadPool(Executor):
    def __init__(self, max_workers: int, name: str = "rat-handler") -> None:
        self._max_workers = max(1, max_workers)
        self._name = name
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        future: Future[T] = Future()
        self._work.put((future, fn, args, kwargs))
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._worker, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1 if self._idle else 0
        return future

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is _STOP:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
        if cancel_futures:
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    item[0].cancel()
        for _ in self._threads:
            self._work.put(_STOP)
        if wait:
            for thread in self._threads:
                thread.join()
