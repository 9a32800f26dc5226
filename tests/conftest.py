"""Shared test helpers and fixtures.

Helpers (plain functions / context managers; import them with ``from conftest import ...``):

* ``require_or_skip(what, reason)`` -- skip, or fail when ``RAT_REQUIRE_ALL=1`` (CI never silently skips).
* ``free_port()`` -- a currently free TCP port on 127.0.0.1.
* ``run_live(app)`` -- serve a ``RatApp`` on a background thread for the duration of a ``with`` block.
* ``live_subprocess(path_or_code, port)`` -- run ``python <file>`` / ``python -c <code>`` with
  ``RAT_PORT=<port>``, wait until the port accepts connections, stop it by PID on exit.

Fixtures:

* ``chromium_path`` (session) -- ``/usr/bin/chromium`` or skip/fail.
* ``redis_server`` (session) -- a real ``redis-server`` on a free port: ``.url``, ``.port``, ``.pid``,
  ``.stop()``, ``.start()`` (restart on the same port), ``.flushall()``.
* ``redis_server_factory`` -- ``factory(*extra_args)``: another redis-server in its own directory,
  stopped at the end of the test; ``persistent_redis_server`` -- one with AOF (survives restarts).

Nothing here runs at import time except definitions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


# -- skipping policy -------------------------------------------------------------------------------


def require_all() -> bool:
    """True when missing prerequisites must fail the run instead of skipping (CI)."""
    return os.environ.get("RAT_REQUIRE_ALL", "") == "1"


def require_or_skip(what: str, reason: str) -> None:
    """Skip the current test because ``what`` is unavailable -- or fail if ``RAT_REQUIRE_ALL=1``.

    Never returns.
    """
    message = f"{what} unavailable: {reason}"
    if require_all():
        pytest.fail(f"{message} (RAT_REQUIRE_ALL=1: refusing to skip)", pytrace=False)
    pytest.skip(message)


# -- ports -----------------------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return True
        time.sleep(0.05)
    return False


# -- in-process live server ------------------------------------------------------------------------


@contextlib.contextmanager
def run_live(app: Any, **options: Any) -> Iterator[Any]:
    """Serve ``app`` on 127.0.0.1 (free port) in a background thread; yields the server handle.

    The handle has ``.url``, ``.port`` and ``.stop()``; it is stopped when the block exits.
    Extra keyword arguments go to ``app.run``.
    """
    options.setdefault("log_level", "warning")
    handle = app.run(host="127.0.0.1", port=0, blocking=False, **options)
    try:
        yield handle
    finally:
        handle.stop()


# -- live subprocess -------------------------------------------------------------------------------


class LiveProcess(subprocess.Popen[bytes]):
    """A ``Popen`` whose stdout+stderr go to a temp file; ``.output()`` returns that text."""

    port: int
    url: str
    _log_path: str
    _log_file: Any
    _final_output: str | None

    def output(self) -> str:
        """Combined stdout/stderr so far (complete once the ``with`` block has exited)."""
        if self._final_output is not None:
            return self._final_output
        try:
            return Path(self._log_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM by PID, SIGKILL after ``grace`` seconds; collect output. Returns the exit code."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.wait()
        if self._final_output is None:
            self._log_file.close()
            self._final_output = Path(self._log_path).read_text(encoding="utf-8", errors="replace")
            with contextlib.suppress(OSError):
                os.unlink(self._log_path)
        assert self.returncode is not None
        return self.returncode


@contextlib.contextmanager
def live_subprocess(
    module_path_or_code: str | os.PathLike[str],
    port: int | None = None,
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 15.0,
    grace: float = 10.0,
    cwd: str | os.PathLike[str] | None = None,
) -> Iterator[LiveProcess]:
    """Run ``python <file>`` (an existing path / ``*.py``) or ``python -c <code>`` with ``RAT_PORT``.

    Waits until 127.0.0.1:``port`` accepts TCP connections (``timeout`` seconds), yields the
    process (a ``Popen`` with ``.port``, ``.url``, ``.output()``), and on exit stops it by PID
    (SIGTERM, then SIGKILL after ``grace`` seconds) and collects its output.
    """
    if port is None or port == 0:
        port = free_port()
    target = os.fspath(module_path_or_code)
    is_file = isinstance(module_path_or_code, os.PathLike) or (
        "\n" not in target and (target.endswith(".py") or os.path.isfile(target))
    )
    cmd = [sys.executable, target, *args] if is_file else [sys.executable, "-c", target, *args]

    child_env = dict(os.environ)
    if env:
        child_env.update(env)
    child_env["RAT_PORT"] = str(port)
    child_env["PYTHONUNBUFFERED"] = "1"
    pythonpath = [str(REPO_ROOT)]
    if child_env.get("PYTHONPATH"):
        pythonpath.append(child_env["PYTHONPATH"])
    child_env["PYTHONPATH"] = os.pathsep.join(pythonpath)

    fd, log_path = tempfile.mkstemp(prefix="rat-live-", suffix=".log")
    log_file = os.fdopen(fd, "wb")
    try:
        proc = LiveProcess(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=os.fspath(cwd) if cwd is not None else None,
        )
    except BaseException:
        log_file.close()
        os.unlink(log_path)
        raise
    proc.port = port
    proc.url = f"http://127.0.0.1:{port}"
    proc._log_path = log_path
    proc._log_file = log_file
    proc._final_output = None
    try:
        deadline = time.monotonic() + timeout
        while not port_open(port, timeout=0.25):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{cmd[1:]!r} exited with {proc.returncode} before port {port} opened; output:\n"
                    + proc.output()
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{cmd[1:]!r}: port {port} not accepting connections after {timeout}s; output:\n"
                    + proc.output()
                )
            time.sleep(0.05)
        yield proc
    finally:
        proc.stop(grace)


# -- chromium --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    require_or_skip("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    raise AssertionError("unreachable")


# -- redis -----------------------------------------------------------------------------------------


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

    def log(self) -> str:
        try:
            return (self.workdir / "redis.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart) the server on the same port and wait until it answers PING."""
        if self.running:
            return
        self._close_log()
        self._log = open(self.workdir / "redis.log", "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [
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
            ],
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
                raise RuntimeError(f"redis-server exited with {code}; log:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING within {timeout}s; log:\n{self.log()}")
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


def _start_redis(workdir: Path, extra_args: tuple[str, ...] | list[str] = ()) -> RedisServer:
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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = _start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


PERSISTENT_REDIS_ARGS = ("--appendonly", "yes", "--appendfsync", "always")


@pytest.fixture
def redis_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``factory(*extra_args)`` starts another redis-server (own port, own directory) that is
    stopped when the test ends, e.g. ``factory(*PERSISTENT_REDIS_ARGS)`` for one whose data
    survives ``.stop()`` / ``.start()``."""
    started: list[RedisServer] = []

    def factory(*extra_args: str) -> RedisServer:
        server = _start_redis(tmp_path_factory.mktemp("redis-extra"), extra_args)
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
