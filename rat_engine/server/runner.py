"""Serve an ASGI app with uvicorn's server and rat_engine's protocol, blocking or in the background.

Nothing here imports the application layer. An app that has ``begin_shutdown()`` (a
``RatApp``) is told at once when the exit signal arrives, so its streams stop without waiting.

Why uvicorn and not granian's RSGI (measured, see docs/ARCHITECTURE.md): granian answered more
small requests per second, but its 2.8 stream transport queues writes without bound, so one
client that stops reading grows the server's memory by hundreds of MB in seconds. uvicorn holds
``send()`` while the socket is congested, which is what bounded per-stream buffers rely on.

Shutdown order on SIGTERM / Ctrl-C: (1) open streams are told to stop at once (each sends its
farewell ``retry:`` frame and its generator is closed, so ``finally`` blocks run), while uvicorn
(2) stops accepting, (3) waits for connections up to the grace period, then (4) runs the
lifespan shutdown (``on_shutdown`` hooks). A second Ctrl-C forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import uvicorn

from .protocol import RatHttpProtocol

logger = logging.getLogger(__name__)

__all__ = ["AddressInUse", "ServerHandle", "serve"]


#: How deep to look through wrapping middleware (uvicorn's proxy headers and the like).
_MAX_WRAPPERS = 10


def _shutdown_hook(app: Any) -> Callable[[], Any] | None:
    """The app's ``begin_shutdown`` (looking through wrapping middleware), if it has one."""
    for _ in range(_MAX_WRAPPERS):
        hook = getattr(app, "begin_shutdown", None)
        if callable(hook):
            return hook  # type: ignore[no-any-return]
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class RatServer(uvicorn.Server):
    """uvicorn's server, plus: streams are stopped as soon as the exit signal arrives (uvicorn
    alone would wait for them to end on their own), and no signal is re-raised afterwards, so
    ``app.run()`` simply returns."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._rat_loop: asyncio.AbstractEventLoop | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not self.should_exit
        super().handle_exit(sig, frame)
        if first:
            self.begin_stream_shutdown()

    def begin_stream_shutdown(self) -> None:
        loop = self._rat_loop
        hook = _shutdown_hook(getattr(self.config, "loaded_app", None))
        if loop is not None and hook is not None and not loop.is_closed():
            loop.call_soon_threadsafe(hook)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # Everything loaded so far (modules, routes, the app) lives as long as the process:
        # move it out of the collector's sight. A full collection then walks only what requests
        # and streams created, which shortened the one pause that set the S1 latency p99
        # (docs/BENCHMARKS.md), and forked workers keep sharing those pages (copy-on-write).
        gc.collect()
        gc.freeze()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._rat_loop = asyncio.get_running_loop()
        config = self.config
        if not config.loaded:
            config.load()
        if config.ssl is not None:
            # ALPN: the TLS handshake picks the protocol (RFC 7301); browsers only speak h2 this way.
            protocol = config.http_protocol_class
            offer_h2 = getattr(protocol, "h2_enabled", None) is not False
            config.ssl.set_alpn_protocols(["h2", "http/1.1"] if offer_h2 else ["http/1.1"])
        with self.capture_signals():
            await self._serve(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


class ServerHandle:
    """A server running on a background thread (``app.run(blocking=False)``)."""

    def __init__(
        self, server: RatServer, sock: socket.socket, thread: threading.Thread, scheme: str = "http"
    ) -> None:
        self._server = server
        self._socket = sock
        self._thread = thread
        host, port = sock.getsockname()[:2]
        self.host: str = host
        self.port: int = port
        self.url = f"{scheme}://{host}:{port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("server thread exited during startup")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start in time")
            time.sleep(0.01)

    def stop(self, timeout: float | None = None) -> None:
        """Graceful stop, as on SIGTERM; waits for the thread (up to grace + 5 s)."""
        if self._thread.is_alive():
            self._server.should_exit = True
            self._server.begin_stream_shutdown()
        wait = timeout if timeout is not None else self._server.config.timeout_graceful_shutdown or 10
        self._thread.join(wait + 5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(5)


class AddressInUse(OSError):
    """The address to listen on is taken (its message says which, and what to do)."""


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(
                f"{host}:{port} is already in use: stop the other server, or pick another port "
                "(app.run(port=...), rat-engine run --port ...)"
            ) from None
        raise
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def configure_logging(level: str) -> None:
    """rat_engine's log lines on stderr at ``level`` (the root setup only if there is none)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("rat_engine").setLevel(level.upper())
    # uvicorn's Config sets "uvicorn.error" (and .access) to log_level itself: set each one.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        logging.getLogger(name).setLevel(_uvicorn_level(level))


