"""Who is streaming right now: a registry of live streams, admission limits, stats, shutdown.

Per process. (Which *processes* receive a broadcast is the broadcast backend's question.)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import StreamLimitExceeded

if TYPE_CHECKING:
    from .response import StreamingResponse

logger = logging.getLogger(__name__)

__all__ = ["ConnectionManager", "StreamInfo"]


@dataclass(slots=True)
class StreamInfo:
    """One live stream, as shown by :meth:`ConnectionManager.streams`."""

    id: int
    route: str
    path: str
    client: str
    kind: str  # "thread", "task" or "static"
    started_at: float = field(default_factory=time.time)
    events_sent: int = 0
    bytes_sent: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "path": self.path,
            "client": self.client,
            "kind": self.kind,
            "started_at": self.started_at,
            "age_seconds": round(time.time() - self.started_at, 3),
            "events_sent": self.events_sent,
            "bytes_sent": self.bytes_sent,
        }


class ConnectionManager:
    """Registry of the streams of one app in one process.

    Args:
        max_streams: Concurrent streams allowed (503 beyond).
        max_streams_per_client: Per client address (429 beyond); None for no limit.
        max_thread_streams: Concurrent sync-generator streams, each holding a thread (503 beyond).
    """

    def __init__(
        self,
        max_streams: int = 10_000,
        max_streams_per_client: int | None = None,
        max_thread_streams: int = 8_192,
    ) -> None:
        self.max_streams = max_streams
        self.max_streams_per_client = max_streams_per_client
        self.max_thread_streams = max_thread_streams
        self._ids = itertools.count(1)
        self._live: dict[int, tuple[StreamInfo, StreamingResponse]] = {}
        self._per_client: Counter[str] = Counter()
        self._threads = 0
        self.shutting_down = False
        self.totals: Counter[str] = Counter()  # opened, events, bytes, rejected
        self.close_reasons: Counter[str] = Counter()

    # -- admission ----------------------------------------------------------------------------
    def admit(self, client: str, needs_thread: bool) -> None:
        """Raise :class:`StreamLimitExceeded` when a new stream would exceed a limit."""
        if self.shutting_down:
            self.totals["rejected"] += 1
            raise StreamLimitExceeded("server is shutting down", retry_after=2)
        if len(self._live) >= self.max_streams:
            self.totals["rejected"] += 1
            raise StreamLimitExceeded("too many open streams")
        if needs_thread and self._threads >= self.max_thread_streams:
            self.totals["rejected"] += 1
            raise StreamLimitExceeded("too many streams running sync generators")
        limit = self.max_streams_per_client
        if limit is not None and self._per_client[client] >= limit:
            self.totals["rejected"] += 1
            raise StreamLimitExceeded("too many streams from this client", status_code=429)

    def register(
        self, route: str, path: str, client: str, kind: str, stream: StreamingResponse
    ) -> StreamInfo:
        info = StreamInfo(next(self._ids), route, path, client, kind)
        self._live[info.id] = (info, stream)
        self._per_client[client] += 1
        if kind == "thread":
            self._threads += 1
        self.totals["opened"] += 1
        return info

    def unregister(self, info: StreamInfo, reason: str) -> None:
        if self._live.pop(info.id, None) is None:
            return
        self._per_client[info.client] -= 1
        if self._per_client[info.client] <= 0:
            del self._per_client[info.client]
        if info.kind == "thread":
            self._threads -= 1
        self.close_reasons[reason] += 1

    def record(self, info: StreamInfo, events: int, nbytes: int) -> None:
        info.events_sent += events
        info.bytes_sent += nbytes
        self.totals["events"] += events
        self.totals["bytes"] += nbytes

    # -- views --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    def streams(self) -> list[StreamInfo]:
        return [info for info, _ in self._live.values()]

    def stats(self) -> dict[str, Any]:
        return {
            "open_streams": len(self._live),
            "thread_streams": self._threads,
            "opened_total": self.totals["opened"],
            "rejected_total": self.totals["rejected"],
            "events_sent_total": self.totals["events"],
            "bytes_sent_total": self.totals["bytes"],
            "close_reasons": dict(self.close_reasons),
            "max_streams": self.max_streams,
        }

    # -- shutdown -----------------------------------------------------------------------------
    async def shutdown(self, grace: float) -> None:
        """Stop every stream (each sends its farewell frame) and wait up to ``grace`` seconds
        for their generators to be closed, so their ``finally`` blocks run."""
        self.shutting_down = True
        streams = [stream for _, stream in self._live.values()]
        if not streams:
            return
        logger.info("closing %d open stream(s), grace period %.1fs", len(streams), grace)
        for stream in streams:
            stream.stop("shutdown")
        deadline = time.monotonic() + grace
        pending = [
            asyncio.ensure_future(s.wait_closed(max(0.0, deadline - time.monotonic()))) for s in streams
        ]
        results = await asyncio.gather(*pending, return_exceptions=True)
        stuck = sum(1 for r in results if r is not True)
        if stuck:
            logger.warning(
                "%d stream generator(s) did not finish within %.1fs (blocked outside a yield)", stuck, grace
            )
