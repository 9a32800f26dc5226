"""How live messages keep reaching a process across Redis outages and failovers: the reader.

One task per process reads the live feed (:mod:`.redis_live`) and hands each message to the
hub, once and in order per channel (ids are compared, so the gap filling below and live
delivery may overlap). When Redis confirms a subscription, the reader delivers what the stream
holds after the last id this process delivered (``XRANGE``): nothing published while the
``SUBSCRIBE`` was in flight, or while the connection was down, is lost.

When the connection is lost it closes the feed, drops the pooled connections and opens a new
feed, with backoff (0.1 s doubling to 2 s; 0.5 s at most behind sentinels or a cluster, where
the next attempt may find the promoted replica). The new feed goes to whichever primary the
sentinels or the cluster name now; if that is another node, the reconnect is a failover:
counted, and logged with how long live delivery was interrupted (from the loss to every channel
being subscribed again with its gap filled). Behind sentinels or on a cluster the reader also
asks every 2 s who the primary is (the sentinels; the cluster's slot map), and leaves a primary
that is not one any more even if its connection stayed open (a partition, a frozen machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import ConnectionError as RedisConnectionError

from .base import Deliver, Message
from .redis_clients import UNAVAILABLE, RedisClients, during_outage, suppress_outage
from .redis_live import LiveFeed, PubSubFeed, ShardedFeed

logger = logging.getLogger(__name__)

__all__ = ["LiveReader"]

#: Seconds between two questions to the sentinels about who the primary is.
PRIMARY_CHECK_INTERVAL = 2.0
#: Seconds one such question may take (a frozen node must not hold it up).
PRIMARY_CHECK_TIMEOUT = 1.0


class LiveReader:
    """Live delivery for one :class:`~.redis.RedisBackend` (see the module docstring).

    Args:
        clients: The redis-py clients.
        keys: ``channel -> live key`` and ``live key -> channel``.
        decode: ``(channel, id, payload) -> Message`` for a live message.
        entries_after: The stored messages of a channel after an id, oldest first.
        deliver: The hub's delivery callback.
    """

    def __init__(
        self,
        clients: RedisClients,
        keys: tuple[Callable[[str], str], Callable[[str], str]],
        decode: Callable[[str, str, str], Message],
        entries_after: Callable[[str, str], Awaitable[list[Message]]],
        deliver: Deliver,
    ) -> None:
        self._clients = clients
        self._live_key, self._channel_of = keys
        self._decode = decode
        self._entries_after = entries_after
        self._deliver = deliver
        self._sharded = clients.target.kind == "cluster"
        self._max_delay = 2.0 if clients.target.kind == "single" else 0.5
        self._feed: LiveFeed | None = None
        self._channels: set[str] = set()
        #: Per channel, the id (and its sort key) of the last message delivered to this process.
        self._last_seen: dict[str, tuple[str, tuple[int, ...]]] = {}
        #: Channels of the feed's last (re)open whose subscription Redis has not confirmed yet.
        self._unconfirmed: set[str] = set()
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        #: The watcher's question in flight (its own task: see ``stop``).
        self._check: asyncio.Future[str | None] | None = None
        #: Set by the watcher: the primary is another node now (the reader reconnects).
        self._moved: str | None = None
        #: The server the feed reads from ("host:port"; a cluster's primaries), as of its last open.
        self.node = ""
        self.reconnects = 0
        self.failovers = 0
        self.last_interruption: float | None = None

    @property
    def connected(self) -> bool:
        return self._feed is not None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._read_forever())
        if self._clients.target.kind != "single":
            self._watch = loop.create_task(self._watch_primary())

    async def stop(self) -> None:
        for task in (self._watch, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._task = self._watch = None
        # A question to the sentinels in flight is let finish (its own timeout bounds it), not
        # cancelled: why, redis-py's ConnectionPool.release() awaits the disconnect of a
        # connection whose command was cut short before putting it back; cancelled there, the
        # connection is in no pool any more and stays open (a ResourceWarning once seen in CI).
        check, self._check = self._check, None
        if check is not None:
            await asyncio.wait({check}, timeout=PRIMARY_CHECK_TIMEOUT + 1.0)
            if not check.done():
                check.cancel()  # past its own timeout: not a question to redis-py any more
            elif not check.cancelled():
                check.exception()  # retrieved: an answer no one waits for any more
        await self._close_feed()

    # -- channels -----------------------------------------------------------------------------------
    async def add(self, channel: str, after: tuple[str, tuple[int, ...]]) -> None:
        """Deliver ``channel``'s live messages, and what is stored after ``after`` (id, key)."""
        self._last_seen.setdefault(channel, after)
        self._channels.add(channel)
        async with self._lock:
            if self._feed is not None:
                with suppress_outage():
                    await self._feed.add(self._live_key(channel))
        self._wanted.set()

    async def remove(self, channel: str) -> None:
        self._channels.discard(channel)
        self._last_seen.pop(channel, None)
        async with self._lock:
            if self._feed is not None:
                with suppress_outage():
                    await self._feed.remove(self._live_key(channel))

    # -- the loop ---------------------------------------------------------------------------------------
    async def _read_forever(self) -> None:
        delay = 0.1
        lost_at: float | None = None
        lost_node = ""
        while True:
            try:
                if not self._channels:
                    self._wanted.clear()
                    await self._wanted.wait()
                if self._feed is None:
                    await self._open_feed()
                assert self._feed is not None
                if self._moved is not None:
                    raise RedisConnectionError(f"the primary is {self._moved} now")
                event = await self._feed.next(timeout=1.0)
                if event is None:
                    continue
                kind, key, data = event
                channel = self._channel_of(key)
                if kind == "message":
                    message_id, _, payload = data.partition(" ")
                    self._deliver_once(self._decode(channel, message_id, payload))
                else:
                    await self._fill_gap(channel)
                    self._unconfirmed.discard(channel)
                if lost_at is not None and not self._unconfirmed & self._channels:
                    # Every channel is subscribed again and its gap filled: delivery is back.
                    self._recovered(lost_at, lost_node)
                    lost_at = None
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not during_outage(exc):
                    logger.exception("redis broadcast reader failed; restarting it")
                    await self._start_afresh()
                    await asyncio.sleep(delay)
                    continue
                if lost_at is None:
                    lost_at = time.monotonic()
                    # The server the feed read from; if it never connected, the one last reached.
                    lost_node = self.node or self._clients.node()
                    logger.warning(
                        "redis broadcast connection lost (%s: %s); reconnecting",
                        lost_node or self._clients.target.describe(),
                        exc,
                    )
                await self._start_afresh()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_delay)

    def _recovered(self, lost_at: float, lost_node: str) -> None:
        took = time.monotonic() - lost_at
        self.reconnects += 1
        self.last_interruption = took
        if lost_node and self.node and lost_node != self.node:
            self.failovers += 1
            logger.warning(
                "redis broadcast failover: primary %s -> %s; live delivery interrupted for %.2fs "
                "(what was published meanwhile came from the stream)",
                lost_node,
                self.node,
                took,
            )
        else:
            logger.warning("redis broadcast reconnected after %.1fs", took)

    async def _open_feed(self) -> None:
        async with self._lock:
            client = self._clients.client
            feed: LiveFeed = ShardedFeed(client) if self._sharded else PubSubFeed(client)
            try:
                await feed.open(self._live_key(c) for c in self._channels)
            except BaseException:
                await feed.close()
                raise
            self._feed = feed
            self._unconfirmed = set(self._channels)
            # A cluster's identity is its set of primaries (a failover replaces one of them);
            # otherwise the server the feed reads from.
            self.node = (self._clients.node() if self._sharded else feed.node()) or self.node
            self._moved = None

    async def _watch_primary(self) -> None:
        """Behind sentinels or on a cluster: every few seconds, ask who is primary now; if the
        feed reads from a node that is not any more (its connection may be open and silent: a
        partition, a frozen machine), tell the reader to reconnect. Runs beside the reader, so
        a slow answer never holds up delivery."""
        while True:
            await asyncio.sleep(PRIMARY_CHECK_INTERVAL)
            if self._feed is None or self._moved is not None:
                continue
            node = self.node
            # Its own task, shielded: stop() cancels this loop, never the question in flight.
            check = self._check = asyncio.ensure_future(
                asyncio.wait_for(self._clients.primary_now(), PRIMARY_CHECK_TIMEOUT)
            )
            try:
                named = await asyncio.shield(check)
            except (TimeoutError, *UNAVAILABLE):
                continue  # no answer is no news: keep the connection that works
            except Exception:
                logger.exception("redis broadcast: asking who the primary is failed")
                continue
            if named and node and named != node and self._feed is not None and self.node == node:
                gone = sorted(set(node.split(",")) - set(named.split(",")))
                if gone:
                    self._clients.suspect = gone[0]  # may still accept connections, then hang
                self._moved = named

    async def _start_afresh(self) -> None:
        await self._close_feed()
        # Pooled connections from before the outage are dead (or lead to a replaced primary).
        await self._clients.reset()

    async def _close_feed(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            await feed.close()

    # -- delivery -------------------------------------------------------------------------------------
    async def _fill_gap(self, channel: str) -> None:
        """Deliver what the stream holds after the last id this process delivered."""
        last = self._last_seen.get(channel)
        if channel not in self._channels or last is None:
            return
        for message in await self._entries_after(channel, last[0]):
            self._deliver_once(message, catch_up=True)

    def _deliver_once(self, message: Message, catch_up: bool = False) -> None:
        last = self._last_seen.get(message.channel)
        if last is not None and message.sort_key <= last[1]:
            return  # already delivered (gap filling overlaps live delivery)
        self._last_seen[message.channel] = (message.id, message.sort_key)
        self._deliver(message, catch_up)
