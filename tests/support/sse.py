"""SSE clients for tests that talk to a real server; every read is bounded by a timeout.

* :class:`HttpSSE` -- one stream read with httpx.
* :class:`RawSSE` -- a blocking plain-socket client: cheap enough for a thousand at once, and able
  to be a slow reader (small ``rcvbuf``, reads nothing until asked).
* :class:`AsyncSSE` -- an asyncio plain-socket client (reliability load tests).
* :func:`sse_data` -- the ``data`` payloads of an open httpx stream; :func:`parse_sse_body` -- the
  events of a complete body.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import socket
import struct
import time
import weakref
import zlib
from collections import deque
from collections.abc import Iterator
from typing import Any

import httpx

from rat_engine.sse.parser import ServerSentEvent, SSEParser

from . import HOST
from .broadcast import id_key
from .http import STATUS_LINE

# -- blocking clients (httpx and raw socket) -----------------------------------------------------


class _SSEBase:
    """Parse events as they arrive; every read is bounded by a deadline."""

    def __init__(self) -> None:
        self.parser = SSEParser()
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending: deque[ServerSentEvent] = deque()
        self.raw = bytearray()  # the body as received (SSE frames)
        self.received: list[ServerSentEvent] = []
        self.ended = False

    def _more(self, deadline: float) -> bytes | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def next_event(self, timeout: float = 10.0) -> ServerSentEvent:
        """The next event; TimeoutError if none in ``timeout`` s, EOFError once the stream ended."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            if self.ended:
                raise EOFError("the event stream ended")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no event within {timeout}s")
            chunk = self._more(deadline)
            if chunk is None:
                self.ended = True
                chunk = b""
            self.raw += chunk
            self._pending.extend(self.parser.feed(self._decoder.decode(chunk, final=self.ended)))
        event = self._pending.popleft()
        self.received.append(event)
        return event

    def take(self, count: int, timeout: float = 10.0) -> list[ServerSentEvent]:
        deadline = time.monotonic() + timeout
        out = []
        for _ in range(count):
            out.append(self.next_event(max(0.01, deadline - time.monotonic())))
        return out

    def until_id(self, last_id: str, timeout: float = 10.0) -> list[ServerSentEvent]:
        """Events up to and including the one with id ``last_id``."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            event = self.next_event(max(0.01, deadline - time.monotonic()))
            out.append(event)
            if event.id == last_id:
                return out
            if event.id is not None and event.event != "resync" and id_key(event.id) > id_key(last_id):
                raise AssertionError(f"went past {last_id}: got {event.id}")

    def rest(self, timeout: float = 10.0) -> list[ServerSentEvent]:
        """Every event until the server ends the stream."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            try:
                out.append(self.next_event(max(0.01, deadline - time.monotonic())))
            except EOFError:
                return out

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class HttpSSE(_SSEBase):
    """An SSE stream read with httpx (one client and connection per stream)."""

    def __init__(self, url: str, last_event_id: str | None = None, read_timeout: float = 5.0) -> None:
        super().__init__()
        self.client = httpx.Client(timeout=httpx.Timeout(10.0, read=read_timeout))
        headers = {"accept": "text/event-stream"}
        if last_event_id is not None:
            headers["last-event-id"] = last_event_id
        self._cm = self.client.stream("GET", url, headers=headers)
        try:
            self.response = self._cm.__enter__()
        except BaseException:
            self.client.close()
            raise
        self.status_code = self.response.status_code
        self._chunks = self.response.iter_bytes()

    def _more(self, deadline: float) -> bytes | None:
        try:
            return next(self._chunks, None)
        except httpx.ReadTimeout as exc:
            raise TimeoutError("no data within the read timeout") from exc
        except (httpx.RemoteProtocolError, httpx.ReadError):
            return None  # the server dropped the connection: the stream ended

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._cm.__exit__(None, None, None)
        self.client.close()


class RawSSE(_SSEBase):
    """A minimal HTTP/1.1 SSE client on a plain socket: cheap enough for a thousand at once,
    and able to be a slow reader (small ``rcvbuf``, reads nothing until asked)."""

    def __init__(
        self,
        port: int,
        path: str,
        last_event_id: str | None = None,
        rcvbuf: int | None = None,
        host: str = "127.0.0.1",
        accept_encoding: str | None = None,
    ) -> None:
        super().__init__()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        try:
            self.sock.connect((host, port))
            extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
            if accept_encoding is not None:
                extra += f"Accept-Encoding: {accept_encoding}\r\n"
            self.sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n{extra}\r\n".encode()
            )
        except BaseException:
            self.sock.close()
            raise
        self.status_code: int | None = None
        self.headers: dict[str, str] = {}
        self._wire = b""
        self._chunked = False
        self._eof = False
        #: Decodes the body's Content-Encoding as bytes arrive (identity: None).
        self._decompress: Any = None

    def _recv(self, deadline: float) -> bool:
        """Read more bytes from the socket; False when the peer closed it."""
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except TimeoutError as exc:
            raise TimeoutError("no data from the server in time") from exc
        except ConnectionResetError:
            data = b""
        if not data:
            self._eof = True
            return False
        self._wire += data
        return True

    def read_headers(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while self.status_code is None:
            head, sep, rest = self._wire.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                self.status_code = int(lines[0].split()[1])
                self.headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:])
                }
                self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
                encoding = self.headers.get("content-encoding")
                if encoding:
                    self._decompress = incremental_decoder(encoding)
                self._wire = rest
                break
            if not self._recv(deadline):
                raise EOFError(f"connection closed before the response headers: {self._wire!r}")
        return self.status_code

    def _decode(self) -> bytes:
        if not self._chunked:
            out, self._wire = self._wire, b""
            return out
        out = bytearray()
        while True:
            line_end = self._wire.find(b"\r\n")
            if line_end < 0:
                break
            size = int(self._wire[:line_end].split(b";")[0], 16)
            if size == 0:
                self._eof = True
                self._wire = b""
                break
            if len(self._wire) < line_end + 2 + size + 2:
                break
            out += self._wire[line_end + 2 : line_end + 2 + size]
            self._wire = self._wire[line_end + 2 + size + 2 :]
        return bytes(out)

    def _more(self, deadline: float) -> bytes | None:
        if self.status_code is None:
            self.read_headers(max(0.01, deadline - time.monotonic()))
        while True:
            body = self._decode()
            if body and self._decompress is not None:
                body = self._decompress(body)
            if body:
                return body
            if self._eof:
                return None
            self._recv(deadline)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def incremental_decoder(encoding: str) -> Any:
    """A function: compressed bytes in, what they decode to out (gzip, deflate, br, zstd)."""
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    if encoding == "deflate":
        return zlib.decompressobj().decompress
    if encoding == "br":
        import brotli

        return brotli.Decompressor().process
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress
    raise ValueError(f"unknown content coding {encoding!r}")


