"""rat_engine's HTTP/1.1 connection protocol: bytes in (httptools), ASGI calls out.

It replaces uvicorn's ``HttpToolsProtocol`` inside uvicorn's server (which still owns sockets,
workers, signals and the lifespan). Why our own: the per-request and per-stream cost of the
stock protocol was the largest item left in the profiles (docs/BENCHMARKS.md). What differs:

* A response with a known length goes out in *one* ``transport.write`` (head and body).
* Connection and request state are slotted objects: an idle stream costs a few hundred bytes
  here instead of ~5 KB (an ``asyncio.Event`` and a dict-backed cycle per request).
* ``scope["rat.exchange"]`` (the request's :class:`~._exchange.Exchange`) lets rat_engine's streams
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
import logging
from collections import deque
from types import CoroutineType
from typing import Any
from urllib.parse import unquote

import httptools

from .exchange import ASGI_VERSION, Exchange, plain_response
from .flow_control import FlowControl
from .forwarded import FORWARDED_HEADERS, ForwardedHeaders, unwrap

__all__ = ["BadRequest", "RatHttpProtocol"]

logger = logging.getLogger("rat_engine.server")

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SWITCHING_TO_H2C = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
#: An empty SETTINGS frame (the server preface a client expects first), then GOAWAY (type 7)
#: on stream 0: last stream 0, error HTTP_1_1_REQUIRED (0xd), a reason.
_GOAWAY_REASON = b"h2c is not enabled on this port"
_GOAWAY_HTTP_1_1_REQUIRED = (
    b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    + (8 + len(_GOAWAY_REASON)).to_bytes(3, "big") + b"\x07\x00" + bytes(4) + bytes(4) + b"\x00\x00\x00\x0d"
    + _GOAWAY_REASON
)  # fmt: skip


class _Discard(asyncio.Protocol):
    """A refused connection's last second: its bytes are read and dropped, then it closes."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.timer = loop.call_later(1.0, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.timer.cancel()


def _tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",")}


