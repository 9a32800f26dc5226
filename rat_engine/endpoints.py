"""How a registered handler is called: decided once at registration, not per request.

RAT Engine calls ``handler(request_data, **path_params)``. We also accept handlers that take no
``request_data`` (``def index(): ...``) and pass only the path parameters a handler declares
(unless it has ``**kwargs``), so a rule may carry parameters a handler ignores.

Annotated parameters are read from the request (:mod:`rat_engine.params`): the plan then holds a
:class:`~rat_engine.params.Binder`; a handler without annotations has none and pays nothing.
The first positional parameter is ``request_data`` unless a path parameter has its name, or it
is annotated with a type that is not a mapping (``def create(item: Item)``: the body).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ._threads import HandlerPool
from ._types import ROUTE_KINDS, RouteKind
from .exceptions import RouteError
from .params import Binder, ParamSpec, plan_parameters, resolve_hints
from .params.types import is_request_like
from .routing.rules import CompiledRule
from .settings import StreamSettings

__all__ = ["CallPlan", "Endpoint", "describe_callable", "where"]

#: "async" (coroutine function), "direct" (called on the loop: generator functions, whose call
#: runs no user code, and ``inline=True`` handlers), or "threaded" (a plain function: runs on
#: the handler thread pool).
CallStyle = Literal["async", "direct", "threaded"]


class CallPlan(NamedTuple):
    """How a handler is called, worked out once at registration."""

    call_style: CallStyle
    pass_request: bool
    #: Path parameters the handler accepts; None means all (it has ``**kwargs``).
    accepted: frozenset[str] | None
    #: Reads annotated parameters per request; None when there are none to read.
    binder: Binder | None = None
    #: The annotated parameters (path, query, body), for the OpenAPI document.
    params: tuple[ParamSpec, ...] = ()
    #: Called on the loop with no coroutine hop: "direct" with nothing to bind.
    fast: bool = False


@dataclass(slots=True)
class Endpoint:
    func: Callable[..., Any]
    kind: RouteKind
    rule: str
    methods: tuple[str, ...]
    plan: CallPlan
    #: The route's stream settings (app defaults with its own options), resolved at
    #: registration; None for routes that are not streams.
    stream_settings: StreamSettings | None = None
    #: Leave the body unread for ``request_data.stream()`` (uploads).
    stream_body: bool = False
    #: Overrides the app's max_body_size for this route.
    max_body_size: int | None = None
    #: False: never compressed, even with the app's compression on.
    compress: bool = True
    #: Streams: the item to send when the generator raises (None: the format's error event).
    on_error: Callable[[BaseException], Any] | None = None
    #: ``file:line name`` of the handler, for log lines.
    where: str = ""

    #: The route answers with a stream (set from ``kind``; PERF: an attribute, read per request).
    is_stream: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.is_stream = ROUTE_KINDS[self.kind].stream

    async def call(self, request_data: dict[str, Any], params: dict[str, Any], executor: HandlerPool) -> Any:
        plan = self.plan
        if plan.binder is not None:
            if plan.call_style == "direct":  # no second coroutine for the common typed case
                args = (request_data,) if plan.pass_request else ()
                return self.func(*args, **plan.binder.bind(request_data, params))
            return await self._call_bound(plan.binder, request_data, params, executor)
        args = (request_data,) if plan.pass_request else ()
        if plan.accepted is not None and params:
            params = {k: v for k, v in params.items() if k in plan.accepted}
        if plan.call_style == "async":
            return await self.func(*args, **params)
        if plan.call_style == "direct":
            return self.func(*args, **params)
        # In a copy of the request's context: context variables (rat_engine.request()) reach
        # the pool thread, as asyncio.to_thread does.
        return await executor.run(
            functools.partial(contextvars.copy_context().run, self.func, *args, **params)
        )

    async def _call_bound(
        self, binder: Binder, request_data: dict[str, Any], params: dict[str, Any], executor: HandlerPool
    ) -> Any:
        """A handler with annotated parameters: bound first, so a bad request is a 422 before it
        runs (a plain handler is bound on its pool thread: a large body is not parsed on the loop)."""
        plan = self.plan
        args = (request_data,) if plan.pass_request else ()
        if plan.call_style == "async":
            return await self.func(*args, **binder.bind(request_data, params))
        if plan.call_style == "direct":
            return self.func(*args, **binder.bind(request_data, params))
        func = self.func

        def bound_call() -> Any:
            return func(*args, **binder.bind(request_data, params))

        return await executor.run(functools.partial(contextvars.copy_context().run, bound_call))


def describe_callable(
    func: Callable[..., Any],
    rule: CompiledRule | tuple[str, ...],
    inline: bool,
    *,
    stream_body: bool = False,
) -> CallPlan:
    """Work out how ``func`` is called (``rule``: the compiled rule, or its parameter names).

    Raises:
        RouteError: the handler requires an unannotated parameter the rule does not provide,
            or has an annotation a request cannot be read as.
    """
    if isinstance(rule, CompiledRule):
        converters = {name: converter.name for name, converter in rule.converters}
    else:
        converters = dict.fromkeys(rule, "str")
    param_names = tuple(converters)
    if not callable(func):
        raise RouteError(f"handler {func!r} is not callable")
    target = inspect.unwrap(func)
    call_style: CallStyle
    if inspect.iscoroutinefunction(target):
        call_style = "async"
    elif inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target) or inline:
        call_style = "direct"
    else:
        call_style = "threaded"
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return CallPlan(call_style, True, None, fast=call_style == "direct")
    parameters = list(signature.parameters.values())
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in parameters)
    named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)]
    positional = [p for p in named if p.kind is not p.KEYWORD_ONLY]
    has_var_pos = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    annotated = any(p.annotation is not p.empty for p in named)
    hints = resolve_hints(func) if annotated else {}
    first = positional[0] if positional else None
    typed_first = (
        first is not None
        and first.name != "request_data"
        and first.name in hints
        and not is_request_like(hints[first.name])
    )
    pass_request = bool(first is not None and first.name not in param_names and not typed_first) or (
        has_var_pos and not positional
    )
    accepted_names = {p.name for p in named}
    if pass_request:
        accepted_names.discard(positional[0].name if positional else "")
    for p in named:
        if (
            p.default is p.empty
            and p.name not in param_names
            and (p.name not in hints or p.name.startswith("_"))
            and not (pass_request and p is positional[0])
        ):
            raise RouteError(
                f"handler {func.__qualname__} requires parameter {p.name!r} that the rule does not provide"
            )
    accepted = None if has_var_kw else frozenset(accepted_names)
    if not hints:
        return CallPlan(call_style, pass_request, accepted, fast=call_style == "direct")
    bound = [p for p in named if not (pass_request and p is positional[0])]
    specs, binder = plan_parameters(func, bound, hints, converters, accepted, stream_body)
    return CallPlan(
        call_style, pass_request, accepted, binder, specs, fast=call_style == "direct" and binder is None
    )


def where(func: Callable[..., Any]) -> str:
    """``file:line name`` of a handler, so errors point at the user's code."""
    code = getattr(inspect.unwrap(func), "__code__", None)
    name = getattr(func, "__qualname__", "")
    if code is None:
        return name or repr(func)
    return f"{code.co_filename}:{code.co_firstlineno} {name}".rstrip()
