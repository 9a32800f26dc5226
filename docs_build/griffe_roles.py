"""A griffe extension for the API reference: Sphinx roles in rat_engine's docstrings
(``:class:`~rat_engine.settings.Limits```, ``:meth:`stop```) become code spans (`Limits`,
`stop()`), since mkdocstrings renders docstrings as Markdown and would show the roles as text."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):`~?\.?([^`]+)`")


def _code(match: re.Match[str]) -> str:
    target = match.group(1)
    if match.group(0).startswith(":meth:") or match.group(0).startswith(":func:"):
        target = target.split(".")[-1] + "()"
    elif "~" in match.group(0) or match.group(0).startswith((":class:`.", ":class:`~.")):
        target = target.split(".")[-1]
    return f"`{target}`"


class SphinxRolesToCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_code, obj.docstring.value)
