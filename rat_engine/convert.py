"""The one place where a handler's return value becomes a :class:`Response`.

Tuple rules are the same for every decorator (RAT Engine's disagreed between decorators):
the first item is the body; after it, an ``int`` is the status, a ``str`` is the content type,
a mapping (or list of pairs) is headers. So ``(body, 404)``, ``(body, "text/csv")``,
``(body, "text/csv", 201)``, ``(body, 201, {"X-A": "b"})`` and ``(body, {"X-A": "b"})`` all work.

How the body is read depends on the route's *kind* (its decorator):

=========  ==============================================================================
kind       body
=========  ==============================================================================
html       str/bytes -> text/html; dict/list -> JSON
json       dict/list/other -> JSON; str/bytes -> sent as JSON text already (the seed habit
           of ``return json.dumps(...)`` is not quoted twice); None -> ``null``
custom     str -> text/plain; bytes -> application/octet-stream; dict/list -> JSON
file       str/PathLike -> the file streamed from disk (``(path, mime)`` sets the type)
chunk      iterable / generator / async generator -> chunked stream
sse*       anything -> an event stream (``sse``, ``sse_json``, ``sse_text``)
route      like html (Flask's habit for a str), JSON for dict/list
=========  ==============================================================================

A typed value (a pydantic model, an msgspec ``Struct``, an attrs class or a dataclass) is JSON
from every non-streaming kind, as a dict is (see :mod:`rat_engine._json` for how it encodes).
A :class:`Response` is passed through untouched; ``None`` is 204 except for json.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import _json
from ._types import ROUTE_KINDS, RouteKind
from .files import FileResponse
from .responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from .sse.response import EventStreamResponse
from .streaming.response import StreamingResponse

__all__ = ["make_response"]


def _split_tuple(rv: tuple[Any, ...]) -> tuple[Any, int | None, str | None, Any]:
    if not rv or len(rv) > 3:
        raise TypeError(f"a handler may return a tuple of 2 or 3 items, got {len(rv)}")
    body, status, content_type, headers = rv[0], None, None, None
    for extra in rv[1:]:
        if isinstance(extra, bool):
            raise TypeError("a bool is not a valid status, content type or headers value")
        if isinstance(extra, int):
            status = _status(extra)
        elif isinstance(extra, str) and extra.isdigit():
            status = _status(int(extra))  # ``return body, "201"``: a status, not a content type
        elif isinstance(extra, str):
            content_type = extra
        elif isinstance(extra, (Mapping, list)):
            headers = extra
        else:
            raise TypeError(f"unexpected {type(extra).__name__} in a returned tuple")
    return body, status, content_type, headers


def _status(code: int) -> int:
    if not 100 <= code <= 599:
        raise TypeError(f"{code} is not an HTTP status (100-599)")
    return code


def _is_stream(body: Any) -> bool:
    """A generator or other lazy iterable (not a value that is sent whole)."""
    if isinstance(body, (str, bytes, bytearray, memoryview, dict, list, tuple)):
        return False
    return hasattr(body, "__aiter__") or hasattr(body, "__next__")


def _body_response(body: Any, kind: RouteKind, content_type: str | None) -> Response:
    sse_mode = ROUTE_KINDS[kind].sse_mode
    if sse_mode is not None:
        return EventStreamResponse(body, mode=sse_mode)
    if kind == "chunk":
        return StreamingResponse(body, media_type=content_type)
    if _is_stream(body):
        # A generator from any other decorator is streamed, never sent as its repr; from
        # @app.json its dicts become JSON lines.
        default = "application/x-ndjson" if kind == "json" else None
        return StreamingResponse(body, media_type=content_type or default)
    if kind == "file":
        if isinstance(body, (str, os.PathLike)):
            return FileResponse(body, media_type=content_type)
    if kind == "json":
        if body is None:
            return JSONResponse(None)
        if isinstance(body, (str, bytes)):
            return Response(body, media_type=content_type or "application/json")
        return JSONResponse(body, media_type=content_type)
    if isinstance(body, (dict, list)):
        return Response(_json.dumps(body), media_type=content_type or "application/json")
    if kind != "file" and _json.is_record(body):
        return Response(_json.dumps(body), media_type=content_type or "application/json")
    if body is None:
        return Response(b"", 204)
    if isinstance(body, (bytes, bytearray, memoryview)):
        default = "application/octet-stream" if kind in ("custom", "file") else "text/html"
        return Response(bytes(body), media_type=content_type or default)
    if kind in ("custom", "file") or (not isinstance(body, str) and not hasattr(body, "__iter__")):
        return PlainTextResponse(str(body), media_type=content_type)
    return HTMLResponse(body if isinstance(body, str) else str(body), media_type=content_type)


def make_response(rv: Any, kind: RouteKind = "route") -> Response:
    """Convert a handler's (or hook's, or error handler's) return value; see the module doc.

    Raises:
        TypeError: the value cannot be a response (becomes a 500 with a log line).
    """
    if isinstance(rv, Response):
        return rv
    if kind == "json" and type(rv) is dict:  # the common case, straight through
        return JSONResponse(rv)
    status = content_type = headers = None
    if isinstance(rv, tuple):
        rv, status, content_type, headers = _split_tuple(rv)
        if isinstance(rv, Response):
            response = rv
        else:
            response = _body_response(rv, kind, content_type)
    else:
        response = _body_response(rv, kind, None)
    if status is not None:
        response.status_code = status
    if content_type is not None and ROUTE_KINDS[kind].sse_mode is None:
        response.headers["content-type"] = content_type
    if headers is not None:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for key, value in pairs:
            response.headers[str(key)] = str(value)
    return response
