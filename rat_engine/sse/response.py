"""``EventStreamResponse``: a :class:`StreamingResponse` that frames items as SSE events.

Everything SSE-specific about a running stream is here: the framing of items, the ``error``
event for a generator that raised, the ``: ping`` keep-alive, the ``retry:`` preamble and the
farewell frame at shutdown. Headers follow what proxies and browsers need:
``text/event-stream; charset=utf-8``, ``Cache-Control: no-cache`` (and ``no-transform`` so no
proxy recompresses or buffers it), ``X-Accel-Buffering: no`` for nginx. No ``Connection``
header: it is invalid on HTTP/2 and the server manages the connection. Never compressed.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from .._types import HeadersLike, SSEMode
from ..settings import StreamSettings
from ..streaming.chunk_source import ErrorEncoder
from ..streaming.response import StreamContext, StreamingResponse
from .event import PING, Encoder, describe_error, encode_auto, encode_json, encode_text, error_event

__all__ = ["ENCODERS", "EventStreamResponse"]

logger = logging.getLogger("rat_engine.streaming")

ENCODERS: dict[SSEMode, Encoder] = {"auto": encode_auto, "json": encode_json, "text": encode_text}


class EventStreamResponse(StreamingResponse):
    """Stream ``content`` (a generator, async generator, list, or a single value) as SSE.

    Args:
        content: What to send; each item becomes one event (see :mod:`rat_engine.sse.event`).
        mode: ``"auto"`` (``@app.sse``), ``"json"`` (``@app.sse_json``) or ``"text"``
            (``@app.sse_text``).
    """

    media_type = "text/event-stream"
    keepalive = PING
    ends_cleanly = True

    def __init__(
        self,
        content: Any,
        status: int = 200,
        headers: HeadersLike = None,
        mode: SSEMode = "auto",
    ) -> None:
        super().__init__(content, status, headers)
        self.encoder = ENCODERS[mode]
        self.headers.setdefault("cache-control", "no-cache, no-transform")
        self.headers.setdefault("x-accel-buffering", "no")

    def error_encoder(self, context: StreamContext) -> ErrorEncoder:
        """The ``error`` event (or what the route's ``on_error`` returns), after a ``retry:``
        line with ``error_retry`` so that a browser does not reconnect at once into the same
        failure. The retry line has no blank line of its own: it joins the error's block."""
        default = _error_with_detail if context.debug else _error_without_detail
        on_error, encode = context.on_error, self.encoder
        retry = context.settings.error_retry
        prefix = _retry_frame(retry) if retry is not None else b""

        def error_chunk(exc: BaseException) -> bytes | None:
            frame: bytes | None
            if on_error is None:
                frame = default(exc)
            else:
                try:
                    item = on_error(exc)
                    frame = encode(item) if item is not None else None
                except Exception:
                    logger.exception("the route's on_error raised; sending the default error event")
                    frame = default(exc)
            if frame is None:
                return prefix or None
            return prefix + frame

        return error_chunk

    def preamble(self, settings: StreamSettings) -> bytes:
        return _retry_frame(settings.retry) if settings.retry is not None else b""

    def farewell(self, settings: StreamSettings) -> bytes | None:
        return _farewell_frame(settings.shutdown_retry) if settings.shutdown_retry is not None else None

    def unavailable(self, settings: StreamSettings) -> bytes | None:
        # Why a 200 that ends at once and not a 503: an EventSource never reconnects after a
        # non-200 answer, so the page would stay dead after the broker is back; with ``retry:``
        # it comes back by itself (after shutdown_retry ms, the same "soon" as a restart).
        retry = settings.shutdown_retry if settings.shutdown_retry is not None else 2000
        return f": broadcast unavailable\nretry: {int(retry)}\n".encode()


def _error_with_detail(exc: BaseException) -> bytes:
    return error_event(describe_error(exc, True))


def _error_without_detail(exc: BaseException) -> bytes:
    return error_event(describe_error(exc, False))


# The preamble and the farewell are field and comment lines *without* a block-ending blank line
# (why: see PING): a blank line after them is an event with no data, which some parsers
# dispatch as an empty event. ``retry:`` takes effect when its line is parsed, so the preamble
# simply joins the first event's block; the farewell ends the stream.


@functools.lru_cache(maxsize=16)
def _retry_frame(retry: int) -> bytes:
    return f"retry: {int(retry)}\n".encode()


@functools.lru_cache(maxsize=16)
def _farewell_frame(retry: int) -> bytes:
    """Encoded once per value, not per stream or per request."""
    return f": server shutting down\nretry: {int(retry)}\n".encode()
