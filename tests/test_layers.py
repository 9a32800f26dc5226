"""The package's layers: no import cycle between its parts, and no layer importing one above it
(the rules and the graph: ``python scripts/check_imports.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_package_level_import_cycle_and_layers_respected() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_imports.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("no cycles, layers respected")
    edges = {
        line.split("->")[0].strip(): line.split("->")[1].strip()
        for line in result.stdout.splitlines()
        if "->" in line
    }
    # The stream engine knows neither the wire format above it nor the server below it.
    assert not {"sse", "broadcast", "server", "app"} & set(edges["streaming"].split(", "))
    assert edges["server"] == "_types"  # the wire serves any ASGI app


def test_the_checker_finds_a_cycle(tmp_path: Path) -> None:
    """The check is not vacuous: a planted cycle between two parts is reported."""
    import runpy

    checker = runpy.run_path(str(ROOT / "scripts" / "check_imports.py"))
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert checker["cycles"](edges) == [["a", "b", "c", "a"]]
    assert checker["violations"]({"streaming": {"sse", "_json"}}) == ["streaming imports sse"]
