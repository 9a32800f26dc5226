"""RAT Engine's response and request names: ``HttpResponse``, ``HttpRequest``, ``HttpMethod``.

They are views over rat_engine's own classes, not a second response system: every factory of
:class:`HttpResponse` returns one of the :mod:`rat_engine.responses` classes (which carry RAT's
``set_header`` / ``get_header`` / ``set_status`` / ``set_cors``), and ``HttpRequest`` is
``request_data``'s class, which also answers RAT's attribute style (``request.method``,
``request.headers``, ``request.query_params``, ``request.body``).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable
from typing import Any

from ._types import HeadersLike
from .files import FileResponse
from .request import RequestData
from .responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from .sse.response import EventStreamResponse
from .streaming.response import StreamingResponse

__all__ = ["HttpMethod", "HttpRequest", "HttpResponse"]

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
