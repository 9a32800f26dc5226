"""Rule parsing, converters and matching (pure: no I/O, testable with tables)."""

from .converters import CONVERTERS, Converter
from .router import Match, MethodNotAllowed, NotFound, Router
from .rules import CompiledRule, compile_rule

__all__ = [
    "CONVERTERS",
    "CompiledRule",
    "Converter",
    "Match",
    "MethodNotAllowed",
    "NotFound",
    "Router",
    "compile_rule",
]
