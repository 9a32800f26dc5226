"""In-process test client for any ASGI 3 application, with incremental streaming and SSE parsing.

The app runs on an asyncio event loop in a daemon "portal" thread while the test thread blocks on
thread-safe queues, so a response can be consumed chunk by chunk while the app is still producing
it (an endless SSE stream included). Every blocking wait takes a timeout and raises TimeoutError.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json as _json
import logging
import mimetypes
import queue
import re
import secrets
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO, Any, TypedDict, TypeVar, Unpack, overload
from urllib.parse import quote, unquote, urlencode, urlsplit

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

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
FileContent = bytes | str | IO[bytes] | IO[str]
FileSpec = FileContent | tuple[str, FileContent] | tuple[str, FileContent, str]
_T = TypeVar("_T")
_Queue = queue.Queue[tuple[str, Any]]

_EOL = re.compile(r"\r\n|\r|\n")
SHUTDOWN_GRACE = 2.0  # seconds close() lets leftover app tasks finish before cancelling them
LIFESPAN_TIMEOUT = 10.0


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


class HTTPStatusError(Exception):
    """Raised by TestResponse.raise_for_status() for 4xx/5xx; the response is on `.response`."""

    def __init__(self, message: str, response: TestResponse) -> None:
        super().__init__(message)
        self.response = response


def _get(q: _Queue, deadline: float, what: str) -> tuple[str, Any]:
    """Block on a portal queue until `deadline` (time.monotonic()), raising TimeoutError instead of hanging."""
    try:
        return q.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        raise TimeoutError(f"timed out waiting for {what}") from None


class _Portal:
    """An event loop running forever in a daemon thread; the test thread hands it coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="rat-engine-testclient", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
            finally:
                self.loop.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:
            coro.close()
            raise RuntimeError("the TestClient event loop is not running") from None

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed: nothing left to notify
            self.loop.call_soon_threadsafe(callback, *args)

    def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Let app tasks finish for `grace` seconds, cancel the rest, then stop and close the loop."""
        if threading.current_thread() is self._thread:
            self.loop.stop()
            return
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._drain(grace), self.loop).result(grace * 2 + 5)
        except Exception:
            logger.warning("TestClient: could not drain app tasks", exc_info=True)
        self.call_soon(self.loop.stop)
        self._thread.join(grace + 5)

    async def _drain(self, grace: float) -> None:
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=grace)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # mark as retrieved; failures were already reported or logged


class _Connection:
    """One HTTP exchange: ASGI receive/send run in the loop, the test thread reads `events`.

    Events are ("start", (status, headers)), ("body", bytes), ("end", None) when the response is
    complete, ("error", exc) when the app raised, and ("done", None) when the app returned.
    """

    def __init__(self, portal: _Portal, body: bytes, is_head: bool) -> None:
        self.portal, self.body, self.is_head = portal, body, is_head
        self.events: _Queue = queue.Queue()
        self.disconnected = asyncio.Event()  # set in the loop thread only
        self.client_gone = False
        self.request_sent = self.started = self.complete = False

    async def run(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception as exc:
            if self.client_gone:
                logger.debug("ASGI app raised after the client disconnected", exc_info=exc)
            self.events.put(("error", exc))
        finally:
            self.events.put(("done", None))

    async def receive(self) -> dict[str, Any]:
        if not self.request_sent:
            self.request_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("'http.response.start' sent twice")
            self.started = True
            headers = [
                (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                for k, v in message.get("headers", [])
            ]
            self.events.put(("start", (int(message["status"]), headers)))
        elif kind == "http.response.body":
            if not self.started or self.complete:
                raise RuntimeError(
                    f"'http.response.body' sent {'after' if self.complete else 'before'} the response"
                )
            body = bytes(message.get("body", b""))
            if (
                body and not self.is_head and not self.client_gone
            ):  # like servers: drop sends after disconnect
                self.events.put(("body", body))
            if not message.get("more_body", False):
                self.complete = True
                self.disconnected.set()
                self.events.put(("end", None))
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r}")

    def get_event(self, deadline: float, what: str) -> tuple[str, Any]:
        return _get(self.events, deadline, what)

    def disconnect(self) -> None:
        """Called from the test thread: the app's pending receive() returns http.disconnect."""
        if not self.client_gone:
            self.client_gone = True
            self.portal.call_soon(self.disconnected.set)


