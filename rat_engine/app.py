"""``RatApp``: registration API, configuration and the ASGI entry point. It composes; the
work happens in routing/, dispatch, streaming, hooks and server."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ._threads import DaemonThreadPool
from .broadcast import POLICIES, Broadcast
from .dispatch import handle_http
from .endpoints import Endpoint, describe_callable
from .exceptions import RouteError
from .files import FileResponse, safe_join
from .hooks import Hooks
from .middleware import CORSMiddleware, Middleware
from .observability import Metrics, install_metrics, install_status_page
from .request import RequestLimits
from .routing import Router, compile_rule
from .sse.event import SSEEvent
from .streaming import StreamSettings
from .streaming.registry import ConnectionManager

logger = logging.getLogger(__name__)

__all__ = ["RatApp"]

F = TypeVar("F", bound=Callable[..., Any])
_STREAM_KINDS = frozenset({"sse", "sse_json", "sse_text", "chunk"})


class RatApp:
    """A rat_engine application (an ASGI 3 app: ``uvicorn module:app`` works too).

    Args:
        name: Shown in logs.
        debug: Show exception details in 500 bodies and SSE ``error`` events.
        max_body_size: Request bodies above this many bytes get 413.
        sse_ping_interval: Seconds of silence before a ``: ping`` keep-alive (0 disables).
        sse_send_timeout: Close a stream whose client accepts no data for this long (None: never).
        sse_max_duration: End every stream after this many seconds (None: no limit).
        sse_buffer_size: Events buffered per stream before its generator waits at ``yield``.
        sse_retry: ``retry:`` hint (ms) sent at the start of every stream (None: not sent).
        sse_thread_stack_size: Stack bytes of each sync-generator thread (small, so thousands fit).
        max_streams: Concurrent streams per process (503 beyond).
        max_streams_per_client: Concurrent streams per client address (429 beyond).
        max_thread_streams: Concurrent sync-generator streams, one thread each (503 beyond).
        handler_threads: Size of the pool that runs plain (non-async) handlers.
        shutdown_grace: Seconds open streams get to finish when the server stops.
        shutdown_retry: ``retry:`` (ms) sent to open streams at shutdown, so browsers reconnect
            to the next instance after about that long (None: no farewell frame).
        broadcast_url: ``memory://`` (one process) or ``redis://host:6379/0`` (many processes
            and machines); defaults to the ``RAT_BROADCAST_URL`` environment variable, then memory.
        broadcast_history: Messages kept per channel for ``Last-Event-ID`` replay.
        broadcast_history_ttl: Seconds a message stays replayable (None: count limit only).
        broadcast_max_backlog: Messages queued per slow subscriber before ``broadcast_policy``.
        broadcast_policy: ``drop_oldest``, ``disconnect`` or ``coalesce``.
        **config: Kept in ``app.config`` for the application's own use.
    """

    def __init__(
        self,
        name: str = "rat_app",
        *,
        debug: bool = False,
        max_body_size: int = 16 * 1024 * 1024,
        sse_ping_interval: float = 15.0,
        sse_send_timeout: float | None = 60.0,
        sse_max_duration: float | None = None,
        sse_buffer_size: int = 64,
        sse_retry: int | None = None,
        sse_thread_stack_size: int = 256 * 1024,
        max_streams: int = 10_000,
        max_streams_per_client: int | None = None,
        max_thread_streams: int = 8_192,
        handler_threads: int = 64,
        shutdown_grace: float = 5.0,
        shutdown_retry: int | None = 2000,
        broadcast_url: str | None = None,
        broadcast_history: int = 1000,
        broadcast_history_ttl: float | None = None,
        broadcast_max_backlog: int = 256,
        broadcast_policy: str = "drop_oldest",
        **config: Any,
    ) -> None:
        self.name = name
        self.debug = debug
        self.config: dict[str, Any] = dict(config)
        self.router: Router[Endpoint] = Router()
        self.hooks = Hooks()
        self.limits = RequestLimits(max_body_size=max_body_size)
        self.stream_settings = StreamSettings(
            ping_interval=sse_ping_interval,
            max_duration=sse_max_duration,
            send_timeout=sse_send_timeout,
            buffer_size=sse_buffer_size,
            retry=sse_retry,
            expose_errors=debug,
            thread_stack_size=sse_thread_stack_size,
        )
        self.connections = ConnectionManager(max_streams, max_streams_per_client, max_thread_streams)
        self.shutdown_grace = shutdown_grace
        self.shutdown_retry = shutdown_retry
        self._handler_threads = handler_threads
        self._executor: DaemonThreadPool | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self.broadcast_url = broadcast_url or os.environ.get("RAT_BROADCAST_URL") or "memory://"
        self._broadcast_options: dict[str, Any] = {
            "history": broadcast_history,
            "history_ttl": broadcast_history_ttl,
            "max_backlog": broadcast_max_backlog,
            "policy": broadcast_policy,
        }
        if broadcast_policy not in POLICIES:
            raise ValueError(f"unknown broadcast_policy {broadcast_policy!r}; use one of {POLICIES}")
        self._broadcast: Broadcast | None = None
        self.metrics: Metrics | None = None

    # -- registration: every decorator is a one-liner over route() -------------------------------
    def route(
        self,
        rule: str,
        methods: Iterable[str] | None = None,
        *,
        kind: str = "route",
        inline: bool = False,
        stream_body: bool = False,
        max_body_size: int | None = None,
        **stream_options: Any,
    ) -> Callable[[F], F]:
        """Register the decorated function for ``rule`` and return it unchanged.

        Args:
            rule: e.g. ``"/api/progress/<session_id>"``, ``"/u/<int:id>"``, ``"/f/<path:p>"``.
            methods: HTTP methods (default GET; HEAD is served by GET routes).
            kind: How return values are read (see :mod:`rat_engine.convert`).
            inline: Run a plain (non-async) handler on the event loop instead of the thread
                pool: faster, but it must never block.
            stream_body: Do not read the body before the handler runs; it reads it with
                ``request_data.stream()`` / ``iter_body()`` / ``save_files()`` (large uploads).
            max_body_size: This route's body limit (default: the app's ``max_body_size``).
            **stream_options: For stream kinds: ``ping_interval``, ``max_duration``,
                ``send_timeout``, ``buffer_size``, ``retry``.
        """

        def register(func: F) -> F:
            self.add_route(
                rule,
                func,
                methods,
                kind=kind,
                inline=inline,
                stream_body=stream_body,
                max_body_size=max_body_size,
                **stream_options,
            )
            return func

        return register

    def add_route(
        self,
        rule: str,
        func: Callable[..., Any],
        methods: Iterable[str] | None = None,
        *,
        kind: str = "route",
        inline: bool = False,
        stream_body: bool = False,
        max_body_size: int | None = None,
        **stream_options: Any,
    ) -> None:
        """Non-decorator form of :meth:`route`."""
        if stream_options:
            if kind not in _STREAM_KINDS:
                raise TypeError(
                    f"unknown option(s) {sorted(stream_options)} for a {kind!r} route (ping_interval, "
                    "max_duration, send_timeout, buffer_size and retry apply to sse/sse_json/sse_text/chunk)"
                )
            self.stream_settings.merged(stream_options)  # validates names now, not per request
        method_list = tuple(m.upper() for m in (methods or ("GET",)))
        try:
            call = describe_callable(func, compile_rule(rule).param_names, inline)
        except RouteError as exc:
            raise RouteError(f"{exc} [{_where(func)}]") from None
        endpoint = Endpoint(
            func,
            kind,
            rule,
            method_list,
            stream_options=dict(stream_options),
            stream_body=stream_body,
            max_body_size=max_body_size,
            **call,
        )
        try:
            self.router.add(rule, method_list, endpoint)
        except RouteError as exc:
            raise RouteError(f"{exc} [{_where(func)}]") from None

    def html(self, rule: str, methods: Iterable[str] | None = None, **options: Any) -> Callable[[F], F]:
        return self.route(rule, methods, kind="html", **options)

    def json(self, rule: str, methods: Iterable[str] | None = None, **options: Any) -> Callable[[F], F]:
        return self.route(rule, methods or ("GET", "POST"), kind="json", **options)

    def custom(self, rule: str, methods: Iterable[str] | None = None, **options: Any) -> Callable[[F], F]:
        return self.route(rule, methods, kind="custom", **options)

    def file(self, rule: str, methods: Iterable[str] | None = None, **options: Any) -> Callable[[F], F]:
        return self.route(rule, methods, kind="file", **options)

    def chunk(self, rule: str, methods: Iterable[str] | None = None, **options: Any) -> Callable[[F], F]:
        return self.route(rule, methods, kind="chunk", **options)

    def sse(self, rule: str, methods: Iterable[str] | None = None, **options: Any) -> Callable[[F], F]:
        return self.route(rule, methods, kind="sse", **options)

    def sse_json(self, rule: str, methods: Iterable[str] | None = None, **options: Any) -> Callable[[F], F]:
        return self.route(rule, methods, kind="sse_json", **options)

    def sse_text(self, rule: str, methods: Iterable[str] | None = None, **options: Any) -> Callable[[F], F]:
        return self.route(rule, methods, kind="sse_text", **options)

    # -- hooks ----------------------------------------------------------------------------------
    def before_request(self, func: F) -> F:
        self.hooks.add_before(func)
        return func

    def after_request(self, func: F) -> F:
        self.hooks.add_after(func)
        return func

    def errorhandler(self, code_or_exception: int | type[BaseException]) -> Callable[[F], F]:
        def register(func: F) -> F:
            self.hooks.add_error_handler(code_or_exception, func)
            return func

        return register

    def on_startup(self, func: F) -> F:
        self.hooks.startup.append(func)
        return func

    def on_shutdown(self, func: F) -> F:
        self.hooks.shutdown.append(func)
        return func

    def add_middleware(self, middleware: Middleware) -> None:
        self.hooks.add_middleware(middleware)

    def enable_cors(self, **options: Any) -> CORSMiddleware:
        """Add a :class:`CORSMiddleware` (same arguments) and return it."""
        cors = CORSMiddleware(**options)
        self.add_middleware(cors)
        return cors

    def static(self, prefix: str, directory: str | os.PathLike[str]) -> None:
        """Serve the files under ``directory`` at ``prefix/<path>`` (ETag, Range, 304).

        Paths that leave ``directory`` (``..``, ``%2e%2e``, absolute paths, symlinks pointing
        outside) are refused with 404.
        """
        root = os.fspath(directory)
        rule = prefix.rstrip("/") + "/<path:filename>"

        def serve_static(filename: str) -> FileResponse:
            return FileResponse(safe_join(root, filename))

        self.add_route(rule, serve_static, ("GET",), kind="file")

    def enable_metrics(self, path: str = "/metrics") -> Metrics:
        """Serve Prometheus metrics at ``path`` (see :mod:`rat_engine.observability`)."""
        if self.metrics is None:
            self.metrics = install_metrics(self, path)
        return self.metrics

    def enable_status_page(self, path: str = "/_status") -> None:
        """Serve a live page of open streams and throughput at ``path`` (SSE at ``path/stream``)."""
        install_status_page(self, path)

    # -- runtime --------------------------------------------------------------------------------
    @property
    def broadcast(self) -> Broadcast:
        """Channels with replay: ``publish(channel, data, event=...)``, ``subscribe(channel, last_event_id)``."""
        if self._broadcast is None:
            self._broadcast = Broadcast(self.broadcast_url, **self._broadcast_options)
        return self._broadcast

    @property
    def executor(self) -> DaemonThreadPool:
        """Runs plain (non-async) handlers; its threads never keep a stopped process alive."""
        if self._executor is None:
            self._executor = DaemonThreadPool(self._handler_threads)
        return self._executor

    def stats(self) -> dict[str, Any]:
        """Open streams and totals of this process (see :class:`ConnectionManager`)."""
        stats = self.connections.stats()
        if self._broadcast is not None:
            stats["broadcast"] = self._broadcast.stats()
        return stats

    def shutdown_frame(self) -> bytes | None:
        if self.shutdown_retry is None:
            return None
        return SSEEvent(retry=self.shutdown_retry, comment="server shutting down").encode()

    def begin_shutdown(self) -> asyncio.Task[None]:
        """Start closing open streams (idempotent); the server calls this on SIGTERM/Ctrl-C."""
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.get_running_loop().create_task(
                self.connections.shutdown(self.shutdown_grace)
            )
        return self._shutdown_task

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        workers: int = 1,
        *,
        blocking: bool = True,
        log_level: str = "info",
        access_log: bool = True,
        debug: bool | None = None,
        enable_access_log: bool | None = None,
        enable_error_log: bool = True,
        **server_options: Any,
    ) -> Any:
        """Serve until Ctrl-C/SIGTERM (graceful: open streams get ``shutdown_grace`` seconds).

        With ``blocking=False`` the server runs on a background thread and a
        :class:`~rat_engine.server.ServerHandle` (``.url``, ``.port``, ``.stop()``) is returned.
        ``debug``, ``enable_access_log`` and ``enable_error_log`` are accepted as in RAT Engine
        (debug: exception details in responses and debug logging; errors are always logged).
        Unlike RAT Engine, ``blocking`` defaults to True: a script that calls ``app.run()`` serves
        until stopped instead of returning at once.
        ``port=0`` picks a free port. ``header_timeout`` (default 10 s) bounds how long a client
        may take to send a request head (slowloris protection: 408 and close). Other options go
        to uvicorn's ``Config``.
        """
        from .server import serve

        if debug is not None:
            self.debug = debug
            self.stream_settings.expose_errors = debug
            if debug and log_level == "info":
                log_level = "debug"
        if enable_access_log is not None:
            access_log = enable_access_log
        del enable_error_log  # errors are always logged (RAT Engine's switch is accepted, not needed)
        return serve(
            self,
            host=host,
            port=port,
            workers=workers,
            blocking=blocking,
            log_level=log_level,
            access_log=access_log,
            **server_options,
        )

    # -- ASGI -----------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await handle_http(self, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.broadcast.start()
                    for func in self.hooks.startup:
                        result = func()
                        if asyncio.iscoroutine(result):
                            await result
                except Exception as exc:
                    logger.exception("startup hook failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.begin_shutdown()
                for func in self.hooks.shutdown:
                    try:
                        result = func()
                        if asyncio.iscoroutine(result):
                            await result
                    except Exception:
                        logger.exception("shutdown hook failed")
                if self._broadcast is not None:
                    await self._broadcast.stop()
                if self._executor is not None:
                    self._executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = None
                self._shutdown_task = None
                self.connections.shutting_down = False
                await send({"type": "lifespan.shutdown.complete"})
                return


def _where(func: Callable[..., Any]) -> str:
    """``file:line`` of a handler, so a registration error points at the user's code."""
    code = getattr(func, "__code__", None)
    if code is None:
        return getattr(func, "__qualname__", repr(func))
    return f"{code.co_filename}:{code.co_firstlineno} {getattr(func, '__qualname__', '')}".rstrip()
