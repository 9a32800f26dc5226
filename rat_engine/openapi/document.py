"""The OpenAPI 3.2 document of an app's routes.

Every route with its methods; path parameters from the rule's converters (or the annotation
when the rule leaves them untyped), query parameters and the request body from the annotations
(the same :class:`~rat_engine.params.ParamSpec` list the request binder uses); responses by the
route's kind and the handler's return annotation. Streams are sequential media types with an
``itemSchema`` (OpenAPI 3.2), when the generator's return annotation names the item type:

* ``@app.sse*``: ``text/event-stream``, each event an object with ``data`` (text, or JSON
  described by ``contentMediaType``/``contentSchema``), ``event``, ``id`` and ``retry``;
  ``Iterator[Token]`` and ``AsyncIterator[SSEEvent[Token]]`` both give ``Token`` as the data;
* a generator on ``@app.json``: ``application/x-ndjson``, one ``Token`` per line.
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import typing
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, get_args, get_origin

from .._types import ROUTE_KINDS
from ..params import ParamSpec, resolve_hints
from ..params.types import is_record_type, strip
from ..sse.event import SSEEvent
from .schema import REF_PREFIX, SchemaBuilder

if TYPE_CHECKING:
    from ..endpoints import Endpoint
    from ..routing.rules import CompiledRule

__all__ = ["OPENAPI_VERSION", "build_document"]

OPENAPI_VERSION = "3.2.0"

_FIXED_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace", "query"})
_PLACEHOLDER = re.compile(r"<(?:[a-zA-Z_][a-zA-Z0-9_]*:)?([^<>:]+)>")
_CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
    "path": {"type": "string"},
}
_ITERATORS = {
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
}
_VALIDATION_ERROR = {
    "type": "object",
    "title": "ValidationError",
    "required": ["type", "loc", "msg"],
    "properties": {
        "type": {"type": "string"},
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "input": {},
        "ctx": {"type": "object"},
    },
}
_HTTP_VALIDATION_ERROR = {
    "type": "object",
    "title": "HTTPValidationError",
    "required": ["error", "status", "detail"],
    "properties": {
        "error": {"type": "string"},
        "status": {"type": "integer", "const": 422},
        "detail": {"type": "array", "items": {"$ref": REF_PREFIX + "ValidationError"}},
    },
}


def openapi_path(rule: str) -> str:
    """``/items/<int:item_id>`` -> ``/items/{item_id}``."""
    return _PLACEHOLDER.sub(r"{\1}", rule)


def _item_type(annotation: Any) -> Any:
    """``Iterator[T]`` (and the async and generator forms) -> ``T``; None when not a stream."""
    annotation = strip(annotation)
    if get_origin(annotation) in _ITERATORS and get_args(annotation):
        return get_args(annotation)[0]
    return None


def _sse_item(builder: SchemaBuilder, item: Any, mode: str) -> dict[str, Any]:
    """An SSE event (OpenAPI 3.2's model of one event of ``text/event-stream``)."""
    data_type = item
    if strip(item) is SSEEvent or get_origin(strip(item)) is SSEEvent:
        args = get_args(strip(item))
        data_type = args[0] if args else Any
    data_type = strip(data_type)
    data: dict[str, Any]
    if data_type in (str, bytes) or mode == "text":
        data = {"type": "string"}
    else:
        data = {"type": "string", "contentMediaType": "application/json"}
        content = builder.schema(data_type, "serialization") if data_type is not None else {}
        if content:
            data["contentSchema"] = content
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": data,
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer", "minimum": 0},
        },
    }


def _response_content(builder: SchemaBuilder, endpoint: Endpoint, returns: Any) -> dict[str, Any]:
    kind = endpoint.kind
    spec = ROUTE_KINDS[kind]
    item = _item_type(returns) if returns is not None else None
    if spec.sse_mode is not None:
        return {"text/event-stream": {"itemSchema": _sse_item(builder, item, spec.sse_mode)}}
    if kind == "chunk":
        return {"text/plain": {"schema": {"type": "string"}}}
    if kind == "file":
        return {"application/octet-stream": {}}
    if item is not None:
        return {"application/x-ndjson": {"itemSchema": builder.schema(item, "serialization")}}
    bare = strip(returns) if returns is not None else None
    if kind == "json" or (bare is not None and bare not in (str, bytes) and _is_data(bare)):
        schema = builder.schema(returns, "serialization") if returns is not None else {}
        return {"application/json": {"schema": schema}}
    if kind == "custom":
        return {"text/plain": {"schema": {"type": "string"}}}
    return {"text/html": {"schema": {"type": "string"}}}


