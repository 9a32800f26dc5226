"""How a registered handler is called: decided once at registration, not per request.

RAT Engine calls ``handler(request_data, **path_params)``. We also accept handlers that take no
``request_data`` (``def index(): ...``) and pass only the path parameters a handler declares
(unless it has ``**kwargs``), so a rule may carry parameters a handler ignores.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from .exceptions import RouteError

__all__ = ["Endpoint", "describe_callable"]


@dataclass(slots=True)
class Endpoint:
    func: Callable[..., Any]
    kind: str
    rule: str
    methods: tuple[str, ...]
    #: "async" (coroutine function), "inline" (generator functions: calling them runs no user
    #: code), or "sync" (plain function: runs on the handler thread pool unless inline=True).
    call_style: str
    pass_request: bool
    #: Path parameters the handler accepts; None means all (it has ``**kwargs``).
    accepted: frozenset[str] | None
    stream_options: dict[str, Any] = field(default_factory=dict)
    #: Leave the body unread for ``request_data.stream()`` (uploads).
    stream_body: bool = False
    #: Overrides the app's max_body_size for this route.
    max_body_size: int | None = None

    @property
    def is_stream(self) -> bool:
        return self.kind in ("sse", "sse_json", "sse_text", "chunk")

    async def call(self, request_data: dict[str, Any], params: dict[str, Any], executor: Executor) -> Any:
        args = (request_data,) if self.pass_request else ()
        if self.accepted is not None and params:
            params = {k: v for k, v in params.items() if k in self.accepted}
        if self.call_style == "async":
            return await self.func(*args, **params)
        if self.call_style == "inline":
            return self.func(*args, **params)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, functools.partial(self.func, *args, **params))


def describe_callable(func: Callable[..., Any], param_names: tuple[str, ...], inline: bool) -> dict[str, Any]:
    """Work out ``call_style``, ``pass_request`` and ``accepted`` for ``func``.

    Raises:
        RouteError: the handler requires a parameter the rule does not provide.
    """
    if not callable(func):
        raise RouteError(f"handler {func!r} is not callable")
    target = inspect.unwrap(func)
    if inspect.iscoroutinefunction(target):
        call_style = "async"
    elif inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target) or inline:
        call_style = "inline"
    else:
        call_style = "sync"
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return {"call_style": call_style, "pass_request": True, "accepted": None}
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
    return {
        "call_style": call_style,
        "pass_request": pass_request,
        "accepted": None if has_var_kw else frozenset(accepted_names),
    }