# -- asyncio raw client ------------------------------------------------------------------------------


class _Chunked:
    """Incremental chunked-transfer decoder."""

    def __init__(self) -> None:
        self.raw = bytearray()
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self.raw += data
        out = bytearray()
        while not self.done:
            eol = self.raw.find(b"\r\n")
            if eol < 0:
                break
            size = int(bytes(self.raw[:eol]).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                self.done = True
                break
            if len(self.raw) < eol + 2 + size + 2:
                break
            out += self.raw[eol + 2 : eol + 2 + size]
            del self.raw[: eol + 2 + size + 2]
        return bytes(out)


def request_bytes(path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: text/event-stream"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class AsyncSSE:
    """One SSE stream over a raw asyncio connection.

    ``await AsyncSSE.open(port, path)`` connects and sends the request; ``await s.head()`` reads
    the status; ``await s.next_event(timeout)`` returns the next parsed event (None at the end);
    ``await s.close(rst=True)`` drops the connection with an RST (SO_LINGER 0).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status: int | None = None
        self.raw_head = b""
        self.events: list[ServerSentEvent] = []
        self.parser = SSEParser()
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._chunked: _Chunked | None = None
        self.ended = False
        self.bytes = 0

    @classmethod
    async def open(
        cls,
        port: int,
        path: str,
        headers: dict[str, str] | None = None,
        rcvbuf: int | None = None,
        timeout: float = 10.0,
        read: bool = True,
    ) -> AsyncSSE:
        """Connect and send the request. ``read=False`` makes a client that reads nothing at all
        (asyncio would otherwise buffer up to 2 x ``limit`` bytes behind the test's back);
        :meth:`resume` undoes it. ``rcvbuf`` shrinks the socket's receive buffer."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (HOST, port)), timeout)
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        except BaseException:
            sock.close()
            raise
        client = cls(reader, writer)
        if not read:
            writer.transport.pause_reading()
        writer.write(request_bytes(path, headers))
        return client

    def resume(self) -> None:
        self.writer.transport.resume_reading()

    async def head(self, timeout: float = 10.0) -> int | None:
        if self.status is None:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
            self.raw_head = head
            m = STATUS_LINE.match(head)
            self.status = int(m.group(1)) if m else None
            if b"transfer-encoding: chunked" in head.lower():
                self._chunked = _Chunked()
        return self.status

    async def _fill(self) -> bool:
        data = await self.reader.read(65536)
        if not data:
            self.ended = True
            return False
        self.bytes += len(data)
        if self._chunked is not None:
            data = self._chunked.feed(data)
            if self._chunked.done:
                self.ended = True
        self.events.extend(self.parser.feed(self._decoder.decode(data)))
        return True

    async def next_event(self, timeout: float = 10.0) -> ServerSentEvent | None:
        await self.head(timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.events:
            if self.ended:
                return None
            await asyncio.wait_for(self._fill(), max(0.001, deadline - loop.time()))
        return self.events.pop(0)

    async def read_to_end(self, timeout: float) -> list[ServerSentEvent]:
        """Every remaining event until the stream ends (or ``timeout``: TimeoutError)."""
        await self.head(timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.ended:
            await asyncio.wait_for(self._fill(), max(0.001, deadline - loop.time()))
        events, self.events = self.events, []
        return events

    async def close(self, rst: bool = False) -> None:
        if rst:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
            return
        self.writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


def parse_sse_body(body: bytes) -> list[ServerSentEvent]:
    """Events of a complete (already de-chunked) event-stream body."""
    return SSEParser().feed(body.decode("utf-8"))


# -- httpx: data payloads of an open stream ---------------------------------------------------------


#: One reader per response, keyed by the response itself (an ``id()`` may be reused by a later one).
_readers: weakref.WeakKeyDictionary[httpx.Response, tuple[Iterator[str], list[str]]] = (
    weakref.WeakKeyDictionary()
)


def sse_data(response: httpx.Response, count: int) -> list[str]:
    """Read up to ``count`` data payloads from an open stream (call again for more)."""
    # Keep one iterator (and leftover text) per response: abandoning an httpx iterator
    # closes the connection.
    iterator, leftover = _readers.setdefault(response, (response.iter_text(), [""]))
    out: list[str] = []
    while True:
        while "\n\n" in leftover[0]:
            frame, leftover[0] = leftover[0].split("\n\n", 1)
            data = [line[6:] for line in frame.split("\n") if line.startswith("data: ")]
            if data:
                out.append("\n".join(data))
            if len(out) == count:
                return out
        chunk = next(iterator, None)
        if chunk is None:
            return out
        leftover[0] += chunk
