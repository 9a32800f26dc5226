"""The public API is typed: mypy --strict accepts the package and a typed usage example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict_on_package_and_typed_example():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "rat_engine", "tests/type_check/typed_app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_typed_example_runs():
    sys.path.insert(0, str(ROOT / "tests" / "type_check"))
    try:
        import typed_app
    finally:
        sys.path.pop(0)
    assert typed_app.check() == 200
