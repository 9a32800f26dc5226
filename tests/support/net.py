"""Ports and polling (127.0.0.1 only)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

from . import HOST

T = TypeVar("T")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, host: str = HOST, timeout: float = 15.0) -> bool:
    """True once host:port accepts connections, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return True
        time.sleep(0.05)
    return False


def wait_until(
    predicate: Callable[[], T], timeout: float = 5.0, what: str = "condition", *, interval: float = 0.05
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that value.

    Raises ``AssertionError("timed out after <timeout>s waiting for <what>")`` when ``timeout``
    seconds pass first (the predicate is always tried once more at the deadline). ``interval`` is
    keyword-only so that ``wait_until(pred, 10, "20 streams")`` reads as timeout and description.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
