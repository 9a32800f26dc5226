"""The request path: ASGI scope in, response out (docs/ARCHITECTURE.md has the picture).

    build request_data (414/431) -> match route (404/405) -> read body (413)
      -> before hooks (may answer) -> handler -> make_response -> after hooks
      -> [stream: Stream made, admitted and registered in one step (503/429)] -> send
      -> access log

Every exception on the way becomes a response: ``HTTPException`` its own status, anything else
a logged 500 whose body hides internals unless ``debug`` is on. The worker never dies.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from ._types import Receive, Scope, Send
from .broadcast.base import BroadcastUnavailable
from .context import current_request
from .convert import make_response
from .exceptions import HTTPException, RequestValidationError, StreamLimitExceeded
from .files import FileResponse
from .request import RequestData, build_request_data, may_have_body, read_body
from .responses import JSONResponse, Response
from .routing import MethodNotAllowed, NotFound
from .streaming.response import StreamContext, StreamingResponse
from .streaming.signals import Disconnected
from .streaming.stream import Stream
from .streaming.wire import wire_for

if TYPE_CHECKING:
    from .app import RatApp
    from .compression.policy import ResponseCompression
    from .endpoints import Endpoint

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("rat_engine.access")

__all__ = ["handle_http"]

# C0 and C1 controls and the Unicode line/paragraph separators: anything a log viewer may break on.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _printable(text: str) -> str:
    """Escape control characters so a request cannot forge lines in the access log."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


async def handle_http(app: RatApp, scope: Scope, receive: Receive, send: Send) -> None:
    started = time.perf_counter()
    request_data: RequestData | None = None
    endpoint: Endpoint | None = None
    try:
        request_data = build_request_data(scope, app.limits)
        current_request.set(request_data)  # rat_engine.request() (RAT Engine's thread-local)
        endpoint, response = await _respond(app, request_data, scope, receive)
    except Exception as exc:
        response = await _error_response(app, request_data, exc)
    if response.status_code == 404 and request_data is not None and _wants_page(app, request_data):
        # A single-page app: a browser navigating to a client-side route gets the app's page.
        request_data["path"] = app.spa_fallback
        try:
            endpoint, response = await _respond(app, request_data, scope, receive)
        except Exception as exc:
            response = await _error_response(app, request_data, exc)
    if request_data is not None and not app.hooks.empty:
        try:
            response = await app.hooks.run_after(request_data, response)
        except Exception as exc:
            response = await _error_response(app, request_data, exc)
    # The one compression decision for this response (None: off, or the route said compress=False).
    compression = app.compression if endpoint is None or endpoint.compress else None
    if compression is not None and request_data is not None:
        try:
            compression.compress_body(response, request_data["headers"], scope["method"], scope["path"])
        except Exception:  # a codec failing must not cost the response: send it as it is
            logger.exception("compression failed; sending the response uncompressed")
    stream: Stream | None = None
    try:
        if isinstance(response, StreamingResponse) and scope["method"] != "HEAD":
            opened = _open_stream(app, request_data, endpoint, response, compression, scope, receive, send)
            if isinstance(opened, Stream):
                stream = opened
            else:  # refused by a limit
                response = opened
        if stream is not None:
            await stream.run()
        elif compression is not None and request_data is not None and isinstance(response, FileResponse):
            compressing = compression.file_send(
                send, response, request_data["headers"], scope["method"], scope["path"]
            )
            await response(scope, receive, compressing)
        else:
            await response(scope, receive, send)
    finally:
        if request_data is not None:
            request_data.close()
    sent = stream.info.bytes_sent if stream is not None else response.bytes_sent
    if app.metrics is not None:
        app.metrics.observe(
            scope["method"], response.status_code, time.perf_counter() - started, stream is not None
        )
    if access_logger.isEnabledFor(logging.INFO):
        client = scope.get("client")
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d %dB %.1fms%s',
            client[0] if client else "-",
            scope["method"],
            _printable(scope["path"]),
            scope.get("http_version", "1.1"),
            response.status_code,
            sent,
            (time.perf_counter() - started) * 1000,
            f" stream:{stream.stop_reason}" if stream is not None else "",
        )


async def _respond(
    app: RatApp, request_data: RequestData, scope: Scope, receive: Receive
) -> tuple[Endpoint | None, Response]:
    match = app.router.match(request_data["method"], request_data["path"])
    endpoint = None if isinstance(match, (NotFound, MethodNotAllowed)) else match.endpoint
    if endpoint is not None:
        limit = endpoint.max_body_size if endpoint.max_body_size is not None else app.limits.max_body_size
        if endpoint.stream_body:
            request_data.defer_body(receive, limit)
        elif may_have_body(request_data):
            await read_body(request_data, receive, limit)
        # RAT Engine's path_params are the text of the path; the handler's keyword arguments
        # are converted by the rule (<int:n> -> int).
        request_data["path_params"] = match.raw  # type: ignore[union-attr]
        if endpoint.is_stream:
            request_data["disconnected"] = Disconnected()
    if not app.hooks.empty:
        early = await app.hooks.run_before(request_data)
        if early is not None:
            return endpoint, _early_response(early)
    if isinstance(match, NotFound):
        raise HTTPException(404)
    if isinstance(match, MethodNotAllowed):
        allow = ", ".join(match.allowed)
        if request_data["method"] == "OPTIONS":
            return None, Response(b"", 204, {"allow": allow + ", OPTIONS"})
        raise HTTPException(405, headers={"allow": allow})
    assert endpoint is not None
    if endpoint.plan.fast and not match.params:  # PERF: no coroutine hop
        rv = endpoint.func(request_data) if endpoint.plan.pass_request else endpoint.func()
    else:
        rv = await endpoint.call(request_data, match.params, app.executor)
    return endpoint, make_response(rv, endpoint.kind)


