"""Load generator for the async SSE scenarios (asyncio, raw sockets, 127.0.0.1 only).

  fanout  S1: --clients subscribers GET /sub (opened --batch at a time); once all have their
          headers, POST /start/<M>; each client counts ``data: `` lines until its
          ``event: end``. Also reports this process's own CPU during the run. --sub and
          --trigger change the two paths (fanout-lone: /start_lone; fanout-textbook:
          /textbook and /start_textbook).
  latency S1: --clients subscribers GET /sub; POST /start_rate/<rate>/<seconds>; every
          delivery's latency from the message's publish stamp ``"t"`` (time.time() on the
          server) to its arrival (kernel SO_TIMESTAMPNS) and to its read here.
  stream  S2: one GET /stream, counting ``data: `` lines until the response ends; then one
          GET /lone: latency from the server's ``{"t": time.time()}`` to receipt.
  idle    S4: --clients streams on --path that stay open; server RSS (from /proc/<pid>/statm)
          after the first 200 and after all, per stream.

--encoding gzip|zstd|deflate|br (fanout, stream, idle): send ``Accept-Encoding: <it>``, check
the response's Content-Encoding, and undo the chunked framing and the compression
incrementally (zlib/zstandard/brotli decompressors, one per stream) to count events in the
decoded text. fanout and stream report ``wire_bytes`` (response body bytes as received,
chunked framing included) in every mode and ``plain_bytes`` (the decoded event text) with
--encoding.

Prints one JSON object. Every wait is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import select
import socket
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PAT = b"\ndata: "
END = b"event: end"


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def decompressor(encoding: str) -> Any:
    """An incremental decoder for one response body: ``.decompress(bytes) -> bytes``."""
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()
    if encoding == "br":
        import brotli

        class Br:
            def __init__(self) -> None:
                self.d = brotli.Decompressor()

            def decompress(self, data: bytes) -> bytes:
                return self.d.process(data)

        return Br()
    raise ValueError(f"unknown encoding {encoding!r}")


def accept(encoding: str) -> str:
    return f"Accept-Encoding: {encoding}\r\n" if encoding else ""


def check_encoding(head: bytes, encoding: str) -> None:
    """With --encoding, the server must have answered with that Content-Encoding."""
    if encoding and f"content-encoding: {encoding}".encode() not in head.lower():
        raise RuntimeError(f"no Content-Encoding: {encoding}")


def proc_cpu(pid: int) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    import os

    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss(pid: int) -> int:
    import os

    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


async def open_stream(
    port: int, path: str, timeout: float, encoding: str = ""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    w.write(
        f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n{accept(encoding)}"
        "Connection: close\r\n\r\n".encode()
    )
    await w.drain()
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
    status = head.split(b" ", 2)[1].decode()
    if status != "200":
        w.close()
        raise RuntimeError(f"HTTP {status}")
    try:
        check_encoding(head, encoding)
    except RuntimeError:
        w.close()
        raise
    return r, w, head


async def post(port: int, path: str, timeout: float) -> bytes:
    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    w.write(
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    )
    await w.drain()
    data = b""
    with contextlib.suppress(asyncio.TimeoutError):
        while len(data) < 65536:
            chunk = await asyncio.wait_for(r.read(65536), timeout)
            if not chunk:
                break
            data += chunk
    w.close()
    return data


def err_name(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__


# -- raw subscribers (S1 fanout and latency) -----------------------------------------------------
# Each subscriber is a non-blocking socket read by a loop.add_reader callback (no StreamReader:
# a callback and one recv per wake-up keep the load generator's cost per read small, which
# matters with 10,000 subscribers).
class Sub:
    __slots__ = (
        "sock", "fd", "carry", "n", "ended", "error", "dechunk", "text", "arrival", "read", "index", "decomp",
        "wire", "plain",
    )  # fmt: skip

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.carry = b""
        self.n = 0
        self.ended = False
        self.error: str | None = None
        self.dechunk: Dechunk | None = None
        self.text = b""
        self.arrival: list[float] = []  # latency mode: ms, kernel arrival - publish
        self.read: list[float] = []  # latency mode: ms, read by us - publish
        self.index: list[int] = []  # latency mode: the message number of each delivery
        self.decomp: Any = None  # --encoding: the body's decompressor (after self.dechunk)
        self.wire = 0  # body bytes received (fanout)
        self.plain = 0  # --encoding: decoded body bytes (fanout)


class Dechunk:
    """Incremental HTTP/1.1 chunked-body decoder: feed() returns the payload bytes so far."""

    __slots__ = ("buf", "left", "done", "chunks")

    def __init__(self) -> None:
        self.buf = b""
        self.left = 0  # >0: payload bytes still due; <0: CRLF bytes to skip; 0: a size line
        self.done = False
        self.chunks = 0  # non-empty chunks seen: one per write of the server

    def feed(self, data: bytes) -> bytes:
        buf, pos, out = self.buf + data, 0, []
        while pos < len(buf) and not self.done:
            if self.left > 0:
                take = min(self.left, len(buf) - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self.left -= take
                if self.left == 0:
                    self.left = -2
            elif self.left < 0:
                skip = min(-self.left, len(buf) - pos)
                pos += skip
                self.left += skip
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol].split(b";", 1)[0].strip() or b"0", 16)
                pos = eol + 2
                if size == 0:
                    self.done = True
                else:
                    self.left = size
                    self.chunks += 1
        self.buf = buf[pos:]
        return b"".join(out)


async def open_raw(
    port: int, path: str, timeout: float, encoding: str = ""
) -> tuple[socket.socket, bytes, bytes]:
    """Connect, send the GET, read the head: (socket, head, body bytes already read)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (HOST, port)), timeout)
        req = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n{accept(encoding)}"
            "Connection: close\r\n\r\n"
        )
        await loop.sock_sendall(sock, req.encode())
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), left)
            if not chunk:
                raise RuntimeError("closed before the response head")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1].decode()
        if status != "200":
            raise RuntimeError(f"HTTP {status}")
        check_encoding(head, encoding)
        return sock, head + b"\r\n\r\n", rest
    except BaseException:
        sock.close()
        raise


