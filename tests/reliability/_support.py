"""Shared helpers of the reliability suite: profiles, figure reporting, /proc readings and raw
clients (blocking and asyncio) that speak just enough HTTP/1.1 and SSE.

Profiles: the default (CI) profile keeps the whole directory under ~90 s on a 2-core machine;
``RAT_RELIABILITY_LONG=1`` (or ``--long`` when ``tests/reliability`` is on the command line)
selects the long one. Every load loop is bounded in time AND in count.

Figures: :func:`report` prints one line per test and appends a JSON line to
``bench/results/reliability-last.jsonl`` (git-ignored), truncated at the start of each run.
Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
import re
import resource
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rat_engine.sse.parser import ServerSentEvent, SSEParser

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_FILE = REPO_ROOT / "bench" / "results" / "reliability-last.jsonl"
APP_SCRIPT = Path(__file__).resolve().parent / "_server_app.py"

#: Figure lines of this run, shown again in pytest's terminal summary (visible without -s).
SUMMARY_LINES: list[str] = []


def is_long() -> bool:
    return os.environ.get("RAT_RELIABILITY_LONG", "") == "1"


def profile() -> str:
    return "long" if is_long() else "ci"


def pick(ci: Any, long: Any) -> Any:
    """The CI value, or the long-profile value under ``RAT_RELIABILITY_LONG=1``."""
    return long if is_long() else ci


def report(test: str, summary: str, **figures: Any) -> None:
    """Print a one-line summary and record the figures as one JSON line."""
    line = f"[reliability {profile()}] {test}: {summary}"
    print("\n" + line, flush=True)
    SUMMARY_LINES.append(line)
    record = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "profile": profile(),
        "test": test,
        "summary": summary,
        "figures": figures,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS_FILE.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, sort_keys=True, default=str) + "\n")


def raise_nofile() -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until truthy (returned) or ``timeout`` seconds pass (last value returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# -- /proc -------------------------------------------------------------------------------------


def proc_figures(pid: int) -> dict[str, int]:
    """Threads, open fds and RSS (KiB) of a live process, from /proc."""
    threads = rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"threads": threads, "fds": fds, "rss_kb": rss}


def rss_mb(pid: int) -> float:
    return proc_figures(pid)["rss_kb"] / 1024


# -- blocking raw HTTP ---------------------------------------------------------------------------

_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")


class RawResponse:
    def __init__(self, status: int | None, head: bytes, body: bytes, closed: bool) -> None:
        self.status = status
        self.head = head
        self.body = body
        self.closed = closed

    def header_lines(self) -> list[bytes]:
        return self.head.split(b"\r\n")[1:]

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for line in self.header_lines():
            key, sep, value = line.partition(b":")
            if sep and key.strip().lower() == wanted:
                return value.strip().decode("latin-1")
        return None

    def __repr__(self) -> str:
        return f"RawResponse({self.status}, head={self.head[:300]!r}, body={self.body[:200]!r})"


def decode_chunked(data: bytes) -> bytes:
    """Best-effort decode of a (possibly truncated) chunked body."""
    out, pos = bytearray(), 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out)
        try:
            size = int(data[pos:eol].split(b";", 1)[0].strip() or b"0", 16)
        except ValueError:
            return bytes(out)
        if size == 0:
            return bytes(out)
        out += data[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


def raw_http(port: int, request: bytes, timeout: float = 5.0, read_body: bool = True) -> RawResponse:
    """Send raw bytes on a fresh connection; read the head and (``Connection: close`` assumed)
    the body until EOF or ``timeout``."""
    buf = b""
    closed = False
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                closed = True
                break
            if not data:
                closed = True
                break
            buf += data
            if not read_body and b"\r\n\r\n" in buf:
                break
    head, _, body = buf.partition(b"\r\n\r\n")
    m = _STATUS.match(head)
    if m and b"transfer-encoding: chunked" in head.lower():
        body = decode_chunked(body)
    return RawResponse(int(m.group(1)) if m else None, head, body, closed)


def parse_sse_body(body: bytes) -> list[ServerSentEvent]:
    """Events of a complete (already de-chunked) event-stream body."""
    return SSEParser().feed(body.decode("utf-8"))


def get(
    port: int,
    target: str | bytes,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    timeout: float = 5.0,
) -> RawResponse:
    """A raw ``Connection: close`` request; ``target`` is sent byte for byte (no normalisation)."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}".encode("latin-1"))
    return raw_http(port, b"\r\n".join(lines) + b"\r\n\r\n", timeout)


# -- asyncio raw SSE client --------------------------------------------------------------------


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
            m = _STATUS.match(head)
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


async def fetch_json(port: int, path: str, timeout: float = 5.0) -> Any:
    """GET ``path`` on a fresh asyncio connection and decode the JSON body."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = decode_chunked(body)
    return json.loads(body)


def stats(port: int, timeout: float = 5.0) -> dict[str, Any]:
    """The test app's ``/stats`` (``app.stats()`` plus pid/threads), over a blocking socket."""
    response = get(port, "/stats", timeout=timeout)
    assert response.status == 200, response
    return json.loads(response.body)
