"""Integration tests: the CLI (``python -m rat_engine`` / ``rat-engine``), ``app.run()`` in a script,
multi-worker serving and running under plain uvicorn, each in a subprocess.

Every subprocess is killed (by its PID) in a ``finally`` block.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.net import free_port

pytestmark = pytest.mark.timeout(60)

PYTHON = sys.executable
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0

APP_MODULE = textwrap.dedent(
    """
    import asyncio
    import os

    from rat_engine import RatApp

    app = RatApp(name="cli-test-app", shutdown_grace=1.0)


    @app.html("/")
    def index(request_data):
        return "<p>cli app</p>"


    @app.json("/api/info", methods=["GET"])
    def info(request_data):
        return {"pid": os.getpid(), "app": "cli-test-app"}


    @app.json("/pid", methods=["GET"])
    def pid():
        return {"pid": os.getpid()}


    @app.sse("/events")
    async def events(request_data):
        for i in range(3):
            yield {"n": i}
            await asyncio.sleep(0.01)
    """
)


class Proc:
    """A subprocess with its output in files (no pipe can fill up and block it)."""

    def __init__(self, args: list[str], cwd: Path, name: str) -> None:
        self.stdout_path = cwd / f"{name}.stdout"
        self.stderr_path = cwd / f"{name}.stderr"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err, env=env)
        self.pid = self.popen.pid

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def wait_until_serving(self, url: str, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited with {self.popen.returncode}:\n{self.stderr}")
            try:
                with httpx.Client(timeout=1.0) as client:
                    if client.get(url).status_code < 500:
                        return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{url} not serving after {timeout}s:\n{self.stderr}")

    def terminate_and_wait(self, timeout: float = STOP_TIMEOUT) -> tuple[int, float]:
        start = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(timeout=timeout)
        return code, time.monotonic() - start

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)


@contextlib.contextmanager
def started(args: list[str], cwd: Path, name: str) -> Iterator[Proc]:
    proc = Proc(args, cwd, name)
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "cliapp.py").write_text(APP_MODULE)
    return tmp_path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# ---------------------------------------------------------------------------------------------
def test_cli_run_serves_and_stops_on_sigterm(app_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with started(
        [PYTHON, "-m", "rat_engine", "run", "cliapp:app", "--port", str(port)], app_dir, "run"
    ) as proc:
        proc.wait_until_serving(url + "/")
        with httpx.Client(timeout=5.0) as client:
            r = client.get(url + "/")
            assert r.status_code == 200
            assert r.text == "<p>cli app</p>"
            assert r.headers["content-type"] == "text/html; charset=utf-8"
            info = client.get(url + "/api/info").json()
        assert info == {"pid": proc.pid, "app": "cli-test-app"}
        code, elapsed = proc.terminate_and_wait()
        assert code == 0, proc.stderr
        assert elapsed < STOP_TIMEOUT
        assert "Traceback" not in proc.stderr, proc.stderr


def test_app_run_in_script_blocks_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "cliapp.py").write_text(APP_MODULE)
    (tmp_path / "serve.py").write_text(
        textwrap.dedent(
            f"""
            from cliapp import app

            app.run(host="127.0.0.1", port={port})
            print("run() returned", flush=True)
            """
        )
    )
    url = f"http://127.0.0.1:{port}"
    with started([PYTHON, "serve.py"], tmp_path, "script") as proc:
        proc.wait_until_serving(url + "/")
        time.sleep(1.0)
        assert proc.popen.poll() is None, f"app.run() returned early:\n{proc.stderr}"
        with httpx.Client(timeout=5.0) as client:
            assert client.get(url + "/api/info").json()["pid"] == proc.pid
        code, elapsed = proc.terminate_and_wait()
        assert code == 0, proc.stderr
        assert elapsed < STOP_TIMEOUT
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "run() returned" in proc.stdout  # run() returns normally after SIGTERM


@pytest.mark.parametrize(
    "target,needle",
    [
        ("no_such_module_xyz:app", "no_such_module_xyz"),
        ("cliapp:missing_attr", "missing_attr"),
        ("cliapp", "module:app"),
        ("cliapp:free_port_nope", "free_port_nope"),
    ],
)
def test_cli_bad_target_gives_clear_error(app_dir: Path, target: str, needle: str) -> None:
    exe = Path(PYTHON).with_name("rat-engine")
    args = [str(exe)] if exe.exists() else [PYTHON, "-m", "rat_engine"]
    result = subprocess.run(
        [*args, "run", target, "--port", str(free_port())],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "error" in result.stderr.lower()
    assert needle in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_cli_target_that_is_not_an_app(app_dir: Path) -> None:
    (app_dir / "notapp.py").write_text("thing = 42\n")
    result = subprocess.run(
        [PYTHON, "-m", "rat_engine", "run", "notapp:thing", "--port", str(free_port())],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "error" in result.stderr.lower() and "notapp:thing" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_demo(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with started([PYTHON, "-m", "rat_engine", "demo", "--port", str(port)], tmp_path, "demo") as proc:
        proc.wait_until_serving(url + "/")
        with httpx.Client(timeout=5.0) as client:
            r = client.get(url + "/")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/html")
            assert len(r.content) > 0
            with client.stream("GET", url + "/api/progress/x") as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                buf = ""
                for text in stream.iter_text():
                    buf += text
                    if "\n\n" in buf.lstrip("\n") and "data:" in buf:
                        break
        data_lines = [line for line in buf.splitlines() if line.startswith("data:")]
        assert data_lines, buf
        assert data_lines[0].startswith('data: {"type": "init"'), buf
        assert '"session_id": "x"' in data_lines[0]
        code, elapsed = proc.terminate_and_wait()
        assert code == 0, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr


def test_cli_workers_use_several_processes(app_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "rat_engine", "run", "cliapp:app", "--port", str(port), "--workers", "2"]
    with started(args, app_dir, "workers") as proc:
        proc.wait_until_serving(url + "/")
        pids = _worker_pids(url, 2)
        assert proc.pid not in pids  # the master only supervises
        code, elapsed = proc.terminate_and_wait(timeout=STOP_TIMEOUT + 2)
        assert code == 0, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        for pid in pids:
            assert not _pid_alive(pid), f"worker {pid} still running after SIGTERM"
    # make sure a leftover worker cannot outlive the test
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _worker_pids(url: str, workers: int) -> set[int]:
    """The pids that answer ``/pid``, asked on fresh connections until ``workers`` answered."""
    pids: set[int] = set()
    deadline = time.monotonic() + 15
    requests = 0
    while (requests < 40 or len(pids) < workers) and time.monotonic() < deadline:
        with httpx.Client(timeout=5.0) as client:  # a fresh connection for every request
            r = client.get(url + "/pid", headers={"Connection": "close"})
        assert r.status_code == 200
        pids.add(r.json()["pid"])
        requests += 1
    assert len(pids) == workers, f"{requests} requests were served by pids {pids}"
    return pids


def test_cli_workers_exit_when_the_supervisor_is_killed(app_dir: Path) -> None:
    """SIGKILL leaves the supervisor no chance to stop its workers: they must notice by
    themselves, not go on serving the port as orphans."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "rat_engine", "run", "cliapp:app", "--port", str(port), "--workers", "2"]
    pids: set[int] = set()
    try:
        with started(args, app_dir, "orphans") as proc:
            proc.wait_until_serving(url + "/")
            pids = _worker_pids(url, 2)
            proc.kill()
            deadline = time.monotonic() + STOP_TIMEOUT + 5
            while any(_pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.1)
            alive = [pid for pid in pids if _pid_alive(pid)]
            assert not alive, f"workers {alive} outlived their killed supervisor"
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def test_app_is_asgi_under_plain_uvicorn(app_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        PYTHON,
        "-m",
        "uvicorn",
        "cliapp:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with started(args, app_dir, "uvicorn") as proc:
        proc.wait_until_serving(url + "/")
        with httpx.Client(timeout=5.0) as client:
            r = client.get(url + "/api/info")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/json")
            assert r.json() == {"pid": proc.pid, "app": "cli-test-app"}
            r = client.get(url + "/events")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            data = [line for line in r.text.splitlines() if line.startswith("data:")]
            assert data == ['data: {"n":0}', 'data: {"n":1}', 'data: {"n":2}'], r.text
        code, _ = proc.terminate_and_wait()
        # uvicorn >= 0.29 re-raises the captured SIGTERM after its graceful shutdown: -15 is clean.
        assert code in (0, -signal.SIGTERM), proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
