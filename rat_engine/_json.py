"""One JSON encoder for the whole package (orjson: fast, UTF-8, non-ASCII kept as is).

Every JSON body, every JSON SSE item and every broadcast payload goes through :func:`dumps`, so
one ``default`` hook decides what a typed value becomes:

========================================  ==================================================
value                                     JSON
========================================  ==================================================
pydantic v2 model                         its ``model_dump(mode="json", by_alias=True)``
                                          (serialized by pydantic itself)
msgspec ``Struct``                        ``msgspec.json.encode`` (msgspec itself)
attrs class                               an object of its fields
dataclass, enum, ``datetime``/``date``/   orjson's own encoding (ISO 8601 text, the enum's
``time``, ``UUID``                        value, the UUID's text)
``Decimal``                               a string (exact, as pydantic writes it)
``Path`` (any ``PurePath``)               its text
set / frozenset                           an array
========================================  ==================================================

pydantic and msgspec are never imported here: a model of theirs is recognised by the marker its
class carries (``__pydantic_serializer__``, ``__struct_fields__``), which exists only when the
library is already loaded, so an app that does not use them does not pay for them.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import io
import json
import pathlib
import sys
import threading
import uuid
from typing import Any

import orjson

__all__ = ["dumps", "dumps_str", "is_record", "loads", "to_builtins"]

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def is_record(obj: Any) -> bool:
    """A typed record that encodes as a JSON object: a dataclass, pydantic model, msgspec
    ``Struct`` or attrs class (callers ask only after the common types)."""
    cls = type(obj)
    return (
        dataclasses.is_dataclass(cls)
        or hasattr(cls, "__pydantic_serializer__")
        or hasattr(cls, "__struct_fields__")
        or hasattr(cls, "__attrs_attrs__")
    )


def _common(obj: Any) -> Any:
    """What both encoders need from the hook: the values neither knows. ``NotImplemented`` when
    ``obj`` is none of them."""
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, pathlib.PurePath):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    cls = type(obj)
    attrs_fields = getattr(cls, "__attrs_attrs__", None)
    if attrs_fields is not None:
        return {field.name: getattr(obj, field.name) for field in attrs_fields}
    # What makes ``request_data`` itself echoable (a common debugging handler returns it): its
    # raw body as text, the disconnect flag as a bool, an upload's file object as null.
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", errors="replace")
    if isinstance(obj, threading.Event):
        return obj.is_set()
    if isinstance(obj, io.IOBase):
        return None
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return NotImplemented


def _default(obj: Any) -> Any:
    """orjson's hook: models are serialized by their own library, as a finished fragment."""
    cls = type(obj)
    serializer = getattr(cls, "__pydantic_serializer__", None)
    if serializer is not None and hasattr(obj, "model_dump"):
        return orjson.Fragment(serializer.to_json(obj, by_alias=True))
    if getattr(cls, "__struct_fields__", None) is not None and "msgspec" in sys.modules:
        return orjson.Fragment(sys.modules["msgspec"].json.encode(obj))
    value = _common(obj)
    if value is NotImplemented:
        raise TypeError(f"Object of type {cls.__name__} is not JSON serializable")
    return value


def to_builtins(obj: Any) -> Any:
    """``obj`` as plain JSON types (dict, list, str, int, float, bool, None), one level deep:
    for encoders that know nothing but those (the stdlib's ``json``).

    Raises:
        TypeError: ``obj`` has no JSON form.
    """
    cls = type(obj)
    if getattr(cls, "__pydantic_serializer__", None) is not None and hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", by_alias=True)
    if getattr(cls, "__struct_fields__", None) is not None and "msgspec" in sys.modules:
        return sys.modules["msgspec"].to_builtins(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    value = _common(obj)
    if value is NotImplemented:
        raise TypeError(f"Object of type {cls.__name__} is not JSON serializable")
    return value


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON bytes.

    Raises:
        TypeError: a value has no JSON form (a 500 or an ``error`` event, with a log line).
    """
    try:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)
    except TypeError as exc:
        # orjson stops at 64-bit integers; Python's ints (and <int:n> path parameters) do not.
        if "64-bit" not in str(exc):
            raise
        return json.dumps(obj, default=to_builtins, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode("utf-8")


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
