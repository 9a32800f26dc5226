"""What a TestClient request returns: headers, (streaming) responses and SSE streams."""

from __future__ import annotations

import codecs
import contextlib
import json as _json
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import Any, TypeVar, overload

from ..sse.parser import LineSplitter, ServerSentEvent, SSEParser
from ._portal import _Connection

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class HTTPStatusError(Exception):
    """Raised by TestResponse.raise_for_status() for 4xx/5xx; the response is on `.response`."""

    def __init__(self, message: str, response: TestResponse) -> None:
        super().__init__(message)
        self.response = response


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
        splitter = LineSplitter()
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
