"""``redis://``: many processes and machines share channels through Redis (or Valkey).

Design:

* History and ids live in a Redis **Stream** per channel (``XADD`` with exact ``MAXLEN`` and,
  with a TTL, ``MINID``: approximate trimming would keep whole blocks past the configured
  history). Ids are stream ids (``<ms>-<seq>``): monotonic per channel, also across Redis
  restarts that lost data (they are time based).
* Live delivery is **pub/sub**: publishing is one Lua script (``XADD`` then ``PUBLISH`` of
  ``"<id> <payload>"``), so the live copy and the stored copy carry the same id, atomically.
* Each process holds one pub/sub connection and subscribes to the channels its local clients
  use. Before subscribing it notes the stream's last id; when Redis confirms the subscription
  the reader delivers anything stored after that id (``XRANGE``), so nothing published while
  the ``SUBSCRIBE`` was in flight is lost. The same happens after a reconnect (backoff 0.1 s
  doubling to 2 s, stale pooled connections dropped): subscribers resume without duplicates
  and without losing what Redis kept.
* Replay for ``Last-Event-ID`` is ``XRANGE`` after that id. If the id is no longer an entry of
  the stream (trimmed away, or never issued because Redis lost its data), the replay reports a
  gap and the client gets ``resync``: conservative, never a silent loss.
* Publishing while Redis is down raises ``BroadcastUnavailable`` (a ``ConnectionError``) in the
  publisher, a 503 at the HTTP edge; nothing crashes. Unreachable at startup: a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import _json
from .base import BroadcastBackend, BroadcastUnavailable, Deliver, Message, ReplayResult

logger = logging.getLogger(__name__)

__all__ = ["RedisBackend"]

_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'p', ARGV[2])
if ARGV[3] ~= '' then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3]) end
redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[2])
return id
"""
_DISCONNECTS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def safe_url(url: str) -> str:
    """``url`` without its password, for log lines."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{host}"


class RedisBackend(BroadcastBackend):
    def __init__(
        self, url: str, history: int = 1000, history_ttl: float | None = None, prefix: str = "rat"
    ) -> None:
        self.url = url
        self.history = max(1, history)
        self.history_ttl = history_ttl
        self.prefix = prefix
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._script: Any = None
        self._deliver: Deliver | None = None
        self._channels: set[str] = set()
        #: Per channel, the id (and its sort key) of the last message delivered to this process.
        self._last_seen: dict[str, tuple[str, tuple[int, ...]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        self.reconnects = 0

    def _stream_key(self, channel: str) -> str:
        return f"{self.prefix}:stream:{channel}"

    def _live_key(self, channel: str) -> str:
        return f"{self.prefix}:live:{channel}"

    # -- lifecycle ----------------------------------------------------------------------------
    async def connect(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._client = aioredis.from_url(self.url, socket_connect_timeout=2, health_check_interval=10)
        self._script = self._client.register_script(_PUBLISH)
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        self._reader = asyncio.get_running_loop().create_task(self._read_forever())

    async def disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
            self._reader = None
        await self._close_pubsub()
        if self._client is not None:
            with contextlib.suppress(*_DISCONNECTS):
                await self._client.aclose()
            self._client = None

    async def ping(self) -> None:
        assert self._client is not None, "connect() first"
        try:
            await self._client.ping()
        except _DISCONNECTS as exc:
            raise BroadcastUnavailable(f"{safe_url(self.url)} unreachable: {exc}") from None

    # -- publish ------------------------------------------------------------------------------
    async def publish(self, channel: str, event: str | None, data: Any) -> Message:
        assert self._script is not None, "connect() first"
        payload = _json.dumps_str({"e": event, "d": data})
        min_id = f"{int((time.time() - self.history_ttl) * 1000)}-0" if self.history_ttl else ""
        try:
            raw_id = await self._script(
                keys=[self._stream_key(channel), self._live_key(channel)],
                args=[self.history, payload, min_id],
            )
        except _DISCONNECTS as exc:
            raise BroadcastUnavailable(f"{safe_url(self.url)} unreachable, not published: {exc}") from None
        message_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        key = self.sort_key(message_id)
        assert key is not None
        return Message(channel, message_id, event, data, key)

    # -- subscribe ----------------------------------------------------------------------------
    async def subscribe(self, channel: str) -> None:
        assert self._client is not None
        # Note where the stream is now: when Redis confirms the subscription, the reader
        # delivers what was stored after this point (published while SUBSCRIBE was in flight).
        try:
            newest: Any = await self._client.xrevrange(self._stream_key(channel), count=1)
            start = newest[0][0].decode() if newest else "0-0"
        except _DISCONNECTS:
            # Redis is down: accept the subscriber anyway (a browser's EventSource never retries
            # a non-200 answer). Stream ids are wall-clock milliseconds, so "now" marks the point
            # after which messages are delivered once Redis is back.
            start = f"{int(time.time() * 1000)}-0"
        self._last_seen.setdefault(channel, (start, self.sort_key(start) or (0, 0)))
        self._channels.add(channel)
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(*_DISCONNECTS):
                    await self._pubsub.subscribe(self._live_key(channel))
        self._wanted.set()

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        self._last_seen.pop(channel, None)
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(*_DISCONNECTS):
                    await self._pubsub.unsubscribe(self._live_key(channel))

    async def replay(self, channel: str, last_event_id: str) -> ReplayResult:
        assert self._client is not None
        key = self.sort_key(last_event_id)
        if key is None:
            return ReplayResult([], True)
        messages = await self._entries_after(channel, last_event_id)
        if key == (0, 0):
            return ReplayResult(messages, False)  # "0": the whole history, by request
        # Trimming removes from the head, so if the client's own last message is still stored,
        # everything after it is too. If it is gone (or was never issued), some may be missing.
        own: Any = await self._client.xrange(self._stream_key(channel), min=last_event_id, max=last_event_id)
        return ReplayResult(messages, not own)

    @staticmethod
    def sort_key(message_id: str) -> tuple[int, ...] | None:
        ms, sep, seq = str(message_id).partition("-")
        try:
            return (int(ms), int(seq)) if sep else (int(ms), 0)
        except ValueError:
            return None

    # -- the reader: live messages, reconnects and gap filling --------------------------------
    async def _read_forever(self) -> None:
        delay = 0.1
        down_since: float | None = None
        while True:
            try:
                if not self._channels:
                    self._wanted.clear()
                    await self._wanted.wait()
                if self._pubsub is None:
                    await self._open_pubsub()
                message = await self._pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                kind = message.get("type")
                if kind == "message":
                    self._handle_live(message)
                elif kind == "subscribe":
                    await self._fill_gap(self._channel_of(message))
                if down_since is not None:
                    logger.warning("redis broadcast reconnected after %.1fs", time.monotonic() - down_since)
                    down_since = None
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except _DISCONNECTS as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    logger.warning("redis broadcast connection lost (%s); reconnecting", exc)
                await self._close_pubsub()
                if self._client is not None:
                    # Pooled connections from before the outage are dead: start afresh.
                    with contextlib.suppress(Exception):
                        await self._client.connection_pool.disconnect()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:
                logger.exception("redis broadcast reader failed; restarting it")
                await self._close_pubsub()
                await asyncio.sleep(delay)

    async def _open_pubsub(self) -> None:
        assert self._client is not None
        async with self._lock:
            pubsub = self._client.pubsub()
            channels = sorted(self._channels)
            if channels:
                await pubsub.subscribe(*(self._live_key(c) for c in channels))
            self._pubsub = pubsub
            self.reconnects += 1

    async def _fill_gap(self, channel: str) -> None:
        """Deliver what the stream holds after the last id this process delivered."""
        last = self._last_seen.get(channel)
        if channel not in self._channels or last is None:
            return
        for message in await self._entries_after(channel, last[0]):
            self._emit(message)

    def _channel_of(self, raw: dict[str, Any]) -> str:
        live_key = raw["channel"].decode() if isinstance(raw["channel"], bytes) else raw["channel"]
        return str(live_key)[len(self._live_key("")) :]

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _handle_live(self, raw: dict[str, Any]) -> None:
        channel = self._channel_of(raw)
        data = raw["data"].decode() if isinstance(raw["data"], bytes) else raw["data"]
        message_id, _, payload = data.partition(" ")
        self._emit(self._decode(channel, message_id, payload))

    def _emit(self, message: Message) -> None:
        last = self._last_seen.get(message.channel)
        if last is not None and message.sort_key <= last[1]:
            return  # already delivered (gap filling overlaps live delivery)
        self._last_seen[message.channel] = (message.id, message.sort_key)
        if self._deliver is not None:
            self._deliver(message)

    async def _entries_after(self, channel: str, message_id: str) -> list[Message]:
        assert self._client is not None
        entries: Any = await self._client.xrange(self._stream_key(channel), min="(" + message_id, max="+")
        return [self._from_entry(channel, entry_id, fields) for entry_id, fields in entries or ()]

    def _from_entry(self, channel: str, entry_id: Any, fields: dict[Any, Any]) -> Message:
        message_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        payload = fields.get(b"p") or fields.get("p") or b"{}"
        return self._decode(channel, message_id, payload.decode() if isinstance(payload, bytes) else payload)

    def _decode(self, channel: str, message_id: str, payload: str) -> Message:
        body = _json.loads(payload)
        key = self.sort_key(message_id) or (0, 0)
        return Message(channel, message_id, body.get("e"), body.get("d"), key)
