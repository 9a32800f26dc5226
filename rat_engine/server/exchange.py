"""One HTTP/1.1 request and its response on rat_engine's protocol: the ASGI ``receive`` and
``send`` an application gets, and ``scope["rat.exchange"]``, the
:class:`~rat_engine.streaming.wire.StreamWire` rat_engine's streams write through.

The exchange never sees the connection object: it gets the connection's :class:`FlowControl`
(back-pressure both ways), its default headers, and two callbacks (``on_complete`` when the
response is done, ``on_streaming`` when a response of unknown length starts). The connection
feeds it the request body (:meth:`feed_body`, :meth:`end_body`) and tells it when the client
is gone (:meth:`lost`). The application's task is the application's own coroutine; when it
ends, :meth:`app_done` (its done-callback) does what a wrapper would have done around it.

``send()`` waits while the socket is congested (the bound on every per-stream buffer); a
fixed-length response is held until its first body bytes so head and body leave in one write;
``write_nowait()`` lets a stream hand over a chunk without a task switch when the socket takes it.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections.abc import Callable
from typing import Any

from .._types import Message
from .flow_control import FlowControl

__all__ = ["ASGI_VERSION", "BaseExchange", "Exchange", "plain_response"]

logger = logging.getLogger("rat_engine.server")

BAD_HEADER_NAME = re.compile(rb'[\x00-\x1f\x7f()<>@,;:\\[\]={} \t\\"]').search
BAD_HEADER_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: Request body bytes buffered before reading pauses until the application takes them.
_BODY_HIGH_WATER = 65536
_LAST_CHUNK = b"0\r\n\r\n"


def _chunk(body: bytes) -> bytes:
    """``body`` framed as one chunk of a chunked response."""
    return b"%x\r\n%s\r\n" % (len(body), body)


#: The last chunk framed by :func:`_shared_chunk`, with its body.
_last_shared: tuple[bytes, bytes] = (b"", _LAST_CHUNK)


def _shared_chunk(body: bytes) -> bytes:
    """:func:`_chunk` for a body that is likely the one framed just before: a broadcast frame
    reaches every subscriber as the same bytes object, so it is framed once per message, not
    once per subscriber (PERF, issue 11). Only the handed-past path uses it; a stream's own
    writes carry a new body each time and would pay for the cache without a hit."""
    global _last_shared
    last = _last_shared  # one read: another loop's thread may replace it meanwhile
    if last[0] is body:
        return last[1]
    framed = _chunk(body)
    _last_shared = (body, framed)
    return framed


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (code, phrase)


_STATUS_LINES = {code: _status_line(code) for code in range(100, 600)}
_DISCONNECT = {"type": "http.disconnect"}
#: Shared by every scope (uvicorn makes one per request); nobody writes to it.
ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}


def plain_response(status: int, text: str) -> bytes:
    body = text.encode()
    return _STATUS_LINES[status] + (
        b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
    )


class BaseExchange:
    """What an HTTP/1.1 exchange and an HTTP/2 stream share: the waiter ``receive()`` sleeps on,
    and the disconnect callbacks of the :class:`~rat_engine.streaming.wire.StreamWire`."""

    __slots__ = ("waiter", "on_lost", "disconnected", "complete", "more_body")

    waiter: asyncio.Future[None] | None
    on_lost: list[Callable[[], Any]] | None
    disconnected: bool
    complete: bool
    more_body: bool

    def end_body(self) -> None:
        self.more_body = False
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def lost(self) -> None:
        """The client is gone: ``receive()`` returns a disconnect, the callbacks run."""
        if not self.complete:
            self.disconnected = True
        self.wake()
        callbacks, self.on_lost = self.on_lost, None
        for callback in callbacks or ():
            try:
                callback()
            except Exception:
                logger.exception("disconnect callback failed")

    def release(self) -> None:
        self.on_lost = None

    def on_disconnect(self, callback: Callable[[], Any]) -> None:
        """Run ``callback()`` once when the client goes away (now, if it already has)."""
        if self.disconnected:
            callback()
        elif self.on_lost is None:
            self.on_lost = [callback]
        else:
            self.on_lost.append(callback)


class Exchange(BaseExchange):
    """One request and its response: the ``receive`` and ``send`` the application gets, and
    ``scope["rat.exchange"]``."""

    #: StreamWire: a lost client is reported by callback (async generators may be stepped).
    native = True

    __slots__ = (
        "scope", "flow", "transport", "default_headers", "on_complete", "on_streaming",
        "keep_alive", "waiting_continue", "body", "delivered", "started", "chunked", "remaining",
        "head_only", "pending_head", "tasks",
    )  # fmt: skip

    def __init__(
        self,
        scope: dict[str, Any],
        flow: FlowControl,
        keep_alive: bool,
        expect: bool,
        default_headers: list[tuple[bytes, bytes]],
        on_complete: Callable[[Exchange], None],
        on_streaming: Callable[[], None],
    ) -> None:
        self.scope = scope
        self.flow = flow
        self.transport = flow.transport
        self.default_headers = default_headers
        self.on_complete = on_complete
        self.on_streaming = on_streaming
        self.keep_alive = keep_alive
        self.waiting_continue = expect
        self.body = bytearray()
        self.more_body = True
        #: The whole body went to the application; ``receive()`` now waits for the end.
        self.delivered = False
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.on_lost: list[Callable[[], Any]] | None = None
        self.started = False
        self.complete = False
        self.chunked = False
        self.remaining = 0
        self.head_only = scope["method"] == "HEAD"
        #: Status line and headers of a fixed-length response, written with the first body bytes.
        self.pending_head: bytes | None = None
        #: The server's running tasks, which the application's task leaves when it ends (set by
        #: the protocol: one done-callback per request does both jobs).
        self.tasks: set[Any] | None = None

    def app_done(self, task: asyncio.Future[Any]) -> None:
        """The application's task has ended (its done-callback). PERF: what a wrapper coroutine
        around the application did, without a coroutine frame of its own on every request
        (a stream held it for its whole life: ~0.45 KB per idle stream; issue 11)."""
        if self.tasks is not None:
            self.tasks.discard(task)
        if task.cancelled():
            if not self.complete:  # the server is forcing its shutdown
                self.transport.close()
            return
        exc = task.exception()
        if exc is not None:
            self.app_failed(exc)
        elif not self.complete and not self.disconnected:
            logger.error("ASGI application returned without completing its response")
            if not self.started:
                self.started = self.complete = True
                self.transport.write(plain_response(500, "Internal Server Error"))
            self.transport.close()

    def app_failed(self, exc: BaseException) -> None:
        """The application raised: a 500 if nothing was sent yet, else the connection closes."""
        logger.error("exception in ASGI application", exc_info=exc)
        if not self.started and not self.disconnected:
            self.started = self.complete = True
            self.transport.write(plain_response(500, "Internal Server Error"))
            self.transport.close()
        elif not self.complete:
            self.transport.close()

    # -- connection events -----------------------------------------------------------------------
    def feed_body(self, body: bytes) -> bool:
        """Request body bytes arrived; True when the connection should pause reading."""
        self.body += body
        self.wake()
        return len(self.body) > _BODY_HIGH_WATER

    @property
    def writable(self) -> bool:
        """A chunk of a started chunked response would go out now, without waiting."""
        return (
            self.chunked
            and self.started
            and not self.complete
            and not self.disconnected
            and not self.head_only
            and not self.flow.write_paused
        )

    def write_nowait(self, body: bytes) -> bool:
        """Send ``body`` as one chunk of a started chunked response, now, if the socket takes it
        without waiting; False (nothing written) otherwise, and the caller uses ``send()``."""
        # PERF: the same test as ``writable``, inlined: this runs once per subscriber per
        # broadcast flush, where the property call measured +60 ns (timeit: 68 -> 128 ns),
        # about 1.5 % of a fan-out delivery's ~3.8 us of server CPU.
        if (
            not self.chunked
            or not self.started
            or self.complete
            or self.disconnected
            or self.head_only
            or self.flow.write_paused
        ):
            return False
        self.transport.write(_shared_chunk(body))
        return True

    def abort(self) -> bool:
        """Drop the connection now (``send()`` waiting on a congested socket returns)."""
        self.transport.abort()
        return True

    # -- ASGI --------------------------------------------------------------------------------------
    async def receive(self) -> Message:
        if self.waiting_continue:
            self.waiting_continue = False
            if not self.transport.is_closing():
                self.transport.write(_CONTINUE)
        while not (self.disconnected or self.complete):
            if not self.delivered and (self.body or not self.more_body):
                body = bytes(self.body)
                self.body.clear()
                self.delivered = not self.more_body
                return {"type": "http.request", "body": body, "more_body": self.more_body}
            self.flow.resume_reading()
            waiter = self.waiter = self.flow.loop.create_future()
            await waiter
        return _DISCONNECT

    async def send(self, message: Message) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            # Raises on an invalid header: a 500 can still go out.
            self._start_response(message["status"], message.get("headers", ()), True)
        elif not self.complete:
            if kind != "http.response.body":
                raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
            self._write_body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"unexpected {kind!r}: the response is already complete")

    # -- StreamWire: what a rat_engine stream writes through (no message dicts) --------------------
    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Headers come from rat_engine's ``render_headers``, which sanitised them: unlike the
        ASGI ``send()``'s they are not checked again (PERF: a regex pair per header)."""
        if self.started:
            raise RuntimeError("the response has already started")
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if not self.disconnected:
            self._start_response(status, headers, False)

    async def write(self, body: bytes) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if not self.disconnected:
            self._write_body(body, True)

    async def end(self, body: bytes = b"") -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if not self.disconnected:
            self._write_body(body, False)

    def _start_response(self, status: int, headers: Any, check: bool) -> None:
        parts = [_STATUS_LINES[status]]
        length: int | None = None
        has_close = False
        for name, value in self.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        for name, value in headers:
            if check and (BAD_HEADER_NAME(name) or BAD_HEADER_VALUE(value)):
                raise RuntimeError(f"invalid response header {name!r}")
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                self.keep_alive = False
                has_close = True
            elif name == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
            parts += [name, b": ", value, b"\r\n"]
        if not self.keep_alive and not has_close:
            parts.append(b"connection: close\r\n")
        if length is not None:
            self.remaining = length
            self.chunked = False
        elif not self.chunked and not self.head_only and status not in (204, 304) and status >= 200:
            self.chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        head = b"".join(parts)
        self.started = True
        self.waiting_continue = False
        if self.chunked:
            self.on_streaming()
        if length is not None and length > 0 and not self.head_only:
            self.pending_head = head  # PERF: sent with the first body bytes, in one write
        else:
            self.transport.write(head)

    def _write_body(self, body: bytes, more_body: bool) -> None:
        if self.complete or not self.started:
            raise RuntimeError("no response body can be sent now")
        transport = self.transport
        head, self.pending_head = self.pending_head, None
        if self.head_only:
            pass
        elif self.chunked:
            if body:
                data = _chunk(body)
                transport.write(data + _LAST_CHUNK if not more_body else data)
            elif not more_body:
                transport.write(_LAST_CHUNK)
        else:
            if len(body) > self.remaining:
                raise RuntimeError("response body longer than its content-length")
            self.remaining -= len(body)
            if head is not None:
                transport.write(head + body if body else head)
            elif body:
                transport.write(body)
        if not more_body:
            if self.remaining and not self.head_only:
                raise RuntimeError("response body shorter than its content-length")
            self.complete = True
            self.on_lost = None
            self.wake()
            self.on_complete(self)
