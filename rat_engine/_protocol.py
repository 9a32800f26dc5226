"""rat_engine's HTTP/1.1 connection protocol: bytes in (httptools), ASGI calls out.

It replaces uvicorn's ``HttpToolsProtocol`` inside uvicorn's server (which still owns sockets,
workers, signals and the lifespan). Why our own: the per-request and per-stream cost of the
stock protocol was the largest item left in the profiles (docs/BENCHMARKS.md). What differs:

* A response with a known length goes out in *one* ``transport.write`` (head and body).
* Exchange and request state are slotted objects: an idle stream costs a few hundred bytes
  here instead of ~5 KB (an ``asyncio.Event`` and a dict-backed cycle per request).
* ``scope["rat.exchange"]`` (the request's :class:`Exchange`) lets rat_engine's streams
  skip the task that would otherwise sit in ``receive()`` waiting for the client to leave:
  ``on_disconnect(callback)`` runs ``callback()`` once when the connection is lost, and
  ``abort()`` drops the connection (a client that stopped reading, see ``send_timeout``). Why a
  scope key and not ``scope["extensions"]``: that would be one more dict per request (memory
  per idle stream is a target); frameworks add scope keys the same way (Starlette's "router").
* Every request head must be complete within ``header_timeout`` seconds of its first byte (or
  of the connection opening): a slowloris client gets ``408`` and is closed. uvicorn times out
  an idle connection only after a response.

Kept from uvicorn's behaviour: ``send()`` waits while the socket is congested (the bound on
every per-stream buffer), pipelined requests are answered in order, ``Expect: 100-continue`` is
answered on the first ``receive()``, request bodies pause reading past 64 KB, a malformed
request gets ``400`` and a close, an application error before the response gets ``500``.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httptools

__all__ = ["Exchange", "RatHttpProtocol"]

logger = logging.getLogger("rat_engine.server")

_BAD_NAME = re.compile(rb'[\x00-\x1f\x7f()<>@,;:\\[\]={} \t\\"]').search
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search
_BODY_HIGH_WATER = 65536
_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (code, phrase)


_STATUS_LINES = {code: _status_line(code) for code in range(100, 600)}
_DISCONNECT = {"type": "http.disconnect"}
#: Shared by every scope (uvicorn makes one per request); nobody writes to it.
_ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}


def _plain_response(status: int, text: str) -> bytes:
    body = text.encode()
    return _STATUS_LINES[status] + (
        b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
    )


class RatHttpProtocol(asyncio.Protocol):
    """One client connection. uvicorn creates it: ``Config(http=RatHttpProtocol)``."""

    #: Seconds allowed to send a complete request head (``app.run(header_timeout=...)`` makes a
    #: subclass per server, so the setting never leaks into another server of the process).
    header_timeout: float = 10.0

    __slots__ = (
        "app", "loop", "server_state", "root_path", "keep_alive_timeout", "limit_concurrency",
        "app_state", "parser", "transport", "client", "server", "scheme", "url", "headers",
        "expect_continue", "cycle", "pipeline", "timer", "waiting", "deadline", "read_paused",
        "write_paused", "drains",
    )  # fmt: skip

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.root_path: str = config.root_path
        self.keep_alive_timeout: float = config.timeout_keep_alive
        self.limit_concurrency: int | None = config.limit_concurrency
        self.app_state = app_state
        self.parser = httptools.HttpRequestParser(self)
        try:  # answer the first of pipelined requests even if the client half-closes
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        except AttributeError:  # pragma: no cover - httptools < 0.6.3
            pass
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.scheme = "http"
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.expect_continue = False
        self.cycle: Exchange | None = None
        self.pipeline: deque[Exchange] | None = None
        #: One lazy timer per connection serves both the head and the keep-alive timeout: a
        #: request only moves ``deadline``; the timer re-arms itself if it fires early. PERF:
        #: creating and cancelling a TimerHandle per request cost ~1.5 us.
        self.timer: asyncio.TimerHandle | None = None
        self.waiting: str | None = None  # "head" | "idle" | None (a request is being served)
        self.deadline = 0.0
        self.read_paused = False
        self.write_paused = False
        self.drains: list[asyncio.Future[None]] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.server_state.connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, (tuple, list)) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, (tuple, list)) and len(sock) >= 2:
            self.server = (str(sock[0]), int(sock[1]))
        if transport.get_extra_info("sslcontext"):
            self.scheme = "https"
        self._expect("head", self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.waiting = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        cycle = self.cycle
        if cycle is not None:
            cycle.lost()
        if self.pipeline:
            for queued in self.pipeline:
                queued.lost()
            self.pipeline.clear()
        self.write_paused = False
        self._release_drains()
        self.parser = None  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no upgrades (WebSocket) here: the request was answered as plain HTTP
        except httptools.HttpParserError as exc:
            logger.debug("invalid HTTP request from %s: %s", self.client, exc)
            self._reject(400, "Invalid HTTP request received.")

    def eof_received(self) -> bool | None:
        return None  # close the transport after a half-close, as uvicorn does

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._release_drains()

    # -- httptools callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.expect_continue = False
        if self.waiting != "head":  # the head timeout runs from the first byte of each request
            self._expect("head", self.header_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.waiting = None
        parser = self.parser
        version = parser.get_http_version()
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": _ASGI_VERSION,
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": parser.get_method().decode("ascii"),
            "root_path": self.root_path,
            "path": self.root_path + path,
            "raw_path": raw_path,
            "query_string": url.query or b"",
            "headers": self.headers,
        }
        if self.app_state:
            scope["state"] = self.app_state.copy()
        cycle = Exchange(self, scope, version != "1.0" and parser.should_keep_alive(), self.expect_continue)
        scope["rat.exchange"] = cycle
        current = self.cycle
        if current is None or current.complete:
            self.cycle = cycle
            self._start(cycle)
        else:  # pipelined: answered in order, after the current response
            if self.pipeline is None:
                self.pipeline = deque()
            self.pipeline.append(cycle)
            self._pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.pipeline[-1] if self.pipeline else self.cycle
        if cycle is None or cycle.complete:
            return
        cycle.body += body
        if len(cycle.body) > _BODY_HIGH_WATER:
            self._pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self.pipeline[-1] if self.pipeline else self.cycle
        if cycle is None or cycle.complete:
            return
        cycle.more_body = False
        cycle.wake()

    # -- request lifecycle --------------------------------------------------------------------------
    def _start(self, cycle: Exchange) -> None:
        state = self.server_state
        if self.limit_concurrency is not None and (
            len(state.connections) > self.limit_concurrency or len(state.tasks) >= self.limit_concurrency
        ):
            logger.warning("exceeded concurrency limit, answering 503")
            cycle.complete = True
            self.transport.write(_plain_response(503, "Service Unavailable"))
            self.transport.close()
            return
        task = self.loop.create_task(cycle.run(self.app))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    def response_complete(self, cycle: Exchange) -> None:
        self.server_state.total_requests += 1
        if not cycle.keep_alive:
            self.transport.close()
            return
        if self.transport.is_closing():
            return
        self._resume_reading()
        if self.pipeline:
            self.cycle = self.pipeline.popleft()
            self._start(self.cycle)
        else:
            self._expect("idle", self.keep_alive_timeout)

    def shutdown(self) -> None:
        """Called by uvicorn on graceful shutdown: close when idle, else after this response."""
        cycle = self.cycle
        if cycle is None or cycle.complete:
            self.transport.close()
        else:
            cycle.keep_alive = False

    def _reject(self, status: int, text: str) -> None:
        cycle = self.cycle
        if cycle is None or cycle.complete or not cycle.started:
            self.transport.write(_plain_response(status, text))
        if cycle is not None and not cycle.complete:
            cycle.lost()  # the application's later sends are dropped, as after a disconnect
        self.transport.close()

    # -- timers ------------------------------------------------------------------------------------
    def _expect(self, waiting: str, timeout: float) -> None:
        """Close the connection unless ``waiting`` ends within ``timeout`` seconds (0: never)."""
        if timeout <= 0:
            self.waiting = None
            return
        self.waiting = waiting
        self.deadline = deadline = self.loop.time() + timeout
        timer = self.timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        waiting = self.waiting
        if waiting is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if now < self.deadline:  # the deadline moved on since this timer was set
            self.timer = self.loop.call_at(self.deadline, self._on_timer)
            return
        self.waiting = None
        if waiting == "idle":
            self.transport.close()
            return
        cycle = self.cycle
        if cycle is not None and not cycle.complete:
            return  # a response is still being sent (e.g. a stream): not an idle head
        self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()

    # -- flow control ------------------------------------------------------------------------------
    def _pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and not self.pipeline:
            self.read_paused = False
            self.transport.resume_reading()

    async def drain(self) -> None:
        waiter = self.loop.create_future()
        if self.drains is None:
            self.drains = []
        self.drains.append(waiter)
        await waiter

    def _release_drains(self) -> None:
        drains, self.drains = self.drains, None
        for waiter in drains or ():
            if not waiter.done():
                waiter.set_result(None)


class Exchange:
    """One request and its response: the ``receive`` and ``send`` the application gets, and
    ``scope["rat.exchange"]``."""

    __slots__ = (
        "conn", "scope", "keep_alive", "waiting_continue", "body", "more_body", "delivered",
        "waiter", "disconnected", "on_lost", "started", "complete", "chunked", "remaining",
        "head_only", "pending_head",
    )  # fmt: skip

    def __init__(self, conn: RatHttpProtocol, scope: dict[str, Any], keep_alive: bool, expect: bool) -> None:
        self.conn = conn
        self.scope = scope
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

    async def run(self, app: Any) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self.complete:  # the server is forcing its shutdown
                self.conn.transport.close()
            raise
        except BaseException as exc:
            logger.error("exception in ASGI application", exc_info=exc)
            if not self.started and not self.disconnected:
                self.started = self.complete = True
                self.conn.transport.write(_plain_response(500, "Internal Server Error"))
                self.conn.transport.close()
            elif not self.complete:
                self.conn.transport.close()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if not self.complete and not self.disconnected:
                logger.error("ASGI application returned without completing its response")
                if not self.started:
                    self.started = self.complete = True
                    self.conn.transport.write(_plain_response(500, "Internal Server Error"))
                self.conn.transport.close()

    # -- connection events -----------------------------------------------------------------------
    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def lost(self) -> None:
        if not self.complete:
            self.disconnected = True
        self.wake()
        callbacks, self.on_lost = self.on_lost, None
        for callback in callbacks or ():
            try:
                callback()
            except Exception:
                logger.exception("disconnect callback failed")

    def write_nowait(self, body: bytes) -> bool:
        """Send ``body`` as one chunk of a started chunked response, now, if the socket takes it
        without waiting; False (nothing written) otherwise, and the caller uses ``send()``."""
        if (
            not self.chunked
            or not self.started
            or self.complete
            or self.disconnected
            or self.head_only
            or self.conn.write_paused
        ):
            return False
        self.conn.transport.write(b"%x\r\n%s\r\n" % (len(body), body))
        return True

    def abort(self) -> None:
        """Drop the connection now (``send()`` waiting on a congested socket returns)."""
        self.conn.transport.abort()

    def on_disconnect(self, callback: Callable[[], Any]) -> None:
        """Run ``callback()`` once when the client goes away (now, if it already has)."""
        if self.disconnected:
            callback()
        elif self.on_lost is None:
            self.on_lost = [callback]
        else:
            self.on_lost.append(callback)

    # -- ASGI --------------------------------------------------------------------------------------
    async def receive(self) -> dict[str, Any]:
        conn = self.conn
        if self.waiting_continue:
            self.waiting_continue = False
            if not conn.transport.is_closing():
                conn.transport.write(_CONTINUE)
        while not (self.disconnected or self.complete):
            if not self.delivered and (self.body or not self.more_body):
                body = bytes(self.body)
                self.body.clear()
                self.delivered = not self.more_body
                return {"type": "http.request", "body": body, "more_body": self.more_body}
            conn._resume_reading()
            waiter = self.waiter = conn.loop.create_future()
            await waiter
        return _DISCONNECT

    async def send(self, message: dict[str, Any]) -> None:
        conn = self.conn
        if conn.write_paused and not self.disconnected:
            await conn.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            self._start_response(message)  # raises on an invalid header: a 500 can still go out
            self.started = True
            self.waiting_continue = False
        elif not self.complete:
            if kind != "http.response.body":
                raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
            self._write_body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"unexpected {kind!r}: the response is already complete")

    def _start_response(self, message: dict[str, Any]) -> None:
        status = message["status"]
        parts = [_STATUS_LINES[status]]
        length: int | None = None
        has_close = False
        for name, value in self.conn.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        for name, value in message.get("headers", ()):
            if _BAD_NAME(name) or _BAD_VALUE(value):
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
        conn = self.conn
        if self.chunked and conn.waiting is None and conn.timer is not None:
            # A stream: nothing times out while it runs, and the lazy timer (~550 bytes) would
            # otherwise stay allocated until it fires.
            conn.timer.cancel()
            conn.timer = None
        if length is not None and length > 0 and not self.head_only:
            self.pending_head = head  # PERF: sent with the first body bytes, in one write
        else:
            self.conn.transport.write(head)

    def _write_body(self, body: bytes, more_body: bool) -> None:
        transport = self.conn.transport
        head, self.pending_head = self.pending_head, None
        if self.head_only:
            pass
        elif self.chunked:
            if body:
                data = b"%x\r\n%s\r\n" % (len(body), body)
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
            self.conn.response_complete(self)
