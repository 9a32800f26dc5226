"""``redis://``, ``redis+sentinel://``, ``redis+cluster://``: many processes and machines share
channels through Redis (or Valkey). The URL forms are in :mod:`.redis_config`.

Design:

* History and ids live in a Redis **Stream** per channel (``XADD`` with exact ``MAXLEN`` and,
  with a TTL, ``MINID``: approximate trimming would keep whole blocks past the configured
  history). Ids are stream ids (``<ms>-<seq>``): monotonic per channel, also across Redis
  restarts and failovers that lost data (they are time based; the machines' clocks must agree).
* Live delivery is **pub/sub**: publishing is one Lua script (``XADD`` then ``PUBLISH`` of
  ``"<id> <payload>"``), so the live copy and the stored copy carry the same id, atomically.
  On a Cluster the stream and the live channel of a channel share a hash slot (``{channel}``
  in both keys) and the script uses ``SPUBLISH`` (sharded pub/sub, :mod:`.redis_live`).
* Each process holds one live feed and subscribes to the channels its local clients use.
  Before subscribing it notes the stream's last id; when Redis confirms the subscription the
  reader delivers anything stored after that id (``XRANGE``), so nothing published while the
  ``SUBSCRIBE`` was in flight is lost. The same happens after a reconnect (backoff 0.1 s
  doubling to 2 s, 0.5 s behind sentinels or a cluster; stale pooled connections dropped):
  subscribers resume without duplicates and without losing what Redis kept. Behind sentinels
  the reconnect goes to whichever primary they name, so a failover is a reconnect to another
  node: it is counted and logged with how long live delivery was interrupted. The sentinels
  are also asked every few seconds, so a primary that was replaced while its connection stayed
  open is left too.
* ``durability="replicated"``: the script and ``WAIT 1 <timeout>`` go out together on one
  connection; ``publish`` returns once a replica has the message, else raises
  :class:`BroadcastNotReplicated`. Without it Redis replicates asynchronously: a failover can
  lose what the old primary acknowledged last (docs/scaling.md).
* Replay for ``Last-Event-ID`` is ``XRANGE`` after that id. If the id is no longer an entry of
  the stream (trimmed away, or never issued because Redis lost its data), the replay reports a
  gap and the client gets ``resync``: conservative, never a silent loss.
* Publishing while Redis (or any primary) is unreachable raises ``BroadcastUnavailable`` (a
  ``ConnectionError``) in the publisher, a 503 at the HTTP edge; nothing crashes. A publish is
  never retried by redis-py: a retry after a lost reply could publish the message twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import _json
from .base import (
    BroadcastBackend,
    BroadcastNotReplicated,
    BroadcastUnavailable,
    Deliver,
    Message,
    ReplayResult,
)
from .redis_clients import RedisClients
from .redis_config import parse_target, safe_url
from .redis_live import LiveFeed, PubSubFeed, ShardedFeed

logger = logging.getLogger(__name__)

__all__ = ["RedisBackend", "safe_url"]

_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'p', ARGV[2])
if ARGV[3] ~= '' then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3]) end
redis.call(ARGV[4], KEYS[2], id .. ' ' .. ARGV[2])
return id
"""
_DISCONNECTS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
#: Also "the broker cannot take this publish now": a read-only replica, a cluster without a
#: primary for the slot (ClusterDownError, SlotNotCoveredError, ...).
_UNAVAILABLE = (*_DISCONNECTS, ReadOnlyError, RedisClusterException)
#: Seconds between two questions to the sentinels about who the primary is.
_PRIMARY_CHECK_INTERVAL = 2.0


