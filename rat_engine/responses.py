"""Response objects. Each is an ASGI app: ``await response(scope, receive, send)``.

Header names and values are sanitised when rendered: control characters in a value (from user
data such as a redirect target or a filename) become spaces, and a name keeps only token
characters, so nothing can split the response, inject headers, or make the server drop it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from . import _json
from ._types import HeadersLike, Receive, Scope, Send
from .datastructures import Headers

__all__ = [
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "redirect",
]

# What the HTTP grammar (RFC 9110) forbids, and what uvicorn would refuse mid-response:
# control characters in values (tab allowed), anything but token characters in names.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_BAD_NAME = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _clean(value: str) -> bytes:
    if _BAD_VALUE.search(value):
        value = _BAD_VALUE.sub(" ", value)
    return value.encode("latin-1", errors="replace")


#: Rendered Content-Type values by media type: an app has a handful, constants in its code.
_CONTENT_TYPES: dict[str, bytes] = {}


def _content_type(media_type: str) -> bytes:
    """``media_type`` as a Content-Type value (``charset=utf-8`` added for ``text/*``)."""
    value = _CONTENT_TYPES.get(media_type)
    if value is None:
        text = media_type
        if text.startswith("text/") and "charset" not in text:
            text += "; charset=utf-8"
        value = _clean(text)
        if len(_CONTENT_TYPES) < 256:  # bounded: a media type may also come from data
            _CONTENT_TYPES[media_type] = value
    return value


def _clean_name(name: str) -> bytes:
    if _BAD_NAME.search(name):
        name = _BAD_NAME.sub("-", name).strip("-") or "x-invalid"
    return name.encode("ascii")


class Response:
    """A complete (non-streaming) response.

    Args:
        body: ``bytes`` are sent as is; ``str`` is UTF-8 encoded; ``None`` is an empty body.
        status: HTTP status code.
        headers: Extra headers (a mapping, or pairs for repeated names like Set-Cookie).
        media_type: The ``Content-Type``; a ``charset=utf-8`` is added for ``text/*``.
    """

    media_type: str | None = None
    #: Set once the response went out (for the access log).
    bytes_sent: int = 0

    def __init__(
        self,
        body: bytes | str | None = b"",
        status: int = 200,
        headers: HeadersLike = None,
        media_type: str | None = None,
    ) -> None:
        self.status_code = status
        self.headers = Headers(headers)
        if media_type is not None:
            self.media_type = media_type
        if body is None:
            self.body = b""
        elif isinstance(body, str):
            self.body = body.encode("utf-8")
        else:
            self.body = bytes(body)

    @property
    def content_type(self) -> str | None:
        explicit = dict.get(self.headers, "content-type")
        if explicit is not None:
            return str(explicit)
        media_type = self.media_type
        if media_type is not None and media_type.startswith("text/") and "charset" not in media_type:
            return media_type + "; charset=utf-8"
        return media_type

    # -- RAT Engine's response methods (HttpResponse is this class; see rat_engine.compat) ----
    def set_header(self, name: str, value: str) -> Response:
        """Set (replace) a header; returns the response, so calls chain."""
        self.headers[name] = str(value)
        return self

    def get_header(self, name: str, default: str | None = None) -> str | None:
        value = self.headers.get(name)
        return default if value is None else str(value)

    def set_status(self, status: int) -> Response:
        self.status_code = status
        return self

    def set_cors(
        self,
        origin: str = "*",
        methods: str = "GET, POST, PUT, DELETE, OPTIONS",
        headers: str = "Content-Type, Authorization",
        credentials: bool = False,
    ) -> Response:
        """CORS headers on this one response (``app.enable_cors()`` does it for every route)."""
        self.headers["access-control-allow-origin"] = origin
        self.headers["access-control-allow-methods"] = methods
        self.headers["access-control-allow-headers"] = headers
        if credentials:
            self.headers["access-control-allow-credentials"] = "true"
        if origin != "*":
            self.headers["vary"] = "Origin"
        return self

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        path: str = "/",
        secure: bool = False,
        httponly: bool = True,
        samesite: str | None = "lax",
    ) -> None:
        parts = [f"{key}={quote(value, safe='')}", f"Path={path}"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if secure:
            parts.append("Secure")
        if httponly:
            parts.append("HttpOnly")
        if samesite:
            parts.append(f"SameSite={samesite.capitalize()}")
        self.headers.add("set-cookie", "; ".join(parts))

    def render_headers(self, content_length: int | None) -> list[tuple[bytes, bytes]]:
        headers = self.headers
        raw: list[tuple[bytes, bytes]] = []
        if not dict.__contains__(headers, "content-type"):
            media_type = self.media_type
            if media_type is not None:
                raw.append((b"content-type", _content_type(media_type)))
        if content_length is not None and not dict.__contains__(headers, "content-length"):
            raw.append((b"content-length", b"%d" % content_length))
        if headers:
            for key, value in headers.raw_items():
                raw.append((_clean_name(key), _clean(value)))
        return raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body
        status = self.status_code
        no_body = status in (204, 304) or status < 200
        headers = self.render_headers(None if no_body else len(body))
        if no_body or scope.get("method") == "HEAD":
            body = b""
        wire: Any = scope.get("rat.exchange")  # a StreamWire (not imported: a lower layer)
        if getattr(send, "__self__", None) is wire and wire is not None:
            # PERF: rat_engine's own server, and nothing wraps its send(): written through the
            # wire (no message dicts; headers rendered here are not checked a second time).
            await wire.start(status, headers)
            await wire.end(body)
        else:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        self.bytes_sent = len(body)


class HTMLResponse(Response):
    media_type = "text/html"


class PlainTextResponse(Response):
    media_type = "text/plain"


class JSONResponse(Response):
    """``content`` is JSON-encoded (orjson: UTF-8, non-ASCII kept, dataclasses and datetimes)."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status: int = 200,
        headers: HeadersLike = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(_json.dumps(content), status, headers, media_type)


class RedirectResponse(Response):
    def __init__(self, url: str, status: int = 302, headers: HeadersLike = None) -> None:
        super().__init__(b"", status, headers)
        # Keep the URL readable but never let it carry raw spaces or control characters.
        self.headers["location"] = quote(url, safe=":/%#?=@[]!$&'()*+,;~")


def redirect(url: str, status: int = 302) -> RedirectResponse:
    """Return this from a handler to redirect (302 by default; 301, 303, 307, 308 also fine)."""
    return RedirectResponse(url, status)
