"""``request_data["disconnected"]``: a ``threading.Event`` that costs almost nothing until waited on.

Every stream has one, but only blocking (thread) generators ever *wait* on it; async streams and
most sync ones only check ``is_set()``. A real ``threading.Event`` carries a ``Condition`` with
its own lock and waiter deque (about 1 KB), so at 10,000 idle streams the flag alone would cost
10 MB. This subclass keeps the Event API (and ``isinstance(x, threading.Event)``) but creates
the condition only for the first ``wait()``.
"""

from __future__ import annotations

import threading

__all__ = ["Disconnected"]

_create_lock = threading.Lock()


class Disconnected(threading.Event):
    """Set when the stream has ended (client gone, shutdown, timeout)."""

    def __init__(self) -> None:  # no super().__init__(): the condition is made on demand
        self._flag = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._flag

    isSet = is_set  # noqa: N815 - threading.Event's legacy alias

    def set(self) -> None:
        with _create_lock:
            self._flag = True
            event = self._event
        if event is not None:
            event.set()

    def clear(self) -> None:
        with _create_lock:
            self._flag = False
            event = self._event
        if event is not None:
            event.clear()

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        with _create_lock:
            event = self._event
            if event is None:
                event = self._event = threading.Event()
                if self._flag:  # set() ran between the check above and the lock
                    event.set()
        return event.wait(timeout)

    def __repr__(self) -> str:
        return f"<Disconnected {'set' if self._flag else 'unset'}>"
