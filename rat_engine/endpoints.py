"""How a registered handler is called: decided once at registration, not per request.

RAT Engine calls ``handler(request_data, **path_params)``. We also accept handlers that take no
``request_data`` (``def index(): ...``) and pass only the path parameters a handler declares
(unless it has ``**kwargs``), so a rule may carry parameters a handler ignores.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ._types import ROUTE_KINDS, RouteKind
from .exceptions import RouteError
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

    @property
    def is_stream(self) -> bool:
        return ROUTE_KINDS[self.kind].stream

    async def call(self, request_data: dict[str, Any], params: dict[str, Any], executor: Executor) -> Any:
        plan = self.plan
        args = (request_data,) if plan.pass_request else ()
        if plan.accepted is not None and params:
            params = {k: v for k, v in params.items() if k in plan.accepted}
        if plan.call_style == "async":
            return await self.func(*args, **params)
        if plan.call_style == "direct":
            return self.func(*args, **params)
        loop = asyncio.get_running_loop()
        # In a copy of the request's context: context variables (rat_engine.request()) reach
        # the pool thread, as asyncio.to_thread does.
        call = functools.partial(contextvars.copy_context().run, self.func, *args, **params)
        return await loop.run_in_executor(executor, call)


def describe_callable(func: Callable[..., Any], param_names: tuple[str, ...], inline: bool) -> CallPlan:
    """Work out how ``func`` is called.

    Raises:
        RouteError: the handler requires a parameter the rule does not provide.
    """
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
        return CallPlan(call_style, True, None)
    parameters = list(signature.parameters.values())
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in parameters)
    named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)]
    positional = [p for p in named if p.kind is not p.KEYWORD_ONLY]
    has_var_pos = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    pass_request = bool(positional and positional[0].name not in param_names) or (
        has_var_pos and not positional
    )
    accepted_names = {p.name for p in named}
    if pass_request:
        accepted_names.discard(positional[0].name if positional else "")
    for p in named:
        if p.default is p.empty and p.name not in param_names and not (pass_request and p is positional[0]):
            raise RouteError(
                f"handler {func.__qualname__} requires parameter {p.name!r} that the rule does not provide"
            )
    return CallPlan(call_style, pass_request, None if has_var_kw else frozenset(accepted_names))


def where(func: Callable[..., Any]) -> str:
    """``file:line name`` of a handler, so errors point at the user's code."""
    code = getattr(inspect.unwrap(func), "__code__", None)
    name = getattr(func, "__qualname__", "")
    if code is None:
        return name or repr(func)
    return f"{code.co_filename}:{code.co_firstlineno} {name}".rstrip()
