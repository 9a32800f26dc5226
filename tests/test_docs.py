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
# Every page of the documentation site (docs/, subfolders included) and the project README.
DOCS = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
#: The pages the single-page guide was split into: each still holds complete programs.
GUIDE_PAGES = ["routing.md", "responses.md", "hooks.md", "files.md", "running.md", "configuration.md"]


def programs() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        name = doc.relative_to(ROOT).as_posix()  # docs/routing.md, README.md
        blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
        for index, block in enumerate(blocks, 1):
            if (
                "from rat_engine" in block
                and "TestClient(" in block
                and "app.run(" not in block.replace("# app.run(", "")
            ):
                found.append((f"{name}#{index}", block))
    return found


PROGRAMS = programs()


def test_there_are_programs_to_run() -> None:
    assert len(PROGRAMS) >= 25
    assert any(name.startswith("docs/broadcast.md#") for name, _ in PROGRAMS)
    for page in GUIDE_PAGES:
        assert any(name.startswith(f"docs/{page}#") for name, _ in PROGRAMS), page


@pytest.mark.parametrize("source", [code for _, code in PROGRAMS], ids=[name for name, _ in PROGRAMS])
def test_program_runs(source: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
