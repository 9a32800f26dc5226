"""FlowControl: the only part of a connection an exchange sees (read and write back-pressure)."""

from __future__ import annotations

import asyncio

from rat_engine.server.flow_control import FlowControl


class Transport:
    def __init__(self) -> None:
        self.reading = True
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.reading = False
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.reading = True
        self.calls.append("resume")


def make() -> tuple[FlowControl, Transport]:
    transport = Transport()
    return FlowControl(transport, asyncio.get_running_loop()), transport  # type: ignore[arg-type]


def test_reading_pauses_once_and_a_hold_keeps_it_paused() -> None:
    async def main() -> list[str]:
        flow, transport = make()
        flow.pause_reading()
        flow.pause_reading()  # idempotent: one call reaches the transport
        flow.hold_reading = True  # pipelined requests are queued
        flow.resume_reading()
        assert not transport.reading
        flow.hold_reading = False
        flow.resume_reading()
        assert transport.reading
        return transport.calls

    assert asyncio.run(main()) == ["pause", "resume"]


def test_drain_waits_for_resume_writing() -> None:
    async def main() -> None:
        flow, _ = make()
        await asyncio.wait_for(flow.drain(), 1)  # not paused: returns at once
        flow.pause_writing()
        waiters = [asyncio.ensure_future(flow.drain()) for _ in range(3)]
        await asyncio.sleep(0.01)
        assert not any(w.done() for w in waiters)
        flow.resume_writing()
        await asyncio.wait_for(asyncio.gather(*waiters), 1)
        assert not flow.write_paused

    asyncio.run(main())


def test_a_lost_connection_releases_every_writer() -> None:
    async def main() -> None:
        flow, _ = make()
        flow.pause_writing()
        waiter = asyncio.ensure_future(flow.drain())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        flow.connection_lost()
        await asyncio.wait_for(waiter, 1)
        assert not flow.write_paused

    asyncio.run(main())
