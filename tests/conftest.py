"""Shared fixtures. The plain helpers they use live in the ``tests/support`` package
(``from support.net import wait_until``, ``from support.live import run_live``, ...).

Fixtures:

* ``chromium_path`` (session) -- ``/usr/bin/chromium`` or skip/fail.
* ``redis_server`` (session) -- a real ``redis-server`` on a free port: ``.url``, ``.port``, ``.pid``,
  ``.stop()``, ``.start()`` (restart on the same port), ``.flushall()``.
* ``redis_server_factory`` -- ``factory(*extra_args)``: another redis-server in its own directory,
  stopped at the end of the test; ``persistent_redis_server`` -- one with AOF (survives restarts).

Missing prerequisites skip, or fail under ``RAT_REQUIRE_ALL=1`` (see ``support.prereq``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from support.prereq import require_or_skip
from support.redis_server import PERSISTENT_REDIS_ARGS, RedisServer, start_redis

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    require_or_skip("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``factory(*extra_args)`` starts another redis-server (own port, own directory) that is
    stopped when the test ends, e.g. ``factory(*PERSISTENT_REDIS_ARGS)`` for one whose data
    survives ``.stop()`` / ``.start()``."""
    started: list[RedisServer] = []

    def factory(*extra_args: str) -> RedisServer:
        server = start_redis(tmp_path_factory.mktemp("redis-extra"), extra_args)
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def persistent_redis_server(redis_server_factory: Any) -> RedisServer:
    """A dedicated redis-server with AOF (``appendfsync always``): data survives a restart."""
    return redis_server_factory(*PERSISTENT_REDIS_ARGS)