def _uvicorn_level(level: str) -> str:
    """uvicorn's own startup/shutdown chatter only in debug: rat_engine logs one line with the URL."""
    return "DEBUG" if level.lower() in ("debug", "trace") else "WARNING"


class _ReloadNotice(logging.Filter):
    """uvicorn's reloader says "WatchFiles detected changes in 'app.py'. Reloading..." as a
    WARNING, on every save: said here as one INFO line instead (nothing is wrong)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "detected changes" not in str(record.msg):
            return True
        changed = record.args[1] if isinstance(record.args, tuple) and len(record.args) > 1 else "a file"
        logger.info("%s changed: restarting the worker", changed)
        return False


def server_option_names() -> frozenset[str]:
    """Keywords :func:`serve` passes on (uvicorn's ``Config`` and :data:`PROTOCOL_OPTIONS`)."""
    import inspect

    return frozenset(inspect.signature(uvicorn.Config.__init__).parameters) - {"self", "app"} | frozenset(
        PROTOCOL_OPTIONS
    )


#: serve() keywords that configure rat_engine's protocol (class attributes of its subclass):
#: ``header_timeout`` (seconds for a request head), ``h2`` (offer HTTP/2 by ALPN on a TLS port;
#: default on), ``h2c`` (a cleartext port also accepts HTTP/2: prior knowledge and
#: ``Upgrade: h2c``), ``h2_max_concurrent_streams`` (SETTINGS_MAX_CONCURRENT_STREAMS).
PROTOCOL_OPTIONS = {
    "header_timeout": ("header_timeout", float),
    "h2": ("h2_enabled", bool),
    "h2c": ("h2c_enabled", bool),
    "h2_max_concurrent_streams": ("h2_max_concurrent_streams", int),
}


def _protocol_class(options: dict[str, Any]) -> type[RatHttpProtocol]:
    """RatHttpProtocol, or a subclass carrying the protocol options popped from ``options``."""
    attributes = {}
    for option, (attribute, kind) in PROTOCOL_OPTIONS.items():
        value = options.pop(option, None)
        if value is not None:
            attributes[attribute] = kind(value)
    if not attributes:
        return RatHttpProtocol
    # A subclass per server: the settings must not leak into other servers of the process.
    return type("RatHttpProtocol", (RatHttpProtocol,), attributes)


#: uvicorn's grace for open connections at shutdown, unless the app sets its own.
_DEFAULT_GRACEFUL_SHUTDOWN = 6


def _build_config(app: Any, host: str, port: int, log_level: str, options: dict[str, Any]) -> uvicorn.Config:
    defaults: dict[str, Any] = {
        "http": RatHttpProtocol,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "lifespan": "on",
        "access_log": False,  # rat_engine writes its own access log (rat_engine.access)
        "log_config": None,  # keep the application's logging setup
        "log_level": _uvicorn_level(log_level),
        "timeout_graceful_shutdown": _DEFAULT_GRACEFUL_SHUTDOWN,
        "timeout_keep_alive": 5,
        "backlog": 4096,
        "server_header": False,
    }
    defaults.update(options)
    return uvicorn.Config(app, host=host, port=port, **defaults)


def serve(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    *,
    blocking: bool = True,
    log_level: str = "info",
    access_log: bool = True,
    name: str = "rat_engine",
    **options: Any,
) -> ServerHandle | None:
    """Serve the ASGI ``app`` (see :meth:`rat_engine.RatApp.run` for the options)."""
    if "http" not in options:
        options["http"] = _protocol_class(options)
    config = _build_config(app, host, port, log_level, options)
    configure_logging(log_level)
    logging.getLogger("rat_engine.access").disabled = not access_log
    try:
        sock = _bind(host, port, config.backlog)
    except AddressInUse as exc:
        if not blocking:
            raise
        # A script or `rat-engine run`: one line that says what is wrong, not a traceback.
        logger.error("%s", exc)
        raise SystemExit(1) from None
    bound_port = sock.getsockname()[1]
    scheme = "https" if config.ssl_certfile else "http"
    if not blocking:
        if workers != 1:
            raise ValueError("blocking=False runs one worker on a thread; use workers=1")
        server = RatServer(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="rat-server", daemon=True
        )
        thread.start()
        handle = ServerHandle(server, sock, thread, scheme)
        handle.wait_ready()
        return handle
    logger.info(
        "%s listening on %s://%s:%d (%d worker%s; Ctrl-C to stop)",
        name,
        scheme,
        host,
        bound_port,
        workers,
        "" if workers == 1 else "s",
    )
    if workers <= 1:
        RatServer(config).run(sockets=[sock])
    else:
        _run_workers(config, sock, workers)
    return None


def _run_workers(config: uvicorn.Config, sock: socket.socket, workers: int) -> None:
    """Fork ``workers`` processes sharing the listening socket; forward signals; restart crashes."""
    if not hasattr(os, "fork"):
        raise RuntimeError("workers > 1 needs os.fork (POSIX); run one process per port instead")
    children: dict[int, int] = {}
    stopping = False
    supervisor = os.getpid()
    exit_signals = {signal.SIGINT, signal.SIGTERM}

    def spawn(index: int) -> None:
        # Exit signals are held while forking: one arriving meanwhile is forwarded only once the
        # child is in ``children`` (else that worker never hears it and outlives the server).
        signal.pthread_sigmask(signal.SIG_BLOCK, exit_signals)
        try:
            pid = os.fork()
            if pid == 0:  # child
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, exit_signals)
                code = 0
                try:
                    _exit_with_parent(supervisor)
                    RatServer(config).run(sockets=[sock])
                except BaseException:
                    logger.exception("worker %d crashed", index)
                    code = 1
                finally:
                    os._exit(code)
            children[pid] = index
        finally:
            if os.getpid() == supervisor:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, exit_signals)
        logger.info("worker %d started (pid %d)", index, pid)

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for index in range(workers):
            if not stopping:  # a signal during startup: start no more workers
                spawn(index)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = children.pop(pid, -1)
            if not stopping and index >= 0:
                logger.warning("worker %d (pid %d) exited with status %d; restarting", index, pid, status)
                time.sleep(0.5)
                spawn(index)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()


