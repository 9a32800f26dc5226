"""``StreamingResponse``: *what* to stream (content, headers, how items become bytes).

It runs nothing itself: :class:`~.stream.Stream`, made inside the request's task with a
:class:`StreamContext`, runs it. Subclasses (SSE, :mod:`rat_engine.sse.response`) change the
framing through the hooks below, so this layer knows nothing of any wire format.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _json
from .._types import HeadersLike, Receive, Scope, Send
from ..responses import Response
from ..settings import StreamSettings
from .chunk_source import ErrorEncoder, close_unstarted
from .signals import Disconnected
from .stream import Stream
from .wire import wire_for

if TYPE_CHECKING:
    from .registry import ConnectionManager

__all__ = ["StreamContext", "StreamingResponse"]


@dataclass(slots=True)
class StreamContext:
    """Where a stream runs and how it behaves: given to the :class:`~.stream.Stream` when it is
    made (the dispatcher builds one per request; a response used as a plain ASGI app gets the
    defaults)."""

    settings: StreamSettings = field(default_factory=StreamSettings)
    #: The registry that admitted the stream (None: not registered, e.g. plain ASGI use).
    manager: ConnectionManager | None = None
    #: The route's rule, and its handler's ``file:line name`` (for log lines).
    route: str = ""
    handler: str = ""
    client: str = ""
    #: Include exception text in error chunks (the app's ``debug``).
    debug: bool = False
    #: ``request_data["disconnected"]``: set when the stream stops for any reason.
    disconnected: threading.Event = field(default_factory=Disconnected)
    #: The route's ``on_error``: the item to send when the generator raises (None: the format's).
    on_error: Callable[[BaseException], Any] | None = None


def _plain_chunk(item: Any) -> bytes | None:
    """``@app.chunk`` items: bytes as is, str as UTF-8, dict/list and typed records (models,
    dataclasses) as one JSON line."""
    if item is None:
        return None
    if isinstance(item, bytes):
        return item
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (dict, list)) or _json.is_record(item):
        return _json.dumps(item) + b"\n"
    return str(item).encode("utf-8")


def _no_error_chunk(exc: BaseException) -> bytes | None:
    return None


class StreamingResponse(Response):
    """Send ``content`` incrementally with chunked transfer encoding (``@app.chunk``).

    ``content`` may be a sync iterable (run on its own thread), an async iterable (stepped on
    the loop), or a single str/bytes value.
    """

    media_type = "text/plain"
    #: Items become bytes through this; subclasses (SSE) frame them.
    encoder: Any = staticmethod(_plain_chunk)
    #: Written after ``ping_interval`` idle seconds (None: this format has no keep-alive).
    keepalive: bytes | None = None
    #: False: a body cut short (the generator raised, shutdown, max_duration) is left without
    #: its final chunk, so the client sees it is incomplete (a download must not look
    #: finished). SSE streams report errors in-band and end cleanly (True).
    ends_cleanly = False

    def __init__(
        self,
        content: Any,
        status: int = 200,
        headers: HeadersLike = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(b"", status, headers, media_type)
        self.content = content

    # -- hooks for formats ------------------------------------------------------------------------
    def error_encoder(self, context: StreamContext) -> ErrorEncoder:
        """How an exception in the generator is reported in-band (None: it is not)."""
        return _no_error_chunk

    def preamble(self, settings: StreamSettings) -> bytes:
        """Written right after the headers."""
        return b""

    def farewell(self, settings: StreamSettings) -> bytes | None:
        """Written to an open stream when the server shuts down."""
        return None

    def unavailable(self, settings: StreamSettings) -> bytes | None:
        """The whole body of a stream whose source cannot open (its broker is down); None:
        answer ``503`` instead."""
        return None

    # -- ASGI -------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve as a plain ASGI app (not admitted or registered anywhere)."""
        if scope.get("method") == "HEAD":
            await self.send_head(send)
            return
        await Stream(self, StreamContext(), wire_for(scope, receive, send), scope.get("path", "")).run()

    async def send_head(self, send: Send) -> None:
        """Answer HEAD: the headers a GET would get, no body; the content is never run."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.render_headers(None)}
        )
        await send({"type": "http.response.body", "body": b""})
        close_unstarted(self.content)
