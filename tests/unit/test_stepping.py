"""_stepping: an async iterator driven from the consuming task, as asyncio.Task would drive it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rat_engine.streaming import stepping as _stepping


async def drain(iterator: AsyncIterator[Any]) -> tuple[list[Any], int]:
    """Every item, and how many of them needed a wait (the others came synchronously)."""
    items, waited = [], 0
    while True:
        try:
            item, step = _stepping.start_next(iterator)
            if step is not None:
                waited += 1
                item = await _stepping.finish(step)
        except StopAsyncIteration:
            return items, waited
        items.append(item)


class Countdown:
    """A class-based async iterator whose __anext__ is a coroutine."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __aiter__(self) -> Countdown:
        return self

    async def __anext__(self) -> int:
        if self.n == 0:
            raise StopAsyncIteration
        self.n -= 1
        await asyncio.sleep(0)
        return self.n


def test_items_in_order_and_only_real_waits_are_awaited() -> None:
    async def gen() -> AsyncIterator[int]:
        yield 1
        yield 2
        await asyncio.sleep(0.01)  # a future
        yield 3
        await asyncio.sleep(0)  # a bare yield
        yield 4

    assert asyncio.run(drain(gen())) == ([1, 2, 3, 4], 2)
    assert asyncio.run(drain(Countdown(3))) == ([2, 1, 0], 3)


def test_a_failed_future_raises_inside_the_generator() -> None:
    async def gen() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        loop.call_later(0.01, future.set_exception, KeyError("boom"))
        try:
            await future
        except KeyError:
            yield "caught in the generator"

    assert asyncio.run(drain(gen())) == (["caught in the generator"], 1)


def test_the_generator_runs_in_the_consuming_task() -> None:
    seen: list[Any] = []

    async def gen() -> AsyncIterator[str]:
        seen.append(asyncio.current_task())
        try:
            async with asyncio.timeout(0.01):  # needs a current task
                await asyncio.sleep(5)
        except TimeoutError:
            yield "timed out"
        seen.append(asyncio.current_task())

    async def main() -> tuple[list[Any], int]:
        seen.append(asyncio.current_task())
        return await drain(gen())

    assert asyncio.run(main()) == (["timed out"], 1)
    assert seen[0] is seen[1] is seen[2] and seen[0] is not None


def test_cancelling_the_task_cancels_the_generator_where_it_waits() -> None:
    log: list[str] = []

    async def gen() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.sleep(5)
            yield "never"
        finally:
            await asyncio.sleep(0)  # a finally that awaits still completes
            log.append("finally")

    async def main() -> None:
        task = asyncio.ensure_future(drain(gen()))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert log == ["finally"]


def test_abandon_runs_the_finally_of_a_waiting_step() -> None:
    log: list[str] = []

    async def gen() -> AsyncIterator[str]:
        try:
            await asyncio.sleep(5)
            yield "never"
        finally:
            await asyncio.sleep(0)
            log.append("finally")

    async def main() -> None:
        iterator = gen()
        item, step = _stepping.start_next(iterator)
        assert step is not None
        await _stepping.abandon(step)
        await iterator.aclose()  # no "already running": the step is over

    asyncio.run(main())
    assert log == ["finally"]
