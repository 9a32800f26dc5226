"""rat_engine's HTTP/2 connection protocol: bytes in (the sans-IO ``h2`` library), one
:class:`~.h2_stream.H2Stream` per request out.

The HTTP/1.1 protocol hands a connection over (:meth:`RatHttpProtocol.switch_to_h2`) when TLS
negotiated ``h2`` by ALPN, when a cleartext connection opens with the HTTP/2 preface and h2c
is on, or after ``Upgrade: h2c``. Same server, workers, signals, timeouts and limits:

* Windows: the client's windows bound what we send (per stream: the back-pressure of
  rat_engine's streams); ours bound request bodies (handed back as the application reads).
* Timeouts: the preface and first ``HEADERS`` must arrive within ``header_timeout`` (slowloris);
  a connection without streams closes after ``keep_alive_timeout``.
* Hostile peers: :class:`~.flood_guard.FloodGuard` counts resets, PINGs, SETTINGS, empty DATA,
  PRIORITY and unknown frames; over a limit: ``GOAWAY(ENHANCE_YOUR_CALM)`` and close. A stream
  reset in the same read that opened it never starts a task (the rapid-reset attack's cost).
* Shutdown: uvicorn calls :meth:`shutdown`; every stream has by then been told to stop (its
  farewell goes out); new streams are refused, and when the open ones are done ``GOAWAY``
  goes out and the connection closes. Why GOAWAY last (RFC 9113 allows it first): after a
  GOAWAY the ``h2`` library sends nothing more on the connection, on either side, so a
  farewell after it would be lost, and clients built on ``h2`` (httpx) fail on DATA after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import CoroutineType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from .exchange import ASGI_VERSION
from .flood_guard import FloodGuard
from .forwarded import FORWARDED_HEADERS
from .h2_stream import H2Stream

if TYPE_CHECKING:
    from .protocol import RatHttpProtocol

__all__ = ["H2Protocol"]

logger = logging.getLogger("rat_engine.server")

#: Our receive windows (request bodies): per stream (SETTINGS_INITIAL_WINDOW_SIZE) and for
#: the whole connection (raised from the protocol's 65,535 by a WINDOW_UPDATE).
_STREAM_WINDOW = 1 << 20
_CONNECTION_WINDOW = 1 << 24
_MAX_HEADER_LIST_SIZE = 1 << 16
#: Bytes handed to h2 at a time (about 300 opened-and-reset streams of a rapid-reset flood).
_SLICE = 16384


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection (the transport's protocol after the switch)."""

    def __init__(self, origin: RatHttpProtocol) -> None:
        self.app = origin.app
        self.forwarded = origin.forwarded
        self.loop = origin.loop
        self.server_state = origin.server_state
        self.root_path = origin.root_path
        self.app_state = origin.app_state
        self.limit_concurrency = origin.limit_concurrency
        self.keep_alive_timeout = origin.keep_alive_timeout
        self.header_timeout = origin.header_timeout
        self.transport = origin.transport
        self.flow = origin.flow
        self.client = origin.client
        self.server = origin.server
        self.scheme = origin.scheme
        # PERF: h2 need not check or normalize our response headers again: H2Stream lowercases
        # the names, refuses invalid names and values (as HTTP/1.1 does) and drops the
        # connection-specific ones; ~8 us of h2's ~47 us per response head (measured).
        # Request headers are still validated by h2.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            split_outbound_cookies=False,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: origin.h2_max_concurrent_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: _MAX_HEADER_LIST_SIZE,
            },
        )
        self.streams: dict[int, H2Stream] = {}
        self.guard = FloodGuard(self.loop.time)
        self.seen_request = False
        self.closing = False
        self.timer: asyncio.TimerHandle | None = None
        self._handlers: dict[type, Callable[[Any], H2Stream | None]] = {
            h2.events.RequestReceived: self._on_request,
            h2.events.DataReceived: self._on_data,
            h2.events.StreamEnded: self._on_stream_ended,
            h2.events.StreamReset: self._on_stream_reset,
            h2.events.WindowUpdated: self._on_window_updated,
            h2.events.RemoteSettingsChanged: self._on_settings,
            h2.events.PingReceived: self._on_ping,
            h2.events.PriorityUpdated: self._on_priority,
            h2.events.ConnectionTerminated: self._on_terminated,
            h2.events.UnknownFrameReceived: self._on_unknown,
            h2.events.TrailersReceived: self._on_trailers,
        }

    # -- opening ---------------------------------------------------------------------------------
    def begin(self, data: bytes = b"", upgrade: tuple[dict[str, Any], bytes] | None = None) -> None:
        """Start serving: our SETTINGS (or, after ``Upgrade: h2c``, the upgraded request as
        stream 1), then whatever the client already sent."""
        self.server_state.connections.add(self)
        if upgrade is None:
            self.h2.initiate_connection()
        else:
            scope, settings = upgrade
            self.h2.initiate_upgrade_connection(settings)
        self.h2.increment_flow_control_window(_CONNECTION_WINDOW - 65535)
        self.flush()
        if upgrade is not None:
            self.seen_request = True
            scope["http_version"] = "2"
            stream = H2Stream(scope, self, 1)
            stream.end_body()
            self._start(stream)
        else:
            self._arm("head", self.header_timeout)
        if data:
            self.data_received(data)

    # -- asyncio.Protocol --------------------------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.lost()
        self.flow.connection_lost()

    def data_received(self, data: bytes) -> None:
        # A large read is parsed a slice at a time: h2 decodes a whole buffer before it returns
        # any event, and a flood caught in the first slice must not cost the parse of the rest.
        if len(data) > _SLICE:
            view = memoryview(data)
            for offset in range(0, len(data), _SLICE):
                self._receive(view[offset : offset + _SLICE])
                if self.transport.is_closing():
                    return
        else:
            self._receive(data)

    def _receive(self, data: bytes | memoryview) -> None:
        try:
            events = self.h2.receive_data(bytes(data))
        except h2.exceptions.ProtocolError as exc:
            self._protocol_error(exc)
            return
        handlers = self._handlers
        started: list[H2Stream] | None = None
        for event in events:
            handler = handlers.get(type(event))
            if handler is None:
                continue
            stream = handler(event)
            if stream is not None:
                if started is None:
                    started = []
                started.append(stream)
            if self.transport.is_closing():
                return
        # Started after the whole read: a stream reset in the same read never costs a task.
        for stream in started or ():
            if not stream.disconnected:
                self._start(stream)
            else:
                self.streams.pop(stream.stream_id, None)
        self.flush()

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # -- h2 events ---------------------------------------------------------------------------------
    def _on_request(self, event: h2.events.RequestReceived) -> H2Stream | None:
        stream_id = event.stream_id
        if self.closing:
            self.h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return None
        self.seen_request = True
        self._disarm()
        scope = self._scope(event.headers or [])
        if scope is None:
            self.h2.reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
            return None
        stream = H2Stream(scope, self, stream_id)
        self.streams[stream_id] = stream
        return stream

    def _on_data(self, event: h2.events.DataReceived) -> None:
        data = event.data or b""
        stream = self.streams.get(event.stream_id)
        if not data and not event.stream_ended and self.guard.hit("empty_data"):
            self._calm("empty DATA frames")
            return
        if stream is None:  # a response already complete: hand the window back, drop the bytes
            if event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            return
        stream.feed_body(data, event.flow_controlled_length or 0)

    def _on_stream_ended(self, event: h2.events.StreamEnded) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.end_body()

    def _on_stream_reset(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.ended = True  # nothing may be sent on a reset stream
            stream.lost()
        if event.remote_reset and self.guard.hit("reset"):
            self._calm("stream resets (rapid reset)")

    def _on_window_updated(self, event: h2.events.WindowUpdated) -> None:
        if event.stream_id:
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.window_opened()
        else:
            self._windows_opened()

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        if self.guard.hit("settings"):
            self._calm("SETTINGS frames")
        elif h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
            self._windows_opened()

    def _on_ping(self, event: h2.events.PingReceived) -> None:
        if self.guard.hit("ping"):
            self._calm("PING frames")

    def _on_priority(self, event: h2.events.PriorityUpdated) -> None:
        if self.guard.hit("priority"):
            self._calm("PRIORITY frames")

    def _on_unknown(self, event: h2.events.UnknownFrameReceived) -> None:
        if self.guard.hit("unknown"):
            self._calm("unknown frames")

    def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        return None  # request trailers are not passed to ASGI applications

    def _on_terminated(self, event: h2.events.ConnectionTerminated) -> None:
        # The client sent GOAWAY. h2 sends nothing after it (its connection state is CLOSED),
        # so the open streams cannot finish: they end as disconnects.
        self.closing = True
        self.transport.close()

    def _windows_opened(self) -> None:
        for stream in list(self.streams.values()):
            stream.window_opened()

    # -- requests ----------------------------------------------------------------------------------
    def _scope(self, headers: list[tuple[bytes, bytes]]) -> dict[str, Any] | None:
        method = path = authority = None
        fields: list[tuple[bytes, bytes]] = []
        cookies: list[bytes] = []
        proxied = False
        for name, value in headers:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
            elif name == b"cookie":
                cookies.append(value)  # RFC 9113 8.2.3: joined again for HTTP/1.1-shaped apps
            else:
                fields.append((name, value))
                if name in FORWARDED_HEADERS:
                    proxied = True
        if method is None or path is None:
            return None  # CONNECT (no :path) is not served
        if cookies:
            fields.append((b"cookie", b"; ".join(cookies)))
        if authority is not None and not any(name == b"host" for name, _ in fields):
            fields.insert(0, (b"host", authority))
        raw_path, _, query = path.partition(b"?")
        text = raw_path.decode("latin-1")
        if "%" in text:
            text = unquote(text)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": "2",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": method.decode("ascii"),
            "root_path": self.root_path,
            "path": self.root_path + text,
            "raw_path": raw_path,
            "query_string": query,
            "headers": fields,
        }
        if self.app_state:
            scope["state"] = self.app_state.copy()
        if proxied and self.forwarded is not None:
            self.forwarded.apply(scope)
        return scope

    def _start(self, stream: H2Stream) -> None:
        scope = stream.scope
        scope["rat.exchange"] = stream
        self.streams[stream.stream_id] = stream
        state = self.server_state
        if self.limit_concurrency is not None and len(state.tasks) >= self.limit_concurrency:
            logger.warning("exceeded concurrency limit, refusing an HTTP/2 stream")
            stream.reset(ErrorCodes.REFUSED_STREAM)
            self.streams.pop(stream.stream_id, None)
            return
        try:
            running = self.app(scope, stream.receive, stream.send)
        except Exception as exc:  # not even a coroutine: as if it had raised
            stream.app_failed(exc)
            self.stream_done(stream)
            return
        task = (
            self.loop.create_task(running)
            if type(running) is CoroutineType
            else asyncio.ensure_future(running, loop=self.loop)
        )
        state.tasks.add(task)
        task.add_done_callback(stream.app_done)  # which also takes it out of state.tasks

    def stream_done(self, stream: H2Stream) -> None:
        """A stream's application returned: forget it; close or idle the connection."""
        if self.streams.pop(stream.stream_id, None) is None:
            return
        self.server_state.total_requests += 1
        if not stream.ended:  # the application stopped without ending its response
            stream.reset(ErrorCodes.INTERNAL_ERROR)
        elif stream.more_body and not stream.disconnected:
            # Our response is complete; the client is still sending a body nobody will read.
            stream.reset(ErrorCodes.NO_ERROR)
        if stream.unacked:
            stream.acknowledge()  # keep the connection window open for the other streams
        if not self.streams:
            if self.closing:
                self._goaway(ErrorCodes.NO_ERROR)
            else:
                self._arm("idle", self.keep_alive_timeout)

    # -- output, errors, shutdown ------------------------------------------------------------------
    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def write_frame(self, frame: bytes) -> None:
        """Write a frame framed outside h2, after what h2 has buffered."""
        data = self.h2.data_to_send()
        if not self.transport.is_closing():
            self.transport.write(data + frame if data else frame)

    def _protocol_error(self, exc: h2.exceptions.ProtocolError) -> None:
        logger.debug("HTTP/2 protocol error from %s: %s", self.client, exc)
        code = getattr(exc, "error_code", ErrorCodes.PROTOCOL_ERROR)
        if isinstance(exc, h2.exceptions.DenialOfServiceError):
            code = ErrorCodes.ENHANCE_YOUR_CALM
        self._goaway(code)

    def _calm(self, what: str) -> None:
        logger.warning("HTTP/2 client %s sent too many %s: closing its connection", self.client, what)
        self._goaway(ErrorCodes.ENHANCE_YOUR_CALM)

    def _goaway(self, code: ErrorCodes) -> None:
        try:
            self.h2.close_connection(error_code=code, last_stream_id=self.h2.highest_inbound_stream_id)
        except h2.exceptions.ProtocolError:
            pass
        self.flush()
        self.transport.close()

    def shutdown(self) -> None:
        """Graceful shutdown (uvicorn): refuse new streams; GOAWAY and close once the open
        ones are done (uvicorn drops what is left when its grace period ends)."""
        if self.closing:
            return
        self.closing = True
        self._disarm()
        if not self.streams:
            self._goaway(ErrorCodes.NO_ERROR)

    # -- timers --------------------------------------------------------------------------------------
    def _arm(self, kind: str, timeout: float) -> None:
        self._disarm()
        if timeout > 0:
            self.timer = self.loop.call_later(timeout, self._on_timer, kind)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _on_timer(self, kind: str) -> None:
        self.timer = None
        if self.transport.is_closing() or self.streams:
            return
        if kind == "head":
            logger.debug("HTTP/2 client %s sent no request in time, closing", self.client)
        self.closing = True
        self._goaway(ErrorCodes.NO_ERROR)
