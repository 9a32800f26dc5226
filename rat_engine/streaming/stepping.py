"""Step an async iterator from the task that consumes it, with no task of its own.

Why: an async generator stream used to run in a pump task that filled a buffer the writer
task drained. On rat_engine's own server the writer now pulls items itself: an item produced
without waiting costs a plain ``send()`` into the generator (no task switch, no buffer), and a
burst of such items is coalesced into one write. Only when the generator really waits (on a
future, ``asyncio.sleep``) does the writer flush and await that same future on its behalf.
That saves the pump task, its buffer and a task switch per batch (~2 KB per idle stream).

This is what ``asyncio.Task`` does for a coroutine (``Task.__step``): send ``None`` when the
awaited future is done, throw its exception otherwise. The generator runs inside the caller's
task, so ``asyncio.current_task()``, ``asyncio.timeout()`` and context variables behave as in
any code awaited by that task.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Generator
from typing import Any

__all__ = ["Step", "start_next", "finish", "abandon"]


class Step:
    """The generator's ``__anext__()`` awaitable, suspended on ``waits_on``."""

    __slots__ = ("awaitable", "waits_on")

    def __init__(self, awaitable: Any, waits_on: Any) -> None:
        self.awaitable = awaitable
        self.waits_on = waits_on


@types.coroutine
def _bare_yield() -> Generator[None, None, None]:
    yield  # what asyncio.sleep(0) yields: "run the other ready callbacks first"


def start_next(iterator: AsyncIterator[Any]) -> tuple[Any, Step | None]:
    """Run the iterator until it produces an item, ends or waits.

    Returns ``(item, None)`` for an item produced without waiting, ``(None, step)`` when it
    waits (then :func:`finish` the step). Raises ``StopAsyncIteration`` at the end, or what
    the iterator raised.
    """
    awaitable: Any = iterator.__anext__()
    send = getattr(awaitable, "send", None)
    if send is None:  # an __anext__ returning a plain awaitable (not a coroutine-like object)
        awaitable = awaitable.__await__()
        send = awaitable.send
    try:
        waits_on = send(None)
    except StopIteration as done:
        return done.value, None
    return None, Step(awaitable, waits_on)


async def finish(step: Step) -> Any:
    """Await what the step waits on, resume it, until it produces its item (returned)."""
    awaitable, waits_on = step.awaitable, step.waits_on
    while True:
        try:
            if waits_on is None:
                await _bare_yield()
            else:
                # The generator's own await flagged the future "blocking" for a Task to see;
                # this task clears it, as Task.__step does, and awaits the future itself.
                waits_on._asyncio_future_blocking = False
                await waits_on
        except BaseException as exc:  # the future failed, or this task was cancelled
            resume = awaitable.throw
            argument: Any = exc
        else:
            resume = awaitable.send
            argument = None
        try:
            waits_on = resume(argument)
        except StopIteration as done:
            return done.value


async def abandon(step: Step) -> None:
    """End a waiting step by raising ``CancelledError`` in it (its ``finally`` blocks run)."""
    try:
        waits_on = step.awaitable.throw(asyncio.CancelledError())
    except (Exception, asyncio.CancelledError):  # it ended: StopIteration, its own error...
        return
    try:
        await finish(Step(step.awaitable, waits_on))
    except (Exception, asyncio.CancelledError):  # noqa: S110 - what it does after that is over
        pass
