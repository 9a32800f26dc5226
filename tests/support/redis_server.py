"""A real ``redis-server`` process on 127.0.0.1 (used by the fixtures in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from .net import free_port
from .prereq import require_or_skip

#: ``redis-server`` options for an instance whose data survives ``.stop()`` / ``.start()``.
PERSISTENT_REDIS_ARGS = ("--appendonly", "yes", "--appendfsync", "always")


def _redis_ping(port: int, timeout: float = 1.0) -> bool:
    try:
        import redis
    except ImportError:
        redis = None  # type: ignore[assignment]
    if redis is not None:
        client = redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A real redis-server process on 127.0.0.1:port (no persistence), owned by the test session."""

    host = "127.0.0.1"

    def __init__(
        self, executable: str, port: int, workdir: Path, extra_args: tuple[str, ...] | list[str] = ()
    ) -> None:
        self.executable = executable
        self.port = port
        self.workdir = workdir
        #: Extra ``redis-server`` options, appended after the defaults (so they override them),
        #: e.g. ``("--appendonly", "yes", "--appendfsync", "always")`` for a persistent instance.
        self.extra_args = tuple(extra_args)
        self.url = f"redis://{self.host}:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def pid(self) -> int | None:
        """PID of the running redis-server (None when stopped)."""
        return self.proc.pid if self.running and self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    #: The file (in ``workdir``) the process writes its log to.
    log_name = "redis.log"

    def log(self) -> str:
        try:
            return (self.workdir / self.log_name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def command_line(self) -> list[str]:
        """The ``redis-server`` command this process runs."""
        return [
            self.executable,
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.workdir),
            "--daemonize",
            "no",
            *self.extra_args,
        ]

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart) the server on the same port and wait until it answers PING."""
        if self.running:
            return
        self._close_log()
        self._log = open(self.workdir / self.log_name, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            self.command_line(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not _redis_ping(self.port):
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise RuntimeError(
                    f"{self.command_line()[0]} on port {self.port} exited with {code}; log:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"port {self.port} did not answer PING within {timeout}s; log:\n{self.log()}"
                )
            time.sleep(0.05)

    def stop(self, grace: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Stop the server (``sig`` -- SIGTERM by default -- by PID, SIGKILL after ``grace`` s).
        Safe to call repeatedly. ``sig=signal.SIGKILL`` simulates a crash."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
            else:
                proc.wait()
        self._close_log()

    def restart(self) -> None:
        self.stop()
        self.start()

    def flushall(self) -> None:
        """Empty every database (handy between tests sharing the session server)."""
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __repr__(self) -> str:
        return f"<RedisServer {self.url} running={self.running}>"


def start_redis(workdir: Path, extra_args: tuple[str, ...] | list[str] = ()) -> RedisServer:
    executable = shutil.which("redis-server")
    if executable is None:
        require_or_skip("redis-server", "not on PATH (apt-get install redis-server)")
        raise AssertionError("unreachable")
    for attempt in range(3):  # the free port may be grabbed by someone else before redis binds it
        server = RedisServer(executable, free_port(), workdir, extra_args)
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
