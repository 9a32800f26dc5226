"""Streaming responses: a generator's items written as they come, with a full lifecycle.

Lifecycle of one stream (see docs/ARCHITECTURE.md for the diagram)::

    admit (limits) -> register -> send headers -> start pump -> write loop -> cleanup
                                                  |            ^   |
                     disconnect watcher (receive) -+-> stop() --+   +-> ping when idle
                     max-duration / send-timeout timers -+          +-> farewell frame on shutdown

* The write loop takes *everything* queued at once, so bursts become one write.
* ``stop(reason)`` can come from the client leaving, the app shutting down, a timer, or the
  generator ending; it closes the pump (the generator's ``finally`` runs) and wakes the writer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _json
from ..broadcast.subscription import Subscription
from ..responses import Response
from . import stepping as _stepping
from .sources import (
    ChunkEncoder,
    ErrorEncoder,
    StreamBuffer,
    TaskPump,
    ThreadPump,
    _close_async,
    _encode_or_error,
)

if TYPE_CHECKING:
    from .registry import ConnectionManager, StreamInfo

logger = logging.getLogger(__name__)

__all__ = ["StreamContext", "StreamSettings", "StreamingResponse", "source_kind"]


@dataclass(slots=True)
class StreamSettings:
    """Per-app defaults, overridable per route (``@app.sse(rule, ping_interval=5)``)."""

    #: Seconds without a write before a ``: ping`` comment is sent; 0 disables.
    ping_interval: float = 15.0
    #: End the stream after this many seconds (the browser reconnects); None: no limit.
    max_duration: float | None = None
    #: Close a client that has not accepted data for this many seconds; None: never.
    send_timeout: float | None = 60.0
    #: Chunks buffered per stream before the generator is held at its ``yield``.
    buffer_size: int = 64
    #: ``retry:`` (ms) sent first, telling browsers how soon to reconnect; None: not sent.
    retry: int | None = None
    #: Include exception text in ``error`` events (turn on only while debugging).
    expose_errors: bool = False
    #: Stack size for the thread of each sync-generator stream (bytes; 0: Python default).
    thread_stack_size: int = 256 * 1024

    def merged(self, overrides: Mapping[str, Any]) -> StreamSettings:
        if not overrides:
            return self
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        unknown = set(overrides) - set(values)
        if unknown:
            raise TypeError(f"unknown stream option(s): {', '.join(sorted(unknown))}")
        values.update(overrides)
        return StreamSettings(**values)


@dataclass(slots=True)
class StreamContext:
    """What the dispatcher hands a streaming response: where it is registered and how it behaves."""

    settings: StreamSettings = field(default_factory=StreamSettings)
    manager: ConnectionManager | None = None
    route: str = ""
    client: str = ""
    #: Set when the stream stops for any reason; blocking generator code may poll or wait on it.
    disconnected: threading.Event | None = None
    #: Frame sent to every open stream when the server shuts down (e.g. a ``retry:`` hint).
    shutdown_frame: bytes | None = None
    on_close: Callable[[StreamingResponse], None] | None = None


def source_kind(content: Any) -> str:
    """How a stream's content is driven: "subscription" (a broadcast subscription, drained
    directly), "task" (async iterable), "thread" (sync iterator) or "static" (a list/tuple or a
    single value: no thread needed)."""
    if isinstance(content, Subscription):
        return "subscription"
    if hasattr(content, "__aiter__"):
        return "task"
    if isinstance(content, (list, tuple)):
        return "static"
    if inspect.isgenerator(content) or (
        hasattr(content, "__iter__") and not isinstance(content, (str, bytes, bytearray, dict))
    ):
        return "thread"
    return "static"


def _plain_chunk(item: Any) -> bytes | None:
    """``@app.chunk`` items: bytes as is, str as UTF-8, dict/list as one JSON line."""
    if item is None:
        return None
    if isinstance(item, bytes):
        return item
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    return _json.dumps(item) + b"\n" if isinstance(item, (dict, list)) else str(item).encode("utf-8")


def _no_error_chunk(exc: BaseException) -> bytes | None:
    return None


class StreamingResponse(Response):
    """Send ``content`` incrementally with chunked transfer encoding (``@app.chunk``).

    ``content`` may be a sync iterable (run on its own thread), an async iterable (a task on
    the loop), or a single str/bytes value.
    """

    media_type = "text/plain"
    #: Items become bytes through this; subclasses (SSE) frame them.
    encoder: ChunkEncoder = staticmethod(_plain_chunk)
    pings = False
    #: False: a body cut short (the generator raised, shutdown, max_duration) is left without
    #: its final chunk, so the client sees it is incomplete (a download must not look
    #: finished). SSE streams report errors in-band and end cleanly (True).
    ends_cleanly = False

    def __init__(
        self,
        content: Any,
        status: int = 200,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(b"", status, headers, media_type)
        self.content = content
        self.context = StreamContext()
        self.stop_reason: str | None = None
        self.info: StreamInfo | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._pump: ThreadPump | TaskPump | Subscription | None = None
        #: Futures of wait_closed() callers (made only on demand: most streams never get one).
        self._closed: list[asyncio.Future[None]] | None = None
        self._finished = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_write = 0.0
        self._sending_since: float | None = None
        self._ping_due = False
        self._task: asyncio.Task[Any] | None = None
        self._exchange: Any = None  # rat_engine's server: scope["rat.exchange"] (_exchange.py)
        self._in_generator = False  # _step_loop is awaiting inside the generator
        self._corked: list[bytes] | None = None  # taken by _write_direct, flushed soon
        self._corked_events = 0
        self._stop_cancels = 0  # cancellations stop() asked for (to uncancel, not propagate)

    # -- hooks for subclasses ------------------------------------------------------------------
    def error_encoder(self) -> ErrorEncoder:
        return _no_error_chunk

    def preamble(self) -> bytes:
        return b""

    # -- control -------------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """End the stream (idempotent; the first reason wins)."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        if self.context.disconnected is not None:
            self.context.disconnected.set()
        if self._pump is not None:
            self._pump.stop()
        elif self._in_generator and self._task is not None:
            # The writer is awaiting inside the generator (_step_loop): cancel it there, so the
            # generator's finally runs now, as a pump task's would.
            self._stop_cancels += 1
            self._task.cancel()
        self._wake()

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until the response is finished and the generator closed; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._loop is not None and not self._finished:
            closed = loop.create_future()
            if self._closed is None:
                self._closed = []
            self._closed.append(closed)
            try:
                await asyncio.wait_for(closed, timeout)
            except TimeoutError:
                return False
        if self._pump is not None:
            return await self._pump.wait(max(0.0, deadline - loop.time()))
        return True

    def _mark_closed(self) -> None:
        self._finished = True
        for closed in self._closed or ():
            if not closed.done():
                closed.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- ASGI ----------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        start = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.render_headers(None),
        }
        if scope.get("method") == "HEAD":
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            _close_unstarted(self.content)
            return
        loop = self._loop = asyncio.get_running_loop()
        ctx = self.context
        settings = ctx.settings
        kind = source_kind(self.content)
        exchange = scope.get("rat.exchange")  # set by rat_engine's own server (_protocol.py)
        # An async generator on our server is stepped by this task itself (_stepping.py).
        inline = exchange is not None and kind == "task"
        buffer: StreamBuffer | Subscription | None
        if isinstance(self.content, Subscription):
            subscription = buffer = self.content
            try:
                await subscription.open()  # registers, and queues the Last-Event-ID replay
            except Exception as exc:
                subscription.close()
                logger.error("cannot subscribe to broadcast channel %r", subscription.channel, exc_info=exc)
                await Response(b"broadcast unavailable", 503, {"retry-after": "2"})(scope, receive, send)
                self._mark_closed()
                return
        elif inline:
            buffer = None
        else:
            buffer = StreamBuffer(loop, settings.buffer_size)
        if ctx.manager is not None:
            self.info = ctx.manager.register(ctx.route, scope.get("path", ""), ctx.client, kind, self)
        watcher: asyncio.Task[None] | None = None
        try:
            await send(start)
            preamble = self.preamble()
            if preamble:
                await self._write(send, preamble, 0)
            if buffer is not None:
                self._pump = self._start_pump(kind, buffer)
            if exchange is not None:  # rat_engine's own server: a callback, no watcher task
                exchange.on_disconnect(self._client_left)
                self._exchange = exchange
                if isinstance(buffer, Subscription):
                    buffer.direct = self._write_direct
            else:
                watcher = loop.create_task(self._watch_disconnect(receive))
            self._last_write = loop.time()
            self._schedule_timer(settings)
            if settings.max_duration:
                loop.call_later(settings.max_duration, self.stop, "max_duration")
            if exchange is None or inline:  # cancelled by send_timeout / by stop()
                self._task = asyncio.current_task()
            try:
                if buffer is None:
                    failed = await self._step_loop(send, self.content)
                else:
                    await self._write_loop(send, buffer)
                    failed = buffer.failed
            except asyncio.CancelledError:
                if self.stop_reason != "send_timeout" or self._task is None:
                    raise
                # Our own cancellation of a stalled write: end quietly; the server drops the socket.
                self._task.uncancel()
                return
            if self.stop_reason == "shutdown" and ctx.shutdown_frame:
                await self._write(send, ctx.shutdown_frame, 0)
            cut_short = failed or self.stop_reason in ("shutdown", "max_duration")
            if self.stop_reason != "client" and (self.ends_cleanly or not cut_short):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.stop(self.stop_reason or "finished")
            if isinstance(buffer, Subscription):
                buffer.direct = None
            if watcher is not None:
                watcher.cancel()
            if self._timer is not None:
                self._timer.cancel()
            if ctx.manager is not None and self.info is not None:
                ctx.manager.unregister(self.info, self.stop_reason or "finished")
            self._mark_closed()
            if ctx.on_close is not None:
                ctx.on_close(self)

    def _start_pump(
        self, kind: str, buffer: StreamBuffer | Subscription
    ) -> ThreadPump | TaskPump | Subscription | None:
        if isinstance(buffer, Subscription):
            return buffer  # the broadcast fills it; stopping it unsubscribes
        encode, on_error = self.encoder, self.error_encoder()
        if kind == "task":
            pump: ThreadPump | TaskPump = TaskPump(self.content, encode, on_error, buffer)
        elif kind == "thread":
            name = f"rat-stream-{self.info.id if self.info else id(self)}"
            pump = ThreadPump(
                iter(self.content), encode, on_error, buffer, name, self.context.settings.thread_stack_size
            )
        else:
            items = self.content if isinstance(self.content, (list, tuple)) else [self.content]
            for item in items:
                chunk = encode(item)
                if chunk is not None:
                    buffer.put_nowait(chunk)  # static content: bounded by what the handler returned
            buffer.finish()
            return None
        pump.start()
        return pump

    async def _write_loop(self, send: Any, buffer: StreamBuffer | Subscription) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            if self._corked:
                await self._send_corked(send)
            chunks = buffer.take()
            if chunks:
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                await self._write(send, body, len(chunks))
                continue
            if self.stop_reason is not None or buffer.finished:
                return
            if self._ping_due:
                self._ping_due = False
                await self._write(send, b": ping\n\n", 0)
                continue
            waiter = self._waiter = loop.create_future()
            if buffer.arm(waiter):
                await waiter
                buffer.disarm()
            self._waiter = None

    async def _step_loop(self, send: Any, iterator: Any) -> bool:
        """Pull items from an async iterator in this task, coalescing what comes without
        waiting into one write. Returns True when the generator failed (error event sent)."""
        encode, on_error = self.encoder, self.error_encoder()
        limit = self.context.settings.buffer_size
        batch: list[bytes] = []
        failed = False
        step: _stepping.Step | None = None  # the generator's step, while it waits
        try:
            while self.stop_reason is None:
                try:
                    item, step = _stepping.start_next(iterator)
                    if step is not None:  # it waits: what it made so far goes out first
                        if self._corked:
                            await self._send_corked(send)
                        if batch:
                            await self._write(send, b"".join(batch), len(batch))
                            batch = []
                        if self._ping_due:
                            self._ping_due = False
                            await self._write(send, b": ping\n\n", 0)
                        if self.stop_reason is not None:
                            break  # the finally below cancels the step where it waits
                        self._in_generator = True
                        try:
                            item = await _stepping.finish(step)
                        finally:
                            # However finish() ended, the step is over: an item, the end, or
                            # an exception the generator raised (or let through).
                            self._in_generator = False
                            step = None
                except StopAsyncIteration:
                    break
                except asyncio.CancelledError:
                    if not self._uncancel_own():
                        raise  # not ours: the server is cancelling this request
                    break
                except Exception as exc:
                    logger.error("stream generator raised", exc_info=exc)
                    last = on_error(exc)
                    if last is not None:
                        batch.append(last)
                    failed = True
                    break
                chunk = _encode_or_error(encode, on_error, item)
                if chunk is not None:
                    batch.append(chunk)
                    if len(batch) >= limit:
                        await self._write(send, b"".join(batch), len(batch))
                        batch = []
            if batch and self.stop_reason is None:
                await self._write(send, b"".join(batch), len(batch))
        finally:
            if step is not None:
                await _stepping.abandon(step)
            await _close_async(iterator)
            self._uncancel_own()
        return failed

    def _uncancel_own(self) -> bool:
        """Take back the cancellations stop() made; False if there were none (a real one)."""
        task, own = self._task, self._stop_cancels
        if not own or task is None:
            return False
        self._stop_cancels = 0
        for _ in range(own):
            if task.cancelling():
                task.uncancel()
        return True

    async def _write(self, send: Any, body: bytes, events: int) -> None:
        loop = self._loop
        assert loop is not None
        self._sending_since = loop.time()
        try:
            await send({"type": "http.response.body", "body": body, "more_body": True})
        except OSError:
            # Servers other than uvicorn may raise once the peer has gone.
            self.stop("client")
            return
        finally:
            self._sending_since = None
        self._last_write = loop.time()
        self._count(events, len(body))

    def _write_direct(self, chunk: bytes, events: int = 1) -> bool:
        """Take a chunk past the parked writer: a broadcast frame (the publisher calls this) or
        a ping while the writer waits inside a generator. False: refused, queue it instead.

        PERF: what arrives in one loop iteration (a burst of publishes) is written together at
        its end, one write per stream; a lone event still leaves within the same iteration.
        """
        if self.stop_reason is not None or self._sending_since is not None:
            return False
        if self._corked is None:
            self._corked = [chunk]
            self._corked_events = events
            assert self._loop is not None
            self._loop.call_soon(self._flush_corked)
        else:
            self._corked.append(chunk)
            self._corked_events += events
        return True

    def _flush_corked(self) -> None:
        corked = self._corked
        if not corked:
            return
        body = corked[0] if len(corked) == 1 else b"".join(corked)
        if self.stop_reason is None and self._sending_since is None and self._exchange.write_nowait(body):
            self._corked = None
            assert self._loop is not None
            self._last_write = self._loop.time()
            self._count(self._corked_events, len(body))
        else:
            self._wake()  # congested (or stopping): the writer sends them, with back-pressure

    async def _send_corked(self, send: Any) -> None:
        """Chunks taken by _write_direct and not yet flushed go first (they are the oldest)."""
        corked, self._corked = self._corked, None
        if corked:
            await self._write(send, b"".join(corked), self._corked_events)

    def _count(self, events: int, nbytes: int) -> None:
        self.bytes_sent += nbytes
        if self.info is not None and self.context.manager is not None:
            self.context.manager.record(self.info, events, nbytes)

    def _client_left(self) -> None:
        self.stop("client")

    async def _watch_disconnect(self, receive: Any) -> None:
        while True:
            try:
                message = await receive()
            except asyncio.CancelledError:
                raise
            except Exception:
                message = {"type": "http.disconnect"}
            if message["type"] == "http.disconnect":
                self.stop("client")
                return

    # -- timers: ping when idle, give up on a stalled client ------------------------------------
    def _schedule_timer(self, settings: StreamSettings) -> None:
        ping = settings.ping_interval if self.pings else 0
        if not ping and not settings.send_timeout:
            return
        loop = self._loop
        assert loop is not None
        now = loop.time()
        since = self._sending_since
        candidates = []
        if ping and since is None:  # no ping while a write is in progress
            candidates.append(self._last_write + ping)
        if settings.send_timeout:
            # While idle, look again every send_timeout: a write may start and stall meanwhile.
            candidates.append((since if since is not None else now) + settings.send_timeout)
        if not candidates:
            candidates.append(now + ping)
        delay = max(0.05, min(candidates) - now)
        self._timer = loop.call_later(delay, self._on_timer, settings)

    def _on_timer(self, settings: StreamSettings) -> None:
        if self.stop_reason is not None:
            return
        loop = self._loop
        assert loop is not None
        now = loop.time()
        since = self._sending_since
        if since is not None and settings.send_timeout and now - since >= settings.send_timeout:
            logger.warning(
                "stream %s: client accepted no data for %.0fs, closing", self._label(), now - since
            )
            self._abort_stalled()
            return
        ping = settings.ping_interval if self.pings else 0
        if ping and since is None and now - self._last_write >= ping:
            self._last_write = now  # the next ping is due one interval after this one
            if not (self._in_generator and self._write_direct(b": ping\n\n", 0)):
                self._ping_due = True  # the writer sends it (it is not parked in a generator)
                self._wake()
        self._schedule_timer(settings)

    def _abort_stalled(self) -> None:
        # The writer is stuck inside send() (the server's flow control is holding it). Our own
        # server can drop the connection, which releases send(); through plain ASGI the only way
        # out is to cancel the request task (the server then closes the socket).
        self.stop("send_timeout")
        if self._exchange is not None:
            self._exchange.abort()
        elif self._task is not None:
            self._task.cancel()

    def _label(self) -> str:
        return f"#{self.info.id} {self.context.route}" if self.info else self.context.route


def _close_unstarted(content: Any) -> None:
    close = getattr(content, "close", None)
    if callable(close) and inspect.isgenerator(content):
        close()
