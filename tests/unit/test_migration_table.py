"""docs/migration.md's name-by-name table matches the code: what it calls supported exists,
what it calls not supported does not."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import rat_engine
from rat_engine import RatApp

DOC = Path(__file__).resolve().parents[2] / "docs" / "migration.md"


def rows() -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## RAT Engine's Python API, name by name", 1)[1].split("\n## ", 1)[0]
    found = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[1] not in ("supported", "differently", "not supported"):
            continue
        for name in re.findall(r"`([A-Za-z_][\w.]*)`", cells[0]):
            found.append((name, cells[1]))
    return found


def resolves(name: str) -> bool:
    head, _, rest = name.partition(".")
    if head == "RatApp":
        return hasattr(RatApp(), rest) if rest else True
    if head != "rat_engine":
        raise AssertionError(f"table name {name!r} must start with RatApp. or rat_engine.")
    target: object = rat_engine
    parts = rest.split(".")
    for index, part in enumerate(parts):
        if hasattr(target, part):
            target = getattr(target, part)
            continue
        try:
            target = importlib.import_module("rat_engine." + ".".join(parts[: index + 1]))
        except ImportError:
            return False
    return True


ROWS = rows()


def test_the_table_is_there_and_long() -> None:
    assert len(ROWS) >= 60
    assert {status for _, status in ROWS} == {"supported", "differently", "not supported"}


@pytest.mark.parametrize(("name", "status"), ROWS, ids=[name for name, _ in ROWS])
def test_each_name(name: str, status: str) -> None:
    exists = resolves(name)
    if status == "not supported":
        assert not exists, f"{name} exists: update docs/migration.md"
    else:
        assert exists, f"{name} is documented as {status} but does not exist"