async def subscribe_all(
    a: argparse.Namespace, path: str
) -> tuple[list[tuple[Sub, bytes]], dict[str, int], float]:
    """Open --clients subscriptions in batches of --batch (each batch waits until its streams
    have their heads, so never more than --batch handshakes are in flight), all within
    --timeout seconds in total. Returns (subscribers with the body bytes already read, errors,
    seconds it took)."""
    errors: dict[str, int] = {}
    subs: list[tuple[Sub, bytes]] = []
    t0 = time.monotonic()
    deadline = t0 + a.timeout

    async def one() -> None:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            sock, head, rest = await open_raw(a.port, path, left, a.encoding)
        except (TimeoutError, OSError, RuntimeError, IndexError) as exc:
            errors[err_name(exc)] = errors.get(err_name(exc), 0) + 1
            return
        sub = Sub(sock)
        sub.carry = head[-9:]
        if b"transfer-encoding: chunked" in head.lower():
            sub.dechunk = Dechunk()
        if a.encoding:
            sub.decomp = decompressor(a.encoding)
            sub.carry = b"\n"  # the decoded text starts at the first event
        subs.append((sub, rest))

    for start in range(0, a.clients, a.batch):
        if time.monotonic() >= deadline:
            errors["not connected within --timeout"] = a.clients - start
            break
        await asyncio.gather(*(one() for _ in range(start, min(a.clients, start + a.batch))))
    return subs, errors, time.monotonic() - t0


def cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, int(round(q * len(values) + 0.5)) - 1))]


