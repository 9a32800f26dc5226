"""A real Redis Cluster on 127.0.0.1: three primaries (and optionally a replica each), made with
``redis-cli --cluster create`` from ``redis-server --cluster-enabled yes`` processes on free
loopback ports (the cluster bus on another free port, ``--cluster-port``). Every process is
started and stopped by PID.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import HOST
from .net import free_port, wait_until
from .prereq import require_or_skip
from .redis_server import RedisServer

#: Milliseconds before a cluster node calls an unreachable peer failing (the failover starts).
NODE_TIMEOUT_MS = 1000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _command(port: int, *args: Any) -> Any:
    import redis

    client = redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return client.execute_command(*args)
    finally:
        client.close()


class ClusterSetup:
    """``primaries`` primaries with ``replicas`` replicas each, all on 127.0.0.1."""

    def __init__(
        self, executable: str, cli: str, workdir: Path, primaries: int = 3, replicas: int = 0
    ) -> None:
        self.executable = executable
        self.cli = cli
        self.workdir = workdir
        self.primary_count = primaries
        self.replica_count = replicas
        self.servers: list[RedisServer] = []

    def start(self) -> None:
        try:
            for n in range(self.primary_count * (1 + self.replica_count)):
                directory = self.workdir / f"node{n}"
                directory.mkdir(parents=True)
                args = (
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                    "--cluster-port", str(free_port()),
                    "--repl-diskless-sync", "yes",
                    "--repl-diskless-sync-delay", "0",
                )  # fmt: skip
                server = RedisServer(self.executable, free_port(), directory, args)
                self.servers.append(server)
                server.start()
            create = [
                self.cli,
                "--cluster",
                "create",
                *(f"{HOST}:{s.port}" for s in self.servers),
                "--cluster-replicas",
                str(self.replica_count),
                "--cluster-yes",
            ]
            result = subprocess.run(
                create, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
            if result.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{result.stdout}\n{result.stderr}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for server in self.servers:
            server.stop(grace=5)

    def url(self, query: str = "", scheme: str = "redis+cluster") -> str:
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.servers[: self.primary_count])
        return f"{scheme}://{hosts}/" + (f"?{query}" if query else "")

    def ready(self) -> bool:
        """Every node says ``cluster_state:ok`` and knows every other node, and replicas are in sync."""
        try:
            for server in self.servers:
                if not server.running:
                    continue
                info = _text(_command(server.port, "CLUSTER", "INFO"))
                if "cluster_state:ok" not in info or f"cluster_known_nodes:{len(self.servers)}" not in info:
                    return False
                role = _command(server.port, "ROLE")
                if _text(role[0]) == "slave" and _text(role[3]) != "connected":
                    return False
            return True
        except Exception:
            return False

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait until :meth:`ready`; returns the seconds it took."""
        began = time.monotonic()
        wait_until(self.ready, timeout, "the cluster to be ready", interval=0.1)
        return time.monotonic() - began

    def owner_of(self, key: str, avoid: RedisServer | None = None) -> RedisServer:
        """The primary that serves ``key``'s slot now (asked of the first node that answers,
        not ``avoid``)."""
        for server in self.servers:
            if not server.running or server is avoid:
                continue
            try:
                slot = int(_command(server.port, "CLUSTER", "KEYSLOT", key))
                slots = _command(server.port, "CLUSTER", "SLOTS")
            except Exception:
                continue  # a stopped (SIGSTOP) or dying node
            for start, end, primary, *_ in slots:
                if int(start) <= slot <= int(end):
                    return next(s for s in self.servers if s.port == int(primary[1]))
        raise AssertionError("no node answered")

    def wait_owner_changes(self, key: str, old: RedisServer, timeout: float = 30.0) -> RedisServer:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                owner = self.owner_of(key, avoid=old)
                if owner is not old and _text(_command(owner.port, "ROLE")[0]) == "master":
                    return owner
            if time.monotonic() > deadline:
                raise AssertionError(f"{key}'s slot has no new primary after {timeout}s")
            time.sleep(0.05)


@contextlib.contextmanager
def cluster_setup(workdir: Path, replicas: int = 0) -> Iterator[ClusterSetup]:
    """Start a three-primary :class:`ClusterSetup`, wait until it is ready, stop it at the end.

    Skips (or fails under ``RAT_REQUIRE_ALL=1``) without ``redis-server`` and ``redis-cli``.
    """
    executable, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if executable is None or cli is None:
        require_or_skip("redis-server/redis-cli", "not on PATH (apt-get install redis-server)")
        raise AssertionError("unreachable")
    setup = ClusterSetup(executable, cli, workdir, replicas=replicas)
    try:
        setup.start()
        setup.wait_ready()
        yield setup
    finally:
        setup.stop()


__all__ = ["NODE_TIMEOUT_MS", "ClusterSetup", "cluster_setup"]
