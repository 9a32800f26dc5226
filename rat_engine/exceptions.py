"""HTTP errors a handler may raise, and the errors rat_engine raises at registration."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

__all__ = ["HTTPException", "RequestValidationError", "RouteError", "StreamLimitExceeded"]


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


class RequestValidationError(HTTPException):
    """The request does not match the handler's annotations: answered with 422 before the
    handler runs (a stream that cannot start answers 422 too, never a 200 stream).

    The body is ``{"error": "validation failed", "status": 422, "detail": errors}``, ``errors``
    in FastAPI's shape: one ``{"type", "loc", "msg", "input"}`` per bad field, ``loc`` starting
    with where it was read (``"path"``, ``"query"`` or ``"body"``). ``@app.errorhandler(422)``
    or ``@app.errorhandler(RequestValidationError)`` may answer differently (``exc.errors``).
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, "validation failed")
        self.errors = errors
