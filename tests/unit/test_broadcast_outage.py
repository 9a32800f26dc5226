"""What the Redis reader treats as "the broker is unavailable" (reconnect quietly) and what as a
bug (log a traceback): in-process, table-driven."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from rat_engine.broadcast.redis_clients import during_outage, suppress_outage


def _raised_while_handling(first: BaseException, second: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise second  # noqa: B904 (implicit chaining is the point: __context__)
    except BaseException as exc:
        return exc


def _caused_by(cause: BaseException, exc: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


def _cycle() -> BaseException:
    a, b = ValueError("a"), KeyError("b")
    a.__context__, b.__context__ = b, a
    return a


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (RedisConnectionError("Connection closed by server."), True),
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError(), True),
        # redis-py reconnecting a connection that another coroutine tore down meanwhile
        (_raised_while_handling(RedisConnectionError("closed"), AttributeError("'NoneType' object")), True),
        (_caused_by(OSError("reset"), RuntimeError("wrapped")), True),
        (AttributeError("'NoneType' object has no attribute 'writelines'"), False),
        (ResponseError("WRONGTYPE Operation against a key"), False),
        (_raised_while_handling(ValueError("x"), KeyError("y")), False),
        (_cycle(), False),
    ],
)
def test_during_outage(exc: BaseException, outage: bool) -> None:
    assert during_outage(exc) is outage


def test_suppress_outage_swallows_an_outage_and_lets_a_bug_through() -> None:
    with suppress_outage():
        raise _raised_while_handling(RedisConnectionError("closed"), AttributeError("torn"))
    with pytest.raises(ResponseError), suppress_outage():
        raise ResponseError("WRONGTYPE")


def test_stop_lets_a_primary_check_in_flight_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelling redis-py while it puts a connection back can leave that connection open and
    in no pool (seen once in CI as a ResourceWarning for a sentinel connection): stop() waits
    for the watcher's question instead (bounded by its own timeout)."""
    import asyncio
    from types import SimpleNamespace

    from rat_engine.broadcast import redis_reader

    monkeypatch.setattr(redis_reader, "PRIMARY_CHECK_INTERVAL", 0.0)
    seen: list[str] = []

    async def scenario() -> None:
        entered = asyncio.Event()

        async def primary_now() -> str:
            entered.set()
            try:
                await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            seen.append("answered")
            return "127.0.0.1:1"

        async def close() -> None:
            pass

        clients = SimpleNamespace(target=SimpleNamespace(kind="sentinel"), primary_now=primary_now)
        reader = redis_reader.LiveReader(clients, (str, str), None, None, None)  # type: ignore[arg-type]
        reader._feed = SimpleNamespace(close=close)  # type: ignore[assignment]
        reader.node = "127.0.0.1:1"
        reader._watch = asyncio.ensure_future(reader._watch_primary())
        await asyncio.wait_for(entered.wait(), 2)
        await asyncio.wait_for(reader.stop(), 3)

    asyncio.run(scenario())
    assert seen == ["answered"]
