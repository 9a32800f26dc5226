"""One connection's back-pressure, the narrow object an exchange is given instead of the
connection (uvicorn's ``FlowControl`` shape).

* Reading: a request body past the high-water mark pauses reading until the application asks
  for more; while pipelined requests wait their turn the connection *holds* reading paused.
* Writing: the transport's ``pause_writing``/``resume_writing`` set :attr:`write_paused`;
  :meth:`drain` waits until the transport takes data again (or the connection is gone).
"""

from __future__ import annotations

import asyncio

__all__ = ["FlowControl"]


class FlowControl:
    __slots__ = ("transport", "loop", "read_paused", "hold_reading", "write_paused", "_drains")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.read_paused = False
        #: The connection keeps reading paused (pipelined requests are queued).
        self.hold_reading = False
        self.write_paused = False
        self._drains: list[asyncio.Future[None]] | None = None

    # -- reading ---------------------------------------------------------------------------------
    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.hold_reading:
            self.read_paused = False
            self.transport.resume_reading()

    # -- writing ---------------------------------------------------------------------------------
    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._release_drains()

    async def drain(self) -> None:
        """Wait until the transport takes data again (returns at once when it already does)."""
        if not self.write_paused:
            return
        waiter = self.loop.create_future()
        if self._drains is None:
            self._drains = []
        self._drains.append(waiter)
        await waiter

    def connection_lost(self) -> None:
        """Nothing will ever drain: release every waiting writer."""
        self.write_paused = False
        self._release_drains()

    def _release_drains(self) -> None:
        drains, self._drains = self._drains, None
        for waiter in drains or ():
            if not waiter.done():
                waiter.set_result(None)
