"""Shared type names: the ASGI callables, and the string enumerations as ``Literal`` types.

The route-kind table lives here too, so the registration (``app``), the return-value
conversion (``convert``) and the call plan (``endpoints``) read one definition of which kinds
stream and how their items are framed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ASGIApp",
    "HeadersLike",
    "KindSpec",
    "Message",
    "ROUTE_KINDS",
    "Receive",
    "RouteKind",
    "SSEMode",
    "Scope",
    "Send",
    "SourceKind",
    "StopReason",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Headers as a caller may give them: a mapping, or pairs (for repeated names like Set-Cookie).
HeadersLike = Mapping[str, str] | list[tuple[str, str]] | None

#: What a route's decorator says about its return values (see :mod:`rat_engine.convert`).
RouteKind = Literal["route", "html", "json", "custom", "file", "chunk", "sse", "sse_json", "sse_text"]
#: How an SSE route frames items (see :mod:`rat_engine.sse.event`).
SSEMode = Literal["auto", "json", "text"]
#: What drives a running stream: a thread (sync generator), the loop (async generator), a
#: value given whole, or a broadcast subscription.
SourceKind = Literal["thread", "task", "static", "subscription"]
#: Why a stream ended (counted per reason in ``app.stats()["close_reasons"]``).
StopReason = Literal["finished", "client", "shutdown", "max_duration", "send_timeout"]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What one route kind means for the framework."""

    #: Its responses are streams (stream options apply; a stream flag is put in request_data).
    stream: bool = False
    #: For SSE kinds: how items are framed; None for every other kind.
    sse_mode: SSEMode | None = None


ROUTE_KINDS: Mapping[RouteKind, KindSpec] = {
    "route": KindSpec(),
    "html": KindSpec(),
    "json": KindSpec(),
    "custom": KindSpec(),
    "file": KindSpec(),
    "chunk": KindSpec(stream=True),
    "sse": KindSpec(stream=True, sse_mode="auto"),
    "sse_json": KindSpec(stream=True, sse_mode="json"),
    "sse_text": KindSpec(stream=True, sse_mode="text"),
}
