"""Scenario 3 -- slowloris: many connections send their request head a byte at a time (and
reconnect when cut off). Each is answered 408 / closed once ``header_timeout`` (2 s) has passed,
and meanwhile a new client still gets its first SSE event promptly (< 1 s).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import statistics
import threading
import time
from collections import Counter
from typing import Any

import pytest
from support import HOST
from support.live import live_subprocess, run_live

from rat_engine import RatApp

from ._support import APP_SCRIPT, pick, proc_figures, raise_nofile, report, settle, stats

HEADER_TIMEOUT = 2.0
SLOTS = pick(1_000, 5_000)  # concurrent slowloris connections
ATTACK = pick(6.0, 30.0)  # seconds of attack (slots reconnect when cut off)
MAX_CONNECTIONS = pick(5_000, 100_000)
DRIP = pick(0.5, 1.0)  # seconds between two header bytes of one connection
CUT_MARGIN = 2.5  # a cut may come this late after header_timeout on a loaded 2-core machine
FIRST_EVENT_LIMIT = 1.0

pytestmark = pytest.mark.timeout(pick(90, 240))


def probe_first_event(port: int, path: str) -> float:
    """Seconds from connect to the first SSE ``data:`` line (blocking socket, own thread)."""
    started = time.monotonic()
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
        buf = b""
        while b"\ndata:" not in buf:
            data = sock.recv(65536)
            if not data:
                raise AssertionError(f"stream closed before the first event: {buf!r}")
            buf += data
        assert buf.startswith(b"HTTP/1.1 200"), buf[:200]
    return time.monotonic() - started


async def attack(port: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    attack_end = loop.time() + ATTACK
    made = 0
    outcomes: Counter[str] = Counter()
    cut_after: list[float] = []

    async def slot(index: int) -> None:
        nonlocal made
        await asyncio.sleep((index % 100) * 0.01)  # spread the first connects a little
        while loop.time() < attack_end and made < MAX_CONNECTIONS:
            head = iter(b"X-Slow-Header: " + b"a" * 1000)  # a valid, never-finished header line
            made += 1
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port, limit=4096), 10)
            except (TimeoutError, OSError):
                outcomes["connect failed"] += 1
                await asyncio.sleep(0.1)
                continue
            t0 = loop.time()
            read = asyncio.ensure_future(reader.read(4096))
            try:
                writer.write(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
                give_up = t0 + HEADER_TIMEOUT + CUT_MARGIN + 5
                while not read.done() and loop.time() < give_up:
                    await asyncio.wait({read}, timeout=DRIP)
                    if not read.done() and loop.time() < attack_end and not writer.is_closing():
                        writer.write(bytes([next(head, ord("a"))]))  # one more header byte
                if not read.done():
                    outcomes["never cut"] += 1
                    read.cancel()
                    continue
                cut_after.append(loop.time() - t0)
                try:
                    data = read.result()
                except (ConnectionError, OSError):
                    outcomes["reset"] += 1
                    continue
                if data.startswith(b"HTTP/1.1 408"):
                    outcomes["408"] += 1
                elif not data:
                    outcomes["closed"] += 1
                else:
                    outcomes[f"other: {data[:40]!r}"] += 1
            finally:
                if not read.done():
                    read.cancel()
                writer.transport.abort()

    started = loop.time()
    await asyncio.gather(*(slot(i) for i in range(SLOTS)))
    return {
        "made": made,
        "outcomes": dict(outcomes),
        "cut_after": cut_after,
        "seconds": loop.time() - started,
    }


def test_slowloris_does_not_starve_new_clients() -> None:
    raise_nofile()
    config = {"run": {"header_timeout": HEADER_TIMEOUT}, "app": {"sse_ping_interval": 0}}
    with live_subprocess(str(APP_SCRIPT), env={"REL_APP_CONFIG": json.dumps(config)}, grace=10) as server:
        port, pid = server.port, server.pid
        stats(port)
        baseline = proc_figures(pid)
        probes: list[tuple[str, float]] = []
        probe_errors: list[str] = []
        stop = threading.Event()
        peak_fds = 0

        def prober() -> None:
            nonlocal peak_fds
            time.sleep(0.5)
            for i in itertools.count():
                if stop.is_set() or i >= 1000:
                    return
                path = ("/sync?interval=0.05", "/async?interval=0.05")[i % 2]
                try:
                    probes.append((path, probe_first_event(port, path)))
                except Exception as exc:  # noqa: BLE001 - reported below
                    probe_errors.append(repr(exc))
                peak_fds = max(peak_fds, proc_figures(pid)["fds"])
                stop.wait(0.2)

        thread = threading.Thread(target=prober, name="slowloris-prober", daemon=True)
        thread.start()
        try:
            result = asyncio.run(attack(port))
        finally:
            stop.set()
            thread.join(15)
        settled = settle(lambda: proc_figures(pid)["fds"] <= baseline["fds"] + 2, 10)
        final = proc_figures(pid)
        final_stats = stats(port)
        times = [t for _, t in probes]
        cut = result["cut_after"]
        outcomes = result["outcomes"]
        report(
            "slowloris",
            f"{SLOTS} concurrent byte-a-time heads for {ATTACK:.0f}s ({result['made']} connections): "
            f"{outcomes.get('408', 0)} got 408, {outcomes.get('closed', 0) + outcomes.get('reset', 0)} closed "
            f"without it, {outcomes.get('never cut', 0)} never cut; cut after median "
            f"{statistics.median(cut) if cut else 0:.2f}s / max {max(cut) if cut else 0:.2f}s "
            f"(header_timeout {HEADER_TIMEOUT}s); {len(times)} probe streams, first event median "
            f"{statistics.median(times) * 1000 if times else 0:.0f} ms / max {max(times) * 1000 if times else 0:.0f} ms; "
            f"server fds peak {peak_fds}, back to {final['fds']} (baseline {baseline['fds']})",
            slots=SLOTS,
            attack_seconds=ATTACK,
            connections=result["made"],
            outcomes=outcomes,
            cut_median_s=round(statistics.median(cut), 3) if cut else None,
            cut_max_s=round(max(cut), 3) if cut else None,
            probes=len(times),
            probe_errors=probe_errors,
            first_event_median_ms=round(statistics.median(times) * 1000, 1) if times else None,
            first_event_max_ms=round(max(times) * 1000, 1) if times else None,
            server_fds=(baseline["fds"], peak_fds, final["fds"]),
            open_streams_after=final_stats["open_streams"],
        )
        assert not probe_errors, probe_errors
        assert len(times) >= 5, probes
        assert max(times) < FIRST_EVENT_LIMIT, sorted(times)[-5:]
        assert result["made"] >= SLOTS
        assert outcomes.get("never cut", 0) == 0, outcomes
        assert outcomes.get("connect failed", 0) == 0, outcomes
        assert set(outcomes) <= {"408", "closed", "reset"}, outcomes
        assert outcomes.get("408", 0) > 0
        assert max(cut) < HEADER_TIMEOUT + CUT_MARGIN, sorted(cut)[-5:]
        assert settled, (baseline, final)
        assert final_stats["open_streams"] == 0


def test_header_timeout_is_per_server() -> None:
    from rat_engine.server.protocol import RatHttpProtocol as HeaderTimeoutProtocol

    saved = HeaderTimeoutProtocol.header_timeout
    try:
        with run_live(RatApp(name="short-head-timeout"), header_timeout=0.3):
            pass
        with run_live(RatApp(name="default-head-timeout")) as handle:
            with socket.create_connection((HOST, handle.port), timeout=1.5) as sock:
                try:
                    data = sock.recv(100)  # the default (10 s) must not cut us within 1.5 s
                except TimeoutError:
                    data = None
        report(
            "header_timeout_scope",
            "a server started after app.run(header_timeout=0.3) in the same process, with no "
            f"header_timeout of its own: silent connection {'cut: ' + repr(data[:30]) if data is not None else 'kept'} "
            "within 1.5 s",
            cut=data is not None,
        )
        assert data is None, data
    finally:
        HeaderTimeoutProtocol.header_timeout = saved
