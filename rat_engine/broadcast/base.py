"""The backend contract (a tiny ABC) and the message every backend delivers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

from ..sse.event import PreEncoded, SSEEvent

__all__ = ["BroadcastBackend", "BroadcastNotReplicated", "BroadcastUnavailable", "Message", "ReplayResult"]


class Message(PreEncoded):
    """One published event on one channel.

    ``id`` is assigned by the backend and increases monotonically per channel; it is the SSE
    ``id:`` a browser echoes as ``Last-Event-ID``. The SSE frame is encoded once and shared by
    every subscriber of the process.
    """

    __slots__ = ("channel", "id", "event", "data", "_frame", "sort_key")

    def __init__(
        self, channel: str, id: str, event: str | None, data: Any, sort_key: tuple[int, ...]
    ) -> None:
        self.channel = channel
        self.id = id
        self.event = event
        self.data = data
        self.sort_key = sort_key
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = SSEEvent(self.data, event=self.event, id=self.id).encode()
        return self._frame

    def __repr__(self) -> str:
        return f"Message(channel={self.channel!r}, id={self.id!r}, event={self.event!r}, data={self.data!r})"


class ReplayResult:
    """Messages after a ``Last-Event-ID``; ``gap`` is True when some were already dropped
    from history (or the id is unknown), so the client must resynchronise."""

    __slots__ = ("messages", "gap")

    def __init__(self, messages: list[Message], gap: bool) -> None:
        self.messages = messages
        self.gap = gap


class Deliver(Protocol):
    """Hands a message to this process's subscribers of its channel. ``catch_up=True``: one of
    a burst a backend fills in after a reconnect; like a replay it is bounded by the history, so
    a subscriber's backlog bound does not drop it (a failover's gap can exceed the backlog)."""

    def __call__(self, message: Message, catch_up: bool = False) -> None: ...


class BroadcastUnavailable(ConnectionError):
    """The broker cannot be reached: the message was not published. At the HTTP edge it is a
    503 with ``Retry-After`` (and one log line), so a publishing route needs no handler for it.
    Behind Redis Sentinel it is also what a publish raises, within a second or two, while no
    primary is known (between a primary's death and a replica's promotion)."""


class BroadcastNotReplicated(BroadcastUnavailable):
    """``durability="replicated"``: the primary stored the message (live subscribers may have it
    already) but no replica confirmed it in time, so a failover could lose it. The publish
    counts as failed; publishing it again makes a second message with a new id."""


class BroadcastBackend(ABC):
    """Moves messages between processes and keeps per-channel history.

    All methods run on the application's event loop. ``deliver`` (given to :meth:`connect`)
    must be called on that loop for every live message of a subscribed channel.
    """

    @abstractmethod
    async def connect(self, deliver: Deliver) -> None: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    async def publish(self, channel: str, event: str | None, data: Any) -> Message: ...

    @abstractmethod
    async def subscribe(self, channel: str) -> None:
        """Start delivering live messages of ``channel`` to this process."""

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None: ...

    async def ping(self) -> None:  # noqa: B027 - in-process backends are always there
        """Raise :class:`BroadcastUnavailable` when the broker cannot be reached."""

    @abstractmethod
    async def replay(self, channel: str, last_event_id: str) -> ReplayResult:
        """History of ``channel`` after ``last_event_id``, oldest first."""

    def stats(self) -> dict[str, Any]:
        """Broker figures for ``app.stats()["broadcast"]`` (none for in-process backends)."""
        return {}

    @staticmethod
    @abstractmethod
    def sort_key(message_id: str) -> tuple[int, ...] | None:
        """Order of ids within a channel; None for an id this backend never issues."""
