"""Real servers for tests: in-process on a background thread, or a child process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import HOST, REPO_ROOT
from .net import free_port, port_open

EXAMPLES = REPO_ROOT / "examples"


# -- in-process live server ------------------------------------------------------------------------


@contextlib.contextmanager
def run_live(app: Any, **options: Any) -> Iterator[Any]:
    """Serve ``app`` on 127.0.0.1 (free port) in a background thread; yields the server handle.

    The handle has ``.url``, ``.port``, ``.running`` and ``.stop()``; it is stopped when the block
    exits. Extra keyword arguments go to ``app.run`` (``log_level`` defaults to ``"warning"``).
    """
    options.setdefault("log_level", "warning")
    handle = app.run(host=HOST, port=0, blocking=False, **options)
    try:
        yield handle
    finally:
        handle.stop()


def around_traceback(output: str, after: int = 8000) -> str:
    """The part of a server's ``output`` that explains a failure: from just before its first
    traceback on (or its tail when there is none), for assertion messages."""
    start = output.find("Traceback")
    if start < 0:
        return output[-after:]
    return output[max(0, start - 300) : start + after]


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
    module_path_or_code: str | os.PathLike[str] | None = None,
    port: int | None = None,
    *,
    argv: Sequence[str] | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 15.0,
    grace: float = 10.0,
    cwd: str | os.PathLike[str] | None = None,
) -> Iterator[LiveProcess]:
    """Run ``python <file>`` (an existing path / ``*.py``) or ``python -c <code>`` with ``RAT_PORT``;
    or, with ``argv=[...]``, that exact command (e.g. ``[sys.executable, "-m", "uvicorn", ...]``,
    which must then listen on ``port``: pass one from :func:`~support.net.free_port`).

    The child gets ``RAT_PORT=<port>``, ``PYTHONUNBUFFERED=1`` and the repository root in front of
    ``PYTHONPATH`` (``env`` is merged over ``os.environ`` first). Waits until 127.0.0.1:``port``
    accepts TCP connections (``timeout`` seconds; RuntimeError with the output if the process exits
    or the port stays closed), yields the process (a ``Popen`` with ``.port``, ``.url``,
    ``.output()``), and on exit stops it by PID (SIGTERM, then SIGKILL after ``grace`` seconds)
    and collects its output.
    """
    if port is None or port == 0:
        port = free_port()
    if argv is not None:
        if module_path_or_code is not None or args:
            raise TypeError("pass either argv= or a module path / code (with args=), not both")
        cmd = list(argv)
    else:
        if module_path_or_code is None:
            raise TypeError("live_subprocess needs a module path, code, or argv=")
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
    proc.url = f"http://{HOST}:{port}"
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


@contextlib.contextmanager
def run_example(name: str, **env: str) -> Iterator[str]:
    """Run ``examples/<name>`` (it listens on ``RAT_PORT``), yield its base URL, stop it by PID,
    and assert that it printed no traceback."""
    with live_subprocess(EXAMPLES / name, env=env) as proc:
        yield proc.url
    assert "Traceback" not in proc.output(), proc.output()
