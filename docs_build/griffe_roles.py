"""A griffe extension for the API reference (mkdocs.yml: mkdocstrings ``extensions``).

* Sphinx roles in rat_engine's docstrings (``:class:`~rat_engine.settings.Limits```,
  ``:meth:`stop```) become code spans (`Limits`, `stop()`): mkdocstrings renders docstrings as
  Markdown and would show the roles as text.
* Sphinx's ``#:`` comments above an attribute (how rat_engine documents dataclass fields) become
  that attribute's docstring, so the reference lists every field with its meaning.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):`(~?\.?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    role = match.group(0).split(":")[1]
    target = match.group(2)
    if role in ("meth", "func"):
        target = target.split(".")[-1] + "()"
    elif match.group(1):  # ~a.b.C or .b.C: the last name only
        target = target.split(".")[-1]
    return f"`{target}`"


def _comment_docstring(attr: griffe.Attribute) -> str | None:
    """The ``#:`` comment lines right above the attribute's first line, if any."""
    if attr.lineno is None or attr.filepath is None or isinstance(attr.filepath, list):
        return None
    lines = attr.lines_collection[attr.filepath] if attr.filepath in attr.lines_collection else None
    if not lines:
        return None
    found: list[str] = []
    index = attr.lineno - 2  # the line above, 0-based
    while index >= 0 and lines[index].strip().startswith("#:"):
        found.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    return " ".join(found) or None


class SphinxRolesToCode(griffe.Extension):
    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        if attr.docstring is None:
            text = _comment_docstring(attr)
            if text:
                attr.docstring = griffe.Docstring(ROLE.sub(_code, text), parent=attr)

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_code, obj.docstring.value)
