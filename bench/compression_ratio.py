"""Compression ratio and added latency of per-event stream compression, on the real server.

    bench/.venv/bin/python bench/compression_ratio.py [--events 2000] [--runs 3] [--smoke]

Starts a rat_engine app with ``app.enable_compression()`` (defaults: level 6) in this process
(``app.run(blocking=False)`` on 127.0.0.1, port 0) and reads it with raw blocking sockets:

* ratio: a stream of --events repetitive JSON events
  ``{"type":"progress","session_id":"abc123","progress":n,"total":N,"message":"Processing item n of N"}``,
  once per Accept-Encoding (none, gzip, deflate, br, zstd), in two shapes:
  paced (GET /paced: ``await asyncio.sleep(0.001)`` before each event, so every event is a
  write of its own, compressed and flushed alone: the per-event case a progress stream sees)
  and burst (GET /progress: yielded back to back; the server coalesces what the generator
  produced meanwhile into one write, so one flush covers several events). Per coding and
  shape: the response body bytes as received (chunked framing included), the decoded event
  text, the chunks received (one per write), and uncompressed wire bytes / this wire bytes.
* latency: GET /lone, 50 of those events 20 ms apart, each stamped with ``time.time()`` just
  before it is yielded; per event, receipt (after the decompressor) minus the stamp; p50 / max.
  Added latency = p50 with the coding minus p50 without.
* cost: the server's compressor alone (``rat_engine.compression.codecs.make_compressor``, the
  one streams use), µs per event over the same events, no sockets: the CPU each compressed
  event adds.

Medians over --runs. Client and server share this process (one GIL), so the latencies include
that; the added latency is the difference between codings under the same conditions. Writes
bench/results/<stamp>-compression-ratio.{md,json}. 127.0.0.1 only; every read is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from rat_engine import RatApp  # noqa: E402
from rat_engine.compression.codecs import make_compressor  # noqa: E402
from rat_engine.compression.config import CompressionType  # noqa: E402

from loadgen_stream import Dechunk, decompressor  # noqa: E402

HOST = "127.0.0.1"
CODINGS = ["", "gzip", "deflate", "br", "zstd"]  # "" = no Accept-Encoding
LONE_EVENTS, LONE_GAP = 50, 0.02


def event(n: int, total: int) -> dict[str, Any]:
    return {
        "type": "progress",
        "session_id": "abc123",
        "progress": n,
        "total": total,
        "message": f"Processing item {n} of {total}",
    }


def make_app(total: int) -> RatApp:
    app = RatApp(name="bench_compression_ratio")
    app.enable_compression()

    @app.sse("/progress")
    async def progress(request_data):
        for n in range(total):
            yield event(n, total)

    @app.sse("/paced")
    async def paced(request_data):
        for n in range(total):
            await asyncio.sleep(0.001)
            yield event(n, total)

    @app.sse("/lone")
    async def lone(request_data):
        for n in range(LONE_EVENTS):
            await asyncio.sleep(LONE_GAP)
            yield {**event(n, LONE_EVENTS), "t": time.time()}

    return app


class Body:
    """One response read with a blocking socket: head, then the body decoded incrementally."""

    def __init__(self, port: int, path: str, coding: str, timeout: float) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        accept = f"Accept-Encoding: {coding}\r\n" if coding else ""
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n{accept}"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"{path}: closed before the response head")
            data += chunk
        head, _, self.rest = data.partition(b"\r\n\r\n")
        self.head = head.lower()
        if not self.head.startswith(b"http/1.1 200"):
            raise RuntimeError(f"{path}: {head[:40]!r}")
        got = b"content-encoding: " + coding.encode()
        if (got in self.head) != bool(coding) or (not coding and b"content-encoding" in self.head):
            raise RuntimeError(f"{path}: asked for {coding or 'no coding'}, head {head!r}")
        self.dechunk = Dechunk() if b"transfer-encoding: chunked" in self.head else None
        self.decomp = decompressor(coding) if coding else None
        self.wire = self.plain = self.chunks = 0

    def read(self) -> bytes | None:
        """The next decoded bytes (maybe b""), or None at the end of the body."""
        data, self.rest = (self.rest, b"") if self.rest else (self.sock.recv(1 << 16), b"")
        if not data:
            return None
        self.wire += len(data)
        if self.dechunk is not None:
            data = self.dechunk.feed(data)
            self.chunks = self.dechunk.chunks  # one per write of the server
        if self.decomp is not None and data:
            data = self.decomp.decompress(data)
        self.plain += len(data)
        return data

    def close(self) -> None:
        self.sock.close()


def ratio_once(port: int, path: str, coding: str, total: int, timeout: float) -> dict[str, Any]:
    body = Body(port, path, coding, timeout)
    text, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            data = body.read()
            if data is None:
                break
            text.append(data)
    finally:
        body.close()
    decoded = b"".join(text)
    events = decoded.count(b"data: ")
    if events != total:
        raise RuntimeError(f"{coding or 'identity'}: {events} events, expected {total}")
    return {"wire": body.wire, "plain": body.plain, "chunks": body.chunks, "events": events}


def lone_once(port: int, coding: str, timeout: float) -> list[float]:
    body = Body(port, "/lone", coding, timeout)
    lat: list[float] = []
    pending, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(lat) < LONE_EVENTS:
            data = body.read()
            now = time.time()
            if data is None:
                break
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                if line.startswith(b"data: "):
                    lat.append((now - json.loads(line[6:])["t"]) * 1000)
    finally:
        body.close()
    return lat


def codec_cost(total: int) -> dict[str, float]:
    """µs per event for the stream compressor alone: the minimum of 5 passes over the events."""
    frames = [
        f"data: {json.dumps(event(n, total), separators=(',', ':'))}\n\n".encode() for n in range(total)
    ]
    out: dict[str, float] = {}
    for coding in CODINGS[1:]:
        best = float("inf")
        for _ in range(5):
            c = make_compressor(CompressionType(coding), 6)
            t0 = time.perf_counter()
            for f in frames:
                c.compress(f)
            best = min(best, time.perf_counter() - t0)
        out[coding] = 1e6 * best / total
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--smoke", action="store_true", help="one run of 200 events (CI)")
    p.add_argument("--out", type=Path, default=BENCH / "results")
    a = p.parse_args()
    if a.smoke:
        a.events, a.runs = 200, 1
    if not (1 <= a.events <= 100_000 and 1 <= a.runs <= 20 and 0 < a.timeout <= 120):
        p.error("bounded: --events 1..100000, --runs 1..20, --timeout <= 120")

    handle = make_app(a.events).run(host=HOST, port=0, blocking=False, log_level="warning", access_log=False)
    shapes = {"paced": "/paced", "burst": "/progress"}
    ratios: dict[tuple[str, str], list[dict[str, Any]]] = {(sh, c): [] for sh in shapes for c in CODINGS}
    lones: dict[str, list[float]] = {c: [] for c in CODINGS}
    lone_max: dict[str, list[float]] = {c: [] for c in CODINGS}
    try:
        for run in range(a.runs):
            order = CODINGS[run % len(CODINGS) :] + CODINGS[: run % len(CODINGS)]
            for coding in order:
                for shape, path in shapes.items():
                    ratios[shape, coding].append(ratio_once(handle.port, path, coding, a.events, a.timeout))
                lat = lone_once(handle.port, coding, a.timeout)
                if len(lat) != LONE_EVENTS:
                    raise RuntimeError(f"/lone {coding or 'identity'}: {len(lat)} events")
                lones[coding].append(statistics.median(lat))
                lone_max[coding].append(max(lat))
            print(f"  run {run + 1}/{a.runs} done", flush=True)
    finally:
        handle.stop()
    cost = codec_cost(a.events)

    med = statistics.median
    base_p50 = med(lones[""])
    rows, table = (
        [],
        [
            "| Accept-Encoding | shape | wire bytes (median) | wire bytes / event | decoded bytes / event "
            "| chunks (writes) | uncompressed wire / this wire | lone p50 ms | added p50 ms | lone max ms "
            "| compressor µs / event |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ],
    )
    for coding in CODINGS:
        for shape in shapes:
            runs = ratios[shape, coding]
            base_wire = med([r["wire"] for r in ratios[shape, ""]])
            wire = med([r["wire"] for r in runs])
            plain = med([r["plain"] for r in runs])
            chunks = med([r["chunks"] for r in runs])
            row = {
                "coding": coding or "identity",
                "shape": shape,
                "wire_bytes": wire,
                "wire_per_event": wire / a.events,
                "plain_per_event": plain / a.events,
                "chunks": chunks,
                "ratio": base_wire / wire,
                "ratio_runs": [base_wire / r["wire"] for r in runs],
                "lone_p50_ms": med(lones[coding]),
                "lone_p50_runs": lones[coding],
                "added_p50_ms": med(lones[coding]) - base_p50,
                "lone_max_ms": med(lone_max[coding]),
                "codec_us_per_event": cost.get(coding),
            }
            rows.append(row)
            if shape == "paced":
                us = f"{row['codec_us_per_event']:.2f}" if coding else "—"
                lone = (
                    f"{row['lone_p50_ms']:.3f} | {row['added_p50_ms']:+.3f} | {row['lone_max_ms']:.3f} | {us}"
                )
            else:
                lone = "— | — | — | —"
            table.append(
                f"| {coding or '(none)'} | {shape} | {wire:,.0f} | {row['wire_per_event']:.2f} "
                f"| {row['plain_per_event']:.2f} | {chunks:,.0f} | {row['ratio']:.2f}x | {lone} |"
            )

    git = subprocess.run(
        ["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    md = "\n".join(
        [
            f"# Stream compression ratio ({a.events} events, median of {a.runs}, {date}, rat_engine {git.stdout.strip()})",
            "",
            "`app.enable_compression()` defaults (level 6); one stream per coding; lone latency: 50 events "
            "20 ms apart, receipt after decoding minus the server's stamp.",
            "",
            *table,
            "",
        ]
    )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{stamp}-compression-ratio.md").write_text(md)
    report = {"date": date, "commit": git.stdout.strip(), "events": a.events, "runs": a.runs, "rows": rows}
    (a.out / f"{stamp}-compression-ratio.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n" + md)
    print(f"written: {a.out / f'{stamp}-compression-ratio.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