# -- S1 fanout -----------------------------------------------------------------------------------
async def fanout(a: argparse.Namespace) -> dict:
    """The subscribers' sockets are polled from our own epoll set every --poll-ms (not one
    loop callback per readable socket): each recv() then takes whatever arrived meanwhile, so
    the load generator's work (a recv and its ACK, mostly kernel time) grows with the number
    of sockets, not with the event rate, and it stays off the critical path."""
    subs, errors, connect_s = await subscribe_all(a, a.sub)
    ep = select.epoll()
    by_fd: dict[int, Sub] = {}
    reads = [0]

    def finish(sub: Sub) -> None:
        ep.unregister(sub.fd)
        del by_fd[sub.fd]
        sub.sock.close()
        if sub.ended:
            sub.n -= 1  # the end event's own data line
        else:
            key = sub.error or "no end event"
            errors[key] = errors.get(key, 0) + 1

    def feed(sub: Sub, d: bytes) -> None:
        sub.wire += len(d)
        if sub.decomp is not None:  # --encoding: chunked framing off, then the compression
            if sub.dechunk is not None:
                d = sub.dechunk.feed(d)
            d = sub.decomp.decompress(d) if d else d
            sub.plain += len(d)
            buf = sub.carry + d
            sub.n += buf.count(PAT)  # a 6-byte carry: no line is counted twice
            if END in buf:
                sub.ended = True
            sub.carry = buf[-6:]
            return
        buf = sub.carry + d
        sub.n += buf[3:].count(PAT)  # a 9-byte carry: no line is counted twice
        if END in buf:
            sub.ended = True
        sub.carry = buf[-9:]

    def drain() -> None:
        while True:
            ready = ep.poll(0, 4096)
            for fd, _mask in ready:
                sub = by_fd[fd]
                try:
                    d = sub.sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    sub.error = err_name(exc)
                    d = b""
                reads[0] += 1
                if d:
                    feed(sub, d)
                if not d or sub.ended:
                    finish(sub)
            if len(ready) < 4096:
                return

    async def pump() -> None:
        while by_fd:
            drain()
            await asyncio.sleep(a.poll_ms / 1000)

    await asyncio.sleep(0.5)
    for sub, rest in subs:
        if rest:
            feed(sub, rest)
        ep.register(sub.fd, select.EPOLLIN)
        by_fd[sub.fd] = sub
    cpu0, lcpu0 = proc_cpu(a.server_pid), cpu_self()
    t0 = time.perf_counter()
    pumping = asyncio.ensure_future(pump())
    answer = await post(a.port, f"{a.trigger}/{a.messages}", a.timeout)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pumping, max(0.0, a.timeout - (time.perf_counter() - t0)))
    wall = time.perf_counter() - t0
    cpu, load_cpu = proc_cpu(a.server_pid) - cpu0, cpu_self() - lcpu0
    timed_out = list(by_fd.values())
    for sub in timed_out:  # partial counts are kept
        sub.sock.close()
    ep.close()
    got = [sub.n for sub, _ in subs]
    delivered = sum(got)
    body = answer.partition(b"\r\n\r\n")[2][:200].decode(errors="replace")
    return {
        "subscribers": a.clients,
        "subscribed": len(subs),
        "connect_s": connect_s,
        "trigger": body,
        "delivered": delivered,
        "expected": len(subs) * a.messages,
        "expected_all": a.clients * a.messages,
        "wall_s": wall,
        "events_per_s": delivered / wall if wall else None,
        "min_per_client": min(got) if got else 0,
        "max_per_client": max(got) if got else 0,
        "clients_done": len(got) - len(timed_out),
        "timed_out": len(timed_out),
        "server_cpu_s": cpu,
        "load_cpu_s_run": load_cpu,
        "load_cpu_pct": 100 * load_cpu / wall if wall else None,
        "load_reads": reads[0],  # recv() calls: the load generator's unit of work
        "wire_bytes": sum(sub.wire for sub, _ in subs),
        **({"plain_bytes": sum(sub.plain for sub, _ in subs)} if a.encoding else {}),
        # --encoding: the chunks received, one per write of the server (events per write > 1:
        # the server coalesced events, and each write was compressed and flushed as one)
        **({"writes": sum(sub.dechunk.chunks for sub, _ in subs if sub.dechunk)} if a.encoding else {}),
        "errors": errors,
    }


# -- S1 latency ----------------------------------------------------------------------------------
SCM_TIMESTAMPNS = SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; Python's socket module lacks them
TS = struct.Struct("qq")
T_KEY = b'"t":'
I_KEY = b'"i":'


