"""How a JSON request body becomes the annotated value: chosen once per handler.

* a type that involves a pydantic model: ``pydantic.TypeAdapter(tp).validate_json`` (every
  error, pydantic's own messages);
* one that involves an msgspec ``Struct``: ``msgspec.json.Decoder(tp)`` (msgspec stops at the
  first error, so there is one);
* anything else (dataclasses, attrs classes, ``TypedDict``, dicts, lists, scalars): parsed with
  orjson and checked by :mod:`.coerce`, with no third-party library at all.

pydantic and msgspec are imported only for a handler whose annotation names one of their types
(so the library is already loaded by the user's own import).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

import orjson

from .coerce import INVALID, Errors, compile_type, error
from .types import mentions

__all__ = ["BodyReader", "body_reader"]

#: ``read(raw_body, errors)``: the value, or INVALID after appending errors.
BodyReader = Callable[[bytes, Errors], Any]

_MSGSPEC_PATH = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\.\.\.\]")
_MSGSPEC_MISSING = re.compile(r"^Object missing required field `(.+)`$")


def _is_pydantic(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "__pydantic_validator__")


def _is_msgspec(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "__struct_fields__")


def body_reader(tp: Any) -> BodyReader:
    """The reader for a body annotated ``tp``.

    Raises:
        UnsupportedType: a body cannot be read as ``tp``.
    """
    if mentions(tp, _is_pydantic):
        return _pydantic_reader(tp)
    if mentions(tp, _is_msgspec):
        return _msgspec_reader(tp)
    check = compile_type(tp, text=False)

    def read(raw: bytes, errors: Errors) -> Any:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return error(errors, "json_invalid", ("body", exc.pos), f"JSON decode error: {exc.msg}", None)
        return check(value, ("body",), errors)

    return read


def _pydantic_reader(tp: Any) -> BodyReader:
    pydantic = sys.modules["pydantic"]
    adapter = pydantic.TypeAdapter(tp)
    validation_error = pydantic.ValidationError

    def read(raw: bytes, errors: Errors) -> Any:
        try:
            return adapter.validate_json(raw)
        except validation_error as exc:
            for item in exc.errors(include_url=False):
                entry = {
                    "type": item["type"],
                    "loc": ["body", *item["loc"]],
                    "msg": item["msg"],
                    "input": item.get("input"),
                }
                if "ctx" in item:  # may hold the exception a validator raised: its text
                    entry["ctx"] = {
                        k: v if isinstance(v, (str, int, float, bool)) else str(v)
                        for k, v in item["ctx"].items()
                    }
                errors.append(entry)
            return INVALID

    return read


def _msgspec_reader(tp: Any) -> BodyReader:
    msgspec = sys.modules["msgspec"]
    decoder = msgspec.json.Decoder(tp)
    validation_error, decode_error = msgspec.ValidationError, msgspec.DecodeError

    def read(raw: bytes, errors: Errors) -> Any:
        try:
            return decoder.decode(raw)
        except validation_error as exc:
            message, _, path = str(exc).partition(" - at `")
            loc: list[str | int] = ["body"]
            for name, index in (
                m.groups() for m in _MSGSPEC_PATH.finditer(path.rstrip("`").removeprefix("$"))
            ):
                loc.append(name if name is not None else int(index) if index is not None else "...")
            missing = _MSGSPEC_MISSING.match(message)
            if missing:
                return error(errors, "missing", (*loc, missing.group(1)), "Field required", None)
            return error(errors, "value_error", tuple(loc), message, None)
        except decode_error as exc:
            return error(errors, "json_invalid", ("body",), f"JSON decode error: {exc}", None)

    return read
