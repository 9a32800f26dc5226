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
from typing import TYPE_CHECKING, Any, Self

from ._types import HeadersLike
from .files import FileResponse
from .request import RequestData
from .responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from .sse.response import EventStreamResponse
from .streaming.response import StreamingResponse

if TYPE_CHECKING:
    from .server.tls import DevCertificate

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


#: RAT Engine's default for ``enable_development_mode(hostnames=...)``.
DEV_HOSTNAMES: tuple[str, ...] = ("localhost", "127.0.0.1")


class RatEngineExtras:
    """The rest of RAT Engine's ``RatApp`` methods, mixed into :class:`~rat_engine.RatApp`:
    single-page-app fallback, file helpers, run-state queries, extensions, the protocol and TLS
    switches (HTTP/2, development mode), and configuration calls that have no counterpart here
    (logged and ignored, so an app still starts)."""

    spa_fallback: str | None = None
    _h2_enabled: bool = True
    _h2c_enabled: bool = False
    _dev_certificate: DevCertificate | None = None
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

    # -- protocols and TLS ----------------------------------------------------------------------
    # The app records its choice; app.run() hands it to the server as h2= / h2c= (and the
    # development certificate as ssl_certfile= / ssl_keyfile=) unless run() is given them.
    def enable_h2(self) -> Self:
        """Offer HTTP/2 by ALPN on a TLS port (the default: this undoes
        ``configure_protocols(enable_h2=False)``). A cleartext port needs :meth:`enable_h2c`."""
        self._h2_enabled = True
        return self

    def enable_h2c(self) -> Self:
        """A cleartext (``http://``) port also accepts HTTP/2: with prior knowledge (the
        client starts with the HTTP/2 preface) and by ``Upgrade: h2c``. HTTP/1.1 keeps working
        on that port; browsers never use h2c (they speak HTTP/2 only over TLS)."""
        self._h2c_enabled = True
        return self

    def configure_protocols(self, enable_h2c: bool | None = None, enable_h2: bool | None = None) -> Self:
        """Set both switches (RAT Engine's call). A switch left out keeps its value, so
        ``configure_protocols(enable_h2=False)`` turns HTTP/2 off on a TLS port (ALPN then
        offers only ``http/1.1``) and leaves h2c as it was."""
        if enable_h2c is not None:
            self._h2c_enabled = bool(enable_h2c)
        if enable_h2 is not None:
            self._h2_enabled = bool(enable_h2)
        return self

    def is_h2_enabled(self) -> bool:
        """HTTP/2 is offered on a TLS port (True unless turned off)."""
        return self._h2_enabled

    def is_h2c_enabled(self) -> bool:
        """A cleartext port accepts HTTP/2 too (False unless :meth:`enable_h2c`)."""
        return self._h2c_enabled

    def enable_development_mode(self, hostnames: Iterable[str] | str = DEV_HOSTNAMES) -> Self:
        """Serve HTTPS with a self-signed certificate for ``hostnames`` (DNS names and IP
        addresses), with h2 and h2c on, as RAT Engine's call does: ``app.run()`` then listens on
        ``https://`` and logs the URL. The certificate is kept in
        ``$XDG_CACHE_HOME/rat_engine/dev-tls`` (``~/.cache/...``) and reused while valid for the
        same hostnames. Browsers warn about it once; never use it in production.

        Needs the ``cryptography`` package (``pip install 'rat_engine[tls]'``); without it this
        raises ``ImportError`` saying so. ``run(ssl_certfile=...)`` overrides the certificate.
        """
        from .server.tls import development_certificate

        self._dev_certificate = development_certificate(hostnames)
        self._h2_enabled = True
        self._h2c_enabled = True
        return self

    def _protocol_options(self) -> dict[str, Any]:
        """What ``app.run()`` passes to the server for the switches above (``h2``, ``h2c``,
        and in development mode ``ssl_certfile`` / ``ssl_keyfile``)."""
        options: dict[str, Any] = {"h2": self._h2_enabled, "h2c": self._h2c_enabled}
        certificate = self._dev_certificate
        if certificate is not None:
            options["ssl_certfile"] = certificate.certfile
            options["ssl_keyfile"] = certificate.keyfile
        return options

    def _apply_protocol_options(self, server_options: dict[str, Any]) -> bool:
        """Fill ``server_options`` (app.run's keywords) from the switches, keeping what the
        caller gave; True when the development certificate is used."""
        tls_given = any(server_options.get(name) is not None for name in ("ssl_certfile", "ssl_keyfile"))
        for name, value in self._protocol_options().items():
            if name.startswith("ssl_"):
                if not tls_given:
                    server_options[name] = value
            elif server_options.get(name) is None:
                server_options[name] = value
        return self._dev_certificate is not None and not tls_given

    def _log_development_url(self, host: str, port: int) -> None:
        certificate = self._dev_certificate
        if certificate is None:
            return
        shown = host if host in certificate.hostnames else certificate.hostnames[0]
        if ":" in shown:
            shown = f"[{shown}]"
        logger.info(
            "development mode: https://%s:%s/ (self-signed certificate for %s; browsers warn once; "
            "HTTP/2 on). Certificate: %s",
            shown,
            port if port else "<port>",
            ", ".join(certificate.hostnames),
            certificate.certfile,
        )

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