async def latency(a: argparse.Namespace) -> dict:
    """--clients subscribers on /sub; POST /start_rate/<rate>/<seconds>: the server publishes
    ``{"i": i, "t": time.time()}`` at a fixed rate. Per delivery, two latencies: from the
    publish stamp to the kernel's arrival stamp of the segment (SO_TIMESTAMPNS: what the
    server and the network stack cost, without our own scheduling), and to the moment this
    process read it (what a client that is busy with 999 others sees)."""
    loop = asyncio.get_running_loop()
    subs, errors, connect_s = await subscribe_all(a, "/sub")
    open_count = [len(subs)]
    all_done = asyncio.Event()
    cmsg_space = socket.CMSG_SPACE(TS.size)

    def finish(sub: Sub) -> None:
        loop.remove_reader(sub.fd)
        sub.sock.close()
        if not sub.ended:
            key = sub.error or "no end event"
            errors[key] = errors.get(key, 0) + 1
        open_count[0] -= 1
        if open_count[0] == 0:
            all_done.set()

    def feed(sub: Sub, d: bytes, arrival: float, now: float) -> None:
        if sub.dechunk is not None:
            d = sub.dechunk.feed(d)
        text = sub.text + d
        cut = text.rfind(b"\n")
        if cut < 0:
            sub.text = text
            return
        sub.text = text[cut + 1 :]
        for line in text[:cut].split(b"\n"):  # whole lines only ("\r\n" or "\n" endings)
            k = line.find(T_KEY)
            if k >= 0 and line.startswith(b"data:"):
                j = e = k + len(T_KEY)
                while e < len(line) and line[e] in b" 0123456789.eE+-":
                    e += 1
                t = float(line[j:e])
                i = line.find(I_KEY)
                if i >= 0:
                    e = i = i + len(I_KEY)
                    while e < len(line) and line[e] in b" 0123456789":
                        e += 1
                    sub.index.append(int(line[i:e]))
                sub.arrival.append((arrival - t) * 1000)
                sub.read.append((now - t) * 1000)
                sub.n += 1
            elif line.startswith(END):
                sub.ended = True

    def on_read(sub: Sub) -> None:
        try:
            d, anc, _flags, _addr = sub.sock.recvmsg(1 << 16, cmsg_space)
        except BlockingIOError:
            return
        except OSError as exc:
            sub.error = err_name(exc)
            d, anc = b"", []
        now = time.time()
        if d:
            arrival = now
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= TS.size:
                    sec, nsec = TS.unpack_from(data)
                    arrival = sec + nsec * 1e-9
            feed(sub, d, arrival, now)
        if not d or sub.ended:
            finish(sub)

    for sub, rest in subs:
        sub.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if rest:
            feed(sub, rest, time.time(), time.time())
        loop.add_reader(sub.fd, on_read, sub)
    if not subs:
        all_done.set()
    await asyncio.sleep(0.5)
    cpu0, lcpu0 = proc_cpu(a.server_pid), cpu_self()
    t0 = time.perf_counter()
    answer = await post(a.port, f"/start_rate/{a.rate}/{a.seconds}", a.timeout)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(all_done.wait(), a.seconds + a.timeout)
    wall = time.perf_counter() - t0
    cpu, load_cpu = proc_cpu(a.server_pid) - cpu0, cpu_self() - lcpu0
    timed_out = [sub for sub, _ in subs if sub.sock.fileno() >= 0]
    for sub in timed_out:
        loop.remove_reader(sub.fd)
        sub.sock.close()
    # Per message: the slowest and the median delivery at read time (is the tail one message,
    # e.g. the first, or every message's last few subscribers?).
    by_message: dict[int, list[float]] = {}
    for sub, _ in subs:
        for i, x in zip(sub.index, sub.read, strict=False):
            by_message.setdefault(i, []).append(x)
    per_message = [
        [i, round(statistics.median(v), 2), round(max(v), 2)] for i, v in sorted(by_message.items())[:200]
    ]
    arrival = sorted(x for sub, _ in subs for x in sub.arrival)
    read = sorted(x for sub, _ in subs for x in sub.read)
    got = [sub.n for sub, _ in subs]
    messages = a.rate * a.seconds
    body = answer.partition(b"\r\n\r\n")[2][:200].decode(errors="replace")
    return {
        "subscribers": a.clients,
        "subscribed": len(subs),
        "connect_s": connect_s,
        "trigger": body,
        "rate": a.rate,
        "seconds": a.seconds,
        "delivered": len(read),
        "expected": len(subs) * messages,
        "expected_all": a.clients * messages,
        "events_per_s": len(read) / wall if wall else None,
        "min_per_client": min(got) if got else 0,
        "max_per_client": max(got) if got else 0,
        "wall_s": wall,
        "timed_out": len(timed_out),
        "p50_ms": pct(read, 0.50),
        "p90_ms": pct(read, 0.90),
        "p95_ms": pct(read, 0.95),
        "p99_ms": pct(read, 0.99),
        "p999_ms": pct(read, 0.999),
        "max_ms": read[-1] if read else None,
        "arrival_p50_ms": pct(arrival, 0.50),
        "arrival_p99_ms": pct(arrival, 0.99),
        "arrival_max_ms": arrival[-1] if arrival else None,
        "per_message_ms": per_message,  # [message number, median, max] at read time
        "server_cpu_s": cpu,
        "server_cpu_pct": 100 * cpu / wall if wall else None,
        "load_cpu_s_run": load_cpu,
        "load_cpu_pct": 100 * load_cpu / wall if wall else None,
        "errors": errors,
    }


