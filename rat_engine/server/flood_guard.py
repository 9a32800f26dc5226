"""Bounds on what an HTTP/2 peer may make the server do for free (sans-IO: a clock in, a
verdict out).

HTTP/2 lets a client send frames that cost it nine bytes and cost the server work or output:
a ``RST_STREAM`` right after ``HEADERS`` (the "rapid reset" attack, CVE-2023-44487: each
stream would start a request task), ``PING`` and ``SETTINGS`` (each must be acknowledged,
output that grows while the client does not read), empty ``DATA`` frames, ``PRIORITY`` and
unknown frames (parsed for nothing). :class:`FloodGuard` counts them per one-second window; a
connection over a limit is closed with ``GOAWAY(ENHANCE_YOUR_CALM)``.

``CONTINUATION`` floods and oversized header lists are bounded by the ``h2`` library itself
(64 continuation frames; ``SETTINGS_MAX_HEADER_LIST_SIZE``); the number of open streams by
``SETTINGS_MAX_CONCURRENT_STREAMS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["DEFAULT_FLOOD_LIMITS", "FloodGuard"]

#: Frames per second a connection may send of each kind. Why these figures: a browser that
#: leaves a page resets every stream it had at once (up to SETTINGS_MAX_CONCURRENT_STREAMS,
#: 128 by default), so resets allow more than that; PING and SETTINGS are sent a few times per
#: connection by browsers and curl, a keep-alive PING every few seconds by gRPC-style clients.
DEFAULT_FLOOD_LIMITS: Mapping[str, int] = {
    "reset": 256,
    "ping": 50,
    "settings": 50,
    "empty_data": 200,
    "priority": 512,
    "unknown": 100,
}


class FloodGuard:
    """Per-connection counters of frames by kind; :meth:`hit` says when one went over."""

    __slots__ = ("_clock", "_limits", "_counts", "_window_start")

    def __init__(self, clock: Callable[[], float], limits: Mapping[str, int] = DEFAULT_FLOOD_LIMITS) -> None:
        self._clock = clock
        self._limits = limits
        self._counts: dict[str, int] = {}
        self._window_start = clock()

    def hit(self, kind: str) -> bool:
        """Count one frame of ``kind``; True when this connection is over its limit for it."""
        now = self._clock()
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._counts.clear()
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        return count > self._limits.get(kind, 0)
