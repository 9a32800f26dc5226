"""Profile one /json server under wrk load with py-spy; print the top functions by own time.

    bench/.venv/bin/pip install py-spy          # once (not in requirements.txt: optional)
    bench/.venv/bin/python bench/profile.py --server "rat_engine inline" --duration 5
    bench/.venv/bin/python bench/profile.py --h2 stream --duration 5   # h2 scenario, (a) 1x100
    bench/.venv/bin/python bench/profile.py --h2 json --duration 5     # h2 scenario, (b)

With --h2, the server is a row of run_bench.H2_SERVERS (default "rat_engine", over h2c) and the
load is h2load: ``stream`` keeps 100 SSE streams busy on one connection (as the h2 scenario's
(a)), ``json`` is ``h2load -c4 -m10`` on /json (its (b)).

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
import contextlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_bench import (  # noqa: E402
    H2_SERVERS,
    HOST,
    JSON_SERVERS,
    Running,
    h2_get,
    http_probe,
    pin,
    wait_listening,
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--server",
        help='a name from run_bench.JSON_SERVERS (default "rat_engine inline"), '
        'or with --h2 from H2_SERVERS (default "rat_engine")',
    )
    p.add_argument("--h2", choices=["stream", "json"], help="h2load over h2c instead of wrk (see above)")
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
    servers = H2_SERVERS if args.h2 else JSON_SERVERS
    name = args.server or ("rat_engine" if args.h2 else "rat_engine inline")
    server = next((s for s in servers if s.name == name), None)
    if server is None:
        p.error(f"unknown server; pick one of {[s.name for s in servers]}")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    wrk = shutil.which("h2load" if args.h2 else "wrk")
    if not Path(py_spy).exists() or not wrk:
        sys.exit(f"needs py-spy (bench/.venv/bin/pip install py-spy) and {'h2load' if args.h2 else 'wrk'}")

    args.out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "_", server.name.lower()).strip("_")
    slug = f"h2_{args.h2}_{slug}" if args.h2 else slug
    svg, raw = args.out / f"profile-{slug}.svg", args.out / f"profile-{slug}.txt"
    # --h2 stream: 100 streams whose events outlast the recording at ~500,000 events/s.
    env = {"BENCH_H2_EVENTS": str(5000 * (args.duration + 3))} if args.h2 else {}
    running = Running(server, env, "0", args.out, f"profile-{slug}")

    def load_cmd(seconds: int) -> list[str]:
        if args.h2 == "stream":
            return [*pin("1"), wrk, "-t1", "-c1", "-m100", "-n100", f"http://{HOST}:{running.port}/stream"]
        if args.h2 == "json":
            return [
                *pin("1"),
                wrk,
                "-t1",
                "-c4",
                "-m10",
                f"-D{seconds}",
                f"http://{HOST}:{running.port}/json",
            ]
        return [*pin("1"), wrk, "-t1", "-c64", f"-d{seconds}s", f"http://{HOST}:{running.port}/json"]

    def settle(load: subprocess.Popen[str]) -> None:
        """Wait for the load generator; an SSE load still streaming is stopped (it is ours)."""
        if args.h2 == "stream":
            with contextlib.suppress(subprocess.TimeoutExpired):
                load.wait(timeout=1)
            if load.poll() is None:
                load.kill()
        load.wait(timeout=args.duration + 30)

    try:
        why = wait_listening(running) if args.h2 else running.wait_ready()
        if why:
            sys.exit(f"server failed: {why}")
        if args.h2:
            answer = h2_get(running.port, "/json", 5.0)
            assert not isinstance(answer, str) and answer[0] == 200, answer
        else:
            assert http_probe(running.port, "/json", 5.0) is not None
        load = subprocess.Popen(load_cmd(args.duration + 3), stdout=subprocess.PIPE, text=True)
        time.sleep(1)  # warm-up
        common = [*pin("1"), py_spy, "record", "--pid", str(running.pid), "--duration", str(args.duration)]
        common += ["--rate", str(args.rate), "--function"]
        if not args.blocking:
            common.append("--nonblocking")
        if args.native:
            common.append("--native")
        subprocess.run([*common, "--format", "raw", "-o", str(raw)], check=True, capture_output=True)
        settle(load)
        out = load.stdout.read() if load.stdout else ""
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out) or re.search(r"finished in \S+ ([\d.]+) req/s", out)
        # A second, separate recording for the flame graph (py-spy writes one format per run).
        load = subprocess.Popen(load_cmd(args.duration + 2), stdout=subprocess.DEVNULL, text=True)
        time.sleep(1)
        subprocess.run([*common, "--format", "flamegraph", "-o", str(svg)], check=True, capture_output=True)
        settle(load)
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
    under = {"stream": "h2load -c1 -m100 (SSE)", "json": "h2load -c4 -m10"}.get(args.h2 or "", "wrk -c64")
    rate = f"{rps.group(1)} req/s while profiled; " if rps and args.h2 != "stream" else ""
    print(f"{server.name}: {samples} samples over {args.duration} s under {under} ({rate}flame graph: {svg})")
    print(f"\nTop {args.top} by own time (top of stack):")
    for frame, count in own.most_common(args.top):
        print(f"  {100 * count / samples:5.1f}%  {frame}")
    print(f"\nTop {args.top} by total time (anywhere in the stack):")
    for frame, count in total.most_common(args.top):
        print(f"  {100 * count / samples:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
