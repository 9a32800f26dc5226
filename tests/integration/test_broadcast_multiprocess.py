"""Broadcast across server PROCESSES through a real Redis: two servers on two ports, and one
server with ``--workers 2``. Also: ``memory://`` with several workers logs a clear warning."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.broadcast import (
    BROADCAST_APP_MODULE,
    assert_strictly_increasing,
    data_of,
    redis_numsub,
    unique,
)
from support.live import live_subprocess
from support.net import free_port, wait_until
from support.sse import HttpSSE

pytestmark = [pytest.mark.timeout(90), pytest.mark.redis]


CLI = "import sys; from rat_engine.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "bcast_app.py").write_text(BROADCAST_APP_MODULE, encoding="utf-8")
    return tmp_path


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    redis_server.flushall()
    return str(redis_server.url)


def publish(
    http: httpx.Client, base: str, channel: str, data: Any, event: str | None = None
) -> dict[str, Any]:
    response = http.post(f"{base}/publish/{channel}", json={"data": data, "event": event})
    assert response.status_code == 200, response.text
    return dict(response.json())


@contextlib.contextmanager
def two_servers(app_dir: Path, redis_url: str) -> Iterator[tuple[Any, Any]]:
    env = {"RAT_BROADCAST_URL": redis_url}
    path = app_dir / "bcast_app.py"
    with live_subprocess(path, env=env, grace=5) as a, live_subprocess(path, env=env, grace=5) as b:
        yield a, b
    for proc in (a, b):
        assert "Traceback" not in proc.output(), proc.output()


def test_a_message_published_on_one_process_reaches_subscribers_on_both(
    app_dir: Path, redis_url: str
) -> None:
    channel = unique("mp")
    with two_servers(app_dir, redis_url) as (a, b), httpx.Client(timeout=10) as http:
        assert httpx.get(a.url + "/pid").text != httpx.get(b.url + "/pid").text
        on_a = HttpSSE(f"{a.url}/subscribe/{channel}")
        on_b = HttpSSE(f"{b.url}/subscribe/{channel}")
        with on_a, on_b:
            wait_until(lambda: redis_numsub(redis_url, channel) == [2], what="both processes subscribed")
            sent = []
            for n in range(6):
                via = (a, b)[n % 2]
                sent.append(publish(http, via.url, channel, {"n": n, "via": via.port, "text": "你好"}, "mp"))
            assert {s["pid"] for s in sent} == {a.pid, b.pid}
            ids = [s["id"] for s in sent]
            assert_strictly_increasing(ids)
            for stream in (on_a, on_b):
                got = stream.take(6)
                assert [e.id for e in got] == ids
                assert [e.event for e in got] == ["mp"] * 6
                assert [data_of(e)["n"] for e in got] == list(range(6))


def test_reconnecting_to_another_process_replays_what_was_missed(app_dir: Path, redis_url: str) -> None:
    channel = unique("mp")
    with two_servers(app_dir, redis_url) as (a, b), httpx.Client(timeout=10) as http:
        with HttpSSE(f"{a.url}/subscribe/{channel}") as on_a:
            wait_until(lambda: redis_numsub(redis_url, channel) == [1], what="A subscribed")
            ids = [publish(http, a.url, channel, {"n": n})["id"] for n in range(5)]
            seen = on_a.take(3)
            assert [e.id for e in seen] == ids[:3]
        wait_until(lambda: redis_numsub(redis_url, channel) == [0], what="A unsubscribed")
        # Published while the client is away, through both processes.
        ids += [publish(http, (a, b)[n % 2].url, channel, {"n": n})["id"] for n in range(5, 10)]
        with HttpSSE(f"{b.url}/subscribe/{channel}", last_event_id=seen[-1].id) as on_b:
            replayed = on_b.take(7)
            assert [e.id for e in replayed] == ids[3:], "every missed message exactly once, in order"
            assert [data_of(e)["n"] for e in replayed] == list(range(3, 10))
            assert "resync" not in {e.event for e in replayed}
            wait_until(lambda: redis_numsub(redis_url, channel) == [1], what="B subscribed")
            live = [publish(http, (a, b)[n % 2].url, channel, {"n": n})["id"] for n in range(10, 13)]
            got = on_b.take(3)
            assert [e.id for e in got] == live, "then the live ones, with no duplicate"
            assert_strictly_increasing([e.id for e in replayed + got])


def _open_on_every_worker(base: str, channel: str, workers: int, attempts: int = 40) -> dict[int, HttpSSE]:
    """Open ``/hello`` streams until each of ``workers`` processes holds one (the kernel picks
    which worker accepts a connection); extra streams are closed."""
    by_pid: dict[int, HttpSSE] = {}
    try:
        for _ in range(attempts):
            stream = HttpSSE(f"{base}/hello/{channel}")
            hello = stream.next_event(5)
            assert hello.event == "hello"
            pid = data_of(hello)["pid"]
            if pid in by_pid:
                stream.close()
            else:
                by_pid[pid] = stream
            if len(by_pid) == workers:
                return by_pid
        raise AssertionError(f"only {len(by_pid)} of {workers} workers accepted {attempts} connections")
    except BaseException:
        for stream in by_pid.values():
            stream.close()
        raise


def test_cli_with_two_workers_delivers_across_workers(app_dir: Path, redis_url: str) -> None:
    channel = unique("workers")
    port = free_port()
    args = ("run", "bcast_app:app", "--workers", "2", "--port", str(port), "--no-access-log")
    with live_subprocess(
        CLI, port, args=args, env={"RAT_BROADCAST_URL": redis_url}, cwd=app_dir, grace=5
    ) as proc:
        streams = _open_on_every_worker(proc.url, channel, 2)
        try:
            assert proc.pid not in streams, "the workers are children, not the supervisor"
            wait_until(lambda: redis_numsub(redis_url, channel) == [2], what="both workers subscribed")
            with httpx.Client(timeout=10) as http:
                sent = [publish(http, proc.url, channel, {"n": n}, "w") for n in range(8)]
            ids = [s["id"] for s in sent]
            for pid, stream in streams.items():
                got = stream.take(8)
                assert [e.id for e in got] == ids, f"worker {pid}"
                assert [data_of(e)["n"] for e in got] == list(range(8))
        finally:
            for stream in streams.values():
                stream.close()
    output = proc.output()
    assert "Traceback" not in output, output
    assert "delivers messages only inside one process" not in output


def test_memory_backend_with_two_workers_warns_at_startup(app_dir: Path) -> None:
    port = free_port()
    args = ("run", "bcast_app:app", "--workers", "2", "--port", str(port))
    env = {"RAT_BROADCAST_URL": "memory://"}
    with live_subprocess(CLI, port, args=args, env=env, cwd=app_dir, grace=5) as proc:

        def warning_line() -> str | None:
            for line in proc.output().splitlines():
                if "memory://" in line and "workers" in line:
                    return line
            return None

        line = wait_until(warning_line, timeout=10, what="the memory:// + workers warning")
    print(f"\nwarning: {line}")
    assert "2 workers" in line and "redis://" in line
    assert "WARNING" in line.upper()


def test_memory_backend_with_one_worker_does_not_warn(app_dir: Path) -> None:
    port = free_port()
    args = ("run", "bcast_app:app", "--port", str(port))
    with live_subprocess(
        CLI, port, args=args, env={"RAT_BROADCAST_URL": "memory://"}, cwd=app_dir, grace=5
    ) as proc:
        wait_until(lambda: "listening" in proc.output(), timeout=10, what="the startup log")
        assert httpx.get(proc.url + "/pid", timeout=5).text == str(proc.pid)
    assert "delivers messages only inside one process" not in proc.output()
