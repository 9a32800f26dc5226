"""Framework cost per request with no server and no sockets: call each ASGI app directly.

    bench/.venv/bin/python bench/asgi_overhead.py [--requests 20000] [--runs 5] [--only rat_engine]

Each app from bench/apps/ is called ``requests`` times in a uvloop loop with a prebuilt scope,
a receive() that returns an empty body and a send() that drops the messages; the median of
``runs`` gives microseconds per request. That is what a framework adds on top of the server
(uvicorn's own per-request work is not included), so it says where the gap to the raw-ASGI
floor in the json scenario comes from. Pinned to CPU 0 when possible.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

APPS = Path(__file__).resolve().parent / "apps"
sys.path.insert(0, str(APPS))

#: (name, app module, BENCH_VARIANT, query string). The two query rows price typed parameters:
#: the same request to an unannotated handler and to one whose ``q: str``/``limit: int`` are read
#: from the query string.
CASES = [
    ("raw ASGI", "raw_asgi_json", None, b""),
    ("rat_engine inline", "rat_json", "inline", b""),
    ("rat_engine async", "rat_json", "async", b""),
    ("rat_engine sync", "rat_json", "sync", b""),
    ("rat_engine inline, ?q=rat&limit=5 unread", "rat_json", "inline", b"q=rat&limit=5"),
    ("rat_engine inline typed, ?q=rat&limit=5 read", "rat_json", "typed", b"q=rat&limit=5"),
    ("Starlette", "starlette_json", None, b""),
    ("FastAPI", "fastapi_json", None, b""),
    ("FastAPI def", "fastapi_json", "def", b""),
]


def load(module: str, variant: str | None) -> Any:
    if variant is not None:
        os.environ["BENCH_VARIANT"] = variant
    else:  # the app's own default, not the variant the previous case left behind
        os.environ.pop("BENCH_VARIANT", None)
    sys.modules.pop(module, None)
    return importlib.import_module(module).app


def scope(query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/json",
        "raw_path": b"/json",
        "query_string": query,
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
        "state": {},
    }


async def measure(app: Any, requests: int, query: bytes = b"") -> float:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for _ in range(200):  # warm-up
        await app(scope(query), receive, send)
    assert any(m.get("status") == 200 for m in sent), sent[:2]
    start = time.perf_counter()
    for _ in range(requests):
        sent.clear()
        await app(scope(query), receive, send)
    return (time.perf_counter() - start) / requests * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument(
        "--only", default="", help="run only the rows whose name contains this (raw ASGI always runs)"
    )
    args = p.parse_args()
    if not (1 <= args.requests <= 1_000_000 and 1 <= args.runs <= 50):
        p.error("--requests 1..1e6, --runs 1..50")
    if len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import uvloop

    results: dict[str, float] = {}
    for name, module, variant, query in CASES:
        if args.only not in name and module != "raw_asgi_json":
            continue
        app = load(module, variant)
        times = [uvloop.run(measure(app, args.requests, query)) for _ in range(args.runs)]
        results[name] = statistics.median(times)
    floor = results["raw ASGI"]
    print(
        f"| app (called directly, no server) | µs per request (median of {args.runs} x {args.requests}) | above raw ASGI |"
    )
    print("|---|---:|---:|")
    for name, us in results.items():
        print(f"| {name} | {us:.1f} | +{us - floor:.1f} µs |")


if __name__ == "__main__":
    main()
