"""The pool that runs plain ``def`` handlers: results, errors, blocking handlers, limits, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rat_engine._threads import HandlerPool


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (lambda: 42, 42),
        (lambda: None, None),
        (lambda: {"a": [1, 2]}, {"a": [1, 2]}),
    ],
)
def test_run_returns_the_value(job, expected) -> None:
    pool = HandlerPool(4)

    async def main():
        return await pool.run(job)

    assert _run(main()) == expected
    pool.shutdown()


@pytest.mark.parametrize(
    ("exc", "expected_type"),
    [
        (ValueError("bad"), ValueError),
        (KeyError("k"), KeyError),
        # An asyncio future cannot carry StopIteration; the handler's error must still arrive.
        (StopIteration("done"), RuntimeError),
    ],
)
def test_an_exception_reaches_the_awaiting_coroutine(exc, expected_type) -> None:
    pool = HandlerPool(4)

    def job():
        raise exc

    async def main():
        with pytest.raises(expected_type):
            await pool.run(job)
        assert await pool.run(lambda: "still serving") == "still serving"

    _run(main())
    pool.shutdown()


def test_the_job_runs_off_the_loop_thread() -> None:
    pool = HandlerPool(4)

    async def main():
        return await pool.run(threading.current_thread)

    worker = _run(main())
    assert worker is not threading.main_thread()
    assert worker.daemon and worker.name.startswith("rat-handler-")
    pool.shutdown()


def test_a_burst_of_fast_jobs_does_not_wake_a_thread_per_job() -> None:
    pool = HandlerPool(64)

    async def main():
        results = await asyncio.gather(*(pool.run(lambda i=i: i * 2) for i in range(500)))
        assert results == [i * 2 for i in range(500)]

    _run(main())
    # One worker takes a burst in turn; another is woken only when none took a job for
    # STALL_CHECK (a busy machine may need a few). The old pool started 64.
    assert 1 <= pool.threads <= 8, pool.threads
    pool.shutdown()


def test_a_blocked_handler_does_not_hold_up_the_jobs_behind_it() -> None:
    pool = HandlerPool(8)
    release = threading.Event()

    async def main():
        blocked = pool.run(lambda: release.wait(20))
        await asyncio.sleep(0.05)  # the blocked job is running
        fast = await asyncio.wait_for(asyncio.gather(*(pool.run(lambda i=i: i) for i in range(20))), 10)
        assert fast == list(range(20))
        assert not blocked.done()
        release.set()
        assert await blocked is True

    _run(main())
    assert pool.threads >= 2
    pool.shutdown()


def test_no_more_than_max_workers_threads() -> None:
    pool = HandlerPool(3)
    release = threading.Event()
    running = []

    def job(i):
        running.append(i)
        release.wait(20)
        return i

    async def main():
        futures = [pool.run(lambda i=i: job(i)) for i in range(6)]
        deadline = time.monotonic() + 10
        while len(running) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # several watchdog checks: none may start a fourth thread
        assert len(running) == 3 and pool.threads == 3
        release.set()
        assert await asyncio.gather(*futures) == list(range(6))

    _run(main())
    pool.shutdown()


def test_a_cancelled_waiter_does_not_break_the_pool() -> None:
    pool = HandlerPool(2)
    release = threading.Event()

    async def main():
        slow = pool.run(lambda: release.wait(20))
        slow.cancel()
        release.set()
        await asyncio.sleep(0.05)
        assert await pool.run(lambda: "ok") == "ok"

    _run(main())
    pool.shutdown()


def test_submit_keeps_the_executor_interface() -> None:
    pool = HandlerPool(2)
    assert pool.submit(lambda a, b=0: a + b, 1, b=2).result(10) == 3
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(10)
    pool.shutdown()


def test_shutdown_cancels_waiting_jobs_and_ends_idle_workers() -> None:
    pool = HandlerPool(1)
    release = threading.Event()
    started = threading.Event()

    def first():
        started.set()
        release.wait(20)
        return 1

    running = pool.submit(first)
    assert started.wait(10)
    waiting = pool.submit(lambda: 2)
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiting.cancelled()
    release.set()
    assert running.result(10) == 1
    for thread in list(pool._threads):
        thread.join(10)
        assert not thread.is_alive()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: 3)


def test_the_watchdog_comes_back_on_a_new_loop_after_its_loop_closed() -> None:
    """A loop closed while calls waited (a test client's loop, a restarted app) must not leave
    the pool believing a watchdog still runs: blocked workers would then hold up new calls."""
    pool = HandlerPool(4)
    release = threading.Event()

    async def first_loop():
        pool.run(lambda: release.wait(20))
        await asyncio.sleep(0.05)  # the worker is blocked
        pool.run(lambda: "queued")  # waits behind it; the watchdog is armed on this loop
        # the loop ends now, before the watchdog fires

    asyncio.run(first_loop())

    async def second_loop():
        pool.run(lambda: release.wait(20))
        return await asyncio.wait_for(pool.run(lambda: "served"), 5)

    try:
        assert asyncio.run(second_loop()) == "served"
    finally:
        release.set()
    pool.shutdown()
