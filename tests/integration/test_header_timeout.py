"""Slow or silent clients cannot hold a connection open without sending a request head."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from rat_engine import RatApp


@pytest.fixture(scope="module")
def server():
    app = RatApp(name="slow")

    @app.json("/ok")
    def ok(request_data):
        return {"ok": True}

    handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="error", header_timeout=0.5)
    try:
        yield handle
    finally:
        handle.stop()


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    sock.settimeout(limit)
    started, data = time.monotonic(), b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data, time.monotonic() - started
        data += chunk


def test_silent_connection_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        data, elapsed = _read_until_closed(sock, 5)
    assert elapsed < 3
    assert data.startswith(b"HTTP/1.1 408")


def test_byte_at_a_time_head_is_cut_off(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        started = time.monotonic()
        for byte in b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)
            if time.monotonic() - started > 4:
                break
        data, _ = _read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 4.5


def test_normal_clients_and_keep_alive_unaffected(server):
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
        assert client.get("/ok").json() == {"ok": True}
        time.sleep(0.8)  # idle between requests is the keep-alive timeout's business (5 s)
        assert client.get("/ok").json() == {"ok": True}