def _exit_with_parent(supervisor: int) -> None:
    """Make this worker receive SIGTERM when its supervisor dies, even by SIGKILL (Linux
    ``PR_SET_PDEATHSIG``; elsewhere nothing). Why: an orphaned worker would go on serving the
    port with nobody to stop it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no usable libc
        return
    if os.getppid() != supervisor:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def run_with_reload(
    target: str, host: str, port: int, log_level: str = "info", access_log: bool = True, **options: Any
) -> None:
    """Serve ``module:app`` and restart the worker process when a ``*.py`` file changes.

    ``options`` are uvicorn ``Config`` options (``ssl_certfile``, ``ssl_keyfile``, ...); the
    protocol options (``h2``, ``h2c``, ...) are refused: they live on a protocol class made at
    run time, which cannot be sent to the reloaded worker process. The app's own ``app.run()``
    arguments do not apply either: its module is only imported."""
    refused = sorted(set(options) & set(PROTOCOL_OPTIONS))
    if refused:
        raise ValueError(f"run_with_reload() cannot take {', '.join(refused)}; serve without reload")
    from uvicorn.supervisors import ChangeReload

    configure_logging(log_level)
    # The worker is a spawned process: it needs the import path and its own logging setup.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    logging_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "rat_engine": {"level": log_level.upper()},
            "rat_engine.access": {"level": "INFO" if access_log else "CRITICAL"},
            "uvicorn": {"level": _uvicorn_level(log_level)},
        },
    }
    config = _build_config(
        target,
        host,
        port,
        log_level,
        {"reload": True, "reload_dirs": [os.getcwd()], "log_config": logging_config, **options},
    )
    logging.getLogger("uvicorn.error").addFilter(_ReloadNotice())
    sock = config.bind_socket()
    scheme = "https" if config.ssl_certfile else "http"
    logger.info("serving %s on %s://%s:%d, reloading on changes", target, scheme, host, port)
    ChangeReload(config, target=RatServer(config).run, sockets=[sock]).run()