def _is_data(tp: Any) -> bool:
    """A return annotation that a route/html/custom handler sends as JSON."""
    origin = get_origin(tp) or tp
    return is_record_type(tp) or origin in (dict, list, collections.abc.Mapping, collections.abc.Sequence)


def _default(value: Any) -> tuple[bool, Any]:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True, value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
        return True, list(value)
    if hasattr(value, "value") and isinstance(value.value, (str, int, float)):  # an enum member
        return True, value.value
    return False, None


def _parameters(
    builder: SchemaBuilder, compiled: CompiledRule, specs: Iterable[ParamSpec]
) -> list[dict[str, Any]]:
    by_name = {spec.name: spec for spec in specs}
    parameters: list[dict[str, Any]] = []
    for name, converter in compiled.converters:
        spec = by_name.get(name)
        if spec is not None and converter.name == "str" and spec.annotation is not str:
            schema = builder.schema(spec.annotation, "validation")
        else:
            schema = dict(_CONVERTER_SCHEMAS.get(converter.name, {"type": "string"}))
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    for spec in by_name.values():
        if spec.source != "query":
            continue
        schema = builder.schema(spec.annotation, "validation")
        known, default = _default(spec.default)
        if not spec.required and known:
            schema = {**schema, "default": default}
        parameters.append({"name": spec.name, "in": "query", "required": spec.required, "schema": schema})
    return parameters


def _operation(
    builder: SchemaBuilder, method: str, endpoint: Endpoint, compiled: CompiledRule, ids: set[str]
) -> dict[str, Any]:
    func = endpoint.func
    name = getattr(func, "__name__", "handler")
    operation_id = f"{name}_{method.lower()}"
    number = 2
    while operation_id in ids:
        operation_id, number = f"{name}_{method.lower()}_{number}", number + 1
    ids.add(operation_id)
    operation: dict[str, Any] = {"operationId": operation_id}
    doc = inspect.getdoc(func)
    summary, _, description = (doc or name.replace("_", " ").capitalize()).partition("\n")
    operation["summary"] = summary.strip()
    if description.strip():
        operation["description"] = description.strip()
    specs = endpoint.plan.params
    parameters = _parameters(builder, compiled, specs)
    if parameters:
        operation["parameters"] = parameters
    body = next((spec for spec in specs if spec.source == "body"), None)
    if body is not None:
        operation["requestBody"] = {
            "required": body.required,
            "content": {"application/json": {"schema": builder.schema(body.annotation, "validation")}},
        }
    try:
        returns = resolve_hints(func).get("return")
    except Exception:  # a callable object, a partial: no annotations to read
        returns = None
    responses: dict[str, Any] = {
        "200": {
            "description": "Successful response",
            "content": _response_content(builder, endpoint, returns),
        }
    }
    if endpoint.plan.binder is not None:
        responses["422"] = {
            "description": "Validation error: each bad field and why",
            "content": {"application/json": {"schema": {"$ref": REF_PREFIX + "HTTPValidationError"}}},
        }
    operation["responses"] = responses
    return operation


def build_document(
    routes: Iterable[tuple[str, Endpoint, CompiledRule]],
    *,
    title: str,
    version: str,
    description: str | None = None,
    hidden: typing.Container[str] = (),
) -> dict[str, Any]:
    """The OpenAPI 3.2 document (a JSON-ready dict) of ``routes`` (``router.routes()``), leaving
    out the rules in ``hidden``."""
    builder = SchemaBuilder()
    paths: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    uses_validation = False
    for method, endpoint, compiled in routes:
        if compiled.rule in hidden or method in ("HEAD", "OPTIONS"):
            continue
        item = paths.setdefault(openapi_path(compiled.rule), {})
        operation = _operation(builder, method, endpoint, compiled, ids)
        if method.lower() in _FIXED_METHODS:
            item[method.lower()] = operation
        else:  # OpenAPI 3.2: any other method, by its own name
            item.setdefault("additionalOperations", {})[method] = operation
        uses_validation = uses_validation or endpoint.plan.binder is not None
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info, "paths": paths}
    components = dict(builder.components)
    if uses_validation:
        components["ValidationError"] = _VALIDATION_ERROR
        components["HTTPValidationError"] = _HTTP_VALIDATION_ERROR
    if components:
        document["components"] = {"schemas": dict(sorted(components.items()))}
    return document
