"""Parse a rule such as ``/api/progress/<session_id>`` or ``/u/<int:id>/f/<path:p>`` into a regex.

Grammar: static text, and ``<name>`` or ``<type:name>`` placeholders, each filling a whole
path segment. ``name`` is a Python identifier (it becomes a keyword argument of the handler);
``type`` is a key of :data:`CONVERTERS`; ``path`` may only be the last placeholder (it spans
slashes). Anything else is a :class:`RouteError` at registration time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..exceptions import RouteError
from .converters import CONVERTERS, Converter

__all__ = ["CompiledRule", "compile_rule"]

_PLACEHOLDER = re.compile(r"<(?:(?P<type>[a-zA-Z_][a-zA-Z0-9_]*):)?(?P<name>[^<>:]*)>")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: str
    regex: re.Pattern[str] | None  # None for a static rule (matched by dict lookup)
    converters: tuple[tuple[str, Converter], ...]
    #: Identifies rules that match exactly the same paths (for duplicate detection).
    signature: str
    #: Sort key: static segments first, then specific converters, catch-alls last.
    sort_key: tuple[tuple[int, int], ...]

    @property
    def is_static(self) -> bool:
        return self.regex is None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.converters)


def compile_rule(rule: str) -> CompiledRule:
    """Compile ``rule``; raises :class:`RouteError` with the reason when it is malformed."""
    if not isinstance(rule, str) or not rule.startswith("/"):
        raise RouteError(f"route rule must be a string starting with '/': {rule!r}")
    if "//" in rule:
        raise RouteError(f"route rule contains an empty segment: {rule!r}")

    pattern: list[str] = []
    signature: list[str] = []
    converters: list[tuple[str, Converter]] = []
    sort_key: list[tuple[int, int]] = []
    seen: set[str] = set()
    position = 0
    for match in _PLACEHOLDER.finditer(rule):
        static = rule[position : match.start()]
        _check_static(rule, static)
        if converters and converters[-1][1].name == "path":
            raise RouteError(f"<path:...> must be the last placeholder in {rule!r}")
        if not static.endswith("/") or (rule[match.end() : match.end() + 1] not in ("", "/")):
            raise RouteError(f"a placeholder must fill a whole path segment in {rule!r}")
        type_name = match.group("type") or "str"
        name = match.group("name")
        if not _IDENTIFIER.match(name):
            raise RouteError(f"placeholder name {name!r} in {rule!r} is not a Python identifier")
        if name in seen:
            raise RouteError(f"placeholder {name!r} appears twice in {rule!r}")
        converter_cls = CONVERTERS.get(type_name)
        if converter_cls is None:
            known = ", ".join(sorted(CONVERTERS))
            raise RouteError(f"unknown converter {type_name!r} in {rule!r} (known: {known})")
        seen.add(name)
        converter = converter_cls()
        pattern.append(re.escape(static))
        pattern.append(f"(?P<{name}>{converter.regex})")
        signature.append(static + "<" + converter.name + ">")
        sort_key.extend((0, 0) for _ in static.strip("/").split("/") if static.strip("/"))
        sort_key.append((1, converter.weight))
        converters.append((name, converter))
        position = match.end()

    tail = rule[position:]
    _check_static(rule, tail)
    if not converters:
        return CompiledRule(rule, None, (), rule, ())
    pattern.append(re.escape(tail))
    signature.append(tail)
    sort_key.extend((0, 0) for _ in tail.strip("/").split("/") if tail.strip("/"))
    # \Z, not $: "$" also matches before a trailing newline, and a percent-decoded path may
    # contain one. DOTALL lets <path> span any character.
    regex = re.compile("^" + "".join(pattern) + r"\Z", re.DOTALL)
    return CompiledRule(rule, regex, tuple(converters), "".join(signature), tuple(sort_key))


def _check_static(rule: str, text: str) -> None:
    if "<" in text or ">" in text:
        raise RouteError(f"unbalanced or malformed placeholder in {rule!r}")