class RedisBackend(BroadcastBackend):
    def __init__(
        self,
        url: str,
        history: int = 1000,
        history_ttl: float | None = None,
        prefix: str = "rat",
        durability: str | None = None,
    ) -> None:
        self.target = parse_target(url, durability)
        self.url = url
        self.history = max(1, history)
        self.history_ttl = history_ttl
        self.prefix = prefix
        self._clients: RedisClients | None = None
        self._feed: LiveFeed | None = None
        self._script: Any = None
        self._deliver: Deliver | None = None
        self._channels: set[str] = set()
        #: Per channel, the id (and its sort key) of the last message delivered to this process.
        self._last_seen: dict[str, tuple[str, tuple[int, ...]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        self._sharded = self.target.kind == "cluster"
        self._max_delay = 2.0 if self.target.kind == "single" else 0.5
        #: The server the live feed reads from ("host:port"), as of its last (re)connect.
        self._node = ""
        #: Channels of the feed's last (re)open whose subscription Redis has not confirmed yet.
        self._unconfirmed: set[str] = set()
        self._next_primary_check = 0.0
        self.reconnects = 0
        self.failovers = 0
        self.last_interruption: float | None = None

    def _stream_key(self, channel: str) -> str:
        return f"{self.prefix}:stream:{{{channel}}}" if self._sharded else f"{self.prefix}:stream:{channel}"

    def _live_key(self, channel: str) -> str:
        return f"{self.prefix}:live:{{{channel}}}" if self._sharded else f"{self.prefix}:live:{channel}"

    def _channel_of(self, live_key: str) -> str:
        channel = live_key[len(self.prefix) + len(":live:") :]
        return channel[1:-1] if self._sharded else channel

    # -- lifecycle ----------------------------------------------------------------------------
    async def connect(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._clients = RedisClients(self.target)
        self._script = self._clients.client.register_script(_PUBLISH)
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        self._reader = asyncio.get_running_loop().create_task(self._read_forever())

    async def disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
            self._reader = None
        await self._close_feed()
        if self._clients is not None:
            await self._clients.close()
            self._clients = None

    async def ping(self) -> None:
        assert self._clients is not None, "connect() first"
        try:
            await self._clients.client.ping()
        except _UNAVAILABLE as exc:
            raise BroadcastUnavailable(f"{self.target.describe()} unreachable: {exc}") from None

    def stats(self) -> dict[str, Any]:
        node = self._node if self._feed is not None else ""
        return {
            "topology": self.target.kind,
            "node": node or self._clients_node(),
            "durability": self.target.durability,
            "reconnects_total": self.reconnects,
            "failovers_total": self.failovers,
            "last_interruption_seconds": self.last_interruption,
        }

    # -- publish ------------------------------------------------------------------------------
    async def publish(self, channel: str, event: str | None, data: Any) -> Message:
        assert self._clients is not None and self._script is not None, "connect() first"
        payload = _json.dumps_str({"e": event, "d": data})
        min_id = f"{int((time.time() - self.history_ttl) * 1000)}-0" if self.history_ttl else ""
        keys = [self._stream_key(channel), self._live_key(channel)]
        args = [self.history, payload, min_id, "SPUBLISH" if self._sharded else "PUBLISH"]
        try:
            if self.target.replicated:
                raw_id, replicas = await self._clients.eval_and_wait(
                    _PUBLISH, keys, args, self.target.replica_timeout
                )
            else:
                raw_id, replicas = await self._script(keys=keys, args=args), None
        except _UNAVAILABLE as exc:
            raise BroadcastUnavailable(self._unavailable(exc)) from None
        message_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        if replicas is not None and replicas < 1:
            raise BroadcastNotReplicated(
                f"message {message_id} on {channel!r} was stored by the primary but no replica "
                f"confirmed it within {self.target.replica_timeout:g}s (durability=replicated); "
                "a failover could lose it"
            )
        key = self.sort_key(message_id)
        assert key is not None
        return Message(channel, message_id, event, data, key)

    def _unavailable(self, exc: BaseException) -> str:
        if type(exc).__name__ == "MasterNotFoundError":
            return (
                f"no primary known for {self.target.service!r} by the sentinels of "
                f"{self.target.describe()} (failover in progress?), not published"
            )
        return f"{self.target.describe()} unreachable, not published: {exc}"

    # -- subscribe ----------------------------------------------------------------------------
    async def subscribe(self, channel: str) -> None:
        assert self._clients is not None
        # Note where the stream is now: when Redis confirms the subscription, the reader
        # delivers what was stored after this point (published while SUBSCRIBE was in flight).
        try:
            newest: Any = await self._clients.client.xrevrange(self._stream_key(channel), count=1)
            start = newest[0][0].decode() if newest else "0-0"
        except _UNAVAILABLE:
            # Redis is down: accept the subscriber anyway (a browser's EventSource never retries
            # a non-200 answer). Stream ids are wall-clock milliseconds, so "now" marks the point
            # after which messages are delivered once Redis is back.
            start = f"{int(time.time() * 1000)}-0"
        self._last_seen.setdefault(channel, (start, self.sort_key(start) or (0, 0)))
        self._channels.add(channel)
        async with self._lock:
            if self._feed is not None:
                with contextlib.suppress(*_UNAVAILABLE):
                    await self._feed.add(self._live_key(channel))
        self._wanted.set()

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        self._last_seen.pop(channel, None)
        async with self._lock:
            if self._feed is not None:
                with contextlib.suppress(*_UNAVAILABLE):
                    await self._feed.remove(self._live_key(channel))

    async def replay(self, channel: str, last_event_id: str) -> ReplayResult:
        assert self._clients is not None
        key = self.sort_key(last_event_id)
        if key is None:
            return ReplayResult([], True)
        messages = await self._entries_after(channel, last_event_id)
        if key == (0, 0):
            return ReplayResult(messages, False)  # "0": the whole history, by request
        # Trimming removes from the head, so if the client's own last message is still stored,
        # everything after it is too. If it is gone (or was never issued), some may be missing.
        own: Any = await self._clients.client.xrange(
            self._stream_key(channel), min=last_event_id, max=last_event_id
        )
        return ReplayResult(messages, not own)

    @staticmethod
    def sort_key(message_id: str) -> tuple[int, ...] | None:
        ms, sep, seq = str(message_id).partition("-")
        try:
            return (int(ms), int(seq)) if sep else (int(ms), 0)
        except ValueError:
            return None

    # -- the reader: live messages, reconnects, failovers and gap filling ----------------------
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
                await self._check_primary()
                event = await self._feed.next(timeout=1.0)
                if event is None:
                    continue
                kind, key, data = event
                channel = self._channel_of(key)
                if kind == "message":
                    self._handle_live(channel, data)
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
            except _UNAVAILABLE as exc:
                if lost_at is None:
                    lost_at = time.monotonic()
                    # The server the feed read from; if it never connected, the one last reached.
                    lost_node = self._node or self._clients_node()
                    logger.warning(
                        "redis broadcast connection lost (%s: %s); reconnecting",
                        lost_node or self.target.describe(),
                        exc,
                    )
                await self._start_afresh()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_delay)
            except Exception:
                logger.exception("redis broadcast reader failed; restarting it")
                await self._start_afresh()
                await asyncio.sleep(delay)

    def _recovered(self, lost_at: float, lost_node: str) -> None:
        took = time.monotonic() - lost_at
        self.reconnects += 1
        self.last_interruption = took
        if lost_node and self._node and lost_node != self._node:
            self.failovers += 1
            logger.warning(
                "redis broadcast failover: primary %s -> %s; live delivery interrupted for %.2fs "
                "(what was published meanwhile came from the stream)",
                lost_node,
                self._node,
                took,
            )
        else:
            logger.warning("redis broadcast reconnected after %.1fs", took)

    async def _open_feed(self) -> None:
        assert self._clients is not None
        async with self._lock:
            feed: LiveFeed = (
                ShardedFeed(self._clients.client) if self._sharded else PubSubFeed(self._clients.client)
            )
            try:
                await feed.open(self._live_key(c) for c in self._channels)
            except BaseException:
                await feed.close()
                raise
            self._feed = feed
            self._unconfirmed = set(self._channels)
            # A cluster's identity is its set of primaries (a failover replaces one of them);
            # otherwise the server the feed reads from.
            self._node = (self._clients_node() if self._sharded else feed.node()) or self._node
            self._next_primary_check = time.monotonic() + _PRIMARY_CHECK_INTERVAL

    def _clients_node(self) -> str:
        return self._clients.node() if self._clients is not None else ""

    async def _check_primary(self) -> None:
        """Behind sentinels: leave a primary they no longer name (its connection may be open)."""
        if (
            self._clients is None
            or self._clients.sentinel is None
            or time.monotonic() < self._next_primary_check
        ):
            return
        self._next_primary_check = time.monotonic() + _PRIMARY_CHECK_INTERVAL
        try:
            named = await self._clients.primary_address()
        except _UNAVAILABLE:
            return  # no answer is no news: keep the connection that works
        if self._node and named != self._node:
            raise RedisConnectionError(f"the sentinels name {named} as the primary now")

    async def _start_afresh(self) -> None:
        await self._close_feed()
        if self._clients is not None:
            # Pooled connections from before the outage are dead (or lead to a replaced primary).
            await self._clients.reset()

    async def _close_feed(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            await feed.close()

    async def _fill_gap(self, channel: str) -> None:
        """Deliver what the stream holds after the last id this process delivered."""
        last = self._last_seen.get(channel)
        if channel not in self._channels or last is None:
            return
        for message in await self._entries_after(channel, last[0]):
            self._emit(message, catch_up=True)

    def _handle_live(self, channel: str, data: str) -> None:
        message_id, _, payload = data.partition(" ")
        self._emit(self._decode(channel, message_id, payload))

    def _emit(self, message: Message, catch_up: bool = False) -> None:
        last = self._last_seen.get(message.channel)
        if last is not None and message.sort_key <= last[1]:
            return  # already delivered (gap filling overlaps live delivery)
        self._last_seen[message.channel] = (message.id, message.sort_key)
        if self._deliver is not None:
            self._deliver(message, catch_up)

    async def _entries_after(self, channel: str, message_id: str) -> list[Message]:
        assert self._clients is not None
        entries: Any = await self._clients.client.xrange(
            self._stream_key(channel), min="(" + message_id, max="+"
        )
        return [self._from_entry(channel, entry_id, fields) for entry_id, fields in entries or ()]

    def _from_entry(self, channel: str, entry_id: Any, fields: dict[Any, Any]) -> Message:
        message_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        payload = fields.get(b"p") or fields.get("p") or b"{}"
        return self._decode(channel, message_id, payload.decode() if isinstance(payload, bytes) else payload)

    def _decode(self, channel: str, message_id: str, payload: str) -> Message:
        body = _json.loads(payload)
        key = self.sort_key(message_id) or (0, 0)
        return Message(channel, message_id, body.get("e"), body.get("d"), key)