# -- S2 ------------------------------------------------------------------------------------------
async def stream(a: argparse.Namespace) -> dict:
    cpu0, lcpu0 = proc_cpu(a.server_pid), cpu_self()
    t0 = time.perf_counter()
    r, w, head = await open_stream(a.port, "/stream", a.timeout, a.encoding)
    carry, n, wire, plain, dechunk = head[-6:], 0, 0, 0, None
    deadline = time.monotonic() + a.timeout
    if a.encoding:  # chunked framing off, then the compression; count in the decoded text
        dechunk = Dechunk() if b"transfer-encoding: chunked" in head.lower() else None
        decomp, carry = decompressor(a.encoding), b"\n"
        while time.monotonic() < deadline:
            d = await asyncio.wait_for(r.read(1 << 20), a.timeout)
            if not d:
                break
            wire += len(d)
            d = dechunk.feed(d) if dechunk is not None else d
            d = decomp.decompress(d) if d else d
            plain += len(d)
            buf = carry + d
            n += buf.count(PAT)
            carry = buf[-6:]
    else:
        while time.monotonic() < deadline:
            d = await asyncio.wait_for(r.read(1 << 20), a.timeout)
            if not d:
                break
            wire += len(d)
            buf = carry + d
            n += buf.count(PAT)
            carry = buf[-6:]
    w.close()
    wall = time.perf_counter() - t0
    cpu, load_cpu = proc_cpu(a.server_pid) - cpu0, cpu_self() - lcpu0

    lat: list[float] = []
    r, w, head = await open_stream(a.port, "/lone", a.timeout, a.encoding)
    pending = b""
    dechunk = Dechunk() if a.encoding and b"transfer-encoding: chunked" in head.lower() else None
    decomp = decompressor(a.encoding) if a.encoding else None
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        d = await asyncio.wait_for(r.read(1 << 16), a.timeout)
        now = time.time()
        if not d:
            break
        if decomp is not None:
            d = dechunk.feed(d) if dechunk is not None else d
            d = decomp.decompress(d) if d else d
        pending += d
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b"data: "):
                lat.append((now - json.loads(line[6:])["t"]) * 1000)
    w.close()
    return {
        "events": n,
        "expected": a.messages,
        "wall_s": wall,
        "events_per_s": n / wall if wall else None,
        "server_cpu_s": cpu,
        "load_cpu_s_run": load_cpu,
        "load_cpu_pct": 100 * load_cpu / wall if wall else None,
        "wire_bytes": wire,
        **({"plain_bytes": plain} if a.encoding else {}),
        **({"writes": dechunk.chunks} if dechunk is not None else {}),
        "lone_events": len(lat),
        "lone_p50_ms": statistics.median(lat) if lat else None,
        "lone_max_ms": max(lat) if lat else None,
    }


