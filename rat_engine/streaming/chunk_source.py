"""The interface a running stream pulls chunks from (:class:`ChunkSource`), and what every
source shares: :class:`Codec` (items to bytes, with log lines that name the route),
:class:`OwnCancels` (cancellations a stream makes of its own task) and the generator closers.
The kinds of source are in :mod:`.sources` and :mod:`.pumps`; a broadcast ``Subscription``
is one too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _json
from .._types import SourceKind

if TYPE_CHECKING:
    from .response import StreamContext, StreamingResponse
    from .stream import Stream

logger = logging.getLogger("rat_engine.streaming")

__all__ = [
    "ChunkEncoder",
    "ChunkSource",
    "Codec",
    "ErrorEncoder",
    "OwnCancels",
    "StreamClosed",
    "close_async",
    "close_sync",
    "close_unstarted",
]

ChunkEncoder = Callable[[Any], "bytes | None"]
#: Turns an exception from the generator into a final chunk (an SSE ``error`` event), or None.
ErrorEncoder = Callable[[BaseException], "bytes | None"]


class StreamClosed(Exception):
    """The consumer has gone; raised inside the producer so it stops at its next ``yield``."""


class ChunkSource(ABC):
    """What a running stream pulls chunks from (the one interface ``Stream`` uses).

    Called on the event loop, in this order: :meth:`open` (may fail: the stream answers 503),
    :meth:`start`, then :meth:`pull` until it returns nothing with :attr:`finished` set, and
    :meth:`aclose` at the end whatever happened. :meth:`stop` and :meth:`wake` may come at any
    time from callbacks (the client left, a timer fired).
    """

    __slots__ = ("finished", "failed")

    kind: SourceKind

    def __init__(self) -> None:
        #: Nothing more will come (the producer ended, or the source was stopped).
        self.finished = False
        #: The producer ended with an exception (its error chunk, if any, was the last one).
        self.failed = False

    async def open(self) -> None:  # noqa: B027 - optional step
        """Prepare before the response starts (a subscription registers and queues its replay)."""

    @abstractmethod
    def start(self, stream: Stream) -> None:
        """Begin producing (start a thread or task); ``stream`` takes direct hand-offs."""

    @abstractmethod
    async def pull(self) -> list[bytes]:
        """The next chunks, waiting while there are none; ``[]`` when woken with nothing new
        (the stream then checks why) or at the end (:attr:`finished`)."""

    @abstractmethod
    def wake(self) -> None:
        """Make a waiting :meth:`pull` return now (a keep-alive is due, the stream stops)."""

    @abstractmethod
    def stop(self) -> None:
        """No more chunks are wanted: make the producer end (idempotent)."""

    async def aclose(self) -> None:  # noqa: B027 - optional step
        """Release what is left (in the stream's task, after the last pull)."""

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until the producer has really ended (a generator's ``finally`` ran)."""
        return True


class OwnCancels:
    """Cancellations of the stream's task that the stream made itself (to interrupt a generator
    where it waits, or a stalled write under a plain ASGI server), so they can be taken back
    instead of ending the request."""

    __slots__ = ("task", "count")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.count = 0

    def cancel(self) -> bool:
        if self.task is None:
            return False
        self.count += 1
        self.task.cancel()
        return True

    def take_back(self) -> bool:
        """Undo our cancellations; False if there were none (the cancellation is someone else's)."""
        task, own = self.task, self.count
        if not own or task is None:
            return False
        self.count = 0
        for _ in range(own):
            if task.cancelling():
                task.uncancel()
        return True


class Codec:
    """Items to chunks for one stream, and the log lines that say which route failed.

    PERF: the error encoder and the route's label are made the first time a stream needs them
    (most never do): ~0.3 KB less per open stream (issue 11: idle memory)."""

    __slots__ = ("encode", "_response", "_ctx", "_path", "_error_chunk")

    def __init__(self, response: StreamingResponse, ctx: StreamContext, path: str) -> None:
        self.encode: ChunkEncoder = response.encoder
        self._response = response
        self._ctx = ctx
        self._path = path
        self._error_chunk: ErrorEncoder | None = None

    @property
    def where(self) -> str:
        """Route and handler (``/api/x (app.py:12 progress)``), for log lines."""
        ctx = self._ctx
        route = ctx.route or self._path
        return f"{route} ({ctx.handler})" if ctx.handler else route

    def error_chunk(self, exc: BaseException) -> bytes | None:
        """What the stream sends for ``exc`` (the format's error event; None: nothing)."""
        if self._error_chunk is None:
            self._error_chunk = self._response.error_encoder(self._ctx)
        return self._error_chunk(exc)

    def chunk(self, item: Any) -> bytes | None:
        """``item`` encoded; an item that cannot be becomes an error chunk (the stream goes on)."""
        try:
            return self.encode(item)
        except Exception as exc:
            logger.error(
                "cannot encode stream item of type %s [%s]: %s%s",
                type(item).__name__,
                self.where,
                exc,
                _culprit(item),
                exc_info=exc,
            )
            return self.error_chunk(exc)

    def failure(self, exc: BaseException) -> bytes | None:
        logger.error("stream generator raised [%s]", self.where, exc_info=exc)
        return self.error_chunk(exc)


def _culprit(item: Any, path: str = "item", depth: int = 0) -> str:
    """Where inside a container the first value JSON cannot encode sits (`` (at item["a"][2]:
    set)``), or "" if the container is not the problem."""
    if depth > 20 or not isinstance(item, (dict, list, tuple)):
        return ""
    pairs = item.items() if isinstance(item, dict) else enumerate(item)
    for key, value in pairs:
        here = f"{path}[{key!r}]"
        try:
            _json.dumps(value)
        except Exception:
            inner = _culprit(value, here, depth + 1)
            return inner or f" (at {here}: {type(value).__name__})"
    return ""


def close_unstarted(content: Any) -> None:
    """Close a generator that will never be run (HEAD, a refused stream): its ``finally`` runs."""
    if inspect.isgenerator(content):
        close_sync(content)
    elif isinstance(content, ChunkSource):
        content.stop()


def close_sync(iterator: Any) -> None:
    close = getattr(iterator, "close", None)
    if close is None:
        return
    try:
        close()
    except RuntimeError as exc:
        # A ``finally: yield ...`` ignores GeneratorExit; nothing more can be sent anyway.
        logger.debug("generator did not close cleanly: %s", exc)
    except Exception:
        logger.exception("generator raised while closing")


async def close_async(iterator: Any) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except RuntimeError as exc:
        logger.debug("async generator did not close cleanly: %s", exc)
    except asyncio.CancelledError:
        pass
    except Exception:
        logger.exception("async generator raised while closing")
