"""Meta tests: CI entry point and README quick-start stay wired to scripts/demo and scripts/test."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELL_LANGS = {"sh", "bash", "shell", "console", "shell-session", "shellsession", "zsh"}
FENCE = re.compile(r"^ {0,3}(```+|~~~+)\s*([\w+-]*)[^\n]*$")


def _code_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_ci_run_exists_and_calls_scripts_test() -> None:
    ci = ROOT / ".ci" / "run"
    assert ci.is_file(), ".ci/run is missing"
    assert os.access(ci, os.X_OK), ".ci/run is not executable"
    text = ci.read_text()
    lines = _code_lines(text)
    assert any("RAT_REQUIRE_ALL=1" in ln for ln in lines), ".ci/run must export RAT_REQUIRE_ALL=1"
    assert any(re.search(r"(^|[\s/;])scripts/test\b", ln) for ln in lines), ".ci/run must call scripts/test"


def test_scripts_are_executable() -> None:
    for name in ("setup", "test", "demo"):
        script = ROOT / "scripts" / name
        assert script.is_file(), f"scripts/{name} is missing"
        assert os.access(script, os.X_OK), f"scripts/{name} is not executable"


def shell_commands(markdown: str) -> list[str]:
    """Commands from shell-tagged fenced code blocks, in order (prompts, comments, blanks dropped)."""
    commands: list[str] = []
    fence: str | None = None
    is_shell = False
    for line in markdown.splitlines():
        if fence is None:
            m = FENCE.match(line)
            if m:
                fence, is_shell = m.group(1), m.group(2).lower() in SHELL_LANGS
            continue
        if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            fence = None
            continue
        if is_shell:
            cmd = line.strip()
            cmd = re.sub(r"^[$%]\s+", "", cmd)
            if cmd and not cmd.startswith("#"):
                commands.append(cmd)
    return commands


def _is_script(cmd: str, name: str) -> bool:
    return re.match(rf"^(?:bash\s+)?(?:\./)?scripts/{name}(?:\s|$)", cmd) is not None


def test_shell_commands_parser() -> None:
    md = (
        "intro\n```python\nx = 1\n```\n```bash\n# start\n$ ./scripts/demo\n```\n~~~sh\nscripts/test -q\n~~~\n"
    )
    assert shell_commands(md) == ["./scripts/demo", "scripts/test -q"]


def test_readme_quickstart_uses_scripts() -> None:
    readme = ROOT / "README.md"
    assert readme.is_file(), "README.md is missing: its quickstart must run scripts/demo and scripts/test"
    commands = shell_commands(readme.read_text(encoding="utf-8"))
    assert len(commands) >= 2, f"README.md needs two fenced shell commands, found {commands!r}"
    assert _is_script(commands[0], "demo"), (
        f"first README shell command should be scripts/demo: {commands[0]!r}"
    )
    assert _is_script(commands[1], "test"), (
        f"second README shell command should be scripts/test: {commands[1]!r}"
    )


def test_readme_says_how_to_run_your_own_code_with_the_venv() -> None:
    """A newcomer who ran scripts/demo can run their own file: the README names the venv's
    interpreter and CLI, and the distribution name (not the original's, rat-engine-py)."""
    import tomllib

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = shell_commands(readme)
    assert any(cmd.startswith(".venv/bin/python examples/") for cmd in commands), commands
    assert any(cmd.startswith(".venv/bin/rat-engine run ") for cmd in commands), commands
    name = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    assert name == "rat_engine" and f"distribution is named `{name}`" in readme
    assert name.replace("_", "-") != "rat-engine-py"
    example = commands[[c.startswith(".venv/bin/python examples/") for c in commands].index(True)].split()[1]
    assert (ROOT / example).is_file(), example
    assert "rat-engine = " in (ROOT / "pyproject.toml").read_text(
        encoding="utf-8"
    )  # the console script exists


def test_ci_builds_the_docs_site_strictly() -> None:
    """The test run (scripts/test, so .ci/run) builds the documentation site with --strict: its
    packages are in the test extra that scripts/setup installs, mkdocs.yml turns broken links and
    anchors into warnings, and tests/test_docs_site.py builds with --strict and fails on any."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower() for spec in extras["test"]}
    assert {"mkdocs", "mkdocs-material", "mkdocstrings"} <= names, names
    assert "'.[test]'" in (ROOT / "scripts" / "setup").read_text(encoding="utf-8")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^strict: true$", config, re.M)
    for check in ("omitted_files", "absolute_links", "unrecognized_links", "anchors"):
        assert re.search(rf"^  {check}: warn$", config, re.M), check
    assert '"build", "--strict"' in (ROOT / "tests" / "support" / "docs_site.py").read_text(encoding="utf-8")
    site_test = (ROOT / "tests" / "test_docs_site.py").read_text(encoding="utf-8")
    assert "build_site(" in site_test and '"WARNING" not in output' in site_test
