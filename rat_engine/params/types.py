"""What an annotation says, worked out once at registration (never per request).

Helpers that look through ``Annotated``, ``Optional`` and ``Required``, tell a record type (a
dataclass, pydantic model, msgspec ``Struct``, attrs class or ``TypedDict``) from a scalar, and
resolve a handler's annotations, including string ones (``from __future__ import annotations``).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import types
import typing
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, NotRequired, Required, Union, get_args, get_origin

logger = logging.getLogger(__name__)

__all__ = [
    "NONE_TYPE",
    "field_types",
    "is_body_type",
    "is_record_type",
    "is_request_like",
    "is_union",
    "mentions",
    "resolve_hints",
    "strip",
]

NONE_TYPE = type(None)
_MAPPINGS = (dict, Mapping, MutableMapping)


def resolve_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The handler's annotations as objects. One that cannot be resolved is left out with a
    warning (the parameter then behaves as an unannotated one, as before annotations counted)."""
    target = inspect.unwrap(func)
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:
        pass
    else:
        for name, value in list(hints.items()):
            if isinstance(value, (str, typing.ForwardRef)):  # a string inside a string annotation
                _unresolved(target, name, value, "a forward reference left unresolved")
                del hints[name]
        return hints
    raw = getattr(target, "__annotations__", None)
    if not isinstance(raw, dict):
        return {}
    namespace = getattr(target, "__globals__", {})
    hints = {}
    for name, value in raw.items():
        if isinstance(value, str):
            try:
                value = eval(value, namespace)  # what get_type_hints does, one name at a time
            except Exception as exc:
                _unresolved(target, name, value, str(exc))
                continue
        if isinstance(value, (str, typing.ForwardRef)):
            _unresolved(target, name, value, "a forward reference left unresolved")
            continue
        hints[name] = value
    return hints


def _unresolved(target: Any, name: str, value: Any, why: str) -> None:
    logger.warning(
        "annotation %r of %s in %s cannot be resolved (%s); the parameter is left untyped",
        value,
        name,
        getattr(target, "__qualname__", target),
        why,
    )


def strip(tp: Any) -> Any:
    """``tp`` without ``Annotated[...]``, ``Required[...]`` and ``NotRequired[...]``."""
    while True:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            tp = tp.__origin__
        elif origin in (Required, NotRequired):
            tp = get_args(tp)[0]
        else:
            return tp


def is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def is_record_type(tp: Any) -> bool:
    """A class whose instances are objects with named fields."""
    if not isinstance(tp, type):
        return False
    return (
        dataclasses.is_dataclass(tp)
        or hasattr(tp, "__pydantic_validator__")
        or hasattr(tp, "__struct_fields__")
        or hasattr(tp, "__attrs_attrs__")
        or typing.is_typeddict(tp)
    )


def is_request_like(tp: Any) -> bool:
    """An annotation that means ``request_data`` when it is on the first parameter: Any,
    object, ``dict``/``Mapping`` bare or of ``Any`` values, a dict subclass (RequestData).
    ``dict[str, int]`` or a TypedDict cannot be request_data: those are a body."""
    tp = strip(tp)
    if tp is Any or tp is object or tp in _MAPPINGS:
        return True
    if get_origin(tp) in _MAPPINGS:
        args = get_args(tp)
        return not args or strip(args[-1]) in (Any, object)
    return isinstance(tp, type) and issubclass(tp, dict) and not typing.is_typeddict(tp)


def _args(tp: Any) -> Iterator[Any]:
    for arg in get_args(tp):
        if arg is not Ellipsis and not isinstance(arg, (str, int, bool, bytes)) and arg is not None:
            yield arg


def is_body_type(tp: Any) -> bool:
    """The parameter is the JSON body: a record, a mapping, or a container of records."""
    tp = strip(tp)
    if is_record_type(tp) or tp in _MAPPINGS or get_origin(tp) in _MAPPINGS:
        return True
    if get_origin(tp) is typing.Literal:
        return False
    return any(is_body_type(arg) for arg in _args(tp))


def field_types(tp: type) -> dict[str, Any]:
    """A record's field annotations, resolved.

    Raises:
        TypeError: an annotation names something that cannot be found.
    """
    try:
        return typing.get_type_hints(tp, include_extras=True)
    except Exception as exc:
        raise TypeError(f"the annotations of {tp.__qualname__} cannot be resolved: {exc}") from None


def mentions(tp: Any, predicate: Callable[[Any], bool], seen: set[int] | None = None) -> bool:
    """True when ``predicate`` holds for ``tp``, its arguments or (for dataclasses, attrs
    classes and TypedDicts) the types of its fields, at any depth."""
    seen = set() if seen is None else seen
    tp = strip(tp)
    if id(tp) in seen:
        return False
    seen.add(id(tp))
    if predicate(tp):
        return True
    if any(mentions(arg, predicate, seen) for arg in _args(tp)):
        return True
    if (
        is_record_type(tp)
        and not hasattr(tp, "__pydantic_validator__")
        and not hasattr(tp, "__struct_fields__")
    ):
        try:
            hints = field_types(tp)
        except TypeError:
            return False
        return any(mentions(hint, predicate, seen) for hint in hints.values())
    return False
