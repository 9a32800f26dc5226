"""Scenario 11 -- hostile HTTP/2 peers on an h2c port: rapid reset (CVE-2023-44487), PING,
SETTINGS and empty-DATA floods from clients that never read, a CONTINUATION flood, an oversized
header list, and slowloris on the preface. Each attacking connection must be closed (GOAWAY
with ENHANCE_YOUR_CALM where the protocol gives one), no stream may leak a generator, RSS
stays bounded, and a well-behaved client keeps getting answers meanwhile.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import hyperframe.frame
import pytest
from h2.errors import ErrorCodes
from support import HOST
from support.live import live_subprocess

from ._support import APP_SCRIPT, pick, proc_figures, report, settle

HEADER_TIMEOUT = 2.0
ATTACKERS = pick(8, 40)  # concurrent attacking connections per flood
FLOOD_SECONDS = pick(4.0, 20.0)  # an attacker gives up after this long
RSS_GROWTH_LIMIT_MB = 64

pytestmark = pytest.mark.timeout(pick(120, 400))

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = hyperframe.frame.SettingsFrame(0).serialize()


@pytest.fixture(scope="module")
def server() -> Any:
    config = {"run": {"h2c": True, "header_timeout": HEADER_TIMEOUT}}
    with live_subprocess(APP_SCRIPT, env={"REL_APP_CONFIG": json.dumps(config)}) as proc:
        yield proc


def stats(port: int) -> dict[str, Any]:
    """The server's /stats over HTTP/2 (prior knowledge): also proves it still answers."""
    body, _ = h2_get(port, "/stats")
    return dict(json.loads(body))


