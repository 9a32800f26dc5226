"""JSON Schema (2020-12, OpenAPI 3.1+'s dialect) for a Python annotation.

Named types (dataclasses, attrs classes, TypedDicts, enums, pydantic models, msgspec Structs)
become ``#/components/schemas/<Name>`` references; the rest is inline. pydantic and msgspec
write the schemas of their own types (``TypeAdapter.json_schema``,
``msgspec.json.schema_components``); both are used only when the annotation names one of their
types, so they are never imported here.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import logging
import pathlib
import sys
import typing
import uuid
from collections.abc import Iterable, Mapping, MutableMapping, MutableSequence, Sequence, Set
from typing import Any, Literal, NotRequired, Required, get_args, get_origin

from ..params.types import NONE_TYPE, field_types, is_union, mentions, strip

logger = logging.getLogger(__name__)

__all__ = ["REF_PREFIX", "Mode", "SchemaBuilder"]

REF_PREFIX = "#/components/schemas/"
#: Request bodies are described as they are read, responses as they are written.
Mode = Literal["validation", "serialization"]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"type": "string"},
    NONE_TYPE: {"type": "null"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}
_ARRAYS = (list, tuple, set, frozenset, Sequence, MutableSequence, Set, Iterable)
_OBJECTS = (dict, Mapping, MutableMapping)


def _json_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


class SchemaBuilder:
    """Schemas for annotations, collecting the named ones in :attr:`components`."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self._names: dict[Any, str] = {}

    def schema(self, tp: Any, mode: Mode = "validation") -> dict[str, Any]:
        """The schema for ``tp`` (``{}`` -- anything -- for what it cannot describe)."""
        tp = strip(tp)
        if tp is Any or tp is object or tp is inspect.Parameter.empty:
            return {}
        if tp is None:
            return {"type": "null"}
        if tp in _SCALARS:
            return dict(_SCALARS[tp])
        if is_union(tp):
            return {"anyOf": [self.schema(arg, mode) for arg in get_args(tp)]}
        origin = get_origin(tp)
        if origin is Literal:
            values = [_json_value(v) for v in get_args(tp)]
            return {"const": values[0]} if len(values) == 1 else {"enum": values}
        if tp is decimal.Decimal:
            if mode == "serialization":
                return {"type": "string", "format": "decimal"}
            return {"anyOf": [{"type": "number"}, {"type": "string", "format": "decimal"}]}
        if isinstance(tp, type) and issubclass(tp, pathlib.PurePath):
            return {"type": "string", "format": "path"}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._named(tp, lambda: {"title": tp.__name__, "enum": [m.value for m in tp]})
        if mentions(tp, lambda t: isinstance(t, type) and hasattr(t, "__pydantic_validator__")):
            return self._pydantic(tp, mode)
        if mentions(tp, lambda t: isinstance(t, type) and hasattr(t, "__struct_fields__")):
            return self._msgspec(tp)
        container = origin if origin is not None else tp
        if container in _ARRAYS:
            return self._array(tp, container, mode)
        if container in _OBJECTS:
            pair = get_args(tp)
            value_schema = self.schema(pair[1], mode) if len(pair) == 2 else {}
            if not value_schema:
                return {"type": "object"}
            return {"type": "object", "additionalProperties": value_schema}
        if isinstance(tp, type) and (
            dataclasses.is_dataclass(tp) or typing.is_typeddict(tp) or hasattr(tp, "__attrs_attrs__")
        ):
            return self._named(tp, lambda: self._record(tp, mode))
        logger.debug("no schema for %r; documented as any value", tp)
        return {}

    def _array(self, tp: Any, container: Any, mode: Mode) -> dict[str, Any]:
        args = get_args(tp)
        schema: dict[str, Any] = {"type": "array"}
        if container is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
            schema.update(
                prefixItems=[self.schema(a, mode) for a in args], minItems=len(args), maxItems=len(args)
            )
            return schema
        if args:
            items = self.schema(args[0], mode)
            if items:
                schema["items"] = items
        if container in (set, frozenset, Set):
            schema["uniqueItems"] = True
        return schema

    def _name_for(self, tp: type) -> str:
        """A component name unique to this type."""
        name = getattr(tp, "__name__", "Model")
        taken = {n for t, n in self._names.items() if t is not tp} | set(self.components)
        candidate, number = name, 2
        while candidate in taken:
            candidate, number = f"{name}{number}", number + 1
        return candidate

    def _named(self, tp: type, build: typing.Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A reference to ``tp``'s component, built the first time (in the mode asked then)."""
        key = (tp, "any")
        name = self._names.get(key)
        if name is None:
            name = self._name_for(tp)
            self._names[key] = name
            self.components[name] = {}  # a recursive type refers to itself while being built
            self.components[name] = build()
        return {"$ref": REF_PREFIX + name}

    def _record(self, tp: type, mode: Mode) -> dict[str, Any]:
        hints = field_types(tp)
        properties: dict[str, Any] = {}
        required: list[str] = []
        if typing.is_typeddict(tp):
            keys = getattr(tp, "__required_keys__", frozenset(hints))
            for name, hint in hints.items():
                properties[name] = self.schema(hint, mode)
                if get_origin(hint) is Required or (get_origin(hint) is not NotRequired and name in keys):
                    required.append(name)
        elif dataclasses.is_dataclass(tp):
            for f in dataclasses.fields(tp):
                properties[f.name] = self.schema(hints.get(f.name, Any), mode)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    required.append(f.name)
        else:  # attrs
            for attribute in getattr(tp, "__attrs_attrs__", ()):
                properties[attribute.name] = self.schema(hints.get(attribute.name, Any), mode)
                if type(attribute.default).__name__ == "_Nothing":  # attrs.NOTHING: no default
                    required.append(attribute.name)
        schema: dict[str, Any] = {"title": tp.__name__, "type": "object", "properties": properties}
        if required:
            schema["required"] = required
        doc = tp.__doc__
        if doc and not doc.startswith(f"{tp.__name__}("):  # not the dataclass's generated signature
            schema["description"] = doc.strip()
        return schema

    def _pydantic(self, tp: Any, mode: Mode) -> dict[str, Any]:
        pydantic = sys.modules["pydantic"]
        schema: dict[str, Any] = pydantic.TypeAdapter(tp).json_schema(
            ref_template=REF_PREFIX + "{model}", mode=mode
        )
        self.components.update(schema.pop("$defs", {}))
        if isinstance(tp, type) and hasattr(tp, "__pydantic_validator__") and "title" in schema:
            name = schema["title"]
            self.components[name] = schema
            return {"$ref": REF_PREFIX + name}
        return schema

    def _msgspec(self, tp: Any) -> dict[str, Any]:
        msgspec = sys.modules["msgspec"]
        (schema,), components = msgspec.json.schema_components([tp], ref_template=REF_PREFIX + "{name}")
        self.components.update(components)
        return dict(schema)
