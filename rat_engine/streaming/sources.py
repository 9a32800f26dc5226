"""Which source runs a response's content (:func:`open_source`), and the two kinds without a
producer of their own:

* :class:`SteppedSource`: an **async** iterator stepped by the stream's own task
  (:mod:`.stepping`): no task, no buffer; what it makes without waiting is coalesced; stopping
  cancels it where it waits. Used when the server reports a lost client by callback.
* :class:`StaticSource`: a value or a list given whole.

Sync iterators run on a :class:`~.pumps.ThreadPump`; async ones under other servers on a
:class:`~.pumps.TaskPump`. Any object that already is a :class:`~.chunk_source.ChunkSource`
(a broadcast ``Subscription``) is used as it is.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .._types import SourceKind
from . import stepping
from .buffer import StreamBuffer
from .chunk_source import ChunkSource, Codec, OwnCancels, close_async
from .pumps import TaskPump, ThreadPump

if TYPE_CHECKING:
    from .stream import Stream

__all__ = ["StaticSource", "SteppedSource", "open_source"]


class SteppedSource(ChunkSource):
    """An async iterator stepped by the stream's own task (see :mod:`.stepping`).

    :meth:`pull` runs the generator until it waits (or ``limit`` items are made) and returns
    what it made; the next :meth:`pull` awaits, on the generator's behalf, what it waits on.
    While it does, :meth:`stop` cancels the stream's task there (taken back through
    ``cancels``), so the generator's ``finally`` runs at once.
    """

    __slots__ = ("_iterator", "_codec", "_limit", "_cancels", "_step", "_waiting")

    kind: SourceKind = "task"

    def __init__(self, iterator: AsyncIterator[Any], codec: Codec, limit: int, cancels: OwnCancels) -> None:
        super().__init__()
        self._iterator = iterator
        self._codec = codec
        self._limit = limit
        self._cancels = cancels
        self._step: stepping.Step | None = None  # the generator's step, while it waits
        self._waiting = False  # pull() is awaiting inside the generator

    def start(self, stream: Stream) -> None:
        pass

    async def pull(self) -> list[bytes]:
        batch: list[bytes] = []
        if self.finished:
            return batch
        codec, limit = self._codec, self._limit
        try:
            step, self._step = self._step, None
            if step is not None:
                self._waiting = True
                try:
                    item = await stepping.finish(step)
                finally:
                    # However finish() ended, the step is over: an item, the end, or an
                    # exception the generator raised (or let through).
                    self._waiting = False
                chunk = codec.chunk(item)
                if chunk is not None:
                    batch.append(chunk)
            while len(batch) < limit:
                item, step = stepping.start_next(self._iterator)
                if step is not None:  # it waits: what it made so far goes out first
                    self._step = step
                    break
                chunk = codec.chunk(item)
                if chunk is not None:
                    batch.append(chunk)
        except StopAsyncIteration:
            self.finished = True
        except asyncio.CancelledError:
            if not self._cancels.take_back():
                raise  # not ours: the server is cancelling this request
            self.finished = True
        except Exception as exc:
            last = codec.failure(exc)
            if last is not None:
                batch.append(last)
            self.finished = self.failed = True
        return batch

    def wake(self) -> None:
        pass  # it wakes when the generator does; keep-alives are written past it meanwhile

    def stop(self) -> None:
        self.finished = True
        if self._waiting:
            self._cancels.cancel()

    async def aclose(self) -> None:
        step, self._step = self._step, None
        if step is not None:
            await stepping.abandon(step)
        await close_async(self._iterator)
        self._cancels.take_back()


class StaticSource(ChunkSource):
    """Chunks known up front (content the handler returned whole: a list, a value)."""

    __slots__ = ("_chunks",)

    kind: SourceKind = "static"

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self._chunks = chunks

    def start(self, stream: Stream) -> None:
        pass

    async def pull(self) -> list[bytes]:
        chunks, self._chunks = self._chunks, []
        self.finished = True
        return chunks

    def wake(self) -> None:
        pass

    def stop(self) -> None:
        self._chunks = []
        self.finished = True


def open_source(
    content: Any,
    codec: Codec,
    buffer_size: int,
    stack_size: int,
    cancels: OwnCancels,
    stepped: bool,
) -> ChunkSource:
    """The source for a response's ``content``; ``stepped``: async iterators run in the
    stream's own task (the server reports a lost client by callback)."""
    if isinstance(content, ChunkSource):
        return content
    if hasattr(content, "__aiter__"):
        iterator = content.__aiter__()
        if stepped:
            return SteppedSource(iterator, codec, buffer_size, cancels)
        return TaskPump(iterator, codec, StreamBuffer(asyncio.get_running_loop(), buffer_size))
    if _is_lazy_iterable(content):
        buffer = StreamBuffer(asyncio.get_running_loop(), buffer_size)
        return ThreadPump(iter(content), codec, buffer, stack_size)
    items = content if isinstance(content, (list, tuple)) else [content]
    chunks = [chunk for chunk in map(codec.chunk, items) if chunk is not None]
    return StaticSource(chunks)


def _is_lazy_iterable(content: Any) -> bool:
    if isinstance(content, (list, tuple, str, bytes, bytearray, dict)):
        return False
    return inspect.isgenerator(content) or hasattr(content, "__iter__")
