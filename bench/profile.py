"""Profile one /json server under wrk load with py-spy; print the top functions by own time.

    bench/.venv/bin/pip install py-spy          # once (not in requirements.txt: optional)
    bench/.venv/bin/python bench/profile.py --server "rat_engine inline" --duration 5

The server is pinned to CPU 0, wrk and py-spy to CPU 1 (as in run_bench.py). Writes
bench/results/profile-<server>.svg (flame graph) and .txt (collapsed stacks), then prints the
functions with the most samples at the top of the stack ("own") and anywhere in it ("total").

Sampling is non-blocking by default (the server is not paused): "own" is trustworthy, but some
stacks come out truncated, so "total" undercounts outer frames. Without --native, time in C
(uvloop's socket writes, orjson) is charged to the Python function that called it.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_bench import HOST, JSON_SERVERS, Running, http_probe, pin  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="rat_engine inline", help="a name from run_bench.JSON_SERVERS")
    p.add_argument("--duration", type=int, default=5, help="seconds of profiling (1..60)")
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=15)
    p.add_argument(
        "--blocking",
        action="store_true",
        help="pause the server for each sample (consistent stacks, but on this box it piles samples onto "
        "the socket write in uvicorn's send)",
    )
    p.add_argument("--native", action="store_true", help="include C frames (uvloop, httptools, orjson)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args()
    if not 1 <= args.duration <= 60:
        p.error("--duration must be 1..60")
    server = next((s for s in JSON_SERVERS if s.name == args.server), None)
    if server is None:
        p.error(f"unknown server; pick one of {[s.name for s in JSON_SERVERS]}")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    wrk = shutil.which("wrk")
    if not Path(py_spy).exists() or not wrk:
        sys.exit("needs py-spy (bench/.venv/bin/pip install py-spy) and wrk")

    args.out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "_", server.name.lower()).strip("_")
    svg, raw = args.out / f"profile-{slug}.svg", args.out / f"profile-{slug}.txt"
    running = Running(server, {}, "0", args.out, f"profile-{slug}")
    try:
        why = running.wait_ready()
        if why:
            sys.exit(f"server failed: {why}")
        assert http_probe(running.port, "/json", 5.0) is not None
        url = f"http://{HOST}:{running.port}/json"
        load = subprocess.Popen(
            [*pin("1"), wrk, "-t1", "-c64", f"-d{args.duration + 3}s", url], stdout=subprocess.PIPE, text=True
        )
        time.sleep(1)  # warm-up
        common = [*pin("1"), py_spy, "record", "--pid", str(running.pid), "--duration", str(args.duration)]
        common += ["--rate", str(args.rate), "--function"]
        if not args.blocking:
            common.append("--nonblocking")
        if args.native:
            common.append("--native")
        subprocess.run([*common, "--format", "raw", "-o", str(raw)], check=True, capture_output=True)
        load.wait(timeout=args.duration + 30)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", load.stdout.read() if load.stdout else "")
        # A second, separate recording for the flame graph (py-spy writes one format per run).
        load = subprocess.Popen(
            [*pin("1"), wrk, "-t1", "-c64", f"-d{args.duration + 2}s", url], stdout=subprocess.DEVNULL
        )
        time.sleep(1)
        subprocess.run([*common, "--format", "flamegraph", "-o", str(svg)], check=True, capture_output=True)
        load.wait(timeout=args.duration + 30)
    finally:
        running.stop()

    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [re.sub(r"/.*/(site-packages|lib/python3\.\d+)/", "", f) for f in stack.split(";")]
        frames = [re.sub(str(Path(__file__).resolve().parent.parent) + "/", "", f) for f in frames]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    print(
        f"{server.name}: {samples} samples over {args.duration} s under wrk -c64 "
        f"({rps.group(1) if rps else '?'} req/s while profiled); flame graph: {svg}"
    )
    print(f"\nTop {args.top} by own time (top of stack):")
    for frame, count in own.most_common(args.top):
        print(f"  {100 * count / samples:5.1f}%  {frame}")
    print(f"\nTop {args.top} by total time (anywhere in the stack):")
    for frame, count in total.most_common(args.top):
        print(f"  {100 * count / samples:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
