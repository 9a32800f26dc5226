"""``X-Forwarded-For`` / ``X-Forwarded-Proto`` applied where a scope is built, by uvicorn's rules.

uvicorn wraps the application in its ``ProxyHeadersMiddleware`` (``proxy_headers=True``, its
default): one more coroutine around every request, which a stream then holds for its whole life
(~260 bytes per idle stream, and a coroutine call per request; issue 11). rat_engine's protocols
take the application out of that wrapper and run the same middleware on the scope alone, and
only for a request that carries one of its headers: the rules (which clients are trusted,
how the address list is read) stay uvicorn's, with ``forwarded_allow_ips`` as documented.
"""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

__all__ = ["FORWARDED_HEADERS", "ForwardedHeaders", "unwrap"]

#: The headers the middleware reads: a request without them is left alone (names lower-case).
FORWARDED_HEADERS = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})


async def _answered(scope: Any, receive: Any, send: Any) -> None:
    """The inner application of the scope-only middleware: nothing to do."""


class ForwardedHeaders:
    """Rewrites a scope's ``client`` and ``scheme`` as uvicorn's middleware would."""

    __slots__ = ("_middleware",)

    def __init__(self, middleware: ProxyHeadersMiddleware) -> None:
        scope_only = copy.copy(middleware)  # shares its trusted hosts
        scope_only.app = _answered
        self._middleware = scope_only

    def apply(self, scope: dict[str, Any]) -> None:
        # The middleware awaits nothing before its inner app, and the inner app returns at
        # once: one send() runs the coroutine to its end, with no task and no loop turn.
        coroutine = self._middleware(scope, None, None)  # type: ignore[arg-type]
        try:
            coroutine.send(None)
        except StopIteration:
            return
        coroutine.close()
        raise RuntimeError("uvicorn's ProxyHeadersMiddleware waited for something")


def unwrap(app: Any) -> tuple[Any, ForwardedHeaders | None]:
    """``(application, rewriter)``: the app inside uvicorn's proxy-headers wrapper and the
    rewriter to apply instead; ``(app, None)`` when it is not wrapped."""
    if type(app) is ProxyHeadersMiddleware:
        return app.app, ForwardedHeaders(app)
    return app, None
