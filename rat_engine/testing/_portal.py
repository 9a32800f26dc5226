"""The portal thread running the app's event loop, and one request's queues to it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

logger = logging.getLogger(__name__)

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
_Queue = queue.Queue[tuple[str, Any]]
SHUTDOWN_GRACE = 2.0  # seconds close() lets leftover app tasks finish before cancelling them


def _get(q: _Queue, deadline: float, what: str) -> tuple[str, Any]:
    """Block on a portal queue until `deadline` (time.monotonic()), raising TimeoutError instead of hanging."""
    try:
        return q.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        raise TimeoutError(f"timed out waiting for {what}") from None


class _Portal:
    """An event loop running forever in a daemon thread; the test thread hands it coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="rat-engine-testclient", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
            finally:
                self.loop.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:
            coro.close()
            raise RuntimeError("the TestClient event loop is not running") from None

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed: nothing left to notify
            self.loop.call_soon_threadsafe(callback, *args)

    def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Let app tasks finish for `grace` seconds, cancel the rest, then stop and close the loop."""
        if threading.current_thread() is self._thread:
            self.loop.stop()
            return
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._drain(grace), self.loop).result(grace * 2 + 5)
        except Exception:
            logger.warning("TestClient: could not drain app tasks", exc_info=True)
        self.call_soon(self.loop.stop)
        self._thread.join(grace + 5)

    async def _drain(self, grace: float) -> None:
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=grace)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # mark as retrieved; failures were already reported or logged


class _Connection:
    """One HTTP exchange: ASGI receive/send run in the loop, the test thread reads `events`.

    Events are ("start", (status, headers)), ("body", bytes), ("end", None) when the response is
    complete, ("error", exc) when the app raised, and ("done", None) when the app returned.
    """

    def __init__(self, portal: _Portal, body: bytes, is_head: bool) -> None:
        self.portal, self.body, self.is_head = portal, body, is_head
        self.events: _Queue = queue.Queue()
        self.disconnected = asyncio.Event()  # set in the loop thread only
        self.client_gone = False
        self.request_sent = self.started = self.complete = False

    async def run(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception as exc:
            if self.client_gone:
                logger.debug("ASGI app raised after the client disconnected", exc_info=exc)
            self.events.put(("error", exc))
        finally:
            self.events.put(("done", None))

    async def receive(self) -> dict[str, Any]:
        if not self.request_sent:
            self.request_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("'http.response.start' sent twice")
            self.started = True
            headers = [
                (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                for k, v in message.get("headers", [])
            ]
            self.events.put(("start", (int(message["status"]), headers)))
        elif kind == "http.response.body":
            if not self.started or self.complete:
                raise RuntimeError(
                    f"'http.response.body' sent {'after' if self.complete else 'before'} the response"
                )
            body = bytes(message.get("body", b""))
            if (
                body and not self.is_head and not self.client_gone
            ):  # like servers: drop sends after disconnect
                self.events.put(("body", body))
            if not message.get("more_body", False):
                self.complete = True
                self.disconnected.set()
                self.events.put(("end", None))
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r}")

    def get_event(self, deadline: float, what: str) -> tuple[str, Any]:
        return _get(self.events, deadline, what)

    def disconnect(self) -> None:
        """Called from the test thread: the app's pending receive() returns http.disconnect."""
        if not self.client_gone:
            self.client_gone = True
            self.portal.call_soon(self.disconnected.set)
