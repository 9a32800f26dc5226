"""HTTP errors a handler may raise, and the errors rat_engine raises at registration."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

__all__ = ["HTTPException", "RouteError", "StreamLimitExceeded"]


class HTTPException(Exception):
    """Raise from a handler (or hook) to answer with this status instead of a 500.

    Args:
        status_code: The HTTP status to send.
        detail: Text for the client; defaults to the status phrase.
        headers: Extra response headers (e.g. ``Retry-After``, ``Allow``).
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = HTTPStatus(status_code).phrase
            except ValueError:
                detail = "Error"
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class RouteError(ValueError):
    """A rule is malformed or duplicates a registered one (raised at registration, never per request)."""


class StreamLimitExceeded(HTTPException):
    """Too many concurrent streams: answered with 503 (or 429 per client) and ``Retry-After``."""

    def __init__(self, detail: str, status_code: int = 503, retry_after: int = 1) -> None:
        super().__init__(status_code, detail, {"retry-after": str(retry_after)})
