"""The seam between a running stream and a connection: :class:`StreamWire`.

A :class:`~.stream.Stream` writes only through this interface. rat_engine's HTTP/1.1 exchange
implements it natively (``scope["rat.exchange"]``: a lost client is reported by callback, a
chunk can be handed over without a task switch, a stalled client can be dropped). A second
protocol (HTTP/2) implements the same members for one of its streams; nothing in
``streaming/`` changes. :class:`AsgiWire` adapts any other ASGI server (uvicorn's own
protocols, hypercorn, granian) through ``receive``/``send``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from .._types import Receive, Scope, Send

__all__ = ["AsgiWire", "StreamWire", "wire_for"]


class StreamWire(Protocol):
    """What a server offers one streamed response."""

    #: True when :meth:`on_disconnect` is driven by the connection itself (no task waiting in
    #: ``receive()``): async generators may then be stepped by the stream's own task.
    native: bool

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Send the status line and headers (a body of unknown length follows)."""

    async def write(self, body: bytes) -> None:
        """Send ``body``, waiting while the connection is congested (the back-pressure every
        per-stream bound relies on). Once the client has gone it returns without sending; a
        server may also raise ``OSError``."""

    def write_nowait(self, body: bytes) -> bool:
        """Send ``body`` now if the connection takes it without waiting; False: nothing was
        sent (the caller uses :meth:`write`)."""

    @property
    def writable(self) -> bool:
        """:meth:`write_nowait` would take data now (a stage that transforms chunks asks this
        first: what it transformed cannot be taken back)."""

    async def end(self, body: bytes = b"") -> None:
        """Send ``body`` and complete the response."""

    def on_disconnect(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` once when the client goes away (now, if it already has)."""

    def abort(self) -> bool:
        """Drop the connection now, so a stalled :meth:`write` returns. False: this wire cannot
        (the stream then cancels its own task, and the server closes the connection)."""

    def release(self) -> None:
        """The stream is over: forget the disconnect callback."""


class AsgiWire:
    """:class:`StreamWire` over plain ASGI ``receive``/``send`` (any server)."""

    native = False

    __slots__ = ("_receive", "_send", "_watcher")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._watcher: asyncio.Task[None] | None = None

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def write(self, body: bytes) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": True})

    def write_nowait(self, body: bytes) -> bool:
        return False

    @property
    def writable(self) -> bool:
        return False

    async def end(self, body: bytes = b"") -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    def on_disconnect(self, callback: Callable[[], Any]) -> None:
        # The only way plain ASGI reports a lost client: a task waiting in receive().
        self._watcher = asyncio.get_running_loop().create_task(self._watch(callback))

    def abort(self) -> bool:
        return False  # ASGI has no way to drop the connection

    def release(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()

    async def _watch(self, callback: Callable[[], Any]) -> None:
        while True:
            try:
                message = await self._receive()
            except asyncio.CancelledError:
                raise
            except Exception:
                message = {"type": "http.disconnect"}
            if message["type"] == "http.disconnect":
                callback()
                return


def wire_for(scope: Scope, receive: Receive, send: Send) -> StreamWire:
    """The server's own wire when it offers one, else :class:`AsgiWire`."""
    native: StreamWire | None = scope.get("rat.exchange")
    return native if native is not None else AsgiWire(receive, send)
