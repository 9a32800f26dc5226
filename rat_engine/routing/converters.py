"""Path-parameter converters: the regex a segment must match and how its text becomes a value.

A converter's ``to_python`` may still reject text its regex accepted (``float("1e999")`` is
fine, but ``uuid`` checks the layout); rejection means "this route does not match" (404),
never a 500.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, ClassVar

__all__ = ["CONVERTERS", "Converter", "ConversionError"]


class ConversionError(ValueError):
    """The segment matched the regex but is not a valid value: the route does not match."""


class Converter:
    regex: ClassVar[str] = r"[^/]+"
    #: Lower weight sorts first: specific converters are tried before catch-alls.
    weight: ClassVar[int] = 100
    name: ClassVar[str] = "str"

    def to_python(self, value: str) -> Any:
        return value


class StringConverter(Converter):
    regex = r"[^/]+"
    weight = 100
    name = "str"


class IntConverter(Converter):
    regex = r"[+-]?\d+"
    weight = 50
    name = "int"

    def to_python(self, value: str) -> int:
        return int(value)


class FloatConverter(Converter):
    # Accepts 1, 1.5, .5, 1., -2.5, 1e3; rejects 1.2.3 by regex.
    regex = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
    weight = 60
    name = "float"

    def to_python(self, value: str) -> float:
        number = float(value)
        if not math.isfinite(number):
            raise ConversionError(value)
        return number


class UUIDConverter(Converter):
    regex = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    weight = 40
    name = "uuid"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)


class PathConverter(Converter):
    regex = r".+"
    weight = 200
    name = "path"


CONVERTERS: dict[str, type[Converter]] = {
    cls.name: cls for cls in (StringConverter, IntConverter, FloatConverter, UUIDConverter, PathConverter)
}
