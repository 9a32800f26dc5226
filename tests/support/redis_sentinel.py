"""A real Redis Sentinel setup on 127.0.0.1: a primary, replicas and three sentinels.

Every process is a ``redis-server`` started by PID (sentinels as ``redis-server <conf>
--sentinel``) on a free loopback port, and stopped by that PID. ``SentinelSetup.wait_ready()``
returns once every sentinel knows the primary, the other two sentinels and every replica (with
its link to the primary up): only then is killing the primary a failover test rather than a
test of a half-built setup.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import HOST
from .net import free_port, wait_until
from .prereq import require_or_skip
from .redis_server import RedisServer

SERVICE = "mymaster"
#: How long a sentinel waits before it calls the primary down (the failover starts then).
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 4000

_SENTINEL_CONF = """\
port {port}
bind {host}
daemonize no
protected-mode no
dir {dir}
sentinel resolve-hostnames no
sentinel monitor {service} {host} {primary_port} 2
sentinel down-after-milliseconds {service} {down_after}
sentinel failover-timeout {service} {failover_timeout}
sentinel parallel-syncs {service} 2
"""


class SentinelProcess(RedisServer):
    """One ``redis-server <conf> --sentinel`` on 127.0.0.1:port (it rewrites its own conf);
    started, answered and stopped by PID as any :class:`RedisServer`."""

    log_name = "sentinel.log"

    def __init__(self, executable: str, port: int, workdir: Path, primary_port: int) -> None:
        super().__init__(executable, port, workdir)
        self.conf = workdir / "sentinel.conf"
        self.conf.write_text(
            _SENTINEL_CONF.format(
                port=port,
                host=HOST,
                dir=workdir,
                service=SERVICE,
                primary_port=primary_port,
                down_after=DOWN_AFTER_MS,
                failover_timeout=FAILOVER_TIMEOUT_MS,
            ),
            encoding="utf-8",
        )

    def command_line(self) -> list[str]:
        return [self.executable, str(self.conf), "--sentinel"]

    def command(self, *args: Any) -> Any:
        """Run one command on this sentinel (a short-lived connection)."""
        import redis

        client = redis.Redis(host=HOST, port=self.port, socket_timeout=2, socket_connect_timeout=2)
        try:
            return client.execute_command(*args)
        finally:
            client.close()


def _pairs(reply: Any) -> dict[str, str]:
    """A sentinel's flat ``[k, v, k, v, ...]`` reply (or redis-py's parsed dict) as str -> str."""
    if isinstance(reply, dict):
        items = reply.items()
    else:
        items = zip(reply[::2], reply[1::2], strict=True)
    return {_text(k): _text(v) for k, v in items}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SentinelSetup:
    """A primary, ``replicas`` replicas and three sentinels (quorum 2), all on 127.0.0.1."""

    def __init__(self, executable: str, workdir: Path, replicas: int = 1) -> None:
        self.executable = executable
        self.workdir = workdir
        self.replica_count = replicas
        self.primary: RedisServer | None = None
        self.replicas: list[RedisServer] = []
        self.sentinels: list[SentinelProcess] = []

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.primary = self._redis(self.workdir / "primary")
            for n in range(self.replica_count):
                self.replicas.append(
                    self._redis(self.workdir / f"replica{n}", "--replicaof", HOST, str(self.primary.port))
                )
            for n in range(3):
                directory = self.workdir / f"sentinel{n}"
                directory.mkdir(parents=True)
                sentinel = SentinelProcess(self.executable, free_port(), directory, self.primary.port)
                self.sentinels.append(sentinel)
                sentinel.start()
        except BaseException:
            self.stop()
            raise

    def _redis(self, directory: Path, *extra: str) -> RedisServer:
        directory.mkdir(parents=True)
        # Diskless replication without delay: a replica is in sync within milliseconds.
        args = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", *extra)
        server = RedisServer(self.executable, free_port(), directory, args)
        server.start()
        return server

    def stop(self) -> None:
        """Stop every process this setup started (by PID; safe to call repeatedly)."""
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in (self.primary, *self.replicas):
            if server is not None:
                server.stop(grace=5)

    @property
    def servers(self) -> list[RedisServer]:
        return [s for s in (self.primary, *self.replicas) if s is not None]

    # -- addresses --------------------------------------------------------------------------------
    def url(self, query: str = "", scheme: str = "redis+sentinel", db: int = 0) -> str:
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"{scheme}://{hosts}/{SERVICE}/{db}" + (f"?{query}" if query else "")

    def primary_port(self, sentinel: SentinelProcess | None = None) -> int:
        """The primary's port according to ``sentinel`` (the first one by default)."""
        reply = (sentinel or self.sentinels[0]).command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(_text(reply[1]))

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    # -- waiting ------------------------------------------------------------------------------------
    def ready(self) -> bool:
        """Every sentinel sees the primary up, the two other sentinels and every replica linked."""
        try:
            for sentinel in self.sentinels:
                master = _pairs(sentinel.command("SENTINEL", "MASTER", SERVICE))
                if "s_down" in master["flags"] or "o_down" in master["flags"]:
                    return False
                if int(master["num-other-sentinels"]) != 2:
                    return False
                replicas = [_pairs(r) for r in sentinel.command("SENTINEL", "REPLICAS", SERVICE)]
                linked = [
                    r
                    for r in replicas
                    if r.get("master-link-status") == "ok"
                    and "s_down" not in r["flags"]
                    and "disconnected" not in r["flags"]
                ]
                if len(linked) < self.replica_count:
                    return False
            return True
        except Exception:
            return False

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait until :meth:`ready`; returns the seconds it took."""
        began = time.monotonic()
        try:
            wait_until(self.ready, timeout, "the sentinels to be ready", interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{self.describe()}") from None
        return time.monotonic() - began

    def wait_promoted(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until every sentinel names a primary other than ``old_port``; returns its port."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                ports = {self.primary_port(s) for s in self.sentinels}
                if len(ports) == 1 and old_port not in ports:
                    port = ports.pop()
                    if _role(port) == "master":
                        return port
            if time.monotonic() > deadline:
                raise AssertionError(f"no promotion within {timeout}s:\n{self.describe()}")
            time.sleep(0.05)

    def describe(self) -> str:
        lines = [f"primary {self.primary!r}", *(f"replica {r!r}" for r in self.replicas)]
        for sentinel in self.sentinels:
            lines.append(f"--- sentinel :{sentinel.port} log tail ---")
            lines.extend(sentinel.log().splitlines()[-15:])
        return "\n".join(lines)


def _role(port: int) -> str | None:
    import redis

    client = redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return _text(client.execute_command("ROLE")[0])
    except Exception:
        return None
    finally:
        client.close()


@contextlib.contextmanager
def sentinel_setup(workdir: Path, replicas: int = 1) -> Iterator[SentinelSetup]:
    """Start a :class:`SentinelSetup`, wait until it is ready, stop every process at the end.

    Skips (or fails under ``RAT_REQUIRE_ALL=1``) without ``redis-server`` on PATH.
    """
    executable = shutil.which("redis-server")
    if executable is None:
        require_or_skip("redis-server", "not on PATH (apt-get install redis-server)")
        raise AssertionError("unreachable")
    setup = SentinelSetup(executable, workdir, replicas)
    try:
        setup.start()
        setup.wait_ready()
        yield setup
    finally:
        setup.stop()


__all__ = ["DOWN_AFTER_MS", "SERVICE", "SentinelProcess", "SentinelSetup", "sentinel_setup"]
