"""RAT Engine's response and request names: ``HttpResponse``, ``HttpRequest``, ``HttpMethod``.

They are views over rat_engine's own classes, not a second response system: every factory of
:class:`HttpResponse` returns one of the :mod:`rat_engine.responses` classes (which carry RAT's
``set_header`` / ``get_header`` / ``set_status`` / ``set_cors``), and ``HttpRequest`` is
``request_data``'s class, which also answers RAT's attribute style (``request.method``,
``request.headers``, ``request.query_params``, ``request.body``).
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from ._types import HeadersLike
from .files import FileResponse
from .request import RequestData
from .responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from .sse.response import EventStreamResponse
from .streaming.response import StreamingResponse

__all__ = ["HttpMethod", "HttpRequest", "HttpResponse", "LoggingMiddleware", "RatEngineExtras"]

logger = logging.getLogger("rat_engine.app")

#: RAT Engine's request object: the same ``request_data`` dict (attribute access included).
HttpRequest = RequestData


class HttpMethod(enum.StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"
    PATCH = "PATCH"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


class HttpResponse(Response):
    """``HttpResponse(status=200, headers=None, body=b"")``, or one of the factories.

    The factories take RAT Engine's keywords (``status_code=`` as well as ``status=``).
    """

    def __init__(
        self,
        status: int = 200,
        headers: HeadersLike = None,
        body: bytes | str | None = b"",
        content_type: str | None = None,
        *,
        status_code: int | None = None,
    ) -> None:
        super().__init__(body, status_code if status_code is not None else status, headers, content_type)

    @staticmethod
    def json(
        data: Any, status: int = 200, headers: HeadersLike = None, *, status_code: int | None = None
    ) -> Response:
        return JSONResponse(data, _status(status, status_code), headers)

    @staticmethod
    def text(
        text: str, status: int = 200, headers: HeadersLike = None, *, status_code: int | None = None
    ) -> Response:
        return PlainTextResponse(text, _status(status, status_code), headers)

    @staticmethod
    def html(
        html: str, status: int = 200, headers: HeadersLike = None, *, status_code: int | None = None
    ) -> Response:
        return HTMLResponse(html, _status(status, status_code), headers)

    @staticmethod
    def redirect(url: str, status: int = 302, *, status_code: int | None = None) -> Response:
        return RedirectResponse(url, _status(status, status_code))

    @staticmethod
    def error(message: str | int, status: int | str = 500, *, status_code: int | None = None) -> Response:
        """An error as JSON, ``{"error": message, "status": status}`` (the same body as
        rat_engine's own errors; JSON-escaped, unlike RAT Engine's). Both argument orders work:
        ``error("Not Found", 404)`` and RAT's ``error(404, "Not Found")``."""
        if isinstance(message, int) and not isinstance(message, bool):
            message, status = str(status), message
        code = _status(int(status), status_code)
        return JSONResponse({"error": str(message), "status": code}, code)

    @staticmethod
    def sse(content: Any, headers: HeadersLike = None) -> Response:
        """An event stream of ``content`` (a generator, a list, or one item)."""
        return EventStreamResponse(content, headers=headers)

    @staticmethod
    def sse_text(content: Any, headers: HeadersLike = None) -> Response:
        """An event stream whose items are sent as text, never parsed."""
        return EventStreamResponse(content, headers=headers, mode="text")

    @staticmethod
    def sse_json(content: Any, headers: HeadersLike = None) -> Response:
        return EventStreamResponse(content, headers=headers, mode="json")

    @staticmethod
    def chunk(
        content: Iterable[Any] | Any, content_type: str = "text/plain", headers: HeadersLike = None
    ) -> Response:
        return StreamingResponse(content, headers=headers, media_type=content_type)

    @staticmethod
    def file(
        path: str | os.PathLike[str], content_type: str | None = None, filename: str | None = None
    ) -> Response:
        """A file from disk (ETag, Range); ``filename`` makes it a download."""
        return FileResponse(path, media_type=content_type, filename=filename)


def _status(status: int, status_code: int | None) -> int:
    return status_code if status_code is not None else status


