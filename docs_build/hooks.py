"""MkDocs hooks for the documentation site (mkdocs.yml: ``hooks:``).

The Markdown files in docs/ are read on GitHub as well as in the site. Links that leave docs/
for the example programs (``../examples/`` and ``../examples/NAME.py``) work on GitHub; in the
site they point to a generated page, examples.md, that shows each example's source. Any other
link that leaves docs/ is left alone, so ``mkdocs build --strict`` reports it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_LINK = re.compile(r"\]\(\.\./examples/([\w.-]*)\)")


def _anchor(name: str) -> str:
    return "example-" + Path(name).stem.replace("_", "-")


def _examples_page() -> str:
    parts = [
        "# Examples",
        "",
        "Runnable programs from the repository's `examples/` folder. The first six are the seed",
        "guide's examples, kept verbatim with the few lines that start them; run one with",
        "`.venv/bin/python examples/NAME.py` from a checkout.",
        "",
    ]
    for path in sorted(EXAMPLES.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(source)) or ""
        summary = doc.split("\n\n")[0].replace("\n", " ")
        parts += [
            f"## {path.name} {{#{_anchor(path.name)}}}",
            "",
            summary,
            "",
            "```python",
            source.rstrip(),
            "```",
            "",
        ]
    return "\n".join(parts)


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "examples.md", content=_examples_page()))
    return files


def _rewrite(match: re.Match[str]) -> str:
    name = match.group(1)
    if not name:
        return "](examples.md)"
    if (EXAMPLES / name).is_file():
        return f"](examples.md#{_anchor(name)})"
    return match.group(0)  # no such example: left broken on purpose, so --strict fails


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    depth = page.file.src_uri.count("/")
    prefix = "../" * depth
    return EXAMPLE_LINK.sub(
        lambda m: _rewrite(m).replace("](examples.md", f"]({prefix}examples.md"), markdown
    )
