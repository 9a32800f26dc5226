"""Missing prerequisites (chromium, redis-server, node): skip locally, fail in CI."""

from __future__ import annotations

import os

import pytest


def require_all() -> bool:
    """True when missing prerequisites must fail the run instead of skipping (CI)."""
    return os.environ.get("RAT_REQUIRE_ALL", "") == "1"


def require_or_skip(what: str, reason: str) -> None:
    """Skip the current test because ``what`` is unavailable -- or fail if ``RAT_REQUIRE_ALL=1``.

    Never returns.
    """
    message = f"{what} unavailable: {reason}"
    if require_all():
        pytest.fail(f"{message} (RAT_REQUIRE_ALL=1: refusing to skip)", pytrace=False)
    pytest.skip(message)
