"""Shared helpers of the reliability suite: profiles, figure reporting, /proc readings and
the ``/stats`` probe of the test app. The raw HTTP and SSE clients are in ``tests/support``.

Profiles: the default (CI) profile keeps the whole directory under ~90 s on a 2-core machine;
``RAT_RELIABILITY_LONG=1`` (or ``--long`` when ``tests/reliability`` is on the command line)
selects the long one. Every load loop is bounded in time AND in count.

Figures: :func:`report` prints one line per test and appends a JSON line to
``bench/results/reliability-last.jsonl`` (git-ignored), truncated at the start of each run.
Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.http import get
from support.net import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_FILE = REPO_ROOT / "bench" / "results" / "reliability-last.jsonl"
APP_SCRIPT = Path(__file__).resolve().parent / "_server_app.py"

#: Figure lines of this run, shown again in pytest's terminal summary (visible without -s).
SUMMARY_LINES: list[str] = []


def is_long() -> bool:
    return os.environ.get("RAT_RELIABILITY_LONG", "") == "1"


def profile() -> str:
    return "long" if is_long() else "ci"


def pick(ci: Any, long: Any) -> Any:
    """The CI value, or the long-profile value under ``RAT_RELIABILITY_LONG=1``."""
    return long if is_long() else ci


def report(test: str, summary: str, **figures: Any) -> None:
    """Print a one-line summary and record the figures as one JSON line."""
    line = f"[reliability {profile()}] {test}: {summary}"
    print("\n" + line, flush=True)
    SUMMARY_LINES.append(line)
    record = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "profile": profile(),
        "test": test,
        "summary": summary,
        "figures": figures,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS_FILE.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, sort_keys=True, default=str) + "\n")


def raise_nofile() -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def settle(predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """:func:`support.net.wait_until` that returns None instead of raising on timeout: these tests
    record their figures first and assert afterwards, with the figures in the message."""
    try:
        return wait_until(predicate, timeout, interval=interval)
    except AssertionError:
        return None


# -- /proc -------------------------------------------------------------------------------------


def proc_figures(pid: int) -> dict[str, int]:
    """Threads, open fds and RSS (KiB) of a live process, from /proc."""
    threads = rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"threads": threads, "fds": fds, "rss_kb": rss}


def rss_mb(pid: int) -> float:
    return proc_figures(pid)["rss_kb"] / 1024


def stats(port: int, timeout: float = 5.0) -> dict[str, Any]:
    """The test app's ``/stats`` (``app.stats()`` plus pid/threads), over a blocking socket."""
    response = get(port, "/stats", timeout=timeout)
    assert response.status == 200, response
    return json.loads(response.body)
