"""The documentation's complete programs run as written: every ```python block in docs/ and the
README that imports rat_engine and checks itself with the TestClient (fragments and blocks that
start a server are left to the reader)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def programs() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
        for index, block in enumerate(blocks, 1):
            if (
                "from rat_engine" in block
                and "TestClient(" in block
                and "app.run(" not in block.replace("# app.run(", "")
            ):
                found.append((f"{doc.name}#{index}", block))
    return found


PROGRAMS = programs()


def test_there_are_programs_to_run() -> None:
    assert len(PROGRAMS) >= 25
    assert any(name.startswith("broadcast.md") for name, _ in PROGRAMS)


@pytest.mark.parametrize("source", [code for _, code in PROGRAMS], ids=[name for name, _ in PROGRAMS])
def test_program_runs(source: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
