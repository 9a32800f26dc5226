"""``memory://``: one process, no dependency. History is a bounded deque per channel."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .base import BroadcastBackend, Deliver, Message, ReplayResult

__all__ = ["MemoryBackend"]


class _Channel:
    __slots__ = ("last_id", "history")

    def __init__(self, history: int) -> None:
        self.last_id = 0
        self.history: deque[tuple[float, Message]] = deque(maxlen=history or None)


class MemoryBackend(BroadcastBackend):
    """Args: history (events kept per channel), history_ttl (seconds; None: no age limit)."""

    def __init__(self, history: int = 1000, history_ttl: float | None = None) -> None:
        self.history = history
        self.history_ttl = history_ttl
        self._channels: dict[str, _Channel] = {}
        self._deliver: Deliver | None = None

    async def connect(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def disconnect(self) -> None:
        self._deliver = None

    async def publish(self, channel: str, event: str | None, data: Any) -> Message:
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(self.history)
        state.last_id += 1
        message = Message(channel, str(state.last_id), event, data, (state.last_id,))
        if self.history:
            now = time.monotonic()
            state.history.append((now, message))
            self._expire(state, now)
        if self._deliver is not None:
            self._deliver(message)
        return message

    def _expire(self, state: _Channel, now: float) -> None:
        if self.history_ttl is None:
            return
        while state.history and now - state.history[0][0] > self.history_ttl:
            state.history.popleft()

    async def subscribe(self, channel: str) -> None:
        return None  # every published message is delivered locally anyway

    async def unsubscribe(self, channel: str) -> None:
        return None

    async def replay(self, channel: str, last_event_id: str) -> ReplayResult:
        key = self.sort_key(last_event_id)
        state = self._channels.get(channel)
        if key is None:
            return ReplayResult([], True)
        last = key[0]
        if state is None:
            return ReplayResult([], last != 0)
        self._expire(state, time.monotonic())
        if last > state.last_id:
            return ReplayResult([], True)  # an id from before a restart: history is gone
        messages = [m for _, m in state.history if m.sort_key[0] > last]
        oldest_kept = messages[0].sort_key[0] if messages else state.last_id + 1
        return ReplayResult(messages, oldest_kept > last + 1)

    @staticmethod
    def sort_key(message_id: str) -> tuple[int, ...] | None:
        try:
            value = int(message_id)
        except (TypeError, ValueError):
            return None
        return (value,) if value >= 0 else None
