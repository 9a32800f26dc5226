"""Publish/subscribe with replay: ``app.broadcast.publish(channel, data, event=...)`` anywhere,
``app.broadcast.subscribe(channel, last_event_id)`` in a stream.

The backend is chosen by URL: ``memory://`` (one process, the default) or ``redis://...``,
``redis+sentinel://...``, ``redis+cluster://...`` (many processes and machines; imported only
when used). Each process keeps its own local
subscribers; a message arriving from the backend is encoded once and handed to each of them.
Every message gets a per-channel monotonic id, so a client reconnecting with ``Last-Event-ID``
gets what it missed, in order, exactly once; if that is older than the history, it gets a
``resync`` event first (see docs/broadcast.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..settings import POLICIES
from .base import BroadcastBackend, BroadcastUnavailable, Message, ReplayResult
from .memory import MemoryBackend
from .redis_config import DURABILITIES, is_redis_url
from .subscription import Subscription

logger = logging.getLogger(__name__)

__all__ = ["Broadcast", "create_backend"]

T = TypeVar("T")
#: Seconds the startup check waits for the broker to answer a ping.
_STARTUP_PING_TIMEOUT = 3.0
#: How long a new subscriber waits for the broker to answer before it is told to come back.
_SUBSCRIBE_PING_TIMEOUT = 2.0


def create_backend(
    url: str, history: int, history_ttl: float | None, durability: str | None = None
) -> BroadcastBackend:
    """``memory://``, or ``redis://host:port/db`` (also ``rediss://``, ``unix://``),
    ``redis+sentinel://host:port,.../<service>/<db>``, ``redis+cluster://host:port,.../``
    (see :mod:`rat_engine.broadcast.redis_config`). ``durability``: ``"none"`` or
    ``"replicated"`` (Redis only)."""
    if durability is not None and durability not in DURABILITIES:
        raise ValueError(f"unknown broadcast durability {durability!r}; use one of {DURABILITIES}")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        if durability == "replicated":
            raise ValueError(
                "broadcast durability 'replicated' needs a Redis backend with replicas, not memory://"
            )
        return MemoryBackend(history, history_ttl)
    if is_redis_url(url):
        try:
            from .redis import RedisBackend  # optional dependency: imported only when asked for
        except ImportError as exc:
            raise RuntimeError(f"{url!r} needs the redis package: pip install 'rat_engine[redis]'") from exc

        return RedisBackend(url, history, history_ttl, durability=durability)
    raise ValueError(
        f"unknown broadcast backend URL {url!r} (use memory://, redis://, redis+sentinel:// or redis+cluster://)"
    )


class Broadcast:
    """Channels for one app in one process (``app.broadcast``).

    Args:
        url: Backend URL (``memory://`` or ``redis://...``).
        history: Messages kept per channel for replay (0: no replay).
        history_ttl: Seconds a message stays replayable (None: only the count limits it).
        max_backlog: Default per-subscriber backlog before the slow-subscriber policy applies.
        policy: Default slow-subscriber policy: ``drop_oldest``, ``disconnect`` or ``coalesce``.
        durability: ``"replicated"``: ``publish`` returns once a Redis replica has the message
            (the URL's ``?durability=`` wins over this); None or ``"none"``: it does not wait.
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        history: int = 1000,
        history_ttl: float | None = None,
        max_backlog: int = 256,
        policy: str = "drop_oldest",
        durability: str | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown slow-subscriber policy {policy!r}; use one of {POLICIES}")
        self.url = url
        self.backend = create_backend(url, history, history_ttl, durability)
        self.max_backlog = max_backlog
        self.policy = policy
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.publish_failures = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: asyncio.Future[None] | None = None
        self._subscribers: dict[str, set[Subscription]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def is_distributed(self) -> bool:
        """False for ``memory://``: messages never leave this process."""
        return not isinstance(self.backend, MemoryBackend)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect the backend on the running loop (the app does this at startup; idempotent)."""
        loop = asyncio.get_running_loop()
        if self._started is not None and self._loop is loop:
            await asyncio.shield(self._started)
            return
        self._loop = loop
        self._started = loop.create_future()
        try:
            await self.backend.connect(self._deliver)
            if self.is_distributed:
                await self._check_reachable()
        except BaseException as exc:
            self._started.set_exception(exc)
            self._started.exception()  # retrieved: later awaiters re-raise it
            self._started = None
            raise
        self._started.set_result(None)

    async def _check_reachable(self) -> None:
        """A broker that is down at startup is said at startup, not at the first publish."""
        try:
            await asyncio.wait_for(self.backend.ping(), _STARTUP_PING_TIMEOUT)
        except (BroadcastUnavailable, TimeoutError) as exc:
            logger.warning(
                "broadcast backend at startup: %s; publishing answers 503 until it is reachable, "
                "and subscribers get messages once it is back",
                exc if str(exc) else f"no answer within {_STARTUP_PING_TIMEOUT:.0f}s",
            )

    async def check_reachable(self) -> None:
        """Raise :class:`BroadcastUnavailable` when the broker does not answer within
        ``_SUBSCRIBE_PING_TIMEOUT`` seconds (a no-op for in-process backends). A subscriber
        opened while it is down would otherwise get a stream that stays silent."""
        await self.start()
        if not self.is_distributed:
            return  # in-process: always there (and no wait_for task per subscriber)
        try:
            await asyncio.wait_for(self.backend.ping(), _SUBSCRIBE_PING_TIMEOUT)
        except TimeoutError:
            raise BroadcastUnavailable(
                f"the broker did not answer within {_SUBSCRIBE_PING_TIMEOUT:.0f}s"
            ) from None

    async def stop(self) -> None:
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                subscription.close()
        self._subscribers.clear()
        if self._started is not None:
            self._started = None
            await self.backend.disconnect()
        for task in list(self._tasks):
            task.cancel()

    # -- publishing ---------------------------------------------------------------------------
    async def apublish(self, channel: str, data: Any, event: str | None = None) -> str:
        """Publish from async code; returns the message id."""
        await self.start()
        try:
            message = await self.backend.publish(channel, event, data)
        except BroadcastUnavailable:
            self.publish_failures += 1
            raise
        self.published += 1
        return message.id

    def publish(self, channel: str, data: Any, event: str | None = None) -> str | None:
        """Publish from anywhere: a worker thread (waits, returns the id), or sync code on
        the event loop itself (scheduled, returns None; use ``await apublish`` there).

        Raises:
            RuntimeError: the app is not serving yet, so there is no loop to publish on.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("app.broadcast is not running: publish once the app is serving")
        if _running_loop() is loop:
            self._spawn(self.apublish(channel, data, event))
            return None
        return self.run_coroutine(self.apublish(channel, data, event))

    # -- subscribing --------------------------------------------------------------------------
    def subscribe(
        self,
        channel: str,
        last_event_id: str | None = None,
        *,
        max_backlog: int | None = None,
        policy: str | None = None,
        coalesce_key: Callable[[Message], Any] | None = None,
    ) -> Subscription:
        """A subscription to ``channel``; replay starts after ``last_event_id`` (pass
        ``request_data["last_event_id"]``). It registers when first consumed and
        unsubscribes when the stream ends."""
        return Subscription(
            self,
            channel,
            last_event_id,
            max_backlog if max_backlog is not None else self.max_backlog,
            policy or self.policy,
            coalesce_key,
        )

    def stats(self) -> dict[str, Any]:
        return {
            "backend": self.url.split("://", 1)[0],
            "channels": len(self._subscribers),
            "subscribers": sum(len(s) for s in self._subscribers.values()),
            "published_total": self.published,
            "delivered_total": self.delivered,
            "dropped_total": self.dropped,
            "publish_failures_total": self.publish_failures,
            # Redis: topology, node (the primary in use), durability, reconnects_total,
            # failovers_total, last_interruption_seconds.
            **self.backend.stats(),
        }

    # -- used by Subscription -----------------------------------------------------------------
    async def _attach(self, subscription: Subscription) -> None:
        await self.start()
        subscribers = self._subscribers.get(subscription.channel)
        if subscribers is None:
            subscribers = self._subscribers[subscription.channel] = set()
            subscribers.add(subscription)
            await self.backend.subscribe(subscription.channel)
        else:
            subscribers.add(subscription)

    def _detach(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.channel)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.channel]
            if self._loop is not None and _running_loop() is self._loop:
                self._spawn(self._unsubscribe_if_unused(subscription.channel))

    async def _unsubscribe_if_unused(self, channel: str) -> None:
        if channel not in self._subscribers:
            await self.backend.unsubscribe(channel)

    async def replay(self, channel: str, last_event_id: str) -> ReplayResult:
        return await self.backend.replay(channel, last_event_id)

    def sort_key(self, message_id: str) -> tuple[int, ...] | None:
        return self.backend.sort_key(message_id)

    def _deliver(self, message: Message, catch_up: bool = False) -> None:
        subscribers = self._subscribers.get(message.channel)
        if not subscribers:
            return
        for subscription in tuple(subscribers):
            subscription.deliver(message, catch_up)
        self.delivered += len(subscribers)

    # -- loop plumbing --------------------------------------------------------------------------
    def run_coroutine(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the broadcast's loop from another thread and wait for its result."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("app.broadcast is not running yet")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("broadcast operation timed out") from None

    def call_soon(self, callback: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if _running_loop() is loop:
            callback()
        else:
            loop.call_soon_threadsafe(callback)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("broadcast operation failed", exc_info=task.exception())


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
