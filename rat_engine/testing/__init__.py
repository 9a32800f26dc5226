"""In-process test client for any ASGI 3 application, with incremental streaming and SSE parsing.

The app runs on an asyncio event loop in a daemon "portal" thread while the test thread blocks on
thread-safe queues, so a response can be consumed chunk by chunk while the app is still producing
it (an endless SSE stream included). Every blocking wait takes a timeout and raises TimeoutError.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as _json
import logging
import mimetypes
import queue
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import IO, Any, TypedDict, TypeVar, Unpack
from urllib.parse import quote, unquote, urlencode, urlsplit

from ..sse.parser import ServerSentEvent, SSEParser, parse_sse
from ._portal import _Connection, _get, _Portal
from ._response import HTTPStatusError, ResponseHeaders, SSEStream, TestResponse

__all__ = [
    "HTTPStatusError",
    "ResponseHeaders",
    "RequestOptions",
    "SSEParser",
    "SSEStream",
    "ServerSentEvent",
    "TestClient",
    "TestResponse",
    "parse_sse",
]

logger = logging.getLogger(__name__)

LIFESPAN_TIMEOUT = 10.0

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
FileContent = bytes | str | IO[bytes] | IO[str]
FileSpec = FileContent | tuple[str, FileContent] | tuple[str, FileContent, str]
_T = TypeVar("_T")
_Queue = queue.Queue[tuple[str, Any]]


class RequestOptions(TypedDict, total=False):
    """Keyword arguments accepted by every request method (see TestClient.request)."""

    params: Mapping[str, Any] | Sequence[tuple[str, Any]] | str | None
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None
    content: bytes | str | None
    data: Mapping[str, Any] | None
    json: Any
    files: Mapping[str, FileSpec] | Sequence[tuple[str, FileSpec]] | None
    cookies: Mapping[str, str] | None
    timeout: float


def _pairs(items: Mapping[str, _T] | Sequence[tuple[str, _T]]) -> list[tuple[str, _T]]:
    return list(items.items()) if isinstance(items, Mapping) else list(items)


def _multipart(
    data: Mapping[str, Any], files: Mapping[str, FileSpec] | Sequence[tuple[str, FileSpec]]
) -> tuple[bytes, str]:
    """Encode form fields and files as multipart/form-data with a random boundary."""
    boundary = secrets.token_hex(16)

    def esc(name: str) -> str:  # HTML's escaping of names in Content-Disposition
        return name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")

    out = bytearray()
    for name, value in data.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            payload = item if isinstance(item, bytes) else str(item).encode()
            out += f'--{boundary}\r\nContent-Disposition: form-data; name="{esc(name)}"\r\n\r\n'.encode()
            out += payload + b"\r\n"
    for name, spec in _pairs(files):
        filename, source, ctype = (
            (spec[0], spec[1], spec[2] if len(spec) > 2 else None)
            if isinstance(spec, tuple)
            else (name, spec, None)
        )
        raw = source if isinstance(source, bytes | str) else source.read()
        ctype = ctype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{esc(name)}"; filename="{esc(filename)}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        ).encode()
        out += (raw.encode() if isinstance(raw, str) else raw) + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _encode_body(options: RequestOptions) -> tuple[bytes | None, str | None]:
    """The request body and its default content-type, from content=, json=, data= and files=."""
    content, data, files, obj = (
        options.get("content"),
        options.get("data"),
        options.get("files"),
        options.get("json"),
    )
    if (content is not None) + (obj is not None) + (data is not None or files is not None) > 1:
        raise TypeError("pass only one of content=, json= or data=/files=")
    if content is not None:
        return (content.encode() if isinstance(content, str) else bytes(content)), None
    if obj is not None:
        return _json.dumps(obj, ensure_ascii=False).encode(), "application/json"
    if files:
        return _multipart(data or {}, files)
    if data is not None:
        return urlencode(list(data.items()), doseq=True).encode(), "application/x-www-form-urlencoded"
    return None, None


def _latin1_or_utf8(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


class TestClient:
    """Drive an ASGI 3 app in-process; use `with TestClient(app) as client:` to run its lifespan.

    Without `with`, requests work but lifespan never runs. close() (or leaving `with`) gives app
    tasks SHUTDOWN_GRACE seconds to finish, cancels the rest and stops the loop thread; the client
    may be used again afterwards (a new loop thread starts on demand).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        client: tuple[str, int] | None = ("127.0.0.1", 50000),
    ) -> None:
        self.app, self.base_url, self.client = app, base_url, client
        self.raise_server_exceptions = raise_server_exceptions
        self.lifespan_state: dict[str, Any] = {}  # copied into every request scope as "state"
        self._portal: _Portal | None = None
        self._finalizer: weakref.finalize[..., Any] | None = None
        self._lifespan: _Queue | None = None
        self._lifespan_inbox: asyncio.Queue[dict[str, Any]] | None = None

    def _ensure_portal(self) -> _Portal:
        if self._portal is None:
            self._portal = _Portal()
            self._finalizer = weakref.finalize(self, self._portal.stop)
        return self._portal

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run callback(*args) on the app's event loop thread, e.g. to set an asyncio.Event the app awaits."""
        self._ensure_portal().call_soon(callback, *args)

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._portal = self._finalizer = None

    # -- lifespan ---------------------------------------------------------------------------------
    def __enter__(self) -> TestClient:
        portal = self._ensure_portal()
        self.lifespan_state = {}
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.lifespan_state,
        }
        outbox: _Queue = queue.Queue()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def send(message: dict[str, Any]) -> None:
            outbox.put(("message", message))

        async def run() -> None:
            try:
                await self.app(scope, inbox.get, send)
            except Exception as exc:
                outbox.put(("error", exc))
            finally:
                outbox.put(("done", None))

        try:
            portal.spawn(run())
            self._lifespan_inbox = inbox
            if self._lifespan_phase("startup", outbox):
                self._lifespan = outbox
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._lifespan is not None:
                self._lifespan_phase("shutdown", self._lifespan)
        finally:
            self._lifespan = self._lifespan_inbox = None
            self.close()

    def _lifespan_phase(self, phase: str, outbox: _Queue) -> bool:
        """Send lifespan.<phase> and wait for the answer; False if the app does not do lifespan."""
        assert self._portal is not None and self._lifespan_inbox is not None
        self._portal.call_soon(self._lifespan_inbox.put_nowait, {"type": f"lifespan.{phase}"})
        deadline = time.monotonic() + LIFESPAN_TIMEOUT
        while True:
            kind, value = _get(outbox, deadline, f"lifespan.{phase}.complete")
            if kind == "message" and value.get("type") == f"lifespan.{phase}.complete":
                return True
            if kind == "message" and value.get("type") == f"lifespan.{phase}.failed":
                raise RuntimeError(f"lifespan {phase} failed: {value.get('message', '')}")
            if kind == "error" and phase == "shutdown" and self.raise_server_exceptions:
                raise value
            if kind == "error":  # during startup this means the app does not support lifespan
                logger.info("ASGI app raised during lifespan %s", phase, exc_info=value)
            if kind == "done":
                return False

    # -- requests ---------------------------------------------------------------------------------
    def _open(self, method: str, url: str, options: RequestOptions) -> TestResponse:
        """Start the app on a request and wait (bounded by the timeout) for http.response.start."""
        method = method.upper()
        target = (
            url
            if url.startswith(("http://", "https://"))
            else f"{self.base_url.rstrip('/')}/{url.lstrip('/')}"
        )
        split = urlsplit(target)
        raw_path = quote(split.path or "/", safe="/%:@!$&'()*+,;=~")
        query = quote(split.query, safe="=&;%+/?:@!$'()*,~")
        if params := options.get("params"):
            extra = params if isinstance(params, str) else urlencode(_pairs(params), doseq=True)
            query = f"{query}&{extra}" if query else extra
        body, content_type = _encode_body(options)
        host = split.hostname or "testserver"
        headers = [("host", split.netloc or host), ("user-agent", "testclient"), ("accept", "*/*")]
        if content_type:
            headers.append(("content-type", content_type))
        if body is not None or method in ("POST", "PUT", "PATCH"):
            headers.append(("content-length", str(len(body or b""))))
        user = [(k.lower(), v) for k, v in _pairs(options.get("headers") or {})]
        overridden = {name for name, _ in user}
        headers = [(k, v) for k, v in headers if k not in overridden] + user
        if cookies := options.get("cookies"):
            jar = "; ".join(f"{k}={v}" for k, v in cookies.items())
            old = [v for k, v in headers if k == "cookie"]
            headers = [(k, v) for k, v in headers if k != "cookie"] + [("cookie", "; ".join([*old, jar]))]
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": split.scheme or "http",
            "path": unquote(raw_path),
            "raw_path": raw_path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "root_path": "",
            "headers": [(k.encode("latin-1"), _latin1_or_utf8(v)) for k, v in headers],
            "client": self.client,
            "server": (host, split.port or (443 if split.scheme == "https" else 80)),
            "state": dict(self.lifespan_state),
        }
        portal = self._ensure_portal()
        conn = _Connection(portal, body or b"", is_head=method == "HEAD")
        portal.spawn(conn.run(self.app, scope))
        timeout = options.get("timeout", 10.0)
        try:
            kind, value = conn.get_event(time.monotonic() + timeout, f"the response to {method} {target}")
        except TimeoutError:
            conn.disconnect()
            raise
        if kind == "start":
            return TestResponse(
                value[0],
                ResponseHeaders(value[1]),
                url=target,
                method=method,
                connection=conn,
                timeout=timeout,
                raise_server_exceptions=self.raise_server_exceptions,
            )
        conn.disconnect()
        error = (
            value
            if kind == "error"
            else RuntimeError("ASGI app returned without sending http.response.start")
        )
        if self.raise_server_exceptions:
            raise error
        logger.error("ASGI app failed on %s %s", method, target, exc_info=error)
        return TestResponse(
            500,
            ResponseHeaders([("content-type", "text/plain; charset=utf-8")]),
            url=target,
            method=method,
            body=b"Internal Server Error",
        )

    def request(self, method: str, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        """Send a request and collect the whole response.

        Keywords: params, headers, content (bytes/str), data (form dict; with files: multipart),
        json, files ({name: (filename, bytes|str|file[, content_type])}), cookies, timeout (default
        10 s, bounding the whole exchange, including the app returning after its last body message).
        """
        timeout = options.get("timeout", 10.0)
        deadline = time.monotonic() + timeout
        response = self._open(method, url, options)
        try:
            response.read(max(0.0, deadline - time.monotonic()))
            response._wait_app(deadline)
        finally:
            response.close()
        return response

    @contextlib.contextmanager
    def stream(self, method: str, url: str, **options: Unpack[RequestOptions]) -> Iterator[TestResponse]:
        """Yield the response as soon as http.response.start arrived; leaving the block disconnects."""
        response = self._open(method, url, options)
        try:
            yield response
        finally:
            response.close()

    @contextlib.contextmanager
    def sse(
        self,
        path: str,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        last_event_id: str | None = None,
        timeout: float = 10.0,
    ) -> Iterator[SSEStream]:
        """GET `path` with Accept: text/event-stream (and Last-Event-ID) and parse events as they arrive."""
        merged = {"accept": "text/event-stream"}
        if last_event_id is not None:
            merged["last-event-id"] = last_event_id
        merged.update((k.lower(), v) for k, v in _pairs(headers or {}))
        with self.stream("GET", path, headers=merged, timeout=timeout) as response:
            yield SSEStream(response, timeout)

    def get(self, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        return self.request("GET", url, **options)

    def head(self, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        return self.request("HEAD", url, **options)

    def options(self, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        return self.request("OPTIONS", url, **options)

    def delete(self, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        return self.request("DELETE", url, **options)

    def post(self, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        return self.request("PATCH", url, **options)