class RatEngineExtras:
    """The rest of RAT Engine's ``RatApp`` methods, mixed into :class:`~rat_engine.RatApp`:
    single-page-app fallback, file helpers, run-state queries, extensions, and configuration
    calls that have no counterpart here (logged and ignored, so an app still starts)."""

    spa_fallback: str | None = None
    _server_handle: Any
    _extensions: dict[str, Any]
    name: str
    debug: bool

    # -- single-page apps ---------------------------------------------------------------------
    def enable_spa(self, fallback_path: str = "/index.html") -> None:
        """Unmatched GET requests that accept HTML get ``fallback_path`` (a route, e.g. served
        by ``app.static``), so client-side routes survive a reload. API calls and assets that
        do not exist still get 404."""
        if not fallback_path.startswith("/"):
            raise ValueError(f"fallback_path must be a path starting with '/', got {fallback_path!r}")
        self.spa_fallback = fallback_path

    def disable_spa(self) -> None:
        self.spa_fallback = None

    def configure_spa(self, enabled: bool = True, fallback_path: str = "/index.html") -> None:
        if enabled:
            self.enable_spa(fallback_path)
        else:
            self.disable_spa()

    # -- files --------------------------------------------------------------------------------
    def send_file(
        self, path: str | os.PathLike[str], content_type: str | None = None, filename: str | None = None
    ) -> Response:
        """A file from disk (ETag, Range); ``filename`` makes it a download."""
        return FileResponse(path, media_type=content_type, filename=filename)

    def send_static_file(self, filename: str, static_folder: str | os.PathLike[str] = "static") -> Response:
        """``filename`` under ``static_folder``; a path that leaves the folder (``..``, an
        absolute path, a symlink out) is a 404 (RAT Engine's had no such check)."""
        from .files import safe_join

        return FileResponse(safe_join(static_folder, filename))

    # -- state --------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """A server started by ``run(blocking=False)`` is serving."""
        handle = self._server_handle
        return bool(handle is not None and handle.running)

    def get_metrics(self) -> dict[str, Any]:
        """What ``app.stats()`` says (open streams, totals, broadcast)."""
        stats: dict[str, Any] = self.stats()  # type: ignore[attr-defined]
        return stats

    def get_server_info(self) -> dict[str, Any]:
        from . import __version__

        handle = self._server_handle
        return {
            "name": self.name,
            "version": __version__,
            "running": self.is_running(),
            "host": getattr(handle, "host", None),
            "port": getattr(handle, "port", None),
            "url": getattr(handle, "url", None),
            "debug": self.debug,
        }

    # -- extensions ---------------------------------------------------------------------------
    def add_extension(self, name: str, extension: Any) -> None:
        """Keep an object under ``name`` for handlers to fetch (``app.get_extension(name)``)."""
        self._extensions[name] = extension

    def get_extension(self, name: str, default: Any = None) -> Any:
        return self._extensions.get(name, default)

    # -- RAT Engine configuration calls with no counterpart here ------------------------------
    def enable_cache(self, *args: Any, **kwargs: Any) -> None:
        _not_here(
            "enable_cache", "cache at a reverse proxy or CDN (Cache-Control headers from your handlers)"
        )

    def disable_cache(self, *args: Any, **kwargs: Any) -> None:
        _not_here("disable_cache", "nothing to disable: rat_engine has no response cache")

    def enable_version_manager(self, *args: Any, **kwargs: Any) -> None:
        _not_here("enable_version_manager", "version routes yourself, e.g. /v1/... and /v2/... rules")

    def configure_celery(self, *args: Any, **kwargs: Any) -> None:
        _not_here("configure_celery", "run Celery as its own worker; publish results with app.broadcast")


def _not_here(call: str, instead: str) -> None:
    logger.warning("RAT Engine's %s() is not available in rat_engine and does nothing; %s", call, instead)


class LoggingMiddleware:
    """Logs one line per request with its status and duration (logger ``rat_engine.app``);
    RAT Engine's name. rat_engine's own access log (``rat_engine.access``) does the same."""

    def __init__(self, level: int = logging.INFO) -> None:
        self.level = level

    def before_request(self, request: Any) -> None:
        request["rat.started"] = time.perf_counter()

    def after_request(self, request: Any, response: Response) -> Response:
        started = request.pop("rat.started", None)
        took = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        logger.log(
            self.level,
            "%s %s -> %d (%.1f ms)",
            request["method"],
            request["path"],
            response.status_code,
            took,
        )
        return response