# -- S4 ------------------------------------------------------------------------------------------
async def idle(a: argparse.Namespace) -> dict:
    conns: list = []
    errors: dict[str, int] = {}

    async def one() -> None:
        try:
            r, w, head = await open_stream(a.port, a.path, a.timeout, a.encoding)
            if a.first_event:  # wait for the one event the route sends first
                buf = head[-6:]
                if a.encoding:  # ... decoded: the compressor has written (and kept state)
                    dechunk = Dechunk() if b"transfer-encoding: chunked" in head.lower() else None
                    decomp, buf = decompressor(a.encoding), b"\n"
                while PAT not in buf:
                    d = await asyncio.wait_for(r.read(4096), a.timeout)
                    if not d:
                        raise RuntimeError("closed before the first event")
                    if a.encoding:
                        d = decomp.decompress(dechunk.feed(d) if dechunk is not None else d)
                    buf += d
            conns.append(w)
        except (TimeoutError, OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
            errors[err_name(exc)] = errors.get(err_name(exc), 0) + 1

    base_n = min(200, a.clients)
    await asyncio.gather(*(one() for _ in range(base_n)))
    await asyncio.sleep(1.0)
    base_conns, base = len(conns), proc_rss(a.server_pid)
    left = a.clients - base_n
    while left > 0:
        k = min(500, left)
        await asyncio.gather(*(one() for _ in range(k)))
        left -= k
    await asyncio.sleep(2.0)
    after = proc_rss(a.server_pid)
    added = len(conns) - base_conns
    for w in conns:
        w.close()
    return {
        "streams": len(conns),
        "base_rss_mb": base / 2**20,
        "rss_mb": after / 2**20,
        "kb_per_stream": (after - base) / added / 1024 if added > 0 else None,
        "errors": errors,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["fanout", "latency", "stream", "idle"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--messages", type=int, default=2000, help="fanout: M; stream: expected events")
    p.add_argument("--rate", type=int, default=5, help="latency: messages per second")
    p.add_argument("--seconds", type=int, default=10, help="latency: seconds of publishing")
    p.add_argument("--batch", type=int, default=500, help="fanout/latency: connections opened at once")
    p.add_argument("--poll-ms", type=float, default=1.0, help="fanout: pause between epoll sweeps")
    p.add_argument("--path", default="/idle", help="idle: the route each stream opens")
    p.add_argument("--sub", default="/sub", help="fanout: the route each subscriber opens")
    p.add_argument("--trigger", default="/start", help="fanout: POST <this>/<messages> starts it")
    p.add_argument("--first-event", action="store_true", help="idle: wait for one event per stream")
    p.add_argument(
        "--encoding",
        default="",
        choices=["", "gzip", "zstd", "deflate", "br"],
        help="fanout/stream/idle: send Accept-Encoding and decode the compressed body",
    )
    p.add_argument("--timeout", type=float, default=120.0)
    a = p.parse_args()
    if not (1 <= a.clients <= 10000 and 0 < a.timeout <= 300 and 1 <= a.batch <= 2000):
        p.error("bounded: --clients 1..10000, --timeout <= 300, --batch 1..2000")
    if not (1 <= a.rate <= 1000 and 1 <= a.seconds <= 120):
        p.error("bounded: --rate 1..1000, --seconds 1..120")
    if not all(
        x.startswith("/") and x.isascii() and x.isprintable() and " " not in x
        for x in (a.path, a.sub, a.trigger)
    ):
        p.error("--path, --sub and --trigger are paths starting with /")
    nofile = raise_nofile()
    if nofile < a.clients + 64:
        p.error(f"RLIMIT_NOFILE is {nofile}: too low for {a.clients} connections")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    modes = {"fanout": fanout, "latency": latency, "stream": stream, "idle": idle}
    result = asyncio.run(modes[a.mode](a))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
