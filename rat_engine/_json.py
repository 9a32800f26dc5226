"""One JSON encoder for the whole package (orjson: fast, UTF-8, non-ASCII kept as is)."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import orjson

__all__ = ["dumps", "dumps_str", "loads"]

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(obj: Any) -> Any:
    # Sets are common in handler return values. The rest makes `request_data` itself echoable
    # (a common debugging handler returns it): its raw body as text, the disconnect flag as a
    # bool, an upload's file object as null. Anything else is a programming error that should
    # surface as a TypeError (500 / error event).
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", errors="replace")
    if isinstance(obj, threading.Event):
        return obj.is_set()
    if isinstance(obj, io.IOBase):
        return None
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON bytes."""
    try:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)
    except TypeError as exc:
        # orjson stops at 64-bit integers; Python's ints (and <int:n> path parameters) do not.
        if "64-bit" not in str(exc):
            raise
        return json.dumps(obj, default=_default, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode("utf-8")


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