def h2_get(port: int, path: str, timeout: float = 5.0) -> tuple[bytes, float]:
    """GET ``path`` as a well-behaved HTTP/2 client; returns the body and the seconds it took."""
    started = time.monotonic()
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(
        1, [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")], end_stream=True
    )
    body = b""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(conn.data_to_send())
        while True:
            data = sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed before the response to {path}")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded):
                    return body, time.monotonic() - started
            sock.sendall(conn.data_to_send())


def goaway_code(received: bytes) -> int | None:
    """The error code of the first GOAWAY in the server's bytes, if any."""
    view = memoryview(received)
    offset = 0
    while offset + 9 <= len(view):
        frame, length = hyperframe.frame.Frame.parse_frame_header(view[offset : offset + 9])
        if offset + 9 + length > len(view):
            break
        if isinstance(frame, hyperframe.frame.GoAwayFrame):
            frame.parse_body(view[offset + 9 : offset + 9 + length])
            return int(frame.error_code)
        offset += 9 + length
    return None


def attack(port: int, opening: bytes, batch: Callable[[int], bytes], read: bool) -> dict[str, Any]:
    """One attacking connection: ``opening``, then ``batch(i)`` as fast as the socket takes it
    until the server closes the connection or FLOOD_SECONDS pass. With ``read``, what the
    server sends is read (to find its GOAWAY); without, the attacker never reads (its PING and
    SETTINGS acknowledgements pile up on the server's side)."""
    started = time.monotonic()
    sent = batches = 0
    received = b""
    closed_after: float | None = None
    with socket.create_connection((HOST, port), timeout=FLOOD_SECONDS + 5) as sock:
        sock.sendall(PREFACE + EMPTY_SETTINGS + opening)
        sock.settimeout(0.5)
        while time.monotonic() - started < FLOOD_SECONDS:
            try:
                data = batch(batches)
                sock.sendall(data)
                sent += len(data)
                batches += 1
                if read:
                    sock.setblocking(False)
                    try:
                        chunk = sock.recv(1 << 20)
                        if not chunk:
                            closed_after = time.monotonic() - started
                            break
                        received += chunk
                    except BlockingIOError:
                        pass
                    finally:
                        sock.settimeout(0.5)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                closed_after = time.monotonic() - started
                break
        sock.settimeout(2)
        try:  # whatever the server said last (its GOAWAY), up to the close
            while len(received) < 1 << 24:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                received += chunk
        except OSError:
            pass
        if closed_after is None and time.monotonic() - started < FLOOD_SECONDS + 2:
            closed_after = time.monotonic() - started
    return {"batches": batches, "bytes": sent, "closed_after": closed_after, "goaway": goaway_code(received)}


def flood(
    server: Any, name: str, opening: bytes, batch: Callable[[int], bytes], read: bool
) -> dict[str, Any]:
    port = server.port
    before = proc_figures(server.pid)
    results: list[dict[str, Any]] = []
    probes: list[float] = []
    stop = threading.Event()

    def attacker() -> None:
        results.append(attack(port, opening, batch, read))

    def prober() -> None:
        while not stop.is_set():
            probes.append(h2_get(port, "/ping")[1])
            time.sleep(0.05)

    threads = [threading.Thread(target=attacker) for _ in range(ATTACKERS)]
    probe = threading.Thread(target=prober)
    probe.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(FLOOD_SECONDS + 15)
    stop.set()
    probe.join(10)
    after = proc_figures(server.pid)
    closed = [r["closed_after"] for r in results if r["closed_after"] is not None]
    codes = sorted({r["goaway"] for r in results}, key=str)
    figures = {
        "attackers": ATTACKERS,
        "closed": len(closed),
        "closed_after_max_s": round(max(closed), 3) if closed else None,
        "batches_median": statistics.median(r["batches"] for r in results),
        "goaway_codes": codes,
        "probe_p50_ms": round(statistics.median(probes) * 1000, 1) if probes else None,
        "probe_max_ms": round(max(probes) * 1000, 1) if probes else None,
        "probes": len(probes),
        "rss_mb": f"{before['rss_kb'] / 1024:.1f}->{after['rss_kb'] / 1024:.1f}",
        "rss_growth_mb": (after["rss_kb"] - before["rss_kb"]) / 1024,
    }
    report(
        f"h2 {name}",
        f"{len(closed)}/{ATTACKERS} attackers closed (max {figures['closed_after_max_s']} s, "
        f"median {figures['batches_median']} batches sent), GOAWAY codes {codes}; probe "
        f"{figures['probes']} answers p50 {figures['probe_p50_ms']} ms max {figures['probe_max_ms']} ms; "
        f"RSS {figures['rss_mb']} MB",
        **figures,
    )
    assert len(closed) == ATTACKERS, figures
    assert probes, figures
    assert figures["rss_growth_mb"] < RSS_GROWTH_LIMIT_MB, figures
    return figures


def headers_frame(
    stream_id: int,
    path: bytes = b"/async?n=0&interval=0.05",
    *,
    post: bool = False,
    end_headers: bool = True,
) -> bytes:
    """A request's HEADERS, HPACK-encoded by hand: :method GET or POST (static index 2 or 3)
    and :scheme http (6) indexed, :path (4) and :authority (1) literal without indexing. A GET
    ends the stream; a POST leaves its body to come."""
    frame = hyperframe.frame.HeadersFrame(stream_id)
    frame.data = (b"\x83" if post else b"\x82") + b"\x86\x04" + bytes([len(path)]) + path + b"\x01\x01x"
    if not post:
        frame.flags.add("END_STREAM")
    if end_headers:
        frame.flags.add("END_HEADERS")
    return frame.serialize()


def rst_frame(stream_id: int) -> bytes:
    frame = hyperframe.frame.RstStreamFrame(stream_id)
    frame.error_code = ErrorCodes.CANCEL
    return frame.serialize()


def test_rapid_reset(server: Any) -> None:
    def batch(i: int) -> bytes:  # 50 streams opened and reset at once
        first = 1 + 100 * i
        return b"".join(headers_frame(first + 2 * k) + rst_frame(first + 2 * k) for k in range(50))

    figures = flood(server, "rapid reset", b"", batch, read=True)
    assert set(figures["goaway_codes"]) <= {ErrorCodes.ENHANCE_YOUR_CALM, None}, figures
    assert ErrorCodes.ENHANCE_YOUR_CALM in figures["goaway_codes"], figures
    # Every generator that did start (its reset came in a later read) has been closed.
    after = settle(lambda: (s := stats(server.port))["open_streams"] == 0 and s, 10)
    assert after, stats(server.port)
    generators = after["generators"]
    report(
        "h2 rapid reset streams",
        f"{generators['started']} generators started (resets that came in a later read), "
        f"{generators['finished']} finished; open streams after: {after['open_streams']}",
        **generators,
    )
    assert generators["started"] == generators["finished"]


def test_ping_flood_from_a_client_that_never_reads(server: Any) -> None:
    ping = b"".join(hyperframe.frame.PingFrame(0, opaque_data=b"12345678").serialize() for _ in range(100))
    figures = flood(server, "PING flood", b"", lambda i: ping, read=False)
    assert figures["closed"] == ATTACKERS


def test_settings_flood(server: Any) -> None:
    frames = EMPTY_SETTINGS * 100
    figures = flood(server, "SETTINGS flood", b"", lambda i: frames, read=True)
    # None: the close came while the attacker's frames were unread, so the kernel reset the
    # connection and the GOAWAY before it was lost on the attacker's side.
    assert set(figures["goaway_codes"]) <= {ErrorCodes.ENHANCE_YOUR_CALM, None}, figures


def test_empty_data_flood(server: Any) -> None:
    opening = headers_frame(1, b"/publish", post=True)  # its handler waits for the body
    empty = hyperframe.frame.DataFrame(1, data=b"").serialize() * 100
    figures = flood(server, "empty DATA flood", opening, lambda i: empty, read=True)
    assert figures["closed"] == ATTACKERS


def test_continuation_flood(server: Any) -> None:
    cont = hyperframe.frame.ContinuationFrame(1)
    cont.data = b"\x40\x01a\x01b"  # one more literal header per frame
    frames = cont.serialize() * 50
    figures = flood(
        server, "CONTINUATION flood", headers_frame(1, end_headers=False), lambda i: frames, read=True
    )
    assert figures["goaway_codes"] and None not in figures["goaway_codes"], figures


def test_oversized_header_list(server: Any) -> None:
    value = b"v" * 16000
    literal = b"\x40\x05x-big" + b"\x7f" + _hpack_int(len(value) - 127) + value
    block = b"\x82\x86\x04\x05/ping\x01\x01x" + literal * 5  # ~80 KB > the 64 KB allowed
    chunks = [block[i : i + 16000] for i in range(0, len(block), 16000)]
    first = hyperframe.frame.HeadersFrame(1, data=chunks[0])
    first.flags.add("END_STREAM")
    frames = [first.serialize()]
    for n, chunk in enumerate(chunks[1:], 2):
        cont = hyperframe.frame.ContinuationFrame(1, data=chunk)
        if n == len(chunks):
            cont.flags.add("END_HEADERS")
        frames.append(cont.serialize())
    request = b"".join(frames)
    figures = flood(server, "oversized header list", b"", lambda i: request, read=True)
    assert figures["goaway_codes"] and None not in figures["goaway_codes"], figures


def _hpack_int(rest: int) -> bytes:
    out = b""
    while rest >= 128:
        out += bytes([(rest % 128) + 128])
        rest //= 128
    return out + bytes([rest])


def test_slowloris_on_the_preface(server: Any) -> None:
    """Connections that send the preface (or half of it) and nothing else are closed once
    ``header_timeout`` has passed; a new client is answered meanwhile."""
    count = pick(200, 1000)
    socks: list[socket.socket] = []
    opened = time.monotonic()
    for i in range(count):
        sock = socket.create_connection((HOST, server.port), timeout=10)
        sock.sendall(PREFACE[:10] if i % 2 else PREFACE + EMPTY_SETTINGS)
        socks.append(sock)
    probe = h2_get(server.port, "/ping")[1]
    closed_at: list[float] = []
    for sock in socks:
        sock.settimeout(max(0.1, HEADER_TIMEOUT + 5 - (time.monotonic() - opened)))
        try:
            while sock.recv(65536):
                pass
            closed_at.append(time.monotonic() - opened)
        except OSError:
            pass
        finally:
            sock.close()
    report(
        "h2 slowloris",
        f"{len(closed_at)}/{count} idle HTTP/2 connections closed, median {statistics.median(closed_at):.2f} s, "
        f"max {max(closed_at):.2f} s (header_timeout {HEADER_TIMEOUT} s); probe answered in {probe * 1000:.1f} ms",
        connections=count,
        closed=len(closed_at),
        probe_ms=probe * 1000,
    )
    assert len(closed_at) == count
    assert max(closed_at) < HEADER_TIMEOUT + 4
    assert min(closed_at) >= HEADER_TIMEOUT - 0.2
