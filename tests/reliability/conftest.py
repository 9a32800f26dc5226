"""Reliability suite configuration: profile selection and figure reporting.

* ``RAT_RELIABILITY_LONG=1`` selects the long profile. ``--long`` does the same when
  ``tests/reliability`` (or a file in it) is named on the command line, which is what makes
  this conftest an "initial" one that may add options.
* ``bench/results/reliability-last.jsonl`` is emptied once per run; each test appends its figures.
* The figure lines are repeated in pytest's terminal summary, so they show without ``-s``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from ._support import RESULTS_FILE, SUMMARY_LINES, profile


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reliability")
    try:
        group.addoption(
            "--long",
            action="store_true",
            default=False,
            help="run tests/reliability with the long profile (minutes)",
        )
    except ValueError:
        pass  # already added (conftest loaded twice)


def pytest_configure(config: pytest.Config) -> None:
    try:
        if config.getoption("--long"):
            os.environ["RAT_RELIABILITY_LONG"] = "1"
    except ValueError:
        pass


@pytest.fixture(scope="session", autouse=True)
def _reliability_results() -> Iterator[None]:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text("", encoding="utf-8")
    yield


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARY_LINES:
        terminalreporter.section(f"reliability figures ({profile()} profile)")
        for line in SUMMARY_LINES:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"(JSON lines: {RESULTS_FILE})")