def _early_response(early: Any) -> Response:
    """A before hook's answer. A bare message with an error status (``("unauthorized", 401)``)
    is an error like any other: the API's JSON error body, and ``@errorhandler`` may shape it
    (why: a hook is not a route, so it has no kind that would make the text JSON)."""
    if (
        isinstance(early, tuple)
        and len(early) == 2
        and isinstance(early[0], str)
        and isinstance(early[1], int)
        and not isinstance(early[1], bool)
        and early[1] >= 400
    ):
        raise HTTPException(early[1], early[0])
    return make_response(early)


def _wants_page(app: RatApp, request_data: RequestData) -> bool:
    """SPA fallback: a bodiless GET or HEAD that accepts HTML (a browser navigating), not an
    API call or an asset, and not the fallback page itself."""
    fallback = app.spa_fallback
    if fallback is None or request_data["method"] not in ("GET", "HEAD") or request_data["path"] == fallback:
        return False
    headers = request_data["headers"]
    return "text/html" in headers.get("accept", "") and "content-length" not in headers


def _open_stream(
    app: RatApp,
    request_data: RequestData | None,
    endpoint: Endpoint | None,
    response: StreamingResponse,
    compression: ResponseCompression | None,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> Stream | Response:
    """The running stream, admitted and registered (one step: nothing awaits in between, so
    concurrent requests cannot overshoot a limit); the 503/429 answer when a limit refuses it."""
    client = request_data["remote_addr"] if request_data is not None else ""
    disconnected = request_data.get("disconnected") if request_data is not None else None
    settings = endpoint.stream_settings if endpoint is not None else None
    context = StreamContext(
        settings=settings or app.stream_settings,
        manager=app.connections,
        route=endpoint.rule if endpoint is not None else "",
        handler=endpoint.where if endpoint is not None else "",
        client=client,
        debug=app.debug,
        disconnected=disconnected if isinstance(disconnected, threading.Event) else Disconnected(),
        on_error=endpoint.on_error if endpoint is not None else None,
    )
    wire = wire_for(scope, receive, send)
    if compression is not None and request_data is not None:
        wire = compression.stream_wire(wire, response, request_data["headers"], scope.get("path", ""))
    stream = Stream(response, context, wire, scope.get("path", ""))
    try:
        app.connections.open(stream)
    except StreamLimitExceeded as exc:
        stream.discard()
        logger.warning("stream refused for %s: %s", client, exc.detail)
        return _default_error(app, exc.status_code, exc.detail, exc.headers, None)
    return stream


async def _error_response(app: RatApp, request_data: RequestData | None, exc: Exception) -> Response:
    if isinstance(exc, BroadcastUnavailable):
        # The broker is down: an expected outage, not a bug: one line, no traceback.
        logger.warning("%s", exc)
        exc = HTTPException(503, "broadcast unavailable", {"retry-after": "2"})
    if isinstance(exc, HTTPException):
        status, detail, headers = exc.status_code, exc.detail, exc.headers
    else:
        status, detail, headers = 500, "Internal Server Error", {}
    if request_data is not None:
        try:
            handled = await app.hooks.run_error(request_data, exc, status)
        except Exception as handler_exc:
            logger.error("error handler raised", exc_info=handler_exc)
            handled = None
        if handled is not None:
            return handled  # the application dealt with it (as in Flask, not logged as unhandled)
    if isinstance(exc, RequestValidationError):
        # FastAPI's shape ("detail": one entry per bad field) inside RAT Engine's error body.
        return JSONResponse({"error": detail, "status": status, "detail": exc.errors}, status, headers)
    if not isinstance(exc, HTTPException):
        method = request_data["method"] if request_data is not None else "?"
        path = request_data["path"] if request_data is not None else "?"
        logger.error("unhandled exception in %s %s", method, _printable(path), exc_info=exc)
    return _default_error(app, status, detail, headers, None if isinstance(exc, HTTPException) else exc)


def _default_error(
    app: RatApp, status: int, detail: str, headers: dict[str, str], exc: BaseException | None
) -> Response:
    # RAT Engine's error body shape: {"error": ..., "status": ...}.
    body: dict[str, Any] = {"error": detail, "status": status}
    if app.debug and exc is not None:
        body["exception"] = f"{type(exc).__name__}: {exc}"
        body["traceback"] = traceback.format_exception(exc)
    return JSONResponse(body, status, headers)
