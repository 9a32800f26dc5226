"""A raw-socket HTTP/1.1 client that sends bytes exactly as given (no normalisation)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from typing import Any

from . import HOST

STATUS_LINE = re.compile(rb"^HTTP/\d\.\d (\d{3})")


class RawResponse:
    """What a raw exchange got: ``status`` (None without a status line), ``head`` (status line and
    headers, without the blank line), ``body`` (de-chunked when the response was chunked),
    ``closed`` (the server closed or reset the connection) and ``elapsed`` seconds."""

    def __init__(
        self, status: int | None, head: bytes, body: bytes, closed: bool, elapsed: float = 0.0
    ) -> None:
        self.status = status
        self.head = head
        self.body = body
        self.closed = closed
        self.elapsed = elapsed

    @classmethod
    def parse(cls, data: bytes, closed: bool, elapsed: float = 0.0) -> RawResponse:
        head, _, body = data.partition(b"\r\n\r\n")
        m = STATUS_LINE.match(head)
        if m and b"transfer-encoding: chunked" in head.lower():
            body = decode_chunked(body)
        return cls(int(m.group(1)) if m else None, head, body, closed, elapsed)

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
        return (
            f"RawResponse({self.status}, closed={self.closed}, elapsed={self.elapsed:.3f}, "
            f"head={self.head[:300]!r}, body={self.body[:200]!r})"
        )


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
    the body until EOF or ``timeout`` (no error: whatever arrived is returned)."""
    buf = b""
    closed = False
    start = time.monotonic()
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
    return RawResponse.parse(buf, closed, time.monotonic() - start)


def raw_request(port: int, payload: bytes, timeout: float = 5.0) -> RawResponse:
    """Send ``payload`` on a fresh connection and read up to the end of the first final response
    head (interim 1xx responses are skipped; ``body`` is whatever followed the head in the same reads).

    Raises AssertionError if the server neither answers nor closes within ``timeout`` (a hang).
    """
    start = time.monotonic()
    buf = b""
    closed = False
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            pass  # the server may answer and close before taking everything (e.g. 413)
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(
                    f"server hung: no response and no close within {timeout}s for {payload[:200]!r}"
                ) from None
            except OSError:  # connection reset: the server dropped us, which counts as closed
                closed = True
                break
            if not data:
                closed = True
                break
            buf += data
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            m = STATUS_LINE.match(buf)
            if m and m.group(1).startswith(b"1"):  # interim response (100 Continue): skip it
                buf = buf[head_end + 4 :]
                continue
            break
    head, _, body = buf.partition(b"\r\n\r\n")
    m = STATUS_LINE.match(head)
    return RawResponse(int(m.group(1)) if m else None, head, body, closed, time.monotonic() - start)


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
    return json.loads(RawResponse.parse(data, closed=True).body)
