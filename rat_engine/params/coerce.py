"""Turn request text or parsed JSON into the annotated type, naming each bad field and why.

:func:`compile_type` builds a checker once, at registration: ``check(value, loc, errors)``
returns the converted value, or :data:`INVALID` after appending one error per bad field to
``errors``, in FastAPI's (pydantic's) shape: ``{"type", "loc", "msg", "input"}``.

Two modes: *text* (query and path parameters: the input is a ``str``, or a list of them for a
list type) and JSON (a request body already parsed). Types: ``str``, ``int``, ``float``,
``bool``, ``Decimal``, ``UUID``, ``datetime``/``date``/``time``, ``Path``, ``bytes``, enums,
``Literal``, unions and ``Optional``, ``list``/``set``/``frozenset``/``tuple``/``Sequence``,
``dict``/``Mapping``, dataclasses, attrs classes and ``TypedDict`` (nested at any depth).
pydantic models and msgspec Structs are validated by their own library (:mod:`.body`).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import pathlib
import re
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence, Sequence, Set
from typing import Any, Literal, NotRequired, Required, get_args, get_origin

from .types import NONE_TYPE, field_types, is_union, strip

__all__ = ["INVALID", "Check", "Errors", "Loc", "UnsupportedType", "compile_type", "error"]

Loc = tuple[str | int, ...]
Errors = list[dict[str, Any]]
Check = Callable[[Any, Loc, Errors], Any]


class _Invalid:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


#: Returned by a check that found errors (it appended them).
INVALID: Any = _Invalid()


class UnsupportedType(TypeError):
    """The annotation is not a type a request can be read as."""


def error(errors: Errors, kind: str, loc: Loc, msg: str, value: Any) -> Any:
    errors.append({"type": kind, "loc": list(loc), "msg": msg, "input": value})
    return INVALID


_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})
_SEQUENCES: dict[Any, type] = {
    list: list,
    tuple: tuple,
    set: set,
    frozenset: frozenset,
    Sequence: list,
    MutableSequence: list,
    Iterable: list,
    Set: set,
}
_MAPPINGS = (dict, Mapping, MutableMapping)


def _passthrough(value: Any, loc: Loc, errors: Errors) -> Any:
    return value


def _check_str(text: bool) -> Check:
    def check(value: Any, loc: Loc, errors: Errors) -> Any:
        if isinstance(value, str):
            return value
        return error(errors, "string_type", loc, "Input should be a valid string", value)

    return _passthrough if text else check


def _check_int(value: Any, loc: Loc, errors: Errors) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if (value.isascii() and value.isdigit()) or _INT.match(value):  # isdigit: the common case, fast
            return int(value)
        return error(
            errors,
            "int_parsing",
            loc,
            "Input should be a valid integer, unable to parse string as an integer",
            value,
        )
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return error(errors, "int_type", loc, "Input should be a valid integer", value)


def _check_float(value: Any, loc: Loc, errors: Errors) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        return error(
            errors,
            "float_parsing",
            loc,
            "Input should be a valid number, unable to parse string as a number",
            value,
        )
    return error(errors, "float_type", loc, "Input should be a valid number", value)


def _check_bool(value: Any, loc: Loc, errors: Errors) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
    elif isinstance(value, int) and value in (0, 1):
        return bool(value)
    return error(
        errors, "bool_parsing", loc, "Input should be a valid boolean, unable to interpret input", value
    )


def _parser(kind: str, msg: str, parse: Callable[[str], Any], accepts: type | tuple[type, ...]) -> Check:
    """A check for a type read from text: already that type, or a string it parses."""

    def check(value: Any, loc: Loc, errors: Errors) -> Any:
        if isinstance(value, accepts):
            return value
        if isinstance(value, str):
            try:
                return parse(value)
            except (ValueError, ArithmeticError):
                pass
        return error(errors, kind, loc, msg, value)

    return check


def _datetime(text: str) -> datetime.datetime:
    if _INT.match(text):
        return datetime.datetime.fromtimestamp(int(text), tz=datetime.UTC)
    return datetime.datetime.fromisoformat(text)


def _decimal(text: str) -> decimal.Decimal:
    number = decimal.Decimal(text.strip())
    if not number.is_finite():
        raise ValueError(text)
    return number


def _check_decimal() -> Check:
    parse = _parser("decimal_parsing", "Input should be a valid decimal", _decimal, decimal.Decimal)

    def check(value: Any, loc: Loc, errors: Errors) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        return parse(value, loc, errors)

    return check


def _choices(values: Iterable[Any]) -> str:
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _check_enum(tp: type[enum.Enum]) -> Check:
    by_text = {str(member.value): member for member in tp}
    msg = f"Input should be {_choices(m.value for m in tp)}"

    def check(value: Any, loc: Loc, errors: Errors) -> Any:
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except (ValueError, TypeError):
            pass
        if isinstance(value, str) and value in by_text:
            return by_text[value]
        return error(errors, "enum", loc, msg, value)

    return check


def _check_literal(values: tuple[Any, ...]) -> Check:
    by_text = {("true" if v else "false") if isinstance(v, bool) else str(v): v for v in values}
    msg = f"Input should be {_choices(values)}"

    def check(value: Any, loc: Loc, errors: Errors) -> Any:
        for allowed in values:
            if value == allowed and type(value) is type(allowed):
                return allowed
        if isinstance(value, str) and value in by_text:
            return by_text[value]
        return error(errors, "literal_error", loc, msg, value)

    return check


#: JSON input types -> the option types that take them as they are (a union's exact match).
_EXACT: dict[type, tuple[Any, ...]] = {
    str: (str,),
    bool: (bool,),
    int: (int, float),
    float: (float,),
    list: (list, tuple, set, frozenset),
    dict: (dict,),
}


def _check_union(options: list[tuple[Any, Check]], allows_none: bool) -> Check:
    def check(value: Any, loc: Loc, errors: Errors) -> Any:
        if value is None and allows_none:
            return None
        exact = _EXACT.get(type(value), ())
        ordered = sorted(options, key=lambda option: (get_origin(option[0]) or option[0]) not in exact)
        failures: Errors = []
        for _tp, option in ordered:
            tried: Errors = []
            result = option(value, loc, tried)
            if result is not INVALID:
                return result
            failures.extend(tried)
        errors.extend(failures)
        return INVALID

    return check


def _check_sequence(container: type, item: Check, fixed: list[Check] | None, text: bool) -> Check:
    def check(value: Any, loc: Loc, errors: Errors) -> Any:
        if isinstance(value, str) and text:
            value = [value]
        if not isinstance(value, (list, tuple)):
            return error(errors, "list_type", loc, "Input should be a valid list", value)
        if fixed is not None and len(value) != len(fixed):
            return error(errors, "tuple_length", loc, f"Tuple should have {len(fixed)} items", value)
        before = len(errors)
        checks = fixed if fixed is not None else [item] * len(value)
        out = [c(v, (*loc, i), errors) for i, (c, v) in enumerate(zip(checks, value, strict=True))]
        if len(errors) > before:
            return INVALID
        return out if container is list else container(out)

    return check


def _check_mapping(key: Check, item: Check) -> Check:
    def check(value: Any, loc: Loc, errors: Errors) -> Any:
        if not isinstance(value, dict):
            return error(errors, "dict_type", loc, "Input should be a valid dictionary", value)
        before = len(errors)
        out = {key(k, (*loc, k), errors): item(v, (*loc, k), errors) for k, v in value.items()}
        return INVALID if len(errors) > before else out

    return check


class _Field(typing.NamedTuple):
    name: str  # the key in the JSON object
    argument: str  # the constructor's keyword
    check: Check
    required: bool


def _record_fields(tp: type, memo: dict[Any, Check]) -> tuple[list[_Field], Callable[[dict[str, Any]], Any]]:
    hints = field_types(tp)
    if typing.is_typeddict(tp):
        # From the hints, not __required_keys__ alone: under ``from __future__ import annotations``
        # Python 3.11 counts a NotRequired[...] key as required.
        required_keys = getattr(tp, "__required_keys__", frozenset(hints))
        fields = [
            _Field(
                n,
                n,
                _compile(h, False, memo),
                get_origin(h) is Required or (get_origin(h) is not NotRequired and n in required_keys),
            )
            for n, h in hints.items()
        ]
        return fields, dict
    if dataclasses.is_dataclass(tp):
        fields = [
            _Field(
                f.name,
                f.name,
                _compile(hints.get(f.name, Any), False, memo),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(tp)
            if f.init
        ]
        return fields, lambda values: tp(**values)
    fields = []
    for attribute in getattr(tp, "__attrs_attrs__", ()):  # attrs
        if not attribute.init:
            continue
        argument = getattr(attribute, "alias", None) or attribute.name.lstrip("_")
        annotation = hints.get(attribute.name, attribute.type if attribute.type is not None else Any)
        required = type(attribute.default).__name__ == "_Nothing"  # attrs.NOTHING: no default
        fields.append(_Field(attribute.name, argument, _compile(annotation, False, memo), required))
    return fields, lambda values: tp(**values)


def _check_record(tp: type, memo: dict[Any, Check]) -> Check:
    holder: list[Check] = []

    def check(value: Any, loc: Loc, errors: Errors) -> Any:
        return holder[0](value, loc, errors)

    memo[(tp, False)] = check  # a recursive type refers to the check being built
    fields, build = _record_fields(tp, memo)
    is_typed_dict = typing.is_typeddict(tp)

    def check_fields(value: Any, loc: Loc, errors: Errors) -> Any:
        if not is_typed_dict and isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            return error(errors, "dict_type", loc, "Input should be a valid dictionary", value)
        before = len(errors)
        arguments: dict[str, Any] = {}
        for field in fields:
            if field.name in value:
                arguments[field.argument] = field.check(value[field.name], (*loc, field.name), errors)
            elif field.required:
                error(errors, "missing", (*loc, field.name), "Field required", None)
        if len(errors) > before:
            return INVALID
        try:
            return build(arguments)
        except (ValueError, TypeError) as exc:  # __post_init__ / an attrs validator said no
            return error(errors, "value_error", loc, f"Value error, {exc}", value)

    holder.append(check_fields)
    return check


def compile_type(tp: Any, *, text: bool) -> Check:
    """The check for ``tp``.

    Raises:
        UnsupportedType: a request cannot be read as ``tp``.
    """
    return _compile(tp, text, {})


_SIMPLE: dict[Any, Check] = {
    int: _check_int,
    float: _check_float,
    bool: _check_bool,
    uuid.UUID: _parser("uuid_parsing", "Input should be a valid UUID", uuid.UUID, uuid.UUID),
    datetime.datetime: _parser(
        "datetime_parsing", "Input should be a valid datetime", _datetime, datetime.datetime
    ),
    datetime.date: _parser(
        "date_parsing", "Input should be a valid date", datetime.date.fromisoformat, datetime.date
    ),
    datetime.time: _parser(
        "time_parsing", "Input should be a valid time", datetime.time.fromisoformat, datetime.time
    ),
    bytes: _parser("bytes_type", "Input should be a valid string", str.encode, bytes),
}


def _compile(tp: Any, text: bool, memo: dict[Any, Check]) -> Check:
    tp = strip(tp)
    key = (tp, text)
    try:
        if key in memo:
            return memo[key]
    except TypeError:  # an unhashable annotation
        pass
    origin = get_origin(tp)
    if tp is Any or tp is object:
        return _passthrough
    if is_union(tp):
        args = get_args(tp)
        options = [(arg, _compile(arg, text, memo)) for arg in args if arg is not NONE_TYPE]
        return _check_union(options, NONE_TYPE in args)
    if origin is Literal:
        return _check_literal(get_args(tp))
    if tp is str:
        return _check_str(text)
    if tp in _SIMPLE:
        return _SIMPLE[tp]
    if tp is decimal.Decimal:
        return _check_decimal()
    if isinstance(tp, type) and issubclass(tp, pathlib.PurePath):
        return _parser("path_type", "Input should be a valid path", tp, tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _check_enum(tp)
    container = _SEQUENCES.get(origin if origin is not None else tp)
    if container is not None:
        args = get_args(tp)
        fixed = None
        if container is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
            fixed = [_compile(arg, text, memo) for arg in args]
        item = _compile(args[0], text, memo) if args else _passthrough
        return _check_sequence(container, item, fixed, text)
    if not text and (tp in _MAPPINGS or origin in _MAPPINGS):
        args = get_args(tp)
        key_check = _compile(args[0], True, memo) if args else _passthrough
        return _check_mapping(key_check, _compile(args[1], False, memo) if len(args) > 1 else _passthrough)
    if (
        not text
        and isinstance(tp, type)
        and (dataclasses.is_dataclass(tp) or typing.is_typeddict(tp) or hasattr(tp, "__attrs_attrs__"))
    ):
        try:
            return _check_record(tp, memo)
        except TypeError as exc:
            raise UnsupportedType(str(exc)) from None
    where = "query or path parameter" if text else "request body"
    raise UnsupportedType(f"a {where} cannot be read as {tp!r}")
