"""``RatApp``: registration API, configuration and the ASGI entry point. It composes; the
work happens in routing/, dispatch, streaming, hooks and server."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ._threads import HandlerPool
from ._types import ROUTE_KINDS, Receive, RouteKind, Scope, Send
from .broadcast import Broadcast
from .compat import RatEngineExtras
from .compression import CompressionConfig
from .compression.policy import ResponseCompression
from .dispatch import handle_http
from .endpoints import Endpoint, describe_callable, where
from .exceptions import RouteError
from .files import FileResponse, safe_join
from .hooks import Hooks
from .logs import configure_logging, server_level
from .middleware import CORSMiddleware, Middleware
from .observability import Metrics, install_metrics, install_status_page
from .openapi import OpenAPI, install_openapi
from .routing import Router, compile_rule
from .settings import ROUTE_STREAM_OPTIONS, BroadcastSettings, Limits, StreamSettings, resolve_options
from .streaming.registry import ConnectionManager

logger = logging.getLogger(__name__)

__all__ = ["RatApp"]

F = TypeVar("F", bound=Callable[..., Any])


class RatApp(RatEngineExtras):
    """A rat_engine application (an ASGI 3 app: ``uvicorn module:app`` works too).

    Settings come as three objects (their fields are documented in :mod:`rat_engine.settings`),
    or as RAT Engine's flat keywords, which are aliases of their fields: ``max_body_size``,
    ``max_streams``, ``max_streams_per_client``, ``max_thread_streams`` (:class:`Limits`);
    ``sse_ping_interval``, ``sse_send_timeout``, ``sse_max_duration``, ``sse_buffer_size``,
    ``sse_retry``, ``sse_thread_stack_size``, ``shutdown_retry`` (:class:`StreamSettings`);
    ``broadcast_url``, ``broadcast_history``, ``broadcast_history_ttl``,
    ``broadcast_max_backlog``, ``broadcast_policy``, ``broadcast_durability``
    (:class:`BroadcastSettings`).

    Args:
        name: Shown in logs.
        debug: Show exception details in 500 bodies and SSE ``error`` events.
        limits: Request and stream limits (:class:`~rat_engine.settings.Limits`).
        stream_settings: Stream defaults, overridable per route.
        broadcast_settings: ``app.broadcast``'s backend URL and bounds.
        config: Kept in ``app.config`` for the application's own use.
        handler_threads: Size of the pool that runs plain (non-async) handlers.
        shutdown_grace: Seconds open streams get to finish when the server stops.
        **options: The flat keywords above. A near miss of a known name raises ``TypeError``
            ("did you mean"); any other keyword is kept in ``app.config`` with a warning.
    """

    def __init__(
        self,
        name: str = "rat_app",
        *,
        debug: bool = False,
        limits: Limits | None = None,
        stream_settings: StreamSettings | None = None,
        broadcast_settings: BroadcastSettings | None = None,
        config: Mapping[str, Any] | None = None,
        handler_threads: int = 64,
        shutdown_grace: float = 5.0,
        **options: Any,
    ) -> None:
        self.name = name
        self.debug = debug
        self.limits, self.stream_settings, self.broadcast_settings, rest = resolve_options(
            options, limits, stream_settings, broadcast_settings
        )
        self.config: dict[str, Any] = {**(config or {}), **rest}
        self.router: Router[Endpoint] = Router()
        self.hooks = Hooks()
        self.connections = ConnectionManager(self.limits)
        self.shutdown_grace = shutdown_grace
        self._handler_threads = handler_threads
        self._executor: HandlerPool | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._broadcast: Broadcast | None = None
        self.metrics: Metrics | None = None
        #: The compression policy while ``enable_compression()`` is on (None: off).
        self.compression: ResponseCompression | None = None
        self._log_level = "info"  # app.run's default, or what configure_logging() chose
        self._access_log = True
        self._server_handle: Any = None
        self._extensions: dict[str, Any] = {}

    @property
    def broadcast_url(self) -> str:
        """The broadcast backend's URL (the setting, else ``RAT_BROADCAST_URL``, else memory)."""
        return self.broadcast_settings.url or os.environ.get("RAT_BROADCAST_URL") or "memory://"

    # -- registration: every decorator is a one-liner over route() -------------------------------
    def route(
        self,
        rule: str,
        methods: Iterable[str] | str | None = None,
        *,
        kind: RouteKind = "route",
        inline: bool = False,
        stream_body: bool = False,
        max_body_size: int | None = None,
        compress: bool = True,
        on_error: Callable[[BaseException], Any] | None = None,
        **stream_options: Any,
    ) -> Callable[[F], F]:
        """Register the decorated function for ``rule`` and return it unchanged.

        Args:
            rule: e.g. ``"/api/progress/<session_id>"``, ``"/u/<int:id>"``, ``"/f/<path:p>"``.
            methods: HTTP methods (default GET; HEAD is served by GET routes); one method may
                be given as a string (``methods="POST"``).
            kind: How return values are read (see :mod:`rat_engine.convert`).
            inline: Run a plain (non-async) handler on the event loop instead of the thread
                pool: faster, but it must never block.
            stream_body: Do not read the body before the handler runs; it reads it with
                ``request_data.stream()`` / ``iter_body()`` / ``save_files()`` (large uploads).
            max_body_size: This route's body limit (default: the app's ``max_body_size``).
            compress: False: never compress this route's responses, even with
                ``enable_compression()`` on (e.g. a stream mixing secrets with reflected input).
            on_error: For streams: ``on_error(exc)`` returns the item to send when the
                generator raises (e.g. an OpenAI-compatible ``{"error": {...}}``), instead of
                the default ``error`` event; None sends nothing.
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
                compress=compress,
                on_error=on_error,
                **stream_options,
            )
            return func

        return register

    def add_route(
        self,
        rule: str,
        func: Callable[..., Any],
        methods: Iterable[str] | str | None = None,
        *,
        kind: RouteKind = "route",
        inline: bool = False,
        stream_body: bool = False,
        max_body_size: int | None = None,
        compress: bool = True,
        on_error: Callable[[BaseException], Any] | None = None,
        **stream_options: Any,
    ) -> None:
        """Non-decorator form of :meth:`route`."""
        spec = ROUTE_KINDS.get(kind)
        if spec is None:
            raise ValueError(
                f"unknown route kind {kind!r}; use one of {', '.join(ROUTE_KINDS)} [{where(func)}]"
            )
        if (stream_options or on_error is not None) and not spec.stream:
            raise TypeError(
                f"unknown option(s) {sorted(stream_options)} for a {kind!r} route ({', '.join(ROUTE_STREAM_OPTIONS)} "
                f"apply to sse/sse_json/sse_text/chunk) [{where(func)}]"
            )
        unknown = set(stream_options) - set(ROUTE_STREAM_OPTIONS)
        if unknown:
            raise TypeError(f"unknown stream option(s) {sorted(unknown)} [{where(func)}]")
        settings = self.stream_settings.merged(stream_options) if spec.stream else None
        if isinstance(methods, str):
            methods = (methods,)  # one method, not its letters
        method_list = tuple(m.upper() for m in (methods or ("GET",)))
        try:
            plan = describe_callable(func, compile_rule(rule), inline, stream_body=stream_body)
            endpoint = Endpoint(
                func,
                kind,
                rule,
                method_list,
                plan,
                stream_settings=settings,
                stream_body=stream_body,
                max_body_size=max_body_size,
                compress=compress,
                on_error=on_error,
                where=where(func),
            )
            self.router.add(rule, method_list, endpoint)
        except RouteError as exc:
            raise RouteError(f"{exc} [{where(func)}]") from None

    def html(self, rule: str, methods: Iterable[str] | str | None = None, **options: Any) -> Callable[[F], F]:
        """A route whose ``str`` return value is an HTML page (``dict``/``list``: JSON). GET by default."""
        return self.route(rule, methods, kind="html", **options)

    def json(self, rule: str, methods: Iterable[str] | str | None = None, **options: Any) -> Callable[[F], F]:
        """A route whose return value is sent as JSON (a ``str`` is JSON text already); GET and POST."""
        return self.route(rule, methods or ("GET", "POST"), kind="json", **options)

    def custom(
        self, rule: str, methods: Iterable[str] | str | None = None, **options: Any
    ) -> Callable[[F], F]:
        """A route: ``str`` is sent as ``text/plain``, ``bytes`` as octet-stream, ``dict``/``list`` as JSON."""
        return self.route(rule, methods, kind="custom", **options)

    def file(self, rule: str, methods: Iterable[str] | str | None = None, **options: Any) -> Callable[[F], F]:
        """A route that returns a file path or ``(path, content_type)``; sent from disk (ETag, Range)."""
        return self.route(rule, methods, kind="file", **options)

    def chunk(
        self, rule: str, methods: Iterable[str] | str | None = None, **options: Any
    ) -> Callable[[F], F]:
        """A route that returns an iterable or (async) generator, sent chunked as the items arrive."""
        return self.route(rule, methods, kind="chunk", **options)

    def sse(self, rule: str, methods: Iterable[str] | str | None = None, **options: Any) -> Callable[[F], F]:
        """An event stream: each yielded ``str``, ``dict``, ``bytes`` or ``SSEEvent`` is one event."""
        return self.route(rule, methods, kind="sse", **options)

    def sse_json(
        self, rule: str, methods: Iterable[str] | str | None = None, **options: Any
    ) -> Callable[[F], F]:
        """An event stream with one JSON event per yielded item."""
        return self.route(rule, methods, kind="sse_json", **options)

    def sse_text(
        self, rule: str, methods: Iterable[str] | str | None = None, **options: Any
    ) -> Callable[[F], F]:
        """An event stream with one text event per yielded item."""
        return self.route(rule, methods, kind="sse_text", **options)

    # -- hooks ----------------------------------------------------------------------------------
    def before_request(self, func: F) -> F:
        """Run ``func()`` or ``func(request_data)`` before each handler; a non-None result answers."""
        self.hooks.add_before(func)
        return func

    def after_request(self, func: F) -> F:
        """Run ``func(response)`` or ``func(request_data, response)`` after each handler."""
        self.hooks.add_after(func)
        return func

    def errorhandler(self, code_or_exception: int | type[BaseException]) -> Callable[[F], F]:
        """Answer a status code, or an exception class and its subclasses, with the decorated function."""

        def register(func: F) -> F:
            self.hooks.add_error_handler(code_or_exception, func)
            return func

        return register

    def on_startup(self, func: F) -> F:
        """Run ``func()`` (plain or async) when the server starts (the ASGI lifespan)."""
        self.hooks.startup.append(func)
        return func

    def on_shutdown(self, func: F) -> F:
        """Run ``func()`` (plain or async) when the server stops (the ASGI lifespan)."""
        self.hooks.shutdown.append(func)
        return func

    def add_middleware(self, middleware: Middleware | Any) -> None:
        """A :class:`Middleware`, or RAT Engine style: any object with ``before_request(request)``
        and/or ``after_request(request, response)`` (``request`` is ``request_data``, which
        also answers ``request.method``, ``.path``, ``.headers``, ``.query_params``, ``.body``)."""
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

    def enable_compression(
        self, config: CompressionConfig | None = None, **options: Any
    ) -> CompressionConfig:
        """Compress responses for clients that accept it (RAT Engine's call).

        Either ``enable_compression(CompressionConfig(...))`` or its keywords directly:
        ``min_size=1024, level=6, enable_gzip=True, enable_deflate=True, enable_brotli=True,
        enable_zstd=True, enable_lz4=False, excluded_content_types=None, excluded_extensions=None``.
        Streams (``@app.sse*``, ``@app.chunk``, broadcast subscriptions) are compressed per
        event: one window per stream, flushed after every write. Per route: ``compress=False``.
        """
        if config is not None and options:
            raise TypeError("enable_compression() takes a CompressionConfig or keywords, not both")
        config = config if config is not None else CompressionConfig(**options)
        self.compression = ResponseCompression(config)
        return config

    def disable_compression(self) -> None:
        self.compression = None

    def enable_metrics(self, path: str = "/metrics") -> Metrics:
        """Serve Prometheus metrics at ``path`` (see :mod:`rat_engine.observability`)."""
        if self.metrics is None:
            self.metrics = install_metrics(self, path)
        return self.metrics

    def enable_status_page(self, path: str = "/_status") -> None:
        """Serve a live page of open streams and throughput at ``path`` (SSE at ``path/stream``)."""
        install_status_page(self, path)

    def enable_openapi(
        self,
        path: str = "/openapi.json",
        docs: str | None = "/docs",
        *,
        title: str | None = None,
        version: str = "0.1.0",
        **options: Any,
    ) -> OpenAPI:
        """Serve an OpenAPI 3.2 document of every route at ``path`` and Swagger UI at ``docs``
        (its files from the ``rat_engine[openapi]`` extra, never a CDN; None: no page).
        ``title`` defaults to the app's name; ``description=`` and ``docs_assets=`` (another
        Swagger UI folder) pass through (see :mod:`rat_engine.openapi`)."""
        return install_openapi(self, path, docs, title=title or self.name, version=version, **options)

    # -- runtime --------------------------------------------------------------------------------
    @property
    def broadcast(self) -> Broadcast:
        """Channels with replay: ``publish(channel, data, event=...)``, ``subscribe(channel, last_event_id)``."""
        if self._broadcast is None:
            settings = self.broadcast_settings
            self._broadcast = Broadcast(
                self.broadcast_url,
                history=settings.history,
                history_ttl=settings.history_ttl,
                max_backlog=settings.max_backlog,
                policy=settings.policy,
                durability=settings.durability,
            )
        return self._broadcast

    @property
    def executor(self) -> HandlerPool:
        """Runs plain (non-async) handlers; its threads never keep a stopped process alive."""
        if self._executor is None:
            self._executor = HandlerPool(self._handler_threads)
        return self._executor

    def stats(self) -> dict[str, Any]:
        """Open streams and totals of this process (see :class:`ConnectionManager`)."""
        stats = self.connections.stats()
        if self._broadcast is not None:
            stats["broadcast"] = self._broadcast.stats()
        return stats

    def begin_shutdown(self) -> asyncio.Task[None]:
        """Start closing open streams (idempotent); the server calls this on SIGTERM/Ctrl-C."""
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.get_running_loop().create_task(
                self.connections.shutdown(self.shutdown_grace)
            )
        return self._shutdown_task

    def configure_logging(self, level: str | int = "info", **options: Any) -> None:
        """RAT Engine's logging setup (see :func:`rat_engine.logs.configure_logging` for the
        options); ``app.run()`` then keeps that level and access-log choice."""
        configure_logging(level, **options)
        self._log_level = server_level(level)
        self._access_log = options.get("enable_access_log", True)

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        workers: int = 1,
        *,
        blocking: bool = True,
        log_level: str | None = None,
        access_log: bool | None = None,
        debug: bool | None = None,
        enable_access_log: bool | None = None,
        enable_error_log: bool = True,
        **server_options: Any,
    ) -> Any:
        """Serve until Ctrl-C/SIGTERM (graceful: open streams get ``shutdown_grace`` seconds).

        With ``blocking=False`` the server runs on a background thread and a
        :class:`~rat_engine.server.ServerHandle` (``.url``, ``.port``, ``.stop()``) is returned;
        :meth:`stop` stops it too. ``debug``, ``enable_access_log``, ``enable_error_log``,
        ``shutdown_timeout`` (the shutdown grace, seconds) and ``metrics`` (serve ``/metrics``)
        are accepted as in RAT Engine; other RAT Engine keywords are logged and ignored.
        Deliberate deviation: ``blocking`` defaults to True, so a script that calls
        ``app.run()`` serves until stopped instead of returning at once.
        ``port=0`` picks a free port. ``header_timeout`` (default ``limits.header_timeout``)
        bounds how long a client may take to send a request head. uvicorn's ``Config`` options
        (``ssl_certfile``, ``proxy_headers``, ...) pass through. With ``ssl_certfile`` and
        ``ssl_keyfile`` the port speaks TLS and offers HTTP/2 by ALPN; ``h2=`` and ``h2c=``
        default to the app's protocol switches (:meth:`configure_protocols`, :meth:`enable_h2c`),
        and :meth:`enable_development_mode` supplies a certificate unless one is given.
        """
        from .server import configure_logging as server_logging  # loaded only when serving
        from .server import serve, server_option_names

        log_level = log_level or self._log_level
        if debug is not None:
            self.debug = debug
            if debug and log_level == "info":
                log_level = "debug"
        if enable_access_log is not None:
            access_log = enable_access_log
        access_log = self._access_log if access_log is None else access_log
        del enable_error_log  # errors are always logged (RAT Engine's switch is accepted, not needed)
        shutdown_timeout = server_options.pop("shutdown_timeout", None)
        if shutdown_timeout is not None:
            self.shutdown_grace = float(shutdown_timeout)
        if server_options.pop("metrics", False):
            self.enable_metrics()
        known = server_option_names()
        ignored = sorted(set(server_options) - known)
        for name in ignored:
            server_options.pop(name)
        if ignored or (workers > 1 and not self.broadcast.is_distributed):
            server_logging(log_level)
        if ignored:
            logger.warning("app.run(): %s not supported here; ignored", ", ".join(map(repr, ignored)))
        if workers > 1 and not self.broadcast.is_distributed:
            logger.warning(
                "broadcast backend %s delivers messages only inside one process: with %d workers, "
                "subscribers on the other workers miss them. Use broadcast_url='redis://...' "
                "(or RAT_BROADCAST_URL) for more than one worker.",
                self.broadcast_url,
                workers,
            )
        server_options.setdefault("header_timeout", self.limits.header_timeout)
        server_options.setdefault("timeout_graceful_shutdown", int(self.shutdown_grace) + 1)
        development_tls = self._apply_protocol_options(server_options)
        if development_tls and blocking:
            server_logging(log_level)
            self._log_development_url(host, port)
        handle = serve(
            self,
            host=host,
            port=port,
            workers=workers,
            blocking=blocking,
            log_level=log_level,
            access_log=access_log,
            name=self.name,
            **server_options,
        )
        self._server_handle = handle
        if development_tls and handle is not None:
            self._log_development_url(host, handle.port)
        return handle

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server that ``run(blocking=False)`` started (graceful; safe to call twice).
        A blocking ``run()`` stops on Ctrl-C / SIGTERM instead."""
        handle, self._server_handle = self._server_handle, None
        if handle is not None:
            handle.stop(timeout)

    # -- ASGI -----------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await handle_http(self, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            await self.broadcast.start()
            await self.hooks.run_startup()
        except Exception as exc:
            logger.exception("startup hook failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await self.begin_shutdown()
        await self.hooks.run_shutdown()
        if self._broadcast is not None:
            await self._broadcast.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._shutdown_task = None
        self.connections.reopen()
        await send({"type": "lifespan.shutdown.complete"})
