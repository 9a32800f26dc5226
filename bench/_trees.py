"""Run one in-process measurement in several checkouts, alternately, for a same-sitting comparison.

    main(measure, "us per delivery", 3)   # in a bench script: ``script.py [TREE ...]``

Each run is a child process (``--child TREE``) with ``TREE`` first on ``sys.path``, on uvloop;
``measure()`` returns seconds per unit, printed in microseconds. Three rounds, trees in turn.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path


def main(measure: Callable[[], Awaitable[float]], unit: str, digits: int = 2) -> None:
    script = sys.argv[0]
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.path.insert(0, sys.argv[2])
        import uvloop

        print(f"{uvloop.run(measure()) * 1e6:.{digits}f}")
        return
    trees = sys.argv[1:] or [str(Path(script).resolve().parents[1])]
    results: dict[str, list[float]] = {tree: [] for tree in trees}
    for _ in range(3):
        for tree in trees:
            out = subprocess.run(
                [sys.executable, script, "--child", tree], capture_output=True, text=True, check=True, cwd="/"
            )
            results[tree].append(float(out.stdout))
    for tree, figures in results.items():
        runs = ", ".join(f"{f:.{digits}f}" for f in figures)
        print(f"{tree}: best {min(figures):.{digits}f} {unit} (runs: {runs})")
