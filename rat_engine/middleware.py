"""Hook-style middleware (RAT Engine's shape) and a configurable CORS middleware.

A middleware sees every request, streaming ones included (RAT Engine skipped them for SSE,
which left no place for auth). Methods may be plain or ``async``:

* ``before_request(request_data)``: return ``None`` to continue, or a response value
  (anything a handler may return) to answer at once, e.g. ``("unauthorized", 401)``.
* ``after_request(request_data, response)``: return the response (or a replacement). For a
  stream this runs before the first byte, so it can add headers.
* ``on_error(request_data, error)``: return a response value to handle an exception, or None.

Order: ``before_request`` in registration order, ``after_request`` in reverse (an onion).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .responses import Response

__all__ = ["CORSMiddleware", "Middleware", "adapt_middleware"]

logger = logging.getLogger(__name__)


class Middleware:
    """Subclass and override what you need; the defaults do nothing."""

    def before_request(self, request_data: dict[str, Any]) -> Any:
        return None

    def after_request(self, request_data: dict[str, Any], response: Response) -> Response:
        return response

    def on_error(self, request_data: dict[str, Any], error: BaseException) -> Any:
        return None


class _Adapted(Middleware):
    """A RAT Engine style middleware object (any class with ``before_request`` and/or
    ``after_request``), given the defaults it lacks."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        for name in ("before_request", "after_request", "on_error"):
            method = getattr(inner, name, None)
            if callable(method):
                setattr(self, name, method)


def adapt_middleware(middleware: Any) -> Middleware:
    """``middleware`` as a :class:`Middleware`: instances pass through; any object with
    ``before_request`` / ``after_request`` (RAT Engine's duck-typed middleware) is wrapped.

    Raises:
        TypeError: it has neither method (e.g. an ASGI middleware class).
    """
    if isinstance(middleware, Middleware):
        return middleware
    if isinstance(middleware, type) or not any(
        callable(getattr(middleware, name, None)) for name in ("before_request", "after_request")
    ):
        raise TypeError(
            "add_middleware takes a middleware object with before_request/after_request "
            "(e.g. a rat_engine.Middleware instance); wrap ASGI middleware around the app instead"
        )
    return _Adapted(middleware)


class CORSMiddleware(Middleware):
    """Cross-origin resource sharing, configured per app (never a hard-coded ``*``).

    Args:
        allow_origins: Exact origins (``"https://a.example"``) or ``["*"]`` for any.
        allow_methods: Methods allowed in preflight answers.
        allow_headers: Request headers allowed in preflight answers (``["*"]`` echoes the request's).
        allow_credentials: Send ``Access-Control-Allow-Credentials: true``; with it, ``*`` origins
            are answered with the caller's origin, as the Fetch standard requires.
        expose_headers: Response headers the browser may read.
        max_age: Seconds a browser may cache a preflight answer.
    """

    def __init__(
        self,
        allow_origins: Iterable[str] = (),
        allow_methods: Iterable[str] = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
        allow_headers: Iterable[str] = ("Content-Type", "Authorization", "Last-Event-ID"),
        allow_credentials: bool = False,
        expose_headers: Iterable[str] = (),
        max_age: int = 600,
        *,
        origins: Iterable[str] | None = None,
        methods: Iterable[str] | None = None,
        headers: Iterable[str] | None = None,
        credentials: bool | None = None,
    ) -> None:
        # RAT Engine's argument names (origins=, methods=, headers=, credentials=) are accepted.
        # Deliberate deviation: no origin is allowed unless configured (RAT Engine defaulted to "*").
        if origins is not None:
            allow_origins = origins
        if methods is not None:
            allow_methods = methods
        if headers is not None:
            allow_headers = headers
        if credentials is not None:
            allow_credentials = credentials
        self.allow_origins = frozenset(allow_origins)
        self.allow_any = "*" in self.allow_origins
        self.allow_methods = ", ".join(m.upper() for m in allow_methods)
        self.allow_headers = [h.lower() for h in allow_headers]
        self.allow_credentials = allow_credentials
        self.expose_headers = ", ".join(expose_headers)
        self.max_age = max_age
        logger.info(
            "CORS: %s",
            "any origin" if self.allow_any else
            "allowed origins: " + (", ".join(sorted(self.allow_origins)) or "none (pass allow_origins=[...])"),
        )  # fmt: skip

    def _allowed_origin(self, origin: str) -> str | None:
        if origin in self.allow_origins:
            return origin
        if self.allow_any:
            return origin if self.allow_credentials else "*"
        return None

    def before_request(self, request_data: dict[str, Any]) -> Any:
        headers = request_data["headers"]
        origin = headers.get("origin")
        if request_data["method"] != "OPTIONS" or origin is None:
            return None
        requested_method = headers.get("access-control-request-method")
        if requested_method is None:
            return None  # a plain OPTIONS request, not a preflight
        allowed = self._allowed_origin(origin)
        if allowed is None:
            return Response("CORS origin not allowed", 403, media_type="text/plain")
        response_headers = {
            "access-control-allow-origin": allowed,
            "access-control-allow-methods": self.allow_methods,
            "access-control-max-age": str(self.max_age),
            "vary": "Origin",
        }
        requested_headers = headers.get("access-control-request-headers")
        if requested_headers:
            if "*" in self.allow_headers:
                response_headers["access-control-allow-headers"] = requested_headers
            else:
                wanted = [h.strip() for h in requested_headers.split(",") if h.strip()]
                if any(h.lower() not in self.allow_headers for h in wanted):
                    return Response("CORS header not allowed", 403, media_type="text/plain")
                response_headers["access-control-allow-headers"] = requested_headers
        if self.allow_credentials:
            response_headers["access-control-allow-credentials"] = "true"
        return Response(b"", 204, response_headers)

    def after_request(self, request_data: dict[str, Any], response: Response) -> Response:
        origin = request_data["headers"].get("origin")
        if origin is None or "access-control-allow-origin" in response.headers:
            return response
        allowed = self._allowed_origin(origin)
        if allowed is None:
            return response
        response.headers["access-control-allow-origin"] = allowed
        if allowed != "*":
            response.headers.add("vary", "Origin")
        if self.allow_credentials:
            response.headers["access-control-allow-credentials"] = "true"
        if self.expose_headers:
            response.headers["access-control-expose-headers"] = self.expose_headers
        return response
