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

from .._types import SourceKind, StopReason
from ..exceptions import StreamLimitExceeded
from ..settings import Limits

if TYPE_CHECKING:
    from .stream import Stream

logger = logging.getLogger(__name__)

__all__ = ["ConnectionManager", "StreamInfo"]


@dataclass(slots=True)
class StreamInfo:
    """One live stream, as shown by :meth:`ConnectionManager.streams`. Its counters are the
    only place a stream's events and bytes are counted."""

    id: int
    route: str
    path: str
    client: str
    kind: SourceKind
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
    """Registry of the streams of one app in one process; its bounds are ``limits``'
    ``max_streams``, ``max_streams_per_client`` and ``max_thread_streams`` (read at each
    admission, so changing ``app.limits`` takes effect at once)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits if limits is not None else Limits()
        self._ids = itertools.count(1)
        self._live: dict[int, Stream] = {}
        self._per_client: Counter[str] = Counter()
        self._threads = 0
        self.shutting_down = False
        #: Streams opened and refused, and the events and bytes of streams already closed.
        self._totals: Counter[str] = Counter()
        self.close_reasons: Counter[str] = Counter()

    # -- admission and registration: one step, so concurrent opens cannot overshoot a limit -----
    def open(self, stream: Stream) -> None:
        """Admit ``stream`` and register it (it gets its id).

        Raises:
            StreamLimitExceeded: a limit is reached (503, or 429 for the per-client limit).
        """
        info, limits = stream.info, self.limits
        refusal: StreamLimitExceeded | None = None
        if self.shutting_down:
            refusal = StreamLimitExceeded("server is shutting down", retry_after=2)
        elif len(self._live) >= limits.max_streams:
            refusal = StreamLimitExceeded("too many open streams")
        elif info.kind == "thread" and self._threads >= limits.max_thread_streams:
            refusal = StreamLimitExceeded("too many streams running sync generators")
        elif (
            limits.max_streams_per_client is not None
            and self._per_client[info.client] >= limits.max_streams_per_client
        ):
            refusal = StreamLimitExceeded("too many streams from this client", status_code=429)
        if refusal is not None:
            self._totals["rejected"] += 1
            raise refusal
        info.id = next(self._ids)
        self._live[info.id] = stream
        self._per_client[info.client] += 1
        if info.kind == "thread":
            self._threads += 1
        self._totals["opened"] += 1

    def close(self, stream: Stream) -> None:
        """Unregister ``stream`` (idempotent), counting why it ended."""
        info = stream.info
        if self._live.pop(info.id, None) is None:
            return
        self._per_client[info.client] -= 1
        if self._per_client[info.client] <= 0:
            del self._per_client[info.client]
        if info.kind == "thread":
            self._threads -= 1
        self._totals["events"] += info.events_sent
        self._totals["bytes"] += info.bytes_sent
        reason: StopReason = stream.stop_reason or "finished"
        self.close_reasons[reason] += 1

    # -- views --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    def streams(self) -> list[StreamInfo]:
        return [stream.info for stream in self._live.values()]

    def stats(self) -> dict[str, Any]:
        live = [stream.info for stream in self._live.values()]
        return {
            "open_streams": len(live),
            "thread_streams": self._threads,
            "opened_total": self._totals["opened"],
            "rejected_total": self._totals["rejected"],
            "events_sent_total": self._totals["events"] + sum(i.events_sent for i in live),
            "bytes_sent_total": self._totals["bytes"] + sum(i.bytes_sent for i in live),
            "close_reasons": dict(self.close_reasons),
            "max_streams": self.limits.max_streams,
        }

    # -- shutdown -----------------------------------------------------------------------------
    async def shutdown(self, grace: float) -> None:
        """Stop every stream (each sends its farewell frame) and wait up to ``grace`` seconds
        for their generators to be closed, so their ``finally`` blocks run."""
        self.shutting_down = True
        streams = list(self._live.values())
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

    def reopen(self) -> None:
        """Accept streams again (after a lifespan shutdown, e.g. a TestClient used twice)."""
        self.shutting_down = False
