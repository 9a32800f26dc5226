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
* Each process holds one live feed and subscribes to the channels its local clients use;
  before subscribing it notes the stream's last id, and the reader (:mod:`.redis_reader`)
  delivers what was stored after it once Redis confirms the subscription, and again after every
  reconnect or failover: subscribers resume without duplicates and without losing what Redis
  kept.
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

import time
from typing import Any

from .. import _json
from .base import (
    BroadcastBackend,
    BroadcastNotReplicated,
    BroadcastUnavailable,
    Deliver,
    Message,
    ReplayResult,
)
from .redis_clients import UNAVAILABLE, RedisClients
from .redis_config import parse_target, safe_url
from .redis_reader import LiveReader

__all__ = ["RedisBackend", "safe_url"]

_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'p', ARGV[2])
if ARGV[3] ~= '' then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3]) end
redis.call(ARGV[4], KEYS[2], id .. ' ' .. ARGV[2])
return id
"""


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
        self._reader: LiveReader | None = None
        self._script: Any = None
        self._sharded = self.target.kind == "cluster"

    def _stream_key(self, channel: str) -> str:
        return f"{self.prefix}:stream:{{{channel}}}" if self._sharded else f"{self.prefix}:stream:{channel}"

    def _live_key(self, channel: str) -> str:
        return f"{self.prefix}:live:{{{channel}}}" if self._sharded else f"{self.prefix}:live:{channel}"

    def _channel_of(self, live_key: str) -> str:
        channel = live_key[len(self.prefix) + len(":live:") :]
        return channel[1:-1] if self._sharded else channel

    # -- lifecycle ----------------------------------------------------------------------------
    async def connect(self, deliver: Deliver) -> None:
        self._clients = RedisClients(self.target)
        self._script = self._clients.client.register_script(_PUBLISH)
        keys = (self._live_key, self._channel_of)
        self._reader = LiveReader(self._clients, keys, self._decode, self._entries_after, deliver)
        self._reader.start()

    async def disconnect(self) -> None:
        if self._reader is not None:
            await self._reader.stop()
            self._reader = None
        if self._clients is not None:
            await self._clients.close()
            self._clients = None

    async def ping(self) -> None:
        assert self._clients is not None, "connect() first"
        try:
            await self._clients.client.ping()
        except UNAVAILABLE as exc:
            raise BroadcastUnavailable(f"{self.target.describe()} unreachable: {exc}") from None

    def stats(self) -> dict[str, Any]:
        reader = self._reader
        node = reader.node if reader is not None and reader.connected else ""
        return {
            "topology": self.target.kind,
            "node": node or (self._clients.node() if self._clients is not None else ""),
            "durability": self.target.durability,
            "reconnects_total": reader.reconnects if reader is not None else 0,
            "failovers_total": reader.failovers if reader is not None else 0,
            "last_interruption_seconds": reader.last_interruption if reader is not None else None,
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
        except UNAVAILABLE as exc:
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
        assert self._clients is not None and self._reader is not None
        # Note where the stream is now: when Redis confirms the subscription, the reader
        # delivers what was stored after this point (published while SUBSCRIBE was in flight).
        try:
            newest: Any = await self._clients.client.xrevrange(self._stream_key(channel), count=1)
            start = newest[0][0].decode() if newest else "0-0"
        except UNAVAILABLE:
            # Redis is down: accept the subscriber anyway (a browser's EventSource never retries
            # a non-200 answer). Stream ids are wall-clock milliseconds, so "now" marks the point
            # after which messages are delivered once Redis is back.
            start = f"{int(time.time() * 1000)}-0"
        await self._reader.add(channel, (start, self.sort_key(start) or (0, 0)))

    async def unsubscribe(self, channel: str) -> None:
        if self._reader is not None:
            await self._reader.remove(channel)

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

    # -- stored messages ----------------------------------------------------------------------
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
