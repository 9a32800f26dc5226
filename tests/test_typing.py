"""The public API is typed: mypy --strict accepts the package and a typed usage example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def test_registration_errors_point_at_the_handler(tmp_path):
    from rat_engine import RatApp, RouteError

    app = RatApp(name="dup")

    @app.json("/x")
    def first(request_data):
        return {}

    with pytest.raises(RouteError) as info:

        @app.json("/x")
        def second(request_data):
            return {}

    assert "duplicate route" in str(info.value)
    assert f"{Path(__file__).name}:" in str(info.value) and "second" in str(info.value)
