"""``Stream``: one running stream, from its headers to its last chunk.

Lifecycle (docs/ARCHITECTURE.md has the diagram)::

    made in the request task (source chosen) -> admitted and registered (ConnectionManager.open)
      -> source.open() -> headers -> preamble -> source.start() -> write loop -> end -> close
                                                                   ^    |
         wire.on_disconnect -> stop("client") ---------------------+    +-> keep-alive when idle
         one timer: keep-alive, send_timeout (abort), max_duration -+    +-> farewell on shutdown

* The write loop pulls everything the source has at once, so bursts become one write.
* While the loop waits in ``source.pull()`` (*parked*), a chunk may be handed past it
  (:meth:`write_direct`: a broadcast frame, a keep-alive): the first one of a loop iteration
  straight to the wire if it takes it, later ones of that iteration together after it
  ("corked").
* ``stop(reason)`` is the one "stopped" fact: the client left, the app shuts down, a timer
  fired, or the source ended; it stops the source (a generator's ``finally`` runs) and wakes
  the loop.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

from .._types import StopReason
from ..responses import Response
from .chunk_source import Codec, OwnCancels, close_unstarted
from .registry import StreamInfo
from .sources import open_source
from .wire import StreamWire

if TYPE_CHECKING:
    from .response import StreamContext, StreamingResponse

logger = logging.getLogger(__name__)

__all__ = ["Stream"]


class _Flusher:
    """The loop iterations of one event loop, as seen by the chunks handed past parked streams.

    ``generation`` counts iterations in which something was handed past: a stream that took a
    chunk straight to the wire in this generation corks the next ones, and they are all written
    by one callback at the end of the iteration. PERF: a lone message to 1,000 subscribers is
    1,000 direct writes (no list, no second pass); a burst is at most two writes per stream; one
    ``call_soon`` per iteration, not one per stream (issue 11: lone-message fan-out).
    """

    __slots__ = ("streams", "generation", "scheduled", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.streams: list[Stream] = []  # corked in this generation, flushed at its end
        self.generation = 0
        self.scheduled = False

    def schedule(self) -> None:
        """Make sure this iteration ends with :meth:`flush` (and a new generation)."""
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        self.generation += 1
        streams, self.streams = self.streams, []
        for stream in streams:
            try:
                stream._flush_corked()
            except Exception:  # one stream's failure must not strand the others' chunks
                logger.exception("stream %s: writing a handed-past chunk failed", stream._label())
                stream.stop("client")


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = weakref.WeakKeyDictionary()


def _flusher_for(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        flusher = _flushers[loop] = _Flusher(loop)
    return flusher


#: Shortest timer delay: a timer due "now" still lets the loop run other callbacks first.
_MIN_TIMER_DELAY = 0.05


class Stream:
    """Runs one :class:`StreamingResponse` over one :class:`StreamWire`. Made inside the
    request's task; :meth:`run` returns when the response is over."""

    __slots__ = (
        "response", "ctx", "wire", "source", "info", "stop_reason", "loop", "_cancels",
        "_keepalive", "_parked", "_corked", "_corked_events", "_ping_due", "_sending_since",
        "_last_write", "_started", "_timer", "_closed", "_finished", "_flusher", "_direct_generation",
    )  # fmt: skip

    def __init__(
        self, response: StreamingResponse, ctx: StreamContext, wire: StreamWire, path: str = ""
    ) -> None:
        self.response = response
        self.ctx = ctx
        self.wire = wire
        self.loop = asyncio.get_running_loop()
        self._cancels = OwnCancels(asyncio.current_task())
        settings = ctx.settings
        codec = Codec(response, ctx, path)
        self.source = open_source(
            response.content,
            codec,
            settings.buffer_size,
            settings.thread_stack_size,
            self._cancels,
            wire.native,
        )
        self.info = StreamInfo(0, ctx.route, path, ctx.client, self.source.kind)
        self.stop_reason: StopReason | None = None
        self._keepalive = response.keepalive if settings.ping_interval else None
        self._parked = False  # run() waits in source.pull(): chunks may be handed past it
        self._corked: list[bytes] | None = None  # handed past the loop, written soon
        self._corked_events = 0
        self._flusher = _flusher_for(self.loop)
        self._direct_generation = -1  # the flusher generation of this stream's last direct write
        self._ping_due = False
        self._sending_since: float | None = None
        self._last_write = self._started = self.loop.time()
        self._timer: asyncio.TimerHandle | None = None
        #: Futures of wait_closed() callers (made only on demand: most streams never get one).
        self._closed: list[asyncio.Future[None]] | None = None
        self._finished = False

    # -- control ------------------------------------------------------------------------------------
    def stop(self, reason: StopReason) -> None:
        """End the stream (idempotent; the first reason wins)."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self.ctx.disconnected.set()
        self.source.stop()
        self.source.wake()

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until the response is over and its producer closed; False on timeout."""
        deadline = self.loop.time() + timeout
        if not self._finished:
            closed = self.loop.create_future()
            if self._closed is None:
                self._closed = []
            self._closed.append(closed)
            try:
                await asyncio.wait_for(closed, timeout)
            except TimeoutError:
                return False
        return await self.source.wait_closed(max(0.0, deadline - self.loop.time()))

    def discard(self) -> None:
        """The stream will never run (it was refused): release its content."""
        self.stop_reason = self.stop_reason or "finished"
        close_unstarted(self.response.content)
        self._mark_closed()

    # -- the run ------------------------------------------------------------------------------------
    async def run(self) -> None:
        response, source, wire = self.response, self.source, self.wire
        try:
            try:
                await source.open()  # a subscription registers and queues its replay here
            except Exception as exc:
                if isinstance(exc, ConnectionError):  # the broker is down: said, no traceback
                    logger.warning("stream %s: broadcast unavailable: %s", self._label(), exc)
                else:
                    logger.error("stream %s: its source cannot open", self._label(), exc_info=exc)
                body = response.unavailable(self.ctx.settings)
                if body is not None:
                    await wire.start(response.status_code, response.render_headers(None))
                    await wire.end(body)
                    return
                refusal = Response(b"broadcast unavailable", 503, {"retry-after": "2"})
                await wire.start(refusal.status_code, refusal.render_headers(len(refusal.body)))
                await wire.end(refusal.body)
                return
            await wire.start(response.status_code, response.render_headers(None))
            preamble = response.preamble(self.ctx.settings)
            if preamble:
                await self._write(preamble, 0)
            source.start(self)
            wire.on_disconnect(self._client_left)
            self._last_write = self.loop.time()
            self._arm_timer()
            try:
                await self._write_loop()
            except asyncio.CancelledError:
                if not self._cancels.take_back():
                    raise  # not ours: the server is cancelling this request
                return  # our own cancellation of a stalled write: the server drops the socket
            await self._end()
        finally:
            self.stop(self.stop_reason or "finished")
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            wire.release()
            await source.aclose()
            if self.ctx.manager is not None:
                self.ctx.manager.close(self)
            self._mark_closed()

    async def _write_loop(self) -> None:
        source = self.source
        while self.stop_reason is None:
            if self._ping_due and self._keepalive is not None:
                self._ping_due = False
                await self._write(self._keepalive, 0)
                continue
            self._parked = True
            try:
                chunks = await source.pull()
            finally:
                self._parked = False
            if self.stop_reason is not None:
                return
            events = len(chunks)
            if self._corked:  # handed past the loop earlier: older, so first
                chunks = self._corked + chunks
                events += self._corked_events
                self._corked = None
            if chunks:
                await self._write(chunks[0] if len(chunks) == 1 else b"".join(chunks), events)
            elif source.finished:
                return

    async def _end(self) -> None:
        reason, response = self.stop_reason, self.response
        if self._corked and reason != "client":
            corked, self._corked = self._corked, None
            await self._write(b"".join(corked), self._corked_events)
        if reason == "shutdown":
            farewell = response.farewell(self.ctx.settings)
            if farewell:
                await self._write(farewell, 0)
        cut_short = self.source.failed or reason in ("shutdown", "max_duration")
        if reason != "client" and (response.ends_cleanly or not cut_short):
            await self.wire.end()

    async def _write(self, body: bytes, events: int) -> None:
        self._sending_since = self.loop.time()
        try:
            await self.wire.write(body)
        except OSError:
            # Servers other than rat_engine's may raise once the peer has gone.
            self.stop("client")
            return
        finally:
            self._sending_since = None
        self._last_write = self.loop.time()
        self._count(events, len(body))

    def _count(self, events: int, nbytes: int) -> None:
        info = self.info
        info.events_sent += events
        info.bytes_sent += nbytes

    # -- chunks handed past the loop -------------------------------------------------------------------
    def write_direct(self, chunk: bytes, events: int = 1) -> bool:
        """Take a chunk past the parked loop (a broadcast frame from the publisher, a keep-alive
        while a generator waits). False: refused (the loop is busy or gone), queue it instead.

        The first chunk in a loop iteration goes to the wire at once if it takes it; later ones
        in the same iteration (a burst of publishes) are corked and written together at its end,
        so a burst costs at most two writes per stream. Order is kept: nothing is written
        directly while chunks are corked.
        """
        if self.stop_reason is not None or not self._parked:
            return False
        flusher = self._flusher
        if self._corked is None:
            if self._direct_generation != flusher.generation and self.wire.write_nowait(chunk):
                self._direct_generation = flusher.generation
                if not flusher.scheduled:  # the generation moves on when this iteration ends
                    flusher.schedule()
                self._last_write = self.loop.time()
                self._count(events, len(chunk))
                return True
            self._corked = [chunk]
            self._corked_events = events
            flusher.streams.append(self)
            if not flusher.scheduled:
                flusher.schedule()
        else:
            self._corked.append(chunk)
            self._corked_events += events
        return True

    def _flush_corked(self) -> None:
        corked = self._corked
        if not corked:
            return
        body = corked[0] if len(corked) == 1 else b"".join(corked)
        if self.stop_reason is None and self._parked and self.wire.write_nowait(body):
            self._corked = None
            self._last_write = self.loop.time()
            self._count(self._corked_events, len(body))
        else:
            self.source.wake()  # congested (or stopping): the loop writes them, with back-pressure

    def _client_left(self) -> None:
        self.stop("client")

    # -- one timer: keep-alive, a stalled client, the longest a stream may last ----------------------
    def _arm_timer(self) -> None:
        settings = self.ctx.settings
        ping = settings.ping_interval if self._keepalive is not None else 0
        now = self.loop.time()
        since = self._sending_since
        candidates = []
        if ping and since is None:  # no keep-alive while a write is in progress
            candidates.append(self._last_write + ping)
        if settings.send_timeout:
            # While idle, look again every send_timeout: a write may start and stall meanwhile.
            candidates.append((since if since is not None else now) + settings.send_timeout)
        if settings.max_duration:
            candidates.append(self._started + settings.max_duration)
        if not candidates:
            if not ping:
                return
            candidates.append(now + ping)
        delay = max(_MIN_TIMER_DELAY, min(candidates) - now)
        self._timer = self.loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.stop_reason is not None:
            return
        settings = self.ctx.settings
        now = self.loop.time()
        if settings.max_duration and now - self._started >= settings.max_duration:
            self.stop("max_duration")
            return
        since = self._sending_since
        if since is not None and settings.send_timeout and now - since >= settings.send_timeout:
            logger.warning(
                "stream %s: client accepted no data for %.0fs, closing", self._label(), now - since
            )
            self._abort_stalled()
            return
        keepalive = self._keepalive
        if keepalive is not None and since is None and now - self._last_write >= settings.ping_interval:
            self._last_write = now  # the next keep-alive is due one interval after this one
            if not self.write_direct(keepalive, 0):
                self._ping_due = True  # the loop sends it (it is not parked)
                self.source.wake()
        self._arm_timer()

    def _abort_stalled(self) -> None:
        # The loop is stuck in wire.write() (the server's flow control holds it): drop the
        # connection, which releases it (under plain ASGI by cancelling this task).
        self.stop("send_timeout")
        if not self.wire.abort():
            self._cancels.cancel()  # the wire cannot drop the connection: end the request

    def _label(self) -> str:
        return f"#{self.info.id} {self.info.route or self.info.path}"

    def _mark_closed(self) -> None:
        self._finished = True
        for closed in self._closed or ():
            if not closed.done():
                closed.set_result(None)