class ResponseHeaders(dict[str, str]):
    """Case-insensitive response headers: keys are lower-case, repeated names are joined with ", "."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self.raw: list[tuple[str, str]] = []
        for name, value in items:
            key = name.lower()
            self.raw.append((key, value))
            super().__setitem__(
                key, f"{super().__getitem__(key)}, {value}" if super().__contains__(key) else value
            )

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    @overload
    def get(self, key: str, default: None = None, /) -> str | None: ...
    @overload
    def get(self, key: str, default: str, /) -> str: ...
    @overload
    def get(self, key: str, default: _T, /) -> str | _T: ...
    def get(self, key: str, default: object = None, /) -> object:
        return super().get(key.lower(), default)

    def get_list(self, name: str) -> list[str]:
        """Every value of a possibly repeated header (e.g. set-cookie), in order."""
        return [value for key, value in self.raw if key == name.lower()]


class _LineSplitter:
    """Incrementally splits text on CRLF, CR or LF; a LF right after a chunk-final CR is skipped."""

    def __init__(self) -> None:
        self._buffer, self._after_cr = "", False

    def feed(self, text: str) -> list[str]:
        if self._after_cr and text:
            text, self._after_cr = text.removeprefix("\n"), False
        buffer, start, lines = self._buffer + text, 0, []
        for match in _EOL.finditer(buffer):
            lines.append(buffer[start : match.start()])
            start = match.end()
            self._after_cr = match.group() == "\r" and start == len(buffer)
        self._buffer = buffer[start:]
        return lines

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return [rest] if rest else []


class TestResponse:
    """A response; `content`/`text`/`json()` read the whole body, iter_bytes()/iter_lines() stream it."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        status_code: int,
        headers: ResponseHeaders,
        *,
        url: str = "",
        method: str = "GET",
        body: bytes = b"",
        connection: _Connection | None = None,
        timeout: float = 10.0,
        raise_server_exceptions: bool = True,
    ) -> None:
        self.status_code, self.headers, self.url, self.method = status_code, headers, url, method
        self._body, self._yielded = bytearray(body), 0
        self._conn, self._timeout, self._raise = connection, timeout, raise_server_exceptions
        self._complete = self._app_done = connection is None

    def __repr__(self) -> str:
        return f"<TestResponse [{self.status_code}] {self.method} {self.url}>"

    @property
    def reason_phrase(self) -> str:
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def encoding(self) -> str:
        """Charset from the content-type header (normalised codec name), else utf-8."""
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                with contextlib.suppress(LookupError):
                    return codecs.lookup(value.strip().strip('"')).name
        return "utf-8"

    @property
    def is_complete(self) -> bool:
        """True once the app sent its last body message (or the stream ended otherwise)."""
        return self._complete

    @property
    def content(self) -> bytes:
        return bytes(self._body) if self._complete else self.read()

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding, errors="replace")

    def json(self) -> Any:
        return _json.loads(self.text)

    def raise_for_status(self) -> TestResponse:
        if self.status_code >= 400:
            raise HTTPStatusError(
                f"{self.status_code} {self.reason_phrase} for {self.method} {self.url}", self
            )
        return self

    def _pull(self, deadline: float) -> bytes | None:
        """Wait for the next body chunk from the app; None once the body is complete."""
        while not self._complete and self._conn is not None:
            kind, value = self._conn.get_event(deadline, f"response body of {self.method} {self.url}")
            if kind == "body":
                self._body += value
                return bytes(value)
            self._complete = True
            self._app_done = kind == "done"
            if kind == "error":
                if self._raise:
                    raise value
                logger.error("ASGI app raised while streaming %s %s", self.method, self.url, exc_info=value)
        return None

    def _next_chunk(self, deadline: float) -> bytes | None:
        """Bytes received but not yet handed out by iteration, waiting for more if there are none."""
        if self._yielded == len(self._body) and self._pull(deadline) is None:
            return None
        chunk, self._yielded = bytes(self._body[self._yielded :]), len(self._body)
        return chunk

    def _wait_app(self, deadline: float) -> None:
        """Wait until the app coroutine returned (so work after the last body message has run)."""
        while self._conn is not None and not self._app_done:
            kind, value = self._conn.get_event(deadline, f"the app to return from {self.method} {self.url}")
            self._app_done = kind == "done"
            if kind == "error" and self._raise:
                raise value

    def iter_bytes(self, timeout: float | None = None) -> Iterator[bytes]:
        """Yield body chunks as the app sends them; each wait is bounded by `timeout` (default: the request's)."""
        wait = self._timeout if timeout is None else timeout
        while (chunk := self._next_chunk(time.monotonic() + wait)) is not None:
            yield chunk

    def iter_lines(self, timeout: float | None = None) -> Iterator[str]:
        """Yield decoded lines without their CRLF/CR/LF terminators (blank lines included)."""
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        splitter = _LineSplitter()
        for chunk in self.iter_bytes(timeout):
            yield from splitter.feed(decoder.decode(chunk))
        yield from splitter.feed(decoder.decode(b"", final=True))
        yield from splitter.flush()

    def read(self, timeout: float | None = None) -> bytes:
        """Read the rest of the body (the whole `timeout` bounds the read) and return all of it."""
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        while self._pull(deadline) is not None:
            pass
        return bytes(self._body)

    def close(self) -> None:
        """Disconnect: the app's pending receive() returns http.disconnect, later sends are dropped."""
        if self._conn is not None:
            self._conn.disconnect()


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched SSE event. `id` is the stream's last event ID at dispatch time, as a browser's
    MessageEvent.lastEventId (it persists across events), or None while no id field was ever seen;
    `retry` is the valid retry value given inside this event's block, if any."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        return _json.loads(self.data)


