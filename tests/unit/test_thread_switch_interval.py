"""Many sync-generator threads raise the interpreter's switch interval, and put it back (issue 11)."""

from __future__ import annotations

import sys

import pytest

from rat_engine.streaming import pumps


def test_many_generator_threads_raise_the_switch_interval_and_put_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pumps._LiveThreads, "count", 0)
    monkeypatch.setattr(pumps._LiveThreads, "restore", None)
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        for _ in range(pumps._MANY_THREADS):
            pumps._thread_born()
        assert sys.getswitchinterval() == pytest.approx(0.005)  # a few threads: untouched
        pumps._thread_born()
        assert sys.getswitchinterval() == pytest.approx(pumps._MANY_THREADS_SWITCH_INTERVAL)
        for _ in range(pumps._MANY_THREADS // 2):
            pumps._thread_gone()
        assert sys.getswitchinterval() == pytest.approx(pumps._MANY_THREADS_SWITCH_INTERVAL)
        pumps._thread_gone()  # at most half as many left: put back
        assert sys.getswitchinterval() == pytest.approx(0.005)
        assert pumps._LiveThreads.count == pumps._MANY_THREADS // 2
    finally:
        sys.setswitchinterval(before)


def test_a_switch_interval_set_by_someone_else_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pumps._LiveThreads, "count", 0)
    monkeypatch.setattr(pumps._LiveThreads, "restore", None)
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.1)  # already above ours: never lowered
        for _ in range(pumps._MANY_THREADS + 1):
            pumps._thread_born()
        assert sys.getswitchinterval() == pytest.approx(0.1)
        for _ in range(pumps._MANY_THREADS + 1):
            pumps._thread_gone()
        assert sys.getswitchinterval() == pytest.approx(0.1)  # nothing to put back
        assert pumps._LiveThreads.count == 0
    finally:
        sys.setswitchinterval(before)
