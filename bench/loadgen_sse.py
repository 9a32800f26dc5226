"""Load generator for scenario S3 (sync-clients): N SSE clients connect (in batches of --batch
connections) and read their stream until it ends.

    python bench/loadgen_sse.py --port P --clients 1000 --events 10 --path /api/progress/

Raw asyncio sockets (no HTTP library in the way): each client sends one GET with
``Connection: close``, reads the response head, decodes a chunked body (or reads to EOF) and
counts ``data:`` lines. A client *completed* when it saw every event and the end of its
stream. Everything is bounded: clients still running at ``--give-up`` seconds are cancelled.
Prints one JSON object on stdout. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from typing import Any

HOST = "127.0.0.1"


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ChunkedDecoder:
    """Incremental decoder of an HTTP/1.1 chunked body; ``done`` after the last chunk."""

    def __init__(self) -> None:
        self.raw = bytearray()
        self.pos = 0
        self.done = False
        self.body = bytearray()

    def feed(self, data: bytes) -> None:
        self.raw += data
        while not self.done:
            eol = self.raw.find(b"\r\n", self.pos)
            if eol < 0:
                return
            size_text = bytes(self.raw[self.pos : eol]).split(b";", 1)[0].strip()
            size = int(size_text or b"0", 16)
            if size == 0:
                self.done = True  # trailers ignored: the stream has ended
                return
            start, end = eol + 2, eol + 2 + size
            if len(self.raw) < end + 2:
                return
            self.body += self.raw[start:end]
            self.pos = end + 2


async def one_client(index: int, args: argparse.Namespace, t0: float, result: dict[str, Any]) -> None:
    request = (
        f"GET {args.path}{index} HTTP/1.1\r\nHost: {HOST}:{args.port}\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
    ).encode()
    writer = None
    try:
        reader, writer = await asyncio.open_connection(HOST, args.port)
        result["connected"] = time.monotonic() - t0
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        result["status"] = int(status_line.split()[1])
        headers = header_block.lower()
        chunked = b"transfer-encoding: chunked" in headers
        decoder = ChunkedDecoder() if chunked else None
        body = bytearray()
        events = 0
        while True:
            data = await reader.read(65536)
            if not data:
                result["ended"] = "eof"
                break
            if decoder is not None:
                decoder.feed(data)
                text = decoder.body
            else:
                body += data
                text = body
            count = text.count(b"data:")
            if count and events == 0:
                result["first_event"] = time.monotonic() - t0
            events = count
            result["events"] = events
            if decoder is not None and decoder.done:
                result["ended"] = "chunked-end"
                break
        result["done"] = time.monotonic() - t0
    except asyncio.CancelledError:
        result["error"] = "gave up"
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is a data point
        result["error"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        if writer is not None:
            writer.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: list[dict[str, Any]] = [{"events": 0} for _ in range(args.clients)]
    t0 = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    # Batches: at most --batch connections are being set up at once (a burst of 5000 SYNs would
    # overflow the kernel's SYN queue and cost 1 s retransmits); the next batch starts once every
    # client of this one is connected or failed. Times count from t0, before the first batch.
    for start in range(0, args.clients, args.batch):
        batch = range(start, min(args.clients, start + args.batch))
        tasks += [asyncio.create_task(one_client(i, args, t0, results[i])) for i in batch]
        while time.monotonic() - t0 < args.give_up and any(
            "connected" not in results[i] and "error" not in results[i] for i in batch
        ):
            await asyncio.sleep(0.005)
    done, pending = await asyncio.wait(tasks, timeout=max(0.0, args.give_up - (time.monotonic() - t0)))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
    wall = time.monotonic() - t0

    complete = [r for r in results if r["events"] >= args.events and "ended" in r and "error" not in r]
    within = [r for r in complete if r["done"] <= args.complete_within]
    errors: dict[str, int] = {}
    for r in results:
        if "error" in r:
            key = r["error"].split(":")[0]
            errors[key] = errors.get(key, 0) + 1
    statuses: dict[str, int] = {}
    for r in results:
        if "status" in r:
            statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1

    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        values = sorted(values)
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]

    firsts = [r["first_event"] for r in results if "first_event" in r]
    connects = [r["connected"] for r in results if "connected" in r]
    dones = [r["done"] for r in complete]
    return {
        "clients": args.clients,
        "events_expected": args.events,
        "completed_within": len(within),
        "completed_total": len(complete),
        "complete_within_s": args.complete_within,
        "give_up_s": args.give_up,
        # Time until the last client finished, or None if some never did before give-up.
        "all_done_s": max(dones) if len(complete) == args.clients else None,
        "wall_s": wall,
        "gave_up": len(pending),
        "events_received": sum(r["events"] for r in results),
        "clients_with_events": len(firsts),
        # when the TCP handshake of the p50 / last client completed (the batches' ramp)
        "connected_p50_s": pct(connects, 0.5),
        "connected_max_s": pct(connects, 1.0),
        "first_event_p50_s": pct(firsts, 0.5),
        "first_event_max_s": pct(firsts, 1.0),
        "done_p50_s": statistics.median(dones) if dones else None,
        "done_max_s": max(dones) if dones else None,
        "statuses": statuses,
        "errors": errors,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/api/progress/", help="a client index is appended")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--events", type=int, default=10, help="events each stream should deliver")
    p.add_argument("--complete-within", type=float, default=15.0)
    p.add_argument("--give-up", type=float, default=30.0)
    p.add_argument("--batch", type=int, default=500, help="connections set up at once")
    args = p.parse_args()
    if args.clients < 1 or args.clients > 20000 or args.give_up > 600 or not 1 <= args.batch <= 5000:
        sys.exit("clients must be 1..20000, --give-up at most 600 s and --batch 1..5000")
    nofile = raise_nofile()
    if nofile < args.clients + 64:
        sys.exit(f"RLIMIT_NOFILE is {nofile}: too low for {args.clients} clients")
    try:
        import uvloop

        result = uvloop.run(main_async(args))
    except ImportError:
        result = asyncio.run(main_async(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