class SSEParser:
    """Incremental text/event-stream parser following the WHATWG HTML algorithm.

    Feed decoded text in arbitrary pieces; complete events are returned as they are dispatched.
    An event not terminated by a blank line before the stream ends is never dispatched.
    """

    def __init__(self) -> None:
        self.last_event_id = ""  # the spec's "last event ID string"
        self.retry: int | None = None  # latest valid reconnection time in ms
        self.comments: list[str] = []  # comment lines without the leading ":"
        self._lines = _LineSplitter()
        self._bom_checked = self._id_seen = False
        self._data = self._event = ""
        self._event_retry: int | None = None

    def feed(self, text: str) -> list[ServerSentEvent]:
        if not self._bom_checked and text:
            self._bom_checked = True
            text = text.removeprefix("\ufeff")
        events = []
        for line in self._lines.feed(text):
            if (event := self._process(line)) is not None:
                events.append(event)
        return events

    def _process(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:])
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data += value + "\n"
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id, self._id_seen = value, True
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = self._event_retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event, retry = self._data, self._event, self._event_retry
        self._data = self._event = ""
        self._event_retry = None
        if not data:
            return None
        last_id = self.last_event_id if self._id_seen else None
        return ServerSentEvent(event or "message", data.removesuffix("\n"), last_id, retry)


def parse_sse(text: str) -> list[ServerSentEvent]:
    """Parse a complete event-stream text with a fresh SSEParser."""
    return SSEParser().feed(text)


class SSEStream:
    """Events of a streaming response, parsed as they arrive (see TestClient.sse)."""

    def __init__(self, response: TestResponse, timeout: float = 10.0) -> None:
        self.response, self.timeout, self.parser = response, timeout, SSEParser()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: deque[ServerSentEvent] = deque()
        self._ended = False

    @property
    def comments(self) -> list[str]:
        return self.parser.comments

    @property
    def last_event_id(self) -> str:
        return self.parser.last_event_id

    def next_event(self, timeout: float | None = None) -> ServerSentEvent:
        """The next event; TimeoutError if none within `timeout`, EOFError once the stream ended."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._pending:
            if self._ended:
                raise EOFError("the event stream ended")
            chunk = self.response._next_chunk(deadline)
            self._ended = chunk is None
            text = self._decoder.decode(chunk or b"", final=chunk is None)
            self._pending.extend(self.parser.feed(text))
        return self._pending.popleft()

    def __iter__(self) -> Iterator[ServerSentEvent]:
        while True:
            try:
                yield self.next_event()
            except EOFError:
                return


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
