"""``EventStreamResponse``: a :class:`StreamingResponse` that frames items as SSE events.

Headers follow what proxies and browsers need: ``text/event-stream; charset=utf-8``,
``Cache-Control: no-cache`` (and ``no-transform`` so no proxy recompresses or buffers it),
``X-Accel-Buffering: no`` for nginx. No ``Connection`` header: it is invalid on HTTP/2 and the
server manages the connection. Never compressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..streaming import StreamingResponse
from ..streaming.sources import ErrorEncoder, sse_error_encoder
from .event import Encoder, encode_auto, encode_json, encode_text

__all__ = ["ENCODERS", "EventStreamResponse"]

ENCODERS: dict[str, Encoder] = {"auto": encode_auto, "json": encode_json, "text": encode_text}


class EventStreamResponse(StreamingResponse):
    """Stream ``content`` (a generator, async generator, list, or a single value) as SSE.

    Args:
        content: What to send; each item becomes one event (see :mod:`rat_engine.sse.event`).
        mode: ``"auto"`` (``@app.sse``), ``"json"`` (``@app.sse_json``) or ``"text"``
            (``@app.sse_text``).
    """

    media_type = "text/event-stream"
    pings = True
    ends_cleanly = True

    def __init__(
        self,
        content: Any,
        status: int = 200,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
        mode: str = "auto",
    ) -> None:
        super().__init__(content, status, headers)
        self.encoder = ENCODERS[mode]
        self.headers.setdefault("cache-control", "no-cache, no-transform")
        self.headers.setdefault("x-accel-buffering", "no")

    def error_encoder(self) -> ErrorEncoder:
        return sse_error_encoder(self.context.settings.expose_errors)

    def preamble(self) -> bytes:
        retry = self.context.settings.retry
        return f"retry: {int(retry)}\n\n".encode() if retry is not None else b""
