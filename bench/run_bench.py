"""rat_engine benchmarks, side by side with peer frameworks (run it through ``bench/run``).

Scenarios (bench/run --scenario NAME; ``all``, the default, runs every one in this order):
  json          S5: ``wrk -t1 -c64 -d5s`` on GET /json (after a 1 s warm-up) for rat_engine
                (sync / inline / async handlers), a hand-written ASGI app on the same uvicorn
                (the floor), a hand-written RSGI app on granian, Starlette, FastAPI (async def
                and plain def), aiohttp and Flask on gunicorn. Ratios vs FastAPI (async def)
                and vs the raw-ASGI floor.
  json-def      the json run over the rows for a plain ``def`` handler: rat_engine sync (def
                on the handler pool, the RAT style), FastAPI def (its threadpool), FastAPI
                async def (the ratios' base), Flask, aiohttp, raw ASGI (floor).
  json-async    the json run over the ``async def`` rows: rat_engine async, FastAPI async def,
                Starlette, aiohttp, raw ASGI (floor), granian RSGI (raw).
                (Under ``all``, json-def and json-async show the rows of the json run, not
                measured twice.)
  sync-clients  S3: N clients (default 1000, --clients 1..10000) open the seed-style SSE
                route (a plain generator: 10 x yield + time.sleep(1)), in batches of --batch
                connections; how many got all 10 events within 15 s, and how long until all
                finished (given up at 30 s). --clients 5000 is the large size:
                ``bench/run --scenario sync-clients --runs 1 --clients 5000``.
  fanout        S1: N subscribers (default 1000, --clients) on /sub, then POST /start/<M>
                (--messages, default 2000) publishes M small JSON messages + an ``end`` event,
                yielding to the loop (sleep(0)) every 4 messages; deliveries/s, min/max per
                client (losses), server and load-generator CPU.
  fanout-lone   fanout with POST /start_lone/<M>: the publisher yields to the loop after EVERY
                message, so each subscriber gets one write per message (nothing to fold).
                Same rows as fanout (rat_engine broadcast, FastAPI native SSE, sse-starlette,
                aiohttp-sse, the raw asyncio floor, rat_engine gzip/zstd); ratio vs the floor.
  fanout-textbook  the idiom users write, the same hub code in every framework
                (bench/apps/_common.py): each subscriber's handler makes its own
                asyncio.Queue, adds it to a module-level set and sends each ``await
                queue.get()`` item (serialising it itself) until an end item; POST
                /start_textbook/<M> put_nowait()s each message into every queue, one sleep(0)
                per message. Rows: rat_engine (@app.sse async generator yielding dicts),
                FastAPI native SSE, sse-starlette, aiohttp-sse; ratio vs aiohttp-sse.
  fanout-10k    S1 at 10,000 subscribers (--clients overrides) x 200 messages (--messages
                overrides), connections opened --batch at a time within --give-up seconds.
  latency       S1 latency: N subscribers (default 1000) on /sub, then POST
                /start_rate/<R>/<S>: the server publishes --rate messages a second (default 5,
                i.e. 5,000 deliveries/s to 1000 subscribers) for --seconds (default 10), each
                stamped with time.time(); p50/p99/max of (receipt - publish stamp) over every
                delivery, at read time and at kernel arrival (SO_TIMESTAMPNS).
  stream        S2: one client, one stream of --stream-events (200,000) small JSON events from
                an async generator: events/s; plus lone-event latency (50 events 20 ms apart).
  idle          S4: N idle streams (default 5000, --clients): server RSS growth per stream, for
                rat_engine's async generator (/idle) and broadcast subscription (/sub, nothing
                published), FastAPI native SSE, sse-starlette, aiohttp-sse, the raw asyncio
                floor, rat_engine gzip/zstd.
  h2            HTTP/2, driven by h2load (Debian's nghttp2-client), cleartext with prior knowledge
                (h2c) for every server: rat_engine (app.run(h2c=True)) beside hypercorn and
                granian's ASGI mode serving the same Starlette app (and a hand-written ASGI app,
                their floor). (a) --h2-streams (100) SSE streams of --h2-events (5000) small
                events each, all on 1 connection, then 25 on each of 4 connections: events/s =
                events delivered / h2load's time; every body is checked byte for byte. (b) small
                JSON: h2load -c4 -m10 on GET /json for --duration s after --warmup s: req/s.
                Until rat_engine has an HTTP/2 protocol, its row says "unavailable".

fanout, fanout-lone, stream and idle also run two compressed rat_engine rows, "rat_engine gzip" and
"rat_engine zstd": the same app with ``app.enable_compression()`` (env BENCH_COMPRESS=1), and a
load generator that sends ``Accept-Encoding: gzip`` (or zstd) and decodes each stream
incrementally to count its events. A second table beside the scenario's compares them with
the uncompressed rat_engine row: bytes on the wire per event, server CPU per event, the load
generator's CPU. (fanout-textbook, fanout-10k and latency run no compressed rows.)

--smoke runs every row of the chosen scenario (default: all) at tiny sizes and exits 1 if any
row failed or produced nothing (CI: ``bench/run --smoke``).

Each server is pinned to CPU 0 and the load generator to CPU 1 (``taskset``), every server is
started fresh for each run, the order of servers rotates between runs, and the report gives
medians over ``--runs`` with ratios against FastAPI and against the raw-ASGI floor, plus the
CPU time each side used (server: /proc/<pid>/stat of its process tree; load generator:
getrusage of the reaped child). Results go to bench/results/ (JSON + markdown).

Everything is bounded: only 127.0.0.1 is contacted, each load run has a fixed duration, and
servers are stopped by PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Server:
    name: str
    script: str
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""  # what limits this row, for the table
    path: str = "/idle"  # S4: the idle route
    first_event: bool = True  # S4: the route sends one event before going idle
    encoding: str = ""  # S1 fanout / S2 / S4: the load generator sends Accept-Encoding: <this>


JSON_SERVERS = [
    Server(
        "rat_engine sync", "rat_json.py", {"BENCH_VARIANT": "sync"}, "plain def on the 64-thread handler pool"
    ),
    Server(
        "rat_engine inline",
        "rat_json.py",
        {"BENCH_VARIANT": "inline"},
        "plain def, inline=True (on the loop)",
    ),
    Server("rat_engine async", "rat_json.py", {"BENCH_VARIANT": "async"}, "async def"),
    Server("raw ASGI (uvicorn)", "raw_asgi_json.py", {}, "floor: hand-written ASGI, same uvicorn"),
    Server("granian RSGI (raw)", "granian_rsgi_json.py", {}, "hand-written RSGI, Rust HTTP"),
    Server("Starlette", "starlette_json.py", {}, "JSONResponse, uvicorn"),
    Server("FastAPI", "fastapi_json.py", {}, "async def -> dict, uvicorn"),
    Server(
        "FastAPI def",
        "fastapi_json.py",
        {"BENCH_VARIANT": "def"},
        "plain def -> dict, run in FastAPI's threadpool (anyio, 40 threads), uvicorn",
    ),
    Server("aiohttp", "aiohttp_json.py", {}, "web.json_response, uvloop"),
    Server("Flask (gunicorn gthread 1x8)", "flask_json.py", {}, "WSGI, 8 threads"),
]
# The json scenarios: the same wrk run over a subset of JSON_SERVERS' rows, in this order.
# json-def: the rows whose handler is a plain ``def`` (rat_engine's style), json-async: ``async def``;
# both keep FastAPI (async def), the ratio's base, and the floors.
JSON_SCENARIOS: dict[str, list[str]] = {
    "json": [s.name for s in JSON_SERVERS],
    "json-def": [
        "rat_engine sync",
        "FastAPI def",
        "FastAPI",
        "Flask (gunicorn gthread 1x8)",
        "aiohttp",
        "raw ASGI (uvicorn)",
    ],
    "json-async": [
        "rat_engine async",
        "FastAPI",
        "Starlette",
        "aiohttp",
        "raw ASGI (uvicorn)",
        "granian RSGI (raw)",
    ],
}

SSE_SERVERS = [
    Server("rat_engine", "rat_sse_sync.py", {}, "one small thread per sync-generator stream"),
    Server(
        "FastAPI StreamingResponse",
        "fastapi_sse_sync.py",
        {},
        "anyio thread limiter: 40 next() calls at once",
    ),
    Server("sse-starlette", "sse_starlette_sync.py", {}, "anyio thread limiter: 40 next() calls at once"),
    Server(
        "aiohttp-sse (run_in_executor)",
        "aiohttp_sse_sync.py",
        {},
        "default executor: min(32, cpu_count+4) = {executor} threads",
    ),
    Server(
        "Flask (gunicorn gthread, thread per client)",
        "flask_sse_sync.py",
        {},
        "1 worker x max(1000, clients) = {threads} gunicorn threads, one per stream",
    ),
]

ASYNC_SERVERS = [
    Server("rat_engine", "rat_async.py", {}, "broadcast fast path / @app.sse async generator"),
    Server("FastAPI native SSE", "fastapi_sse_async.py", {}, "fastapi.sse EventSourceResponse, uvicorn"),
    Server("sse-starlette", "sse_starlette_async.py", {}, "EventSourceResponse(async gen), uvicorn"),
    Server("aiohttp-sse", "aiohttp_sse_async.py", {}, "sse_response + resp.send, uvloop"),
]
# S1 only (fanout, fanout-10k, latency): what is left without any framework.
FLOOR_SSE = Server(
    "raw asyncio (floor)",
    "raw_asyncio_sse.py",
    {},
    "floor: hand-written asyncio Protocol on uvloop, frame once, transport.write per subscriber",
)
S1_SERVERS = [*ASYNC_SERVERS, FLOOR_SSE]
IDLE_SERVERS = [
    ASYNC_SERVERS[0],
    Server(
        "rat_engine broadcast",
        "rat_async.py",
        {},
        "return app.broadcast.subscribe(...) (no event sent: headers only)",
        path="/sub",
        first_event=False,
    ),
    *ASYNC_SERVERS[1:],
    Server(
        FLOOR_SSE.name,
        FLOOR_SSE.script,
        {},
        "floor: hand-written asyncio Protocol on uvloop, the head and one event, transport kept",
    ),
]
# fanout-textbook: every framework runs the same hub (bench/apps/_common.py): a queue per
# subscriber in a module-level set, its handler serialising each item itself.
TEXTBOOK_SERVERS = [
    Server("rat_engine", "rat_async.py", {}, "@app.sse async generator yielding dicts"),
    Server("FastAPI native SSE", "fastapi_sse_async.py", {}, "fastapi.sse EventSourceResponse, yields dicts"),
    Server(
        "sse-starlette",
        "sse_starlette_async.py",
        {},
        "EventSourceResponse(async gen of {'data': json.dumps})",
    ),
    Server("aiohttp-sse", "aiohttp_sse_async.py", {}, "sse_response + await resp.send(json.dumps(item))"),
]
# S1 fanout variants: (subscriber route, trigger route prefix) given to bench/loadgen_stream.py.
FANOUT_ROUTES = {
    "fanout": ("/sub", "/start"),
    "fanout-10k": ("/sub", "/start"),
    "fanout-lone": ("/sub", "/start_lone"),
    "fanout-textbook": ("/textbook", "/start_textbook"),
}
# fanout, stream, idle: rat_engine with app.enable_compression(), clients accepting one coding.
COMPRESSED_SERVERS = [
    Server(
        f"rat_engine {coding}",
        "rat_async.py",
        {"BENCH_COMPRESS": "1"},
        f"app.enable_compression(); client sends Accept-Encoding: {coding}",
        encoding=coding,
    )
    for coding in ("gzip", "zstd")
]
BASE_ASYNC = "FastAPI native SSE"
# The row the async tables' "vs" column divides by (BASE_ASYNC where a mode is not listed).
ASYNC_BASES = {"fanout-lone": FLOOR_SSE.name, "fanout-textbook": "aiohttp-sse"}

BASE_FASTAPI = "FastAPI"
BASE_FLOOR = "raw ASGI (uvicorn)"
# --scenario's choices, in the order ``all`` runs them.
SCENARIOS = [
    "json", "json-def", "json-async", "sync-clients", "fanout", "fanout-lone", "fanout-textbook", "fanout-10k",
    "latency", "stream", "idle", "h2",
]  # fmt: skip

# h2: rat_engine (h2c=True) beside hypercorn and granian's ASGI mode, all h2c with prior knowledge.
H2_SERVERS = [
    Server("rat_engine", "rat_h2.py", {}, "app.run(h2c=True); @app.sse async generator, @app.json async def"),
    Server(
        "hypercorn (Starlette)",
        "asgi_h2.py",
        {"BENCH_H2_SERVER": "hypercorn"},
        "StreamingResponse / JSONResponse; hypercorn 1 worker on uvloop (HTTP/2: the h2 library)",
    ),
    Server(
        "granian ASGI (Starlette)",
        "asgi_h2.py",
        {"BENCH_H2_SERVER": "granian"},
        "the same Starlette app; granian --interface asgi --http 2, 1 worker, uvloop (HTTP/2 in Rust)",
    ),
    Server(
        "hypercorn (raw ASGI)",
        "asgi_h2.py",
        {"BENCH_H2_SERVER": "hypercorn", "BENCH_H2_APP": "raw"},
        "floor: hand-written ASGI, one send() per event",
    ),
    Server(
        "granian ASGI (raw ASGI)",
        "asgi_h2.py",
        {"BENCH_H2_SERVER": "granian", "BENCH_H2_APP": "raw"},
        "floor: hand-written ASGI, one send() per event",
    ),
]
BASE_H2 = "rat_engine"
# The issue's targets on (a): rat_engine >= 3x this row, and ahead of that one.
H2_TARGETS = (("hypercorn (Starlette)", 3.0), ("granian ASGI (Starlette)", 1.0))


# -- processes ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pin(cpu: str | None) -> list[str]:
    return ["taskset", "-c", cpu] if cpu is not None else []


def children_of(pid: int) -> list[int]:
    """All descendants of ``pid`` (via /proc/*/stat's ppid)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tree_stats(pid: int) -> dict[str, float]:
    """CPU seconds (utime+stime, all threads), threads and RSS of ``pid`` and its descendants."""
    cpu = threads = rss = 0.0
    for p in [pid, *children_of(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # fields[0] is field 3 (state): utime is field 14, stime 15, num_threads 20, rss 24.
        cpu += (int(fields[11]) + int(fields[12])) / CLK_TCK
        threads += int(fields[17])
        rss += int(fields[21]) * PAGE
    return {"cpu": cpu, "threads": threads, "rss": rss}


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK, steal / CLK_TCK


def others(
    m0: tuple[float, float], m1: tuple[float, float], server: float, load: float, wall: float
) -> dict[str, float]:
    """Machine CPU used during a run by anything but the server and the load generator
    (other processes, interrupts, the hypervisor's steal), in % of one core: the noise gauge."""
    busy, steal = m1[0] - m0[0], m1[1] - m0[1]
    return {"other_cpu_pct": max(0.0, 100 * (busy - server - load) / wall), "steal_pct": 100 * steal / wall}


def http_probe(port: int, path: str, timeout: float) -> tuple[int, bytes] | None:
    """One GET with Connection: close; (status, body) or None if nothing answered."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1."):
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body
    except (OSError, ValueError, IndexError):
        return None


class Running:
    """One server process under test: started pinned, probed until it answers, stopped by PID."""

    def __init__(self, server: Server, env: dict[str, str], cpu: str | None, log_dir: Path, tag: str) -> None:
        self.server = server
        self.port = free_port()
        self.log_path = log_dir / f"{tag}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, **env, **server.env, "BENCH_PORT": str(self.port), "PYTHONUNBUFFERED": "1"}
        cmd = [*pin(cpu), sys.executable, str(APPS / server.script), str(self.port)]
        self.proc = subprocess.Popen(
            cmd,
            env=full_env,
            cwd=str(APPS),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 20.0) -> str | None:
        """None when the server answers HTTP; else why not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with status {self.proc.returncode} (see {self.log_path})"
            if http_probe(self.port, "/__bench_ready", 2.0) is not None:
                return None
            time.sleep(0.1)
        return f"not answering after {timeout:.0f} s (see {self.log_path})"

    def stop(self) -> None:
        kids = children_of(self.pid) if self.proc.poll() is None else []
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=5)
        for kid in kids:  # workers the server forked (gunicorn, granian): by PID, if still there
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(kid, signal.SIGKILL)
        self.log.close()


def run_child(cmd: list[str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a load generator; return it and the CPU seconds it used (getrusage of children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, cpu


# -- wrk -----------------------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_wrk(out: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    result["requests"] = int(m.group(1)) if m else None
    for q in ("50", "99"):
        m = re.search(rf"^\s+{q}%\s+([\d.]+\w+)", out, re.M)
        result[f"p{q}_ms"] = _ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return result


def wrk_cmd(args: argparse.Namespace, url: str, duration: float) -> list[str]:
    return [
        *pin(args.load_cpu),
        args.wrk,
        "-t1",
        f"-c{args.connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "--latency",
        url,
    ]


def bench_json_once(args: argparse.Namespace, server: Server, log_dir: Path, tag: str) -> dict[str, Any]:
    running = Running(server, {}, args.server_cpu, log_dir, tag)
    try:
        why = running.wait_ready()
        if why is not None:
            return {"failed": why}
        probe = http_probe(running.port, "/json", 5.0)
        if probe is None or probe[0] != 200 or b'"hello"' not in probe[1]:
            return {"failed": f"GET /json answered {probe!r}"}
        url = f"http://{HOST}:{running.port}/json"
        if args.warmup > 0:
            run_child(wrk_cmd(args, url, args.warmup), timeout=args.warmup + 30)
        m0, s0, t0 = machine_cpu(), tree_stats(running.pid), time.monotonic()
        proc, wrk_cpu = run_child(wrk_cmd(args, url, args.duration), timeout=args.duration + 30)
        s1, wall, m1 = tree_stats(running.pid), time.monotonic() - t0, machine_cpu()
        result = parse_wrk(proc.stdout)
        if proc.returncode != 0 or result["rps"] is None:
            return {"failed": f"wrk exit {proc.returncode}: {proc.stderr.strip()[:200]}"}
        if running.proc.poll() is not None:
            return {"failed": f"server died during the run (see {running.log_path})"}
        result.update(
            server_cpu_s=s1["cpu"] - s0["cpu"],
            load_cpu_s=wrk_cpu,
            wall_s=wall,
            server_cpu_pct=100 * (s1["cpu"] - s0["cpu"]) / wall,
            # Requests per CPU-second of the server: less sensitive to neighbours stealing CPU 0.
            rps_per_cpu=(result["requests"] or 0) / max(1e-9, s1["cpu"] - s0["cpu"]),
            load_cpu_pct=100 * wrk_cpu / wall,
            **others(m0, m1, s1["cpu"] - s0["cpu"], wrk_cpu, wall),
        )
        return result
    finally:
        running.stop()


# -- S3 ------------------------------------------------------------------------------------------
def bench_sse_once(args: argparse.Namespace, server: Server, log_dir: Path, tag: str) -> dict[str, Any]:
    env = {
        "BENCH_SSE_EVENTS": str(args.events),
        "BENCH_SSE_INTERVAL": str(args.interval),
        "BENCH_SSE_CLIENTS": str(args.clients),
    }
    running = Running(server, env, args.server_cpu, log_dir, tag)
    try:
        why = running.wait_ready()
        if why is not None:
            return {"failed": why}
        peak = {"threads": 0.0, "rss": 0.0}
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.25):
                st = tree_stats(running.pid)
                peak["threads"] = max(peak["threads"], st["threads"])
                peak["rss"] = max(peak["rss"], st["rss"])

        sampler = threading.Thread(target=sample, daemon=True)
        cmd = [
            *pin(args.load_cpu),
            sys.executable,
            str(BENCH / "loadgen_sse.py"),
            "--port",
            str(running.port),
            "--clients",
            str(args.clients),
            "--events",
            str(args.events),
            "--complete-within",
            str(args.complete_within),
            "--give-up",
            str(args.give_up),
            "--batch",
            str(args.batch),
        ]
        m0, s0, t0 = machine_cpu(), tree_stats(running.pid), time.monotonic()
        sampler.start()
        try:
            proc, load_cpu = run_child(cmd, timeout=args.give_up + 60)
        finally:
            stop_sampling.set()
            sampler.join()
        s1, wall, m1 = tree_stats(running.pid), time.monotonic() - t0, machine_cpu()
        if proc.returncode != 0:
            return {"failed": f"loadgen exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
        result: dict[str, Any] = json.loads(proc.stdout)
        result.update(
            server_cpu_s=s1["cpu"] - s0["cpu"],
            load_cpu_s=load_cpu,
            wall_s=wall,
            peak_threads=int(peak["threads"]),
            peak_rss_mb=peak["rss"] / 2**20,
            server_alive=running.proc.poll() is None,
            **others(m0, m1, s1["cpu"] - s0["cpu"], load_cpu, wall),
        )
        return result
    finally:
        running.stop()


# -- S1 / S2 / S4 --------------------------------------------------------------------------------
def bench_async_once(
    args: argparse.Namespace, server: Server, log_dir: Path, tag: str, mode: str
) -> dict[str, Any]:
    messages = args.big_messages if mode == "fanout-10k" else args.messages
    env = {"BENCH_FANOUT_MESSAGES": str(messages), "BENCH_STREAM_EVENTS": str(args.stream_events)}
    running = Running(server, env, args.server_cpu, log_dir, tag)
    try:
        why = running.wait_ready()
        if why is not None:
            return {"failed": why}
        cmd = [
            *pin(args.load_cpu),
            sys.executable,
            str(BENCH / "loadgen_stream.py"),
            "fanout" if mode in FANOUT_ROUTES else mode,
            "--port",
            str(running.port),
            "--server-pid",
            str(running.pid),
            "--timeout",
            str(args.give_up),
        ]
        if mode in FANOUT_ROUTES:
            clients = args.big_subscribers if mode == "fanout-10k" else args.subscribers
            sub, trigger = FANOUT_ROUTES[mode]
            cmd += ["--clients", str(clients), "--messages", str(messages), "--batch", str(args.batch)]
            cmd += ["--sub", sub, "--trigger", trigger]
        elif mode == "latency":
            cmd += [
                "--clients",
                str(args.subscribers),
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.seconds),
            ]
            cmd += ["--batch", str(args.batch)]
        elif mode == "stream":
            cmd += ["--messages", str(args.stream_events)]
        else:
            cmd += ["--clients", str(args.idle_clients), "--path", server.path]
            cmd += ["--first-event"] if server.first_event else []
        if server.encoding:
            cmd += ["--encoding", server.encoding]
        m0, t0 = machine_cpu(), time.monotonic()
        s0 = tree_stats(running.pid)
        # Bounded: connecting (batches) + the run itself, each capped at --give-up.
        proc, load_cpu = run_child(cmd, timeout=3 * args.give_up + args.seconds + 60)
        s1, wall, m1 = tree_stats(running.pid), time.monotonic() - t0, machine_cpu()
        if proc.returncode != 0:
            return {"failed": f"loadgen exit {proc.returncode}: {proc.stderr.strip()[-200:]}"}
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if running.proc.poll() is not None:
            return {"failed": f"server died during the run (see {running.log_path})"}
        result.update(
            load_cpu_s=load_cpu,
            total_server_cpu_s=s1["cpu"] - s0["cpu"],
            server_threads=s1["threads"],
            **others(m0, m1, s1["cpu"] - s0["cpu"], load_cpu, wall),
        )
        if mode in FANOUT_ROUTES:
            result["server_cpu_pct"] = 100 * result["server_cpu_s"] / max(1e-9, result["wall_s"])
            result["loss"] = result["expected"] - result["delivered"]
        elif mode == "stream":
            result["server_cpu_pct"] = 100 * result["server_cpu_s"] / max(1e-9, result["wall_s"])
        return result
    finally:
        running.stop()


# -- h2 ------------------------------------------------------------------------------------------
# (a): --h2-streams SSE streams on 1 connection, then the same number spread over 4 connections.
H2_SHAPES = (1, 4)
H2_JSON_CONNECTIONS, H2_JSON_STREAMS = 4, 10  # (b): h2load -c4 -m10 on GET /json


def sse_stream_bytes(events: int) -> int:
    """One /stream body: ``data: {"i":i,"v":"hello"}\\n\\n`` for i in 0 .. events-1."""
    return sum(len(f'data: {{"i":{i},"v":"hello"}}\n\n') for i in range(events))


def rat_engine_speaks_h2() -> bool:
    """Whether the rat_engine under test has an HTTP/2 protocol (a module of it imports the h2
    library). Until it has, its h2 row says "unavailable" instead of failing the run."""
    uses_h2 = re.compile(r"^\s*(?:import h2\b|from h2[. ])", re.M)
    return any(uses_h2.search(f.read_text(errors="replace")) for f in (ROOT / "rat_engine").rglob("*.py"))


def wait_listening(running: Running, timeout: float = 20.0) -> str | None:
    """None once the server's port takes a TCP connection (an HTTP/2-only server answers no
    HTTP/1.1 probe); else why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            return f"exited with status {running.proc.returncode} (see {running.log_path})"
        try:
            with socket.create_connection((HOST, running.port), timeout=1.0):
                return None
        except OSError:
            time.sleep(0.1)
    return f"not listening after {timeout:.0f} s (see {running.log_path})"


def h2_get(port: int, path: str, timeout: float, limit: int = 65536) -> tuple[int, bytes] | str:
    """One GET over cleartext HTTP/2 with prior knowledge (h2c), with the ``h2`` library as the
    client: (status, the body's first ``limit`` bytes), or what went wrong instead."""
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    request = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", f"{HOST}:{port}")]
    conn.send_headers(1, request, end_stream=True)
    status: int | None = None
    body = bytearray()
    settings = ended = False
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(conn.data_to_send())
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = s.recv(65536)
                if not data:
                    return "connection closed " + (
                        "early" if settings else "with no HTTP/2 answer (no SETTINGS)"
                    )
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    return f"not HTTP/2 ({type(exc).__name__}); the server sent {data[:40]!r}"
                for ev in events:
                    if isinstance(ev, h2.events.RemoteSettingsChanged):
                        settings = True
                    elif isinstance(ev, h2.events.ResponseReceived):
                        status = int(dict(ev.headers)[":status"])
                    elif isinstance(ev, h2.events.DataReceived):
                        body += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        ended = True
                    elif isinstance(ev, h2.events.StreamReset):
                        return f"stream reset (error code {ev.error_code})"
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        return f"GOAWAY (error code {ev.error_code})"
                if status is not None and (ended or len(body) >= limit):
                    return status, bytes(body[:limit])
                s.sendall(conn.data_to_send())
        return f"no complete answer within {timeout:g} s"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def parse_h2load(out: str) -> dict[str, Any]:
    r: dict[str, Any] = {}
    m = re.search(r"Application protocol: (\S+)", out)
    r["protocol"] = m.group(1) if m else None
    m = re.search(r"finished in ([\d.]+\w+), ([\d.]+) req/s", out)
    r["finished_s"] = _ms(m.group(1)) / 1e3 if m else None
    r["rps"] = float(m.group(2)) if m else None
    names = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    m = re.search(r"requests: " + ", ".join(rf"(\d+) {n}" for n in names), out)
    r.update(zip(names, (int(x) for x in m.groups()), strict=True) if m else dict.fromkeys(names))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    r["non2xx"] = sum(int(x) for x in m.groups()[1:]) if m else None
    m = re.search(r"traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?\((\d+)\) data", out)
    r["total_bytes"], r["header_bytes"], r["data_bytes"] = (int(x) for x in m.groups()) if m else (None,) * 3
    for label, key in (("time for request", "req"), ("time to 1st byte", "ttfb")):
        m = re.search(rf"{label}:\s+(\S+)\s+(\S+)\s+(\S+)", out)
        r[f"{key}_min_ms"], r[f"{key}_max_ms"], r[f"{key}_mean_ms"] = (
            (_ms(x) for x in m.groups()) if m else (None,) * 3
        )
    return r


def h2load_cmd(args: argparse.Namespace, url: str, conns: int, streams: int, load: list[str]) -> list[str]:
    """h2load on one thread, ``conns`` connections x ``streams`` concurrent streams each; ``load``
    bounds it (``-n N`` or ``-D seconds``). An http:// URL means h2c with prior knowledge."""
    return [*pin(args.load_cpu), args.h2load, "-t1", f"-c{conns}", f"-m{streams}", *load, url]


def h2_measure(
    args: argparse.Namespace, running: Running, cmd: list[str], timeout: float
) -> dict[str, Any] | str:
    """Run one h2load against the server; its figures plus the CPU each side used, or why not."""
    m0, s0, t0 = machine_cpu(), tree_stats(running.pid), time.monotonic()
    proc, load_cpu = run_child(cmd, timeout=timeout)
    s1, wall, m1 = tree_stats(running.pid), time.monotonic() - t0, machine_cpu()
    r = parse_h2load(proc.stdout)
    if proc.returncode != 0 or r["finished_s"] is None or not r["done"]:
        tail = (proc.stdout.strip().splitlines() or [""])[-1]
        return f"h2load exit {proc.returncode}: {(proc.stderr.strip() or tail)[:200]}"
    if r["protocol"] != "h2c":
        return f"h2load negotiated {r['protocol']!r}, not h2c"
    if running.proc.poll() is not None:
        return f"server died during the run (see {running.log_path})"
    cpu = s1["cpu"] - s0["cpu"]
    r.update(
        server_cpu_s=cpu,
        server_cpu_pct=100 * cpu / wall,
        load_cpu_s=load_cpu,
        load_cpu_pct=100 * load_cpu / wall,
        wall_s=wall,
        errors=(r["failed"] or 0) + (r["errored"] or 0) + (r["timeout"] or 0) + (r["non2xx"] or 0),
        **others(m0, m1, cpu, load_cpu, wall),
    )
    return r


def bench_h2_once(args: argparse.Namespace, server: Server, log_dir: Path, tag: str) -> dict[str, Any]:
    """(a) for each of H2_SHAPES: --h2-streams /stream responses of --h2-events events each,
    spread over that many connections, timed by h2load; events/s = events delivered / h2load's
    time. (b) h2load -c4 -m10 on /json for --duration s after a --warmup s run. One server
    process serves the three loads, one after the other."""
    running = Running(server, {"BENCH_H2_EVENTS": str(args.h2_events)}, args.server_cpu, log_dir, tag)
    try:
        why = wait_listening(running)
        if why is not None:
            return {"failed": why}
        answer = h2_get(running.port, "/json", 10.0)
        if isinstance(answer, str) or answer[0] != 200 or b'"hello"' not in answer[1]:
            why = f"GET /json over h2c: {answer!r}"[:200]
            if server.name == BASE_H2 and not args.rat_h2:
                return {
                    "failed": f"unavailable: {why} (this rat_engine has no HTTP/2 protocol)",
                    "unavailable": True,
                }
            return {"failed": why}
        url = f"http://{HOST}:{running.port}"
        result: dict[str, Any] = {}
        per_stream = sse_stream_bytes(args.h2_events)
        shown = []
        for conns in H2_SHAPES:
            per_conn = args.h2_streams // conns
            streams = per_conn * conns
            cmd = h2load_cmd(args, f"{url}/stream", conns, per_conn, ["-n", str(streams)])
            r = h2_measure(args, running, cmd, timeout=args.give_up)
            if isinstance(r, str):
                return {"failed": f"{conns}x{per_conn} streams: {r}"}
            events = (r["succeeded"] or 0) * args.h2_events
            if not events:
                return {"failed": f"{conns}x{per_conn} streams: no stream completed ({r['errors']} errors)"}
            expected = (r["succeeded"] or 0) * per_stream
            k = f"c{conns}_"
            result.update(
                {k + key: r[key] for key in ("finished_s", "ttfb_mean_ms", "ttfb_max_ms", "data_bytes")}
            )
            result.update(
                {k + key: r[key] for key in ("server_cpu_pct", "load_cpu_pct", "other_cpu_pct", "steal_pct")}
            )
            result.update(
                {
                    k + "streams": streams,
                    k + "events": events,
                    k + "events_per_s": events / r["finished_s"],
                    k + "cpu_us_per_event": 1e6 * r["server_cpu_s"] / events,
                    # Counted only when a stream's body is not exactly its events' bytes.
                    k + "errors": r["errors"] + (r["data_bytes"] != expected),
                    k + "expected_bytes": expected,
                }
            )
            shown.append(f"{conns}x{per_conn}: {result[k + 'events_per_s']:,.0f} events/s")
        json_url = f"{url}/json"
        conns, streams = H2_JSON_CONNECTIONS, H2_JSON_STREAMS
        if args.smoke:
            load = ["-n", "400"]
        else:
            if args.warmup > 0:
                warm = h2load_cmd(args, json_url, conns, streams, ["-D", str(max(1, round(args.warmup)))])
                run_child(warm, timeout=args.warmup + 30)
            load = ["-D", str(max(1, round(args.duration)))]
        r = h2_measure(args, running, h2load_cmd(args, json_url, conns, streams, load), args.duration + 30)
        if isinstance(r, str):
            return {"failed": f"json: {r}"}
        result.update({"json_" + key: r[key] for key in ("rps", "req_mean_ms", "req_max_ms", "errors")})
        result.update(
            {
                "json_" + key: r[key]
                for key in ("server_cpu_pct", "load_cpu_pct", "other_cpu_pct", "steal_pct")
            }
        )
        result["json_requests"] = r["done"]
        result["json_cpu_us_per_req"] = 1e6 * r["server_cpu_s"] / max(1, r["done"])
        shown.append(f"json {r['rps']:,.0f} req/s")
        result["h2_shown"] = ", ".join(shown)
        return result
    finally:
        running.stop()


def h2_tables(
    summary: dict[str, dict[str, Any]],
    servers: list[Server],
    rows: dict[str, list[dict[str, Any]]],
    args: argparse.Namespace,
) -> str:
    """(a)'s table, (b)'s table and the issue's targets on (a). "rat_engine ÷ row" is rat_engine's
    median over the row's: above 1, rat_engine is ahead (for CPU per event: it needs less)."""
    base = summary.get(BASE_H2, {})
    shapes = [(c, args.h2_streams // c) for c in H2_SHAPES]

    def each(name: str, key: str) -> str:
        marks = [
            "unavailable" if r.get("unavailable") else "failed" if "failed" in r else fmt(r.get(key))
            for r in rows[name]
        ]
        return ", ".join(marks)

    def ratio(name: str, key: str, lower_is_better: bool = False) -> str:
        b, v = base.get(key), summary[name].get(key)
        if name == BASE_H2 or not b or not v:
            return "—"
        return f"{v / b:.2f}x" if lower_is_better else f"{b / v:.2f}x"

    def down(name: str, head: str, note: str) -> str:
        word = "unavailable" if all(r.get("unavailable") for r in rows[name]) else "failed"
        why = "; ".join(summary[name]["failed"])[:160]
        return f"| {name} | {word} | {why} |" + " |" * (head.count("|") - 5) + f" {note} |"

    head = (
        "| server | "
        + " | ".join(f"{c}x{m}: events/s (median) | runs | rat_engine ÷ row" for c, m in shapes)
        + " | server CPU µs / event, "
        + " / ".join(f"{c}x{m}" for c, m in shapes)
        + " | rat_engine ÷ row (CPU, 1 conn) | first byte on the connection, mean ms (1 conn) "
        "| server / h2load / other CPU (1 conn) | errors | what it is |"
    )
    lines = [head, "|---|" + "---:|---|---:|" * len(shapes) + "---:|---:|---:|---:|---:|---|"]
    for server in servers:
        name, s = server.name, summary[server.name]
        if not s["runs_ok"]:
            lines.append(down(name, head, server.note))
            continue
        cells = [
            f"{fmt(s[f'c{c}_events_per_s'])} | {each(name, f'c{c}_events_per_s')} | {ratio(name, f'c{c}_events_per_s')}"
            for c, _m in shapes
        ]
        cpu = " / ".join(fmt(s[f"c{c}_cpu_us_per_event"], ".2f") for c, _m in shapes)
        errs = sum(s.get(f"c{c}_errors") or 0 for c, _m in shapes)
        lines.append(
            f"| {name} | {' | '.join(cells)} | {cpu} | {ratio(name, 'c1_cpu_us_per_event', True)} | "
            f"{fmt(s['c1_ttfb_mean_ms'], '.1f')} | {fmt(s['c1_server_cpu_pct'], '.0f')}% / "
            f"{fmt(s['c1_load_cpu_pct'], '.0f')}% / {fmt(s['c1_other_cpu_pct'], '.0f')}% | {errs:.0f} | {server.note} |"
        )
    warm = f", after a `-D {max(1, round(args.warmup))}` warm-up run" if args.warmup > 0 else ""
    load = "-n 400` (smoke)" if args.smoke else f"-D {max(1, round(args.duration))}`{warm}"
    head = (
        "| server | req/s (median) | runs | rat_engine ÷ row | request mean / max ms | server CPU µs / request "
        "| rat_engine ÷ row (CPU) | server / h2load / other CPU | errors | what it is |"
    )
    lines += [
        "",
        f"(b) small JSON over h2, GET /json: `h2load -c{H2_JSON_CONNECTIONS} -m{H2_JSON_STREAMS} {load}",
        "",
        head,
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for server in servers:
        name, s = server.name, summary[server.name]
        if not s["runs_ok"]:
            lines.append(down(name, head, server.note))
            continue
        lines.append(
            f"| {name} | {fmt(s['json_rps'])} | {each(name, 'json_rps')} | {ratio(name, 'json_rps')} | "
            f"{fmt(s['json_req_mean_ms'], '.2f')} / {fmt(s['json_req_max_ms'], '.2f')} | "
            f"{fmt(s['json_cpu_us_per_req'], '.1f')} | {ratio(name, 'json_cpu_us_per_req', True)} | "
            f"{fmt(s['json_server_cpu_pct'], '.0f')}% / {fmt(s['json_load_cpu_pct'], '.0f')}% / "
            f"{fmt(s['json_other_cpu_pct'], '.0f')}% | {fmt(s['json_errors'])} | {server.note} |"
        )
    verdicts = []
    for peer, factor in H2_TARGETS:
        for c, m in shapes:
            b, v = base.get(f"c{c}_events_per_s"), summary.get(peer, {}).get(f"c{c}_events_per_s")
            bc, vc = base.get(f"c{c}_cpu_us_per_event"), summary.get(peer, {}).get(f"c{c}_cpu_us_per_event")
            if b and v:
                met = "met" if b >= factor * v else f"missed by {100 * (1 - b / (factor * v)):.0f}%"
                by_cpu = f", by server CPU per event {vc / bc:.2f}x" if bc and vc else ""
                verdicts.append(f"{c}x{m} vs {peer}: {b / v:.2f}x (target ≥ {factor:g}x: {met}{by_cpu})")
    if verdicts:
        lines += ["", "Targets on (a): " + "; ".join(verdicts) + "."]
    return "\n".join(lines)


H2_KEYS = [
    *(f"c{c}_{key}" for c in H2_SHAPES for key in (
        "events_per_s", "events", "streams", "finished_s", "ttfb_mean_ms", "ttfb_max_ms", "data_bytes", "expected_bytes",
        "cpu_us_per_event", "server_cpu_pct", "load_cpu_pct", "other_cpu_pct", "steal_pct", "errors",
    )),
    "json_rps", "json_requests", "json_req_mean_ms", "json_req_max_ms", "json_cpu_us_per_req", "json_server_cpu_pct",
    "json_load_cpu_pct", "json_other_cpu_pct", "json_steal_pct", "json_errors",
]  # fmt: skip


def errors_text(r: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in (r.get("errors") or {}).items())


def async_table(
    mode: str,
    summary: dict[str, dict[str, Any]],
    servers: list[Server],
    rows: dict[str, list[dict[str, Any]]],
) -> str:
    key = "events_per_s" if mode in FANOUT_ROUTES or mode == "stream" else "kb_per_stream"
    key = "p99_ms" if mode == "latency" else key
    base_name = ASYNC_BASES.get(mode, BASE_ASYNC)
    base = summary.get(base_name, {}).get(key)
    vs_base = "vs " + ("FastAPI native" if base_name == BASE_ASYNC else base_name)
    if mode in FANOUT_ROUTES:
        head = (
            f"| server | deliveries/s (median) | runs | {vs_base} | subscribed (connect s) | delivered / expected "
            "| min / max per client | wall s | server CPU | loadgen CPU | other CPU | errors | what it is |\n"
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
        )
    elif mode == "latency":
        head = (
            f"| server | p50 / p99 / max ms (median) | p99 runs | p99 {vs_base} | at kernel arrival p50 / p99 / max ms "
            "| delivered / expected | deliveries/s | subscribed | server CPU | loadgen CPU | other CPU | errors | what it is |\n"
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
        )
    elif mode == "stream":
        head = (
            f"| server | events/s (median) | runs | {vs_base} | events | server CPU | lone latency p50 / max ms "
            "| other CPU | what it is |\n|---|---:|---|---:|---:|---:|---:|---:|---|"
        )
    else:
        head = (
            f"| server | KB per idle stream (median) | runs | {vs_base} | streams open | RSS base → all MB "
            "| server threads | errors | what it is |\n|---|---:|---|---:|---:|---:|---:|---|---|"
        )
    lines = [head]
    for server in servers:
        s = summary[server.name]
        if s["runs_ok"] == 0:
            lines.append(
                f"| {server.name} | failed | {'; '.join(s['failed'])[:120]} | | | | | | {server.note} |"
            )
            continue
        spec = {"idle": ".1f", "latency": ".2f"}.get(mode, ",.0f")
        each = ", ".join(fmt(r.get(key), spec) if "failed" not in r else "failed" for r in rows[server.name])
        val = s[key]
        vs = f"{val / base:.2f}x" if base and val else "—"
        last = [r for r in rows[server.name] if "failed" not in r][-1]
        if mode in FANOUT_ROUTES:
            lines.append(
                f"| {server.name} | {fmt(val)} | {each} | {vs} | {fmt(s['subscribed'])} / {fmt(s['subscribers'])} "
                f"({fmt(s['connect_s'], '.1f')}) | {fmt(s['delivered'])} / {fmt(s['expected_all'])} | "
                f"{fmt(s['min_per_client'])} / {fmt(s['max_per_client'])} | {fmt(s['wall_s'], '.2f')} | "
                f"{fmt(s['server_cpu_pct'], '.0f')}% | {fmt(s['load_cpu_pct'], '.0f')}% | {fmt(s['other_cpu_pct'], '.0f')}% | "
                f"{errors_text(last)} | {server.note} |"
            )
        elif mode == "latency":
            ms = "{:.2f} / {:.2f} / {:.2f}"
            lines.append(
                f"| {server.name} | {ms.format(s['p50_ms'], s['p99_ms'], s['max_ms']) if s['max_ms'] is not None else '—'} "
                f"| {each} | {vs} | "
                f"{ms.format(s['arrival_p50_ms'], s['arrival_p99_ms'], s['arrival_max_ms']) if s['arrival_max_ms'] is not None else '—'} "
                f"| {fmt(s['delivered'])} / {fmt(s['expected_all'])} | {fmt(s['events_per_s'])} | "
                f"{fmt(s['subscribed'])} / {fmt(s['subscribers'])} | {fmt(s['server_cpu_pct'], '.0f')}% | "
                f"{fmt(s['load_cpu_pct'], '.0f')}% | {fmt(s['other_cpu_pct'], '.0f')}% | {errors_text(last)} | {server.note} |"
            )
        elif mode == "stream":
            lines.append(
                f"| {server.name} | {fmt(val)} | {each} | {vs} | {fmt(s['events'])} | {fmt(s['server_cpu_pct'], '.0f')}% | "
                f"{fmt(s['lone_p50_ms'], '.2f')} / {fmt(s['lone_max_ms'], '.2f')} | {fmt(s['other_cpu_pct'], '.0f')}% | {server.note} |"
            )
        else:
            lines.append(
                f"| {server.name} | {fmt(val, '.1f')} | {each} | {vs} | {fmt(s['streams'])} | "
                f"{fmt(s['base_rss_mb'], '.0f')} → {fmt(s['rss_mb'], '.0f')} | {fmt(s['server_threads'])} | "
                f"{errors_text(last)} | {server.note} |"
            )
    return "\n".join(lines)


def compression_table(mode: str, summary: dict[str, dict[str, Any]], servers: list[Server]) -> str:
    """The compressed rows beside the uncompressed rat_engine row: wire bytes per event, the
    decoded bytes per event, server CPU µs per event (and vs uncompressed), load generator CPU."""
    names = ["rat_engine"] + [s.name for s in servers if s.encoding]
    if mode == "idle":
        lines = [
            "| server | Accept-Encoding | KB per idle stream (median) | vs uncompressed | streams open |",
            "|---|---|---:|---:|---:|",
        ]
    else:
        lines = [
            "| server | Accept-Encoding | events/s (median) | vs uncompressed | wire bytes / event "
            "| decoded bytes / event | wire / decoded | events per chunk | server CPU µs / event | vs uncompressed "
            "| loadgen CPU s (% of wall) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    base = summary.get("rat_engine", {})
    for name in names:
        s = summary.get(name)
        if not s or s["runs_ok"] == 0:
            continue
        coding = name.removeprefix("rat_engine").strip() or "(none)"
        if mode == "idle":
            vs = s["kb_per_stream"] / base["kb_per_stream"] if base.get("kb_per_stream") else None
            lines.append(
                f"| {name} | {coding} | {fmt(s['kb_per_stream'], '.1f')} | {fmt(vs, '.2f')}x | {fmt(s['streams'])} |"
            )
            continue
        events = s["delivered"] if mode in FANOUT_ROUTES else s["events"]
        wire = s["wire_bytes"] / events if s.get("wire_bytes") and events else None
        plain = s["plain_bytes"] / events if s.get("plain_bytes") and events else None
        cpu_us = 1e6 * s["server_cpu_s"] / events if s.get("server_cpu_s") and events else None
        b_events = base.get("delivered") if mode in FANOUT_ROUTES else base.get("events")
        b_us = 1e6 * base["server_cpu_s"] / b_events if base.get("server_cpu_s") and b_events else None
        vs_rate = s["events_per_s"] / base["events_per_s"] if base.get("events_per_s") else None
        lines.append(
            f"| {name} | {coding} | {fmt(s['events_per_s'])} | {fmt(vs_rate, '.2f')}x | {fmt(wire, '.2f')} | "
            f"{fmt(plain, '.2f')} | {fmt(wire / plain if wire and plain else None, '.3f')} | "
            f"{fmt(events / s['writes'] if s.get('writes') else None, '.1f')} | {fmt(cpu_us, '.2f')} | {fmt(cpu_us / b_us if cpu_us and b_us else None, '.2f')}x | "
            f"{fmt(s['load_cpu_s_run'], '.2f')} ({fmt(s['load_cpu_pct'], '.0f')}%) |"
        )
    return "\n".join(lines)


# -- reporting -----------------------------------------------------------------------------------
def median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(value: float | None, spec: str = ",.0f", none: str = "—") -> str:
    return none if value is None else format(value, spec)


def summarize(rows: dict[str, list[dict[str, Any]]], keys: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, runs in rows.items():
        ok = [r for r in runs if "failed" not in r]
        summary: dict[str, Any] = {"runs_ok": len(ok), "runs": len(runs)}
        summary["failed"] = [r["failed"] for r in runs if "failed" in r]
        for key in keys:
            summary[key] = median([r.get(key) for r in ok])
        out[name] = summary
    return out


def json_table(
    summary: dict[str, dict[str, Any]], servers: list[Server], runs: dict[str, list[dict[str, Any]]]
) -> str:
    base_fa = summary.get(BASE_FASTAPI, {}).get("rps")
    base_floor = summary.get(BASE_FLOOR, {}).get("rps")
    lines = [
        "| server | req/s (median) | runs (req/s) | vs FastAPI (async def) | vs raw ASGI | req per server CPU-s (vs raw) "
        "| p50 / p99 ms | server CPU | wrk CPU | other CPU | what it is |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for server in servers:
        s = summary[server.name]
        if s["runs_ok"] == 0:
            lines.append(
                f"| {server.name} | failed | {'; '.join(s['failed'])[:120]} | | | | | | | | {server.note} |"
            )
            continue
        each = ", ".join(fmt(r.get("rps")) if "failed" not in r else "failed" for r in runs[server.name])
        rps = s["rps"]
        vs_fa = f"{rps / base_fa:.2f}x" if base_fa else "—"
        vs_floor = f"{rps / base_floor:.2f}x" if base_floor else "—"
        lat = f"{fmt(s['p50_ms'], '.2f')} / {fmt(s['p99_ms'], '.2f')}"
        floor_eff = summary.get(BASE_FLOOR, {}).get("rps_per_cpu")
        eff = fmt(s["rps_per_cpu"]) + (f" ({s['rps_per_cpu'] / floor_eff:.2f}x)" if floor_eff else "")
        errs = (s.get("non2xx") or 0) + (s.get("socket_errors") or 0)
        note = server.note + (f"; {errs:.0f} errors" if errs else "")
        lines.append(
            f"| {server.name} | {fmt(rps)} | {each} | {vs_fa} | {vs_floor} | {eff} | {lat} | "
            f"{fmt(s['server_cpu_pct'], '.0f')}% | {fmt(s['load_cpu_pct'], '.0f')}% | "
            f"{fmt(s['other_cpu_pct'], '.0f')}% | {note} |"
        )
    return "\n".join(lines)


def sse_table(summary: dict[str, dict[str, Any]], servers: list[Server], args: argparse.Namespace) -> str:
    lines = [
        f"| server | completed ≤{args.complete_within:g} s (of {args.clients}) | completed by {args.give_up:g} s "
        "| all done after | events received (clients with ≥1) | first event p50 / max | per-client done p50 / max | server CPU s | loadgen CPU s "
        "| peak threads | peak RSS MB | other CPU | errors | what limits it |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    executor = min(32, (os.cpu_count() or 1) + 4)
    for server in servers:
        s = summary[server.name]
        note = server.note.format(executor=executor, threads=max(1000, args.clients))
        if s["runs_ok"] == 0:
            lines.append(
                f"| {server.name} | failed | {'; '.join(s['failed'])[:120]} | | | | | | | | | | {note} |"
            )
            continue
        all_done = (
            f"{s['all_done_s']:.1f} s" if s["all_done_s"] is not None else f"not all (>{args.give_up:g} s)"
        )
        errors = s.get("errors_text") or ""
        lines.append(
            f"| {server.name} | {fmt(s['completed_within'])} | {fmt(s['completed_total'])} | {all_done} | "
            f"{fmt(s['events_received'])} ({fmt(s['clients_with_events'])}) | "
            f"{fmt(s['first_event_p50_s'], '.2f')} / {fmt(s['first_event_max_s'], '.2f')} s | "
            f"{fmt(s['done_p50_s'], '.1f')} / {fmt(s['done_max_s'], '.1f')} s | "
            f"{fmt(s['server_cpu_s'], '.1f')} | {fmt(s['load_cpu_s'], '.1f')} | {fmt(s['peak_threads'])} | "
            f"{fmt(s['peak_rss_mb'], '.0f')} | {fmt(s['other_cpu_pct'], '.0f')}% | {errors} | {note} |"
        )
    return "\n".join(lines)


def environment(args: argparse.Namespace) -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    packages = [
        "rat_engine", "uvicorn", "httptools", "uvloop", "orjson", "starlette", "fastapi", "sse-starlette",
        "aiohttp", "aiohttp-sse", "flask", "werkzeug", "gunicorn", "granian", "anyio", "hypercorn", "h2",
    ]  # fmt: skip
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    git = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "rat_engine"], capture_output=True, text=True
    )
    wrk = subprocess.run([args.wrk or "true", "--version"], capture_output=True, text=True)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "rat_engine_commit": git.stdout.strip() + (" (rat_engine/ modified)" if dirty.stdout.strip() else ""),
        "wrk": (wrk.stdout + wrk.stderr).splitlines()[0] if (wrk.stdout + wrk.stderr) else "",
        "pinning": f"server on CPU {args.server_cpu}, load on CPU {args.load_cpu}"
        if args.server_cpu
        else "none",
        "packages": {p: version(p) for p in packages},
    }


# -- main ----------------------------------------------------------------------------------------
def select(servers: list[Server], only: str | None) -> list[Server]:
    if not only:
        return servers
    wanted = [w.strip().lower() for w in only.split(",")]
    return [s for s in servers if any(w in s.name.lower() for w in wanted)]


def run_scenario(
    title: str,
    servers: list[Server],
    once: Any,
    args: argparse.Namespace,
    log_dir: Path,
) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {s.name: [] for s in servers}
    if not servers:  # --only matched no row of this scenario
        print(f"  [{title}] no row matches --only {args.only!r}", flush=True)
        return rows
    for run in range(args.runs):
        k = run % len(servers)
        order = servers[k:] + servers[:k]  # rotate, so drift does not always hit the same row
        for server in order:
            tag = f"{title}-{re.sub(r'[^a-z0-9]+', '_', server.name.lower()).strip('_')}-run{run + 1}"
            started = time.monotonic()
            try:
                result = once(args, server, log_dir, tag)
            except Exception as exc:  # noqa: BLE001 - a broken row must not stop the others
                result = {"failed": f"{type(exc).__name__}: {exc}"[:200]}
            rows[server.name].append(result)
            if "failed" in result:
                shown = result["failed"]
            elif "h2_shown" in result:
                shown = result["h2_shown"]
            elif "rps" in result:
                shown = f"{result['rps']:,.0f} req/s"
            elif result.get("p99_ms") is not None:
                shown = (
                    f"p50 {result['p50_ms']:.2f} / p99 {result['p99_ms']:.2f} / max {result['max_ms']:.2f} ms, "
                    f"{result['delivered']:,} of {result['expected_all']:,} delivered"
                )
            elif "kb_per_stream" in result:
                shown = f"{result['streams']} streams, {fmt(result['kb_per_stream'], '.1f')} KB/stream"
            elif "events_per_s" in result:
                shown = f"{fmt(result['events_per_s'])} events/s"
                if "subscribed" in result:
                    shown += (
                        f", {result['subscribed']:,} of {result['subscribers']:,} subscribed, "
                        f"loadgen CPU {fmt(result.get('load_cpu_pct'), '.0f')}%"
                    )
            else:
                shown = f"{result['completed_within']} completed"
            print(
                f"  [{title} run {run + 1}/{args.runs}] {server.name}: {shown} ({time.monotonic() - started:.1f} s)",
                flush=True,
            )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--scenario",
        choices=[*SCENARIOS, "all"],
        default="all",
    )
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0, help="wrk seconds per run (json)")
    p.add_argument("--warmup", type=float, default=1.0, help="wrk warm-up seconds before each run (json)")
    p.add_argument("--connections", type=int, default=64, help="wrk -c (json)")
    p.add_argument(
        "--clients",
        type=int,
        default=1000,
        help="1..10000: SSE clients (sync-clients; 5000 is the large size), subscribers (fanout*, latency; "
        "fanout-10k: 10000), idle streams (idle: 5000)",
    )
    p.add_argument("--events", type=int, default=10, help="events per stream (sync-clients)")
    p.add_argument("--interval", type=float, default=1.0, help="time.sleep between events (sync-clients)")
    p.add_argument(
        "--messages",
        type=int,
        default=None,
        help="messages per subscriber (fanout, fanout-lone, fanout-textbook 2000; fanout-10k 200)",
    )
    p.add_argument("--rate", type=int, default=5, help="messages published per second (latency)")
    p.add_argument("--seconds", type=int, default=10, help="seconds of publishing (latency)")
    p.add_argument(
        "--batch", type=int, default=500, help="connections opened at once (sync-clients, fanout*, latency)"
    )
    p.add_argument("--stream-events", type=int, default=200_000, help="events in the one stream (stream)")
    p.add_argument("--h2-events", type=int, default=5000, help="events per SSE stream (h2)")
    p.add_argument(
        "--h2-streams",
        type=int,
        default=100,
        help="SSE streams per h2load run (h2): on 1 and on 4 connections",
    )
    p.add_argument("--complete-within", type=float, default=15.0)
    p.add_argument("--give-up", type=float, default=30.0)
    p.add_argument("--only", help="comma-separated substrings of server names to run")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and load generator to CPUs")
    p.add_argument(
        "--smoke", action="store_true", help="tiny runs of every row (CI); exit 1 if any row failed"
    )
    p.add_argument("--out", type=Path, default=BENCH / "results")
    args = p.parse_args()

    if args.smoke:
        args.runs, args.duration, args.warmup = 1, 1.0, 0.0
        args.clients, args.events, args.interval = 50, 2, 0.2
    # --clients: S3 clients, S1 subscribers (default 1000; fanout-10k: 10000), S4 idle streams
    # (default 5000).
    clients_given = any(a == "--clients" or a.startswith("--clients=") for a in sys.argv[1:])
    args.subscribers = args.clients
    args.idle_clients = args.clients if clients_given else 5000
    args.big_subscribers = args.clients if clients_given else 10_000
    args.big_messages = args.messages if args.messages is not None else 200
    if args.messages is None:
        args.messages = 2000
    if args.smoke:
        args.subscribers, args.idle_clients, args.messages, args.stream_events = 20, 300, 50, 2000
        # the large sizes' code paths (several connection batches), at tiny sizes
        args.big_subscribers, args.big_messages, args.batch = 300, 20, 20
        args.seconds = 1
        args.h2_events, args.h2_streams = 50, 8
    if not (
        1 <= args.messages <= 100_000
        and 1 <= args.big_messages <= 100_000
        and 1 <= args.stream_events <= 2_000_000
    ):
        p.error("bounded runs only: --messages 1..100000, --stream-events 1..2000000")
    if not (1 <= args.h2_events <= 100_000 and len(H2_SHAPES) <= args.h2_streams <= 100):
        p.error("bounded runs only: --h2-events 1..100000, --h2-streams 4..100")
    if args.idle_clients > 10000 or args.big_subscribers > 10000:
        p.error("bounded runs only: --clients 1..10000")
    if not (1 <= args.rate <= 1000 and 1 <= args.seconds <= 120 and 1 <= args.batch <= 2000):
        p.error("bounded runs only: --rate 1..1000, --seconds 1..120, --batch 1..2000")
    if not (1 <= args.runs <= 20 and 1 <= args.duration <= 120 and 0 <= args.warmup <= 30):
        p.error("bounded runs only: --runs 1..20, --duration 1..120, --warmup 0..30")
    if not (1 <= args.clients <= 10000 and args.give_up <= 300 and args.events * args.interval <= 120):
        p.error("bounded runs only: --clients 1..10000, --give-up <= 300, events*interval <= 120 s")

    args.wrk = shutil.which("wrk") or ""
    if (args.scenario in JSON_SCENARIOS or args.scenario == "all") and not args.wrk:
        print("wrk not found: install it (apt-get install wrk)", file=sys.stderr)
        return 2
    args.h2load = shutil.which("h2load") or ""
    if args.scenario == "h2" and not args.h2load:
        print("h2load not found: install it (apt-get install nghttp2-client)", file=sys.stderr)
        return 2
    args.rat_h2 = rat_engine_speaks_h2()
    can_pin = not args.no_pin and shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2
    cpus = sorted(os.sched_getaffinity(0))
    args.server_cpu, args.load_cpu = (str(cpus[0]), str(cpus[1])) if can_pin else (None, None)

    # Servers and load generators inherit this: 1000+ sockets need more than the usual 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    # Each side holds one socket per connection (10,000 for fanout-10k) plus its own files.
    need = max(args.clients, args.idle_clients, args.big_subscribers) + 256
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
        print(f"RLIMIT_NOFILE hard limit {hard} is below the {need} files this run needs", file=sys.stderr)
        return 2

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    label = "smoke" if args.smoke else args.scenario
    args.out.mkdir(parents=True, exist_ok=True)
    log_dir = args.out / "logs" / f"{stamp}-{label}"
    log_dir.mkdir(parents=True, exist_ok=True)

    env = environment(args)
    report: dict[str, Any] = {"environment": env, "args": {k: v for k, v in vars(args).items() if k != "out"}}
    md: list[str] = [
        f"# rat_engine benchmarks ({label}, {env['date']})",
        "",
        f"CPU: {env['cpu']} x{env['cpus']}; {env['pinning']}; Python {env['python']}; rat_engine {env['rat_engine_commit']}; "
        f"{env['wrk']}",
        "",
    ]
    failed_rows: list[str] = []
    t_start = time.monotonic()

    # json, json-def, json-async: one wrk run per row; a row already measured in this invocation
    # (``all`` runs json first, with every row) is shown again in the subsets, not run again.
    json_measured: dict[str, list[dict[str, Any]]] = {}
    json_by_name = {s.name: s for s in JSON_SERVERS}
    for mode, names in JSON_SCENARIOS.items():
        if args.scenario not in (mode, "all"):
            continue
        servers = select([json_by_name[n] for n in names], args.only)
        todo = [s for s in servers if s.name not in json_measured]
        what = {"json": "", "json-def": " (plain def handlers)", "json-async": " (async def handlers)"}[mode]
        reused = (
            f"; {len(servers) - len(todo)} row(s) from the json run above" if len(todo) < len(servers) else ""
        )
        print(
            f"S5 {mode}{what}: wrk -t1 -c{args.connections} -d{args.duration:g}s (warm-up {args.warmup:g} s), "
            f"{args.runs} run(s){reused}"
        )
        if todo:
            json_measured.update(run_scenario(mode, todo, bench_json_once, args, log_dir))
        rows = {s.name: json_measured[s.name] for s in servers}
        keys = [
            "rps", "rps_per_cpu", "p50_ms", "p99_ms", "non2xx", "socket_errors", "server_cpu_s", "load_cpu_s", "server_cpu_pct",
            "load_cpu_pct", "other_cpu_pct", "steal_pct",
        ]  # fmt: skip
        summary = summarize(rows, keys)
        table = json_table(summary, servers, rows)
        report[mode] = {"runs": rows, "median": summary}
        md += [
            f"## S5 {mode}{what}: `wrk -t1 -c{args.connections} -d{args.duration:g}s` on GET /json, "
            f"median of {args.runs}{' (the json run above)' if not todo else ''}",
            "",
            "CPU columns: % of one core used during the measured run by the server (its process tree), by wrk, "
            "and by everything else on the machine (other processes, interrupts, steal: the noise gauge).",
            "",
            table,
            "",
        ]
        prefix = "" if mode == "json" else f"{mode}: "
        failed_rows += [
            prefix + s_.name for s_ in todo if summary[s_.name]["runs_ok"] == 0 or not summary[s_.name]["rps"]
        ]

    if args.scenario in ("sync-clients", "all"):
        servers = select(SSE_SERVERS, args.only)
        print(
            f"S3 sync-clients: {args.clients} clients, {args.events} events x {args.interval:g} s, "
            f"{args.runs} run(s)"
        )
        rows = run_scenario("sse", servers, bench_sse_once, args, log_dir)
        keys = [
            "completed_within", "completed_total", "all_done_s", "events_received", "clients_with_events", "first_event_p50_s", "first_event_max_s",
            "done_p50_s", "done_max_s", "server_cpu_s", "load_cpu_s", "peak_threads", "peak_rss_mb", "gave_up",
            "other_cpu_pct", "steal_pct",
        ]  # fmt: skip
        summary = summarize(rows, keys)
        for name, s in summary.items():
            ok = [r for r in rows[name] if "failed" not in r]
            errs: dict[str, int] = {}
            for r in ok:
                for k, v in r.get("errors", {}).items():
                    errs[k] = errs.get(k, 0) + v
                for k, v in r.get("statuses", {}).items():
                    if k != "200":
                        errs[f"HTTP {k}"] = errs.get(f"HTTP {k}", 0) + v
            s["errors_text"] = ", ".join(f"{k}: {v}" for k, v in errs.items())
            # all_done_s is None when some client never finished: the median must say so too.
            if any(r.get("all_done_s") is None for r in ok):
                s["all_done_s"] = None
        table = sse_table(summary, servers, args)
        report["sync_clients"] = {"runs": rows, "median": summary}
        md += [
            f"## S3 sync-clients: {args.clients} clients at once on a sync generator "
            f"({args.events} x yield + time.sleep({args.interval:g})), median of {args.runs}",
            "",
            table,
            "",
        ]
        failed_rows += [n for n, s in summary.items() if s["runs_ok"] == 0 or not s["completed_total"]]

    async_titles = {
        "fanout": (
            f"S1 fanout: {args.subscribers} subscribers x {args.messages} messages",
            f"## S1 fanout: {args.subscribers} subscribers on /sub, POST /start/{args.messages}, median of {args.runs}",
        ),
        "fanout-lone": (
            f"S1 fanout-lone: {args.subscribers} subscribers x {args.messages} messages, one per loop turn",
            f"## S1 fanout-lone: {args.subscribers} subscribers on /sub, POST /start_lone/{args.messages} "
            f"(the publisher yields to the loop after every message), median of {args.runs}",
        ),
        "fanout-textbook": (
            f"S1 fanout-textbook: {args.subscribers} subscribers x {args.messages} messages, a queue per subscriber",
            f"## S1 fanout-textbook: {args.subscribers} subscribers on /textbook (each an async generator over "
            f"its own asyncio.Queue), POST /start_textbook/{args.messages} (put_nowait into every queue, "
            f"sleep(0) after every message), median of {args.runs}",
        ),
        "fanout-10k": (
            f"S1 fanout-10k: {args.big_subscribers} subscribers x {args.big_messages} messages",
            f"## S1 fanout-10k: {args.big_subscribers} subscribers on /sub (opened {args.batch} at a time), "
            f"POST /start/{args.big_messages}, median of {args.runs}",
        ),
        "latency": (
            f"S1 latency: {args.subscribers} subscribers, {args.rate} messages/s for {args.seconds} s",
            f"## S1 latency: {args.subscribers} subscribers on /sub, POST /start_rate/{args.rate}/{args.seconds} "
            f"({args.rate * args.subscribers:,} deliveries/s for {args.seconds} s), publish stamp to receipt, "
            f"median of {args.runs}",
        ),
        "stream": (
            f"S2 stream: one stream of {args.stream_events} events + lone latency (50 x 20 ms)",
            f"## S2 stream: one client, {args.stream_events:,} events from an async generator; "
            f"lone-event latency (50 events, 20 ms apart), median of {args.runs}",
        ),
        "idle": (
            f"S4 idle: {args.idle_clients} idle streams",
            f"## S4 idle: {args.idle_clients} idle streams, server RSS growth per stream "
            f"(after all minus after the first 200), median of {args.runs}",
        ),
    }
    for mode, (banner, heading) in async_titles.items():
        if args.scenario not in (mode, "all"):
            continue
        if mode == "idle":
            servers = select([*IDLE_SERVERS, *COMPRESSED_SERVERS], args.only)
        elif mode in ("fanout", "fanout-lone"):
            servers = select([*S1_SERVERS, *COMPRESSED_SERVERS], args.only)
        elif mode == "fanout-textbook":
            servers = select(TEXTBOOK_SERVERS, args.only)
        elif mode in ("fanout-10k", "latency"):
            servers = select(S1_SERVERS, args.only)
        else:
            servers = select([*ASYNC_SERVERS, *COMPRESSED_SERVERS], args.only)
        print(f"{banner}, {args.runs} run(s)")
        rows = run_scenario(
            mode, servers, lambda a, s_, d, t, m=mode: bench_async_once(a, s_, d, t, m), args, log_dir
        )
        keys = [
            "events_per_s", "delivered", "expected", "min_per_client", "max_per_client", "wall_s", "server_cpu_s",
            "server_cpu_pct", "events", "lone_p50_ms", "lone_max_ms", "kb_per_stream", "streams", "base_rss_mb",
            "rss_mb", "server_threads", "load_cpu_s", "other_cpu_pct", "steal_pct", "subscribers", "subscribed",
            "connect_s", "expected_all", "load_cpu_pct", "load_cpu_s_run", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms",
            "arrival_p50_ms", "arrival_p99_ms", "arrival_max_ms", "wire_bytes", "plain_bytes", "writes",
        ]  # fmt: skip
        summary = summarize(rows, keys)
        report[mode] = {"runs": rows, "median": summary}
        md += [heading, "", async_table(mode, summary, servers, rows), ""]
        if any(s.encoding for s in servers):
            md += [
                f"Compressed streams ({mode}): `app.enable_compression()`, the client sends Accept-Encoding "
                "and decodes incrementally. Wire bytes: the response body as received (chunked framing "
                "included); decoded: the event text after decompression.",
                "",
                compression_table(mode, summary, servers),
                "",
            ]
        for name, s in summary.items():
            ok = [r for r in rows[name] if "failed" not in r]
            bad = s["runs_ok"] == 0
            if mode in FANOUT_ROUTES or mode == "latency":
                bad = bad or not s["delivered"]
            elif mode == "stream":
                bad = bad or not s["events"] or not any(r.get("lone_events") for r in ok)
            else:
                bad = bad or s["kb_per_stream"] is None
            if bad:
                failed_rows.append(f"{mode}: {name}")

    if args.scenario in ("h2", "all") and not args.h2load:
        note = "h2 skipped: h2load not found (apt-get install nghttp2-client)"
        print(note, file=sys.stderr)
        md += [f"## h2: {note}", ""]
        if os.environ.get("RAT_REQUIRE_ALL") == "1":
            failed_rows.append("h2 (no h2load)")
    elif args.scenario in ("h2", "all"):
        servers = select(H2_SERVERS, args.only)
        shapes = ", ".join(f"{c}x{args.h2_streams // c}" for c in H2_SHAPES)
        h2load_version = subprocess.run(
            [args.h2load, "--version"], capture_output=True, text=True
        ).stdout.strip()
        print(
            f"h2: (a) {args.h2_streams} SSE streams x {args.h2_events} events ({shapes} connections x streams), "
            f"(b) h2load -c{H2_JSON_CONNECTIONS} -m{H2_JSON_STREAMS} on /json; h2c (prior knowledge); "
            f"{args.runs} run(s)"
            + (
                ""
                if args.rat_h2
                else "; this rat_engine has no HTTP/2 protocol: its row will say unavailable"
            )
        )
        rows = run_scenario("h2", servers, bench_h2_once, args, log_dir)
        summary = summarize(rows, H2_KEYS)
        report["h2"] = {"runs": rows, "median": summary, "h2load": h2load_version}
        md += [
            f"## h2: HTTP/2 over cleartext with prior knowledge (h2c) for every server, {h2load_version}, "
            f"median of {args.runs}",
            "",
            f"(a) SSE streams multiplexed: `h2load -c C -m M -n {args.h2_streams}` on /stream, each response "
            f'{args.h2_events:,} events `data: {{"i":i,"v":"hello"}}` from an async generator; events/s = '
            "events delivered / h2load's time. \"rat_engine ÷ row\": rat_engine's median over the row's (> 1: "
            "rat_engine is faster). CPU columns: % of one core during the 1-connection run.",
            "",
            h2_tables(summary, servers, rows, args),
            "",
        ]
        for name, s in summary.items():
            if s["runs_ok"] == 0 and not all(r.get("unavailable") for r in rows[name]):
                failed_rows.append(f"h2: {name}")
            elif s["runs_ok"] == 0:
                print(f"h2: {name}: {s['failed'][0]}", file=sys.stderr)

    md.append(
        f"Total time: {time.monotonic() - t_start:.0f} s. Server logs: {os.path.relpath(log_dir, ROOT)}"
    )
    text = "\n".join(md) + "\n"
    (args.out / f"{stamp}-{label}.md").write_text(text)
    (args.out / f"{stamp}-{label}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print()
    print(text)
    print(f"written: {args.out / f'{stamp}-{label}.md'} and .json")
    if failed_rows:
        print(
            f"rows that failed or produced nothing (in S3: no client completed): {', '.join(failed_rows)}",
            file=sys.stderr,
        )
        if args.smoke:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
