"""Which of a handler's parameters come from where, decided at registration; :class:`Binder`
reads them per request.

RAT Engine's convention stays: ``handler(request_data, **path_params)``. On top of it, an
annotated parameter is read from the request:

* a path parameter (``<item_id>``) annotated ``item_id: int`` is converted by its annotation
  when the rule leaves it untyped (``<int:item_id>`` already converts it);
* an annotated record (dataclass, pydantic model, msgspec Struct, attrs class, ``TypedDict``),
  mapping, or container of records is the JSON body (one per handler);
* any other annotated keyword parameter is read from the query string (``q: str = ""``,
  ``limit: int = 10``, ``tags: list[str] = []``); without a default it is required.

A parameter whose name starts with ``_`` is never read from the request (the idiom
``def handler(request_data, _index: int = index)`` captures a value, it asks for nothing).

An unannotated parameter behaves exactly as before annotations counted: a handler without
annotations gets no binder at all, so it costs nothing per request.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping, MutableSequence, Sequence, Set
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from ..exceptions import RequestValidationError, RouteError
from .body import BodyReader, body_reader
from .coerce import INVALID, Check, Errors, UnsupportedType, compile_type, error
from .types import NONE_TYPE, is_body_type, is_union, strip

logger = logging.getLogger(__name__)

__all__ = ["Binder", "ParamSpec", "plan_parameters"]

Source = Literal["path", "query", "body"]
_ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter read from the request (what OpenAPI documents, too)."""

    name: str
    source: Source
    annotation: Any
    required: bool
    default: Any = None
    #: Query: read every value (``?tag=a&tag=b``) for a list type.
    many: bool = False
    #: Path: the rule's converter name (``str`` when the rule leaves it untyped).
    converter: str = "str"


class Binder:
    """Turns a request into a handler's keyword arguments, or raises a 422 naming every bad field."""

    __slots__ = ("accepted", "path", "query", "body")

    def __init__(
        self,
        accepted: frozenset[str] | None,
        path: tuple[tuple[str, Check], ...],
        query: tuple[tuple[ParamSpec, Check], ...],
        body: tuple[ParamSpec, BodyReader] | None,
    ) -> None:
        self.accepted = accepted
        self.path = path
        self.query = query
        self.body = body

    def bind(self, request_data: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments: path parameters the handler accepts, converted, plus query and
        body parameters.

        Raises:
            RequestValidationError: one or more values do not match their annotation (422).
        """
        accepted = self.accepted
        kwargs = dict(params) if accepted is None else {k: v for k, v in params.items() if k in accepted}
        errors: Errors = []
        for name, check in self.path:
            kwargs[name] = check(kwargs[name], ("path", name), errors)
        if self.query:
            query = request_data["query_params"]
            for spec, check in self.query:
                name = spec.name
                value: Any = query.getlist(name) if spec.many else query.get(name, _ABSENT)
                if value is not _ABSENT and (value or not spec.many):
                    converted = check(value, ("query", name), errors)
                    if converted is not INVALID:
                        kwargs[name] = converted
                elif spec.required:
                    error(errors, "missing", ("query", name), "Field required", None)
        if self.body is not None:
            spec, read = self.body
            raw = request_data.get("raw_body", b"")
            if raw.strip():
                value = read(raw, errors)
                if value is not INVALID:
                    kwargs[spec.name] = value
            elif spec.required:
                error(errors, "missing", ("body",), "Field required", None)
        if errors:
            raise RequestValidationError(errors)
        return kwargs


def _needs_conversion(annotation: Any) -> bool:
    tp = strip(annotation)
    return tp not in (str, Any, object, inspect.Parameter.empty)


_MANY = (list, tuple, set, frozenset, Sequence, MutableSequence, Set, Iterable)


def _is_many(annotation: Any) -> bool:
    """A list type: the query parameter may repeat (``?tag=a&tag=b``)."""
    tp = strip(annotation)
    if is_union(tp):
        return any(_is_many(arg) for arg in get_args(tp) if arg is not NONE_TYPE)
    return (get_origin(tp) or tp) in _MANY


def plan_parameters(
    func: Any,
    parameters: list[inspect.Parameter],
    hints: dict[str, Any],
    converters: Mapping[str, str],
    accepted: frozenset[str] | None,
    stream_body: bool,
) -> tuple[tuple[ParamSpec, ...], Binder | None]:
    """The specs of ``parameters`` (every named one but ``request_data``) and the binder that
    reads them, None when nothing needs reading per request.

    Raises:
        RouteError: an annotation cannot be read from a request (a path parameter's), two body
            parameters, or a body on a ``stream_body=True`` route.
    """
    specs: list[ParamSpec] = []
    path: list[tuple[str, Check]] = []
    query: list[tuple[ParamSpec, Check]] = []
    body: tuple[ParamSpec, BodyReader] | None = None
    name_of = getattr(func, "__qualname__", repr(func))
    for p in parameters:
        if p.name not in hints or (p.name.startswith("_") and p.name not in converters):
            continue  # unannotated, or private (``_index: int = index`` captures a value)
        annotation = hints[p.name]
        required = p.default is p.empty
        default = None if required else p.default
        if p.name in converters:
            converter = converters[p.name]
            specs.append(ParamSpec(p.name, "path", annotation, True, converter=converter))
            if converter == "str" and _needs_conversion(annotation):
                try:
                    path.append((p.name, compile_type(annotation, text=True)))
                except UnsupportedType as exc:
                    raise RouteError(f"path parameter {p.name!r} of {name_of}: {exc}") from None
            continue
        try:
            if is_body_type(annotation):
                if body is not None:
                    raise RouteError(
                        f"{name_of} has two body parameters ({body[0].name!r}, {p.name!r}); "
                        "take one record that holds both"
                    )
                if stream_body:
                    raise RouteError(
                        f"{name_of}: a stream_body=True route reads its body itself; "
                        f"parameter {p.name!r} cannot be the body"
                    )
                spec = ParamSpec(p.name, "body", annotation, required, default)
                body = (spec, body_reader(annotation))
            else:
                spec = ParamSpec(p.name, "query", annotation, required, default, _is_many(annotation))
                query.append((spec, compile_type(annotation, text=True)))
        except UnsupportedType as exc:
            if required:
                raise RouteError(f"parameter {p.name!r} of {name_of}: {exc}") from None
            logger.warning("parameter %r of %s keeps its default: %s", p.name, name_of, exc)
            continue
        specs.append(spec)
    if not path and not query and body is None:
        return tuple(specs), None
    return tuple(specs), Binder(accepted, tuple(path), tuple(query), body)
