"""How live messages reach one process: the subscriptions it holds on Redis.

* :class:`PubSubFeed`: one connection, ``SUBSCRIBE`` (one Redis, or the primary that the
  sentinels name).
* :class:`ShardedFeed`: Redis Cluster's sharded pub/sub, ``SSUBSCRIBE`` on the primary that owns
  each channel's slot (redis-py's ``ClusterPubSub`` routes them), one connection per primary
  that has subscribed channels, each read by its own task.

Either way the reader sees ``("message", key, data)`` for a live message and
``("subscribed", key, "")`` when Redis confirms a subscription (the moment to fill the gap from
the stream). A lost connection is raised by :meth:`LiveFeed.next`; the caller closes the
feed and opens a new one: resubscribing is its business, not redis-py's.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

__all__ = ["LiveEvent", "LiveFeed", "PubSubFeed", "ShardedFeed"]

#: ``(kind, key, data)``: kind is ``"message"`` or ``"subscribed"``.
LiveEvent = tuple[str, str, str]

_KINDS = {"message": "message", "smessage": "message", "subscribe": "subscribed", "ssubscribe": "subscribed"}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _event(raw: dict[str, Any] | None) -> LiveEvent | None:
    if raw is None:
        return None
    kind = _KINDS.get(_text(raw.get("type")))
    if kind is None:
        return None
    data = raw.get("data")
    return kind, _text(raw["channel"]), _text(data) if kind == "message" else ""


class LiveFeed(ABC):
    """The live subscriptions of one process (see the module docstring)."""

    @abstractmethod
    async def open(self, keys: Iterable[str]) -> None:
        """Connect and subscribe to ``keys``."""

    @abstractmethod
    async def add(self, key: str) -> None: ...

    @abstractmethod
    async def remove(self, key: str) -> None: ...

    @abstractmethod
    async def next(self, timeout: float) -> LiveEvent | None:
        """The next event, or None after ``timeout`` seconds; raises when a connection is lost."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def node(self) -> str:
        """The server(s) this feed reads from, ``host:port`` (comma-separated for a cluster)."""


class PubSubFeed(LiveFeed):
    """``SUBSCRIBE`` on one connection of ``client`` (a plain or a sentinel-managed client)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._pubsub: Any = None

    async def open(self, keys: Iterable[str]) -> None:
        self._pubsub = self._client.pubsub()
        wanted = sorted(keys)
        if wanted:
            await self._pubsub.subscribe(*wanted)

    async def add(self, key: str) -> None:
        await self._pubsub.subscribe(key)

    async def remove(self, key: str) -> None:
        await self._pubsub.unsubscribe(key)

    async def next(self, timeout: float) -> LiveEvent | None:
        if self._pubsub.connection is None:  # opened without channels: nothing to read yet
            await asyncio.sleep(timeout)
            return None
        return _event(await self._pubsub.get_message(timeout=timeout))

    async def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def node(self) -> str:
        connection = getattr(self._pubsub, "connection", None)
        if connection is None:
            return ""
        path = getattr(connection, "path", None)
        return str(path) if path else f"{connection.host}:{connection.port}"


class ShardedFeed(LiveFeed):
    """``SSUBSCRIBE`` through redis-py's ``ClusterPubSub``: each key on the primary of its slot."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self._pubsub: Any = None
        self._queue: asyncio.Queue[LiveEvent | BaseException] = asyncio.Queue()
        self._pumps: dict[str, asyncio.Task[None]] = {}

    async def open(self, keys: Iterable[str]) -> None:
        self._pubsub = self._cluster.pubsub()
        for key in sorted(keys):
            await self._pubsub.ssubscribe(key)
        self._start_pumps()

    async def add(self, key: str) -> None:
        try:
            await self._pubsub.ssubscribe(key)
        except Exception as exc:
            self._queue.put_nowait(exc)  # the reader starts over with every channel
            raise
        self._start_pumps()

    async def remove(self, key: str) -> None:
        await self._pubsub.sunsubscribe(key)

    async def next(self, timeout: float) -> LiveEvent | None:
        self._start_pumps()  # a topology refresh may have moved channels to another primary
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        pumps, self._pumps = self._pumps, {}
        for task in pumps.values():
            task.cancel()
        for task in pumps.values():
            with contextlib.suppress(BaseException):
                await task
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def node(self) -> str:
        if self._pubsub is None:
            return ""
        return ",".join(sorted(self._pubsub.node_pubsub_mapping))

    def _start_pumps(self) -> None:
        if self._pubsub is None:
            return
        for name, node_pubsub in list(self._pubsub.node_pubsub_mapping.items()):
            task = self._pumps.get(name)
            if task is None or task.done():
                self._pumps[name] = asyncio.get_running_loop().create_task(self._pump(node_pubsub))

    async def _pump(self, node_pubsub: Any) -> None:
        """Read one primary's shard channels into the queue (an error ends it, queued too)."""
        try:
            while True:
                event = _event(await node_pubsub.get_message(timeout=1.0))
                if event is not None:
                    self._queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._queue.put_nowait(exc)
