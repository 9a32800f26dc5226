"""Load generator for the async SSE scenarios (asyncio, raw sockets, 127.0.0.1 only).

  fanout  S1: --clients subscribers GET /sub; once all have their headers, POST /start/<M>;
          each client counts ``data: `` lines until its ``event: end``.
  stream  S2: one GET /stream, counting ``data: `` lines until the response ends; then one
          GET /lone: latency from the server's ``{"t": time.time()}`` to receipt.
  idle    S4: --clients streams on --path that stay open; server RSS (from /proc/<pid>/statm)
          after the first 200 and after all, per stream.

Prints one JSON object. Every wait is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
PAT = b"\ndata: "
END = b"event: end"


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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


async def open_stream(port: int, path: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    w.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n".encode())
    await w.drain()
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
    status = head.split(b" ", 2)[1].decode()
    if status != "200":
        w.close()
        raise RuntimeError(f"HTTP {status}")
    return r, w, head


async def post(port: int, path: str, timeout: float) -> bytes:
    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    w.write(f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
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


# -- S1 ------------------------------------------------------------------------------------------
async def fanout(a: argparse.Namespace) -> dict:
    ready: list = []
    subscribed: list = []
    counts: list[int | None] = [None] * a.clients
    errors: dict[str, int] = {}
    go = asyncio.Event()

    async def client(i: int) -> None:
        try:
            r, w, head = await open_stream(a.port, "/sub", a.timeout)
        except (OSError, asyncio.TimeoutError, RuntimeError, asyncio.IncompleteReadError) as exc:
            errors[err_name(exc)] = errors.get(err_name(exc), 0) + 1
            ready.append(i)
            return
        ready.append(i)
        subscribed.append(i)
        carry, n, ended = head[-9:], 0, False
        try:
            while True:
                d = await r.read(1 << 16)
                if not d:
                    break
                buf = carry + d
                n += buf[3:].count(PAT)  # a 6-byte carry: no line is counted twice
                counts[i] = n  # partial count survives a --timeout cancel
                if END in buf:
                    ended = True
                    break
                carry = buf[-9:]
        except OSError as exc:
            errors[err_name(exc)] = errors.get(err_name(exc), 0) + 1
        finally:
            w.close()
        counts[i] = n - 1 if ended else n  # minus the end event's own data line
        if not ended:
            errors["no end event"] = errors.get("no end event", 0) + 1

    tasks = []
    for start in range(0, a.clients, 500):  # batches: never more than 500 SYNs in flight
        tasks += [asyncio.create_task(client(i)) for i in range(start, min(a.clients, start + 500))]
        deadline = time.monotonic() + a.timeout
        while len(ready) < len(tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    cpu0 = proc_cpu(a.server_pid)
    t0 = time.perf_counter()
    answer = await post(a.port, f"/start/{a.messages}", a.timeout)
    done, pending = await asyncio.wait(tasks, timeout=a.timeout)
    wall = time.perf_counter() - t0
    cpu = proc_cpu(a.server_pid) - cpu0
    for t in pending:
        t.cancel()
    got = [c for c in counts if c is not None]
    delivered = sum(got)
    body = answer.partition(b"\r\n\r\n")[2][:200].decode(errors="replace")
    return {
        "subscribed": len(subscribed),
        "trigger": body,
        "delivered": delivered,
        "expected": a.clients * a.messages,
        "wall_s": wall,
        "events_per_s": delivered / wall if wall else None,
        "min_per_client": min(got) if got else 0,
        "max_per_client": max(got) if got else 0,
        "clients_done": len(got),
        "timed_out": len(pending),
        "server_cpu_s": cpu,
        "errors": errors,
    }


# -- S2 ------------------------------------------------------------------------------------------
async def stream(a: argparse.Namespace) -> dict:
    cpu0 = proc_cpu(a.server_pid)
    t0 = time.perf_counter()
    r, w, head = await open_stream(a.port, "/stream", a.timeout)
    carry, n = head[-6:], 0
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        d = await asyncio.wait_for(r.read(1 << 20), a.timeout)
        if not d:
            break
        buf = carry + d
        n += buf.count(PAT)
        carry = buf[-6:]
    w.close()
    wall = time.perf_counter() - t0
    cpu = proc_cpu(a.server_pid) - cpu0

    lat: list[float] = []
    r, w, head = await open_stream(a.port, "/lone", a.timeout)
    pending = b""
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        d = await asyncio.wait_for(r.read(1 << 16), a.timeout)
        now = time.time()
        if not d:
            break
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
            r, w, head = await open_stream(a.port, a.path, a.timeout)
            if a.first_event:  # wait for the one event the route sends first
                buf = head[-6:]
                while PAT not in buf:
                    d = await asyncio.wait_for(r.read(4096), a.timeout)
                    if not d:
                        raise RuntimeError("closed before the first event")
                    buf += d
            conns.append(w)
        except (OSError, asyncio.TimeoutError, RuntimeError, asyncio.IncompleteReadError) as exc:
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
    p.add_argument("mode", choices=["fanout", "stream", "idle"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--messages", type=int, default=2000, help="fanout: M; stream: expected events")
    p.add_argument("--path", default="/idle")
    p.add_argument("--first-event", action="store_true", help="idle: wait for one event per stream")
    p.add_argument("--timeout", type=float, default=120.0)
    a = p.parse_args()
    if not (1 <= a.clients <= 10000 and 0 < a.timeout <= 300):
        p.error("bounded: --clients 1..10000, --timeout <= 300")
    raise_nofile()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run({"fanout": fanout, "stream": stream, "idle": idle}[a.mode](a))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