def _h2c_upgrade(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The HTTP2-Settings value of a valid ``Upgrade: h2c`` request without a body (RFC 7540
    3.2), else None. Why no body: the whole body would have to be read before switching; such a
    request is answered as HTTP/1.1, which RFC 7540 allows."""
    upgrade = settings = connection = None
    count = 0
    for name, value in headers:
        if name == b"upgrade":
            upgrade = value
        elif name == b"http2-settings":
            settings = value
            count += 1
        elif name == b"connection":
            connection = value
        elif name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return None
    if upgrade is None or settings is None or connection is None or count != 1:
        return None
    if b"h2c" not in _tokens(upgrade) or not {b"upgrade", b"http2-settings"} <= _tokens(connection):
        return None
    return settings


class BadRequest(Exception):
    """A request the parser accepted but HTTP forbids; its text is the 400 body."""


class RatHttpProtocol(asyncio.Protocol):
    """One client connection. uvicorn creates it: ``Config(http=RatHttpProtocol)``."""

    #: Seconds allowed to send a complete request head (``app.run(header_timeout=...)`` makes a
    #: subclass per server, so the setting never leaks into another server of the process).
    header_timeout: float = 10.0
    #: Offer HTTP/2 by ALPN on a TLS port (``serve(h2=False)`` turns it off).
    h2_enabled: bool = True
    #: A cleartext port also accepts HTTP/2 (prior knowledge, ``Upgrade: h2c``): ``serve(h2c=True)``.
    h2c_enabled: bool = False
    #: SETTINGS_MAX_CONCURRENT_STREAMS announced on HTTP/2 connections.
    h2_max_concurrent_streams: int = 128

    __slots__ = (
        "app", "loop", "server_state", "root_path", "keep_alive_timeout", "limit_concurrency",
        "app_state", "parser", "transport", "client", "server", "scheme", "url", "headers",
        "expect_continue", "host_count", "exchange", "pipeline", "timer", "waiting", "deadline",
        "flow", "fresh", "preface", "upgrade", "forwarded", "proxied",
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
        #: X-Forwarded-* applied to the scope here instead of by uvicorn's wrapper (forwarded.py).
        self.forwarded: ForwardedHeaders | None
        self.app, self.forwarded = unwrap(config.loaded_app)
        self.proxied = False  # the request being parsed carries an X-Forwarded-* header
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
        self.host_count = 0
        self.exchange: Exchange | None = None
        self.pipeline: deque[Exchange] | None = None
        #: One lazy timer per connection serves both the head and the keep-alive timeout: a
        #: request only moves ``deadline``; the timer re-arms itself if it fires early. PERF:
        #: creating and cancelling a TimerHandle per request cost ~1.5 us.
        self.timer: asyncio.TimerHandle | None = None
        self.waiting: str | None = None  # "head" | "idle" | None (a request is being served)
        self.deadline = 0.0
        self.flow: FlowControl = None  # type: ignore[assignment]  # made with the transport
        #: No byte received yet: the first ones may be the HTTP/2 preface (h2c prior knowledge).
        self.fresh = True
        self.preface = b""
        #: An ``Upgrade: h2c`` request waiting for its end: (scope, HTTP2-Settings value).
        self.upgrade: tuple[dict[str, Any], bytes] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.flow = FlowControl(self.transport, self.loop)
        self.server_state.connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, (tuple, list)) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, (tuple, list)) and len(sock) >= 2:
            self.server = (str(sock[0]), int(sock[1]))
        if transport.get_extra_info("sslcontext"):
            self.scheme = "https"
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self.switch_to_h2()
                return
        self._expect("head", self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.waiting = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        exchange = self.exchange
        if exchange is not None:
            exchange.lost()
        if self.pipeline:
            for queued in self.pipeline:
                queued.lost()
            self.pipeline.clear()
        if self.flow is not None:
            self.flow.connection_lost()
        self.parser = None  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.fresh:
            data = self._first_bytes(data)
            if not data:
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            upgrade, self.upgrade = self.upgrade, None
            if upgrade is not None:  # Upgrade: h2c
                self.transport.write(_SWITCHING_TO_H2C)
                self.switch_to_h2(data[exc.args[0] :], upgrade)
            # Other upgrades (WebSocket) are not served: the request was answered as plain HTTP.
        except httptools.HttpParserError as exc:
            cause = exc.__context__  # what a callback raised (httptools chains it implicitly)
            logger.debug("invalid HTTP request from %s: %s", self.client, cause or exc)
            self._reject(
                400, str(cause) if isinstance(cause, BadRequest) else "Invalid HTTP request received."
            )

    def eof_received(self) -> bool | None:
        return None  # close the transport after a half-close, as uvicorn does

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # -- httptools callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.expect_continue = False
        self.host_count = 0
        self.proxied = False
        if self.waiting != "head":  # the head timeout runs from the first byte of each request
            self._expect("head", self.header_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        elif name == b"host":
            self.host_count += 1
        elif name in FORWARDED_HEADERS:
            self.proxied = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.waiting = None
        parser = self.parser
        version = parser.get_http_version()
        # RFC 9112 3.2: exactly one Host in HTTP/1.1; at most one in HTTP/1.0. Raised inside a
        # parser callback, this ends as a 400 (data_received).
        if self.host_count > 1:
            raise BadRequest("Bad Request: more than one Host header.")
        if self.host_count == 0 and version != "1.0":
            raise BadRequest("Bad Request: missing Host header.")
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": ASGI_VERSION,
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
        if self.proxied and self.forwarded is not None:
            self.forwarded.apply(scope)
        if self.h2c_enabled and self.scheme == "http" and version == "1.1":
            settings = _h2c_upgrade(self.headers)
            if settings is not None:
                self.upgrade = (scope, settings)  # served as HTTP/2 stream 1 once the head ends
                return
        exchange = Exchange(
            scope,
            self.flow,
            version != "1.0" and parser.should_keep_alive(),
            self.expect_continue,
            self.server_state.default_headers,
            self.response_complete,
            self._streaming,
        )
        scope["rat.exchange"] = exchange
        current = self.exchange
        if current is None or current.complete:
            self.exchange = exchange
            self._start(exchange)
        else:  # pipelined: answered in order, after the current response
            if self.pipeline is None:
                self.pipeline = deque()
            self.pipeline.append(exchange)
            self.flow.hold_reading = True
            self.flow.pause_reading()

    def on_body(self, body: bytes) -> None:
        exchange = self.pipeline[-1] if self.pipeline else self.exchange
        if exchange is None or exchange.complete:
            return
        if exchange.feed_body(body):
            self.flow.pause_reading()

    def on_message_complete(self) -> None:
        upgrade = self.upgrade
        if upgrade is not None:
            if not self.parser.should_upgrade():
                self.upgrade = None  # the parser will not switch: answer it as HTTP/1.1
                self._serve_plain(upgrade[0])
            return  # else data_received switches to HTTP/2 (HttpParserUpgrade)
        exchange = self.pipeline[-1] if self.pipeline else self.exchange
        if exchange is None or exchange.complete:
            return
        exchange.end_body()

    # -- HTTP/2 ----------------------------------------------------------------------------------------
    def _first_bytes(self, data: bytes) -> bytes:
        """The connection's first bytes: HTTP/1.1 (returned) or the HTTP/2 preface (handled)."""
        if self.preface:
            data, self.preface = self.preface + data, b""
        if data[:1] != b"P" or not _H2_PREFACE.startswith(data[: len(_H2_PREFACE)]):
            self.fresh = False
            return data
        if len(data) < len(_H2_PREFACE):
            self.preface = data  # wait for the rest of the preface
            return b""
        self.fresh = False
        if self.h2c_enabled and self.scheme == "http":
            self.switch_to_h2(data)
        else:
            # Why not a 400: an HTTP/2 client could not read it. HTTP_1_1_REQUIRED says what to do.
            logger.debug("HTTP/2 preface from %s on a port without h2c", self.client)
            self.server_state.connections.discard(self)
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            self.transport.write(_GOAWAY_HTTP_1_1_REQUIRED)
            # Read on for a moment: closing with the client's frames unread would reset the
            # connection, and the client would see a broken pipe instead of the GOAWAY.
            self.transport.set_protocol(_Discard(self.transport, self.loop))
        return b""

    def switch_to_h2(self, data: bytes = b"", upgrade: tuple[dict[str, Any], bytes] | None = None) -> None:
        """Hand this connection to the HTTP/2 protocol (imported only when a client speaks it)."""
        from .h2_connection import H2Protocol

        self.fresh = False
        self.waiting = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.server_state.connections.discard(self)
        protocol = H2Protocol(self)
        self.transport.set_protocol(protocol)
        self.parser = None  # type: ignore[assignment]
        protocol.begin(data, upgrade)

    def _serve_plain(self, scope: dict[str, Any]) -> None:
        exchange = Exchange(
            scope,
            self.flow,
            self.parser.should_keep_alive(),
            self.expect_continue,
            self.server_state.default_headers,
            self.response_complete,
            self._streaming,
        )
        scope["rat.exchange"] = exchange
        self.exchange = exchange
        exchange.end_body()
        self._start(exchange)

    # -- request lifecycle --------------------------------------------------------------------------
    def _start(self, exchange: Exchange) -> None:
        state = self.server_state
        if self.limit_concurrency is not None and (
            len(state.connections) > self.limit_concurrency or len(state.tasks) >= self.limit_concurrency
        ):
            logger.warning("exceeded concurrency limit, answering 503")
            exchange.complete = True
            self.transport.write(plain_response(503, "Service Unavailable"))
            self.transport.close()
            return
        try:
            running = self.app(exchange.scope, exchange.receive, exchange.send)
        except Exception as exc:  # not even a coroutine: as if it had raised
            exchange.app_failed(exc)
            return
        # The application's own coroutine is the task (no wrapper frame): its end is a callback.
        task = (
            self.loop.create_task(running)
            if type(running) is CoroutineType
            else asyncio.ensure_future(running, loop=self.loop)
        )
        state.tasks.add(task)
        exchange.tasks = state.tasks
        task.add_done_callback(exchange.app_done)

    def response_complete(self, exchange: Exchange) -> None:
        self.server_state.total_requests += 1
        if not exchange.keep_alive:
            self.transport.close()
            return
        if self.transport.is_closing():
            return
        if self.pipeline:
            self.exchange = self.pipeline.popleft()
            self.flow.hold_reading = bool(self.pipeline)
            self.flow.resume_reading()
            self._start(self.exchange)
        else:
            self.flow.hold_reading = False
            self.flow.resume_reading()
            self._expect("idle", self.keep_alive_timeout)

    def _streaming(self) -> None:
        """A response of unknown length started (a stream): nothing times out while it runs,
        and the lazy timer (~550 bytes) would otherwise stay allocated until it fires."""
        if self.waiting is None and self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def shutdown(self) -> None:
        """Called by uvicorn on graceful shutdown: close when idle, else after this response."""
        exchange = self.exchange
        if exchange is None or exchange.complete:
            self.transport.close()
        else:
            exchange.keep_alive = False

    def _reject(self, status: int, text: str) -> None:
        exchange = self.exchange
        if exchange is None or exchange.complete or not exchange.started:
            self.transport.write(plain_response(status, text))
        if exchange is not None and not exchange.complete:
            exchange.lost()  # the application's later sends are dropped, as after a disconnect
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
        exchange = self.exchange
        if exchange is not None and not exchange.complete:
            return  # a response is still being sent (e.g. a stream): not an idle head
        self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()
