"""The app's settings as three objects, and the flat RAT-style keywords that map into them.

``RatApp(limits=Limits(...), stream_settings=StreamSettings(...),
broadcast_settings=BroadcastSettings(...))`` is the primary form. RAT Engine code passes flat
keywords (``RatApp(sse_ping_interval=5, max_streams=100)``); each of those is an alias of one
field (:data:`FLAT_OPTIONS`). A keyword close to a known one (``sse_ping_intervall``) is a typo
and raises ``TypeError`` with "did you mean"; any other keyword is kept in ``app.config`` (RAT
Engine ignores what it does not know, and applications keep their own settings there).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FLAT_OPTIONS", "BroadcastSettings", "Limits", "StreamSettings", "resolve_options"]

logger = logging.getLogger("rat_engine.app")

#: Slow-subscriber policies of broadcast subscriptions (see :mod:`rat_engine.broadcast.subscription`).
POLICIES = ("drop_oldest", "disconnect", "coalesce")


@dataclass(slots=True)
class Limits:
    """What one request or one process may use. Mutable: ``app.limits.max_url_length = 2048``
    takes effect for the next request (each violation is a 4xx or 503, never a crash)."""

    #: Request bodies above this many bytes get 413 (per route: ``max_body_size=``).
    max_body_size: int = 16 * 1024 * 1024
    #: Path plus query string, in bytes (414 beyond).
    max_url_length: int = 8192
    #: Number of request headers (431 beyond).
    max_header_count: int = 100
    #: Total bytes of request headers (431 beyond).
    max_header_bytes: int = 16384
    #: Seconds a client may take to send a request head (408 and close: slowloris protection).
    header_timeout: float = 10.0
    #: Concurrent streams per process (503 beyond).
    max_streams: int = 10_000
    #: Concurrent streams per client address (429 beyond); None: no limit.
    max_streams_per_client: int | None = None
    #: Concurrent sync-generator streams, one thread each (503 beyond).
    max_thread_streams: int = 8_192


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """How streams behave: app-wide, overridable per route (``@app.sse(rule, ping_interval=5)``).
    Frozen: a route's settings are resolved once, when it is registered."""

    #: Seconds without a write before a keep-alive (SSE ``: ping``) is sent; 0 disables.
    ping_interval: float = 15.0
    #: End the stream after this many seconds (the browser reconnects); None: no limit.
    max_duration: float | None = None
    #: Close a client that has not accepted data for this many seconds; None: never.
    send_timeout: float | None = 60.0
    #: Chunks buffered per stream before the generator is held at its ``yield``.
    buffer_size: int = 64
    #: ``retry:`` (ms) sent first, telling browsers how soon to reconnect; None: not sent.
    retry: int | None = None
    #: ``retry:`` (ms) sent to open SSE streams at shutdown, so browsers reconnect to the next
    #: instance after about that long; None: no farewell frame.
    shutdown_retry: int | None = 2000
    #: ``retry:`` (ms) sent with the ``error`` event of a stream whose generator raised, so a
    #: browser does not reconnect at once into the same failure (a reconnect storm); None: not sent.
    error_retry: int | None = 30_000
    #: Stack size for the thread of each sync-generator stream (bytes; 0: Python default).
    thread_stack_size: int = 256 * 1024

    def __post_init__(self) -> None:
        for name in ("ping_interval", "max_duration", "send_timeout"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            ):
                raise ValueError(
                    f"{name} must be a number >= 0{'' if name == 'ping_interval' else ' or None'}"
                )
        if self.ping_interval is None:
            raise ValueError("ping_interval must be a number >= 0 (0 disables pings)")
        if not isinstance(self.buffer_size, int) or self.buffer_size < 1:
            raise ValueError("buffer_size must be an int >= 1")
        for name in ("retry", "shutdown_retry", "error_retry"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be an int >= 0 (milliseconds) or None")

    def merged(self, overrides: Mapping[str, Any]) -> StreamSettings:
        """These settings with ``overrides`` applied (validated; unknown names raise TypeError)."""
        if not overrides:
            return self
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(
                f"unknown stream option(s): {', '.join(sorted(unknown))}{_hint(unknown, ROUTE_STREAM_OPTIONS)}"
            )
        return dataclasses.replace(self, **overrides)


#: Stream settings a route may override (``@app.sse(rule, ping_interval=5)``).
ROUTE_STREAM_OPTIONS = (
    "ping_interval",
    "max_duration",
    "send_timeout",
    "buffer_size",
    "retry",
    "error_retry",
)


@dataclass(frozen=True, slots=True)
class BroadcastSettings:
    """``app.broadcast``'s backend and its per-channel and per-subscriber bounds."""

    #: ``memory://`` (one process) or ``redis://host:6379/0`` (many processes and machines);
    #: None: the ``RAT_BROADCAST_URL`` environment variable, then ``memory://``.
    url: str | None = None
    #: Messages kept per channel for ``Last-Event-ID`` replay (0: no replay).
    history: int = 1000
    #: Seconds a message stays replayable; None: the count limit only.
    history_ttl: float | None = None
    #: Messages queued per slow subscriber before ``policy`` applies.
    max_backlog: int = 256
    #: ``drop_oldest``, ``disconnect`` or ``coalesce``.
    policy: str = "drop_oldest"
    #: ``"replicated"``: ``publish`` returns once a Redis replica has the message (``WAIT``);
    #: None or ``"none"``: Redis's asynchronous replication. The URL's ``?durability=`` wins.
    durability: str | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown broadcast policy {self.policy!r}; use one of {POLICIES}")
        if self.durability not in (None, "none", "replicated"):
            raise ValueError(f"unknown broadcast durability {self.durability!r}; use 'none' or 'replicated'")


#: RAT-style flat keyword -> (settings object, field).
FLAT_OPTIONS: Mapping[str, tuple[str, str]] = {
    "max_body_size": ("limits", "max_body_size"),
    "max_url_length": ("limits", "max_url_length"),
    "max_header_count": ("limits", "max_header_count"),
    "max_header_bytes": ("limits", "max_header_bytes"),
    "header_timeout": ("limits", "header_timeout"),
    "max_streams": ("limits", "max_streams"),
    "max_streams_per_client": ("limits", "max_streams_per_client"),
    "max_thread_streams": ("limits", "max_thread_streams"),
    "sse_ping_interval": ("stream", "ping_interval"),
    "sse_send_timeout": ("stream", "send_timeout"),
    "sse_max_duration": ("stream", "max_duration"),
    "sse_buffer_size": ("stream", "buffer_size"),
    "sse_retry": ("stream", "retry"),
    "sse_thread_stack_size": ("stream", "thread_stack_size"),
    "shutdown_retry": ("stream", "shutdown_retry"),
    "sse_error_retry": ("stream", "error_retry"),
    "broadcast_url": ("broadcast", "url"),
    "broadcast_history": ("broadcast", "history"),
    "broadcast_history_ttl": ("broadcast", "history_ttl"),
    "broadcast_max_backlog": ("broadcast", "max_backlog"),
    "broadcast_policy": ("broadcast", "policy"),
    "broadcast_durability": ("broadcast", "durability"),
}

#: Keywords of ``RatApp()`` itself, so a near miss of those is caught too.
_OWN_KEYWORDS = (
    "name",
    "debug",
    "limits",
    "stream_settings",
    "broadcast_settings",
    "config",
    "handler_threads",
    "shutdown_grace",
)


def _hint(names: set[str] | list[str], known: tuple[str, ...] | list[str]) -> str:
    hints = []
    for name in sorted(names):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if close:
            hints.append(f"{name!r}: did you mean {close[0]!r}?")
    return " (" + "; ".join(hints) + ")" if hints else ""


def resolve_options(
    options: Mapping[str, Any],
    limits: Limits | None,
    stream: StreamSettings | None,
    broadcast: BroadcastSettings | None,
) -> tuple[Limits, StreamSettings, BroadcastSettings, dict[str, Any]]:
    """Map flat keywords into the settings objects; return what is left for ``app.config``.

    Raises:
        TypeError: a keyword is a near miss of a known option (a typo).
        ValueError: a value is out of range.
    """
    fields: dict[str, dict[str, Any]] = {"limits": {}, "stream": {}, "broadcast": {}}
    rest: dict[str, Any] = {}
    known = [*FLAT_OPTIONS, *_OWN_KEYWORDS]
    for key, value in options.items():
        target = FLAT_OPTIONS.get(key)
        if target is not None:
            fields[target[0]][target[1]] = value
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close:
            raise TypeError(
                f"RatApp() got an unexpected keyword argument {key!r}: did you mean {close[0]!r}?"
            )
        rest[key] = value
    if rest:
        logger.warning(
            "RatApp(): %s not a rat_engine option; kept in app.config",
            ", ".join(repr(k) for k in rest) + (" is" if len(rest) == 1 else " are"),
        )
    limits = dataclasses.replace(limits or Limits(), **fields["limits"])  # a copy: apps never share one
    stream = dataclasses.replace(stream or StreamSettings(), **fields["stream"])
    broadcast = dataclasses.replace(broadcast or BroadcastSettings(), **fields["broadcast"])
    return limits, stream, broadcast, rest
