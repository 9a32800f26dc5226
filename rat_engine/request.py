"""``request_data``: the dict every handler receives, built from an ASGI scope.

It is a real ``dict`` (RAT Engine handlers do ``request_data.get('method')``,
``request_data['body']`` and ``dict(request_data.get('headers', {}))``) with helper methods for
what a dict cannot say: :meth:`RequestData.json`, :meth:`form`, :meth:`files`,
:meth:`is_disconnected`.

Keys: ``method``, ``path``, ``query_string``, ``query`` (RAT Engine's name for the same raw
string), ``query_params``, ``headers`` (case-insensitive), ``body`` (``str`` when the bytes are
valid UTF-8, else ``bytes``, as RAT Engine does), ``raw_body`` (always bytes), ``path_params``,
``remote_addr``, ``scheme``, ``http_version``, ``last_event_id`` (the ``Last-Event-ID`` header or
``lastEventId`` query parameter, else None) and, on streaming routes, ``disconnected`` (a
``threading.Event`` set when the client has gone; ``request_data['disconnected'].wait(1)`` is an
interruptible ``time.sleep(1)``).

On routes registered with ``stream_body=True`` the body is not read in advance (``body`` is
``None``): read it as it arrives with ``async for chunk in request_data.stream()``, ``for chunk in
request_data.iter_body()`` (plain handlers), or ``await request_data.save_files(directory,
on_progress)`` for multipart uploads written straight to disk.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from . import _json
from ._types import Receive, Scope
from .datastructures import Headers, QueryParams, UploadedFile, parse_query
from .exceptions import HTTPException
from .forms import FormData, MultipartReader, disk_file_in, multipart_boundary, parse_form
from .settings import Limits

__all__ = ["RequestData", "RequestLimits", "build_request_data", "may_have_body", "read_body"]


#: The limits a request is checked against (the former name of :class:`~rat_engine.settings.Limits`).
RequestLimits = Limits


class RequestData(dict[str, Any]):
    """The request as a dict, plus parsing helpers (see the module docstring for the keys)."""

    __slots__ = ("_form", "scope", "_receive", "_loop", "_body_limit")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._form: FormData | None = None
        self._receive: Any = None  # set on stream_body routes: the body is still unread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._body_limit: int | None = None

    def defer_body(self, receive: Receive, max_body_size: int | None) -> None:
        """Leave the body unread, for :meth:`stream` (used by the dispatcher)."""
        self._receive = receive
        self._loop = asyncio.get_running_loop()
        self._body_limit = max_body_size
        self["body"] = None

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk as it arrives (``stream_body=True`` routes; elsewhere the
        already-read body in one chunk).

        Raises:
            HTTPException: 413 past the route's ``max_body_size``; 400 if the client leaves.
            RuntimeError: the body was already consumed.
        """
        receive = self._receive
        if receive is None:
            if self.raw_body:
                yield self.raw_body
            return
        if receive is _CONSUMED:
            raise RuntimeError("the request body was already consumed")
        self._receive = _CONSUMED
        async for chunk in _receive_body(receive, self._body_limit):
            yield chunk

    def iter_body(self) -> Iterator[bytes]:
        """:meth:`stream` for plain handlers, which run on a worker thread."""
        loop = self._loop
        if loop is None:
            yield from ([self.raw_body] if self.raw_body else [])
            return
        chunks = self.stream()

        async def next_chunk() -> bytes:
            return await chunks.__anext__()

        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(next_chunk(), loop).result()
            except StopAsyncIteration:
                return

    async def save_files(
        self, directory: str, on_progress: Callable[[int, int], Any] | None = None
    ) -> FormData:
        """Stream a multipart body to disk: each file part is written to ``directory`` (under a
        random name; ``UploadedFile.path``) as its bytes arrive. ``on_progress(received, total)``
        (sync or async) is called after each chunk; ``total`` is the Content-Length or 0.

        Raises:
            HTTPException: 415 when the body is not multipart/form-data, 400 when malformed,
                413 when too large.
        """
        content_type = self["headers"].get("content-type", "")
        boundary = multipart_boundary(content_type)
        if boundary is None:
            raise HTTPException(415, "expected a multipart/form-data body")
        reader = MultipartReader(boundary, disk_file_in(directory))
        try:
            total = int(self["headers"].get("content-length") or 0)
        except ValueError:
            total = 0
        received = 0
        async for chunk in self.stream():
            reader.feed(chunk)
            received += len(chunk)
            if on_progress is not None:
                result = on_progress(received, total)
                if inspect.isawaitable(result):
                    await result
        self._form = reader.finish()
        return self._form

    # -- RAT Engine's attribute style (``request.method`` in its middleware and handlers) ------
    @property
    def method(self) -> str:
        return str(self["method"])

    @property
    def path(self) -> str:
        return str(self["path"])

    @property
    def headers(self) -> Headers:
        headers: Headers = self["headers"]
        return headers

    @property
    def query_params(self) -> QueryParams:
        params: QueryParams = self["query_params"]
        return params

    @property
    def body(self) -> Any:
        return self.get("body")

    @property
    def path_params(self) -> dict[str, Any]:
        params: dict[str, Any] = self.get("path_params", {})
        return params

    @property
    def remote_addr(self) -> str:
        return str(self.get("remote_addr", ""))

    def get_json(self) -> Any:
        """RAT Engine's name for :meth:`json`."""
        return self.json()

    @property
    def raw_body(self) -> bytes:
        raw = self.get("raw_body", b"")
        return raw if isinstance(raw, bytes) else b""

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            HTTPException: 400 when the body is not valid JSON (so a bad client gets a 4xx).
        """
        try:
            return _json.loads(self.raw_body)
        except ValueError as exc:
            raise HTTPException(400, f"request body is not valid JSON: {exc}") from exc

    def _parsed_form(self) -> FormData:
        if self._form is None:
            self._form = parse_form(self["headers"].get("content-type", ""), self.raw_body)
        return self._form

    def form(self) -> QueryParams:
        """Fields of a urlencoded or multipart form body (``getlist`` for repeated names)."""
        return self._parsed_form().fields

    def files(self) -> dict[str, UploadedFile]:
        """Uploaded files of a multipart body, by field name."""
        return self._parsed_form().files

    def close(self) -> None:
        """Release uploaded files (called once the response has been sent)."""
        if self._form is not None:
            self._form.close()

    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for part in self["headers"].get("cookie", "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep:
                jar[name] = value
        return jar

    def is_disconnected(self) -> bool:
        """True once the stream serving this request has ended (client gone, shutdown, timeout)."""
        event = self.get("disconnected")
        return isinstance(event, threading.Event) and event.is_set()


_CONSUMED = object()


async def _receive_body(receive: Receive, limit: int | None) -> AsyncIterator[bytes]:
    """ASGI ``http.request`` messages as body chunks, enforcing ``limit`` (413)."""
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPException(400, "client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            received += len(chunk)
            if limit is not None and received > limit:
                raise HTTPException(413, f"request body too large (limit {limit} bytes)")
            yield chunk
        if not message.get("more_body", False):
            return


def build_request_data(scope: Scope, limits: Limits) -> RequestData:
    """Everything but the body. Raises HTTPException 414/431 when a limit is exceeded."""
    raw_headers = scope["headers"]
    count = len(raw_headers)
    if count > limits.max_header_count:
        raise HTTPException(431, f"too many headers (limit {limits.max_header_count})")
    headers, size = Headers.from_asgi_counted(raw_headers)
    if size + 4 * count > limits.max_header_bytes:  # 4: ": " and CRLF per line
        raise HTTPException(431, f"request headers too large (limit {limits.max_header_bytes} bytes)")
    query_bytes: bytes = scope.get("query_string", b"")
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    if len(raw_path) + len(query_bytes) > limits.max_url_length:
        raise HTTPException(414, f"URL too long (limit {limits.max_url_length} bytes)")
    client = scope.get("client")
    data = RequestData(scope)
    # Header keys are already lower-case: plain dict lookups, no case folding on the hot path.
    if query_bytes:
        query_string = query_bytes.decode("latin-1")
        query_params = parse_query(query_string)
        last_event_id = dict.get(headers, "last-event-id") or query_params.get("lastEventId")
    else:
        query_string = ""
        query_params = QueryParams()
        last_event_id = dict.get(headers, "last-event-id")
    # PERF: keys set one by one (not dict.update with a literal: one dict fewer per request).
    data["method"] = scope["method"]
    data["path"] = scope["path"]
    data["query_string"] = data["query"] = query_string
    data["query_params"] = query_params
    data["headers"] = headers
    data["body"] = ""
    data["raw_body"] = b""
    data["path_params"] = {}
    data["remote_addr"] = client[0] if client else ""
    data["scheme"] = scope.get("scheme", "http")
    data["http_version"] = scope.get("http_version", "1.1")
    data["last_event_id"] = last_event_id
    return data


def may_have_body(data: RequestData) -> bool:
    """False for a GET or HEAD that declares no body: nothing to wait for (PERF: no
    ``receive()`` round trip, and no coroutine, on every GET)."""
    headers = data["headers"]
    return (
        data["method"] not in ("GET", "HEAD")
        or dict.__contains__(headers, "content-length")
        or dict.__contains__(headers, "transfer-encoding")
    )


async def read_body(data: RequestData, receive: Receive, max_body_size: int) -> None:
    """Read the whole body into ``data['raw_body']``/``data['body']``, enforcing the size limit."""
    if not may_have_body(data):
        return
    declared = dict.get(data["headers"], "content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise HTTPException(400, "invalid Content-Length") from None
        if length > max_body_size:
            raise HTTPException(413, f"request body too large (limit {max_body_size} bytes)")
    raw = b"".join([chunk async for chunk in _receive_body(receive, max_body_size)])
    data["raw_body"] = raw
    try:
        data["body"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        data["body"] = raw
