"""Request hooks, error handlers and hook-style middleware, run in a fixed order.

Hooks may be plain or ``async``; their arity is checked once, at registration:

* ``before_request``: ``f()`` or ``f(request_data)``; a non-None return answers the request.
* ``after_request``: ``f(response)`` or ``f(request_data, response)``; return a response or None
  (None keeps the one given, as RAT Engine does).
* ``errorhandler(code_or_exception_class)``: ``f()``, ``f(error)`` or ``f(request_data, error)``;
  the return value is a response value; a bare body keeps the error's status.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .convert import make_response
from .exceptions import HTTPException
from .middleware import Middleware, adapt_middleware
from .responses import Response

__all__ = ["Hooks"]

logger = logging.getLogger(__name__)

Hook = Callable[..., Any]


def _arity(func: Hook, allowed: tuple[int, ...], what: str) -> int:
    try:
        params = [
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return allowed[-1]
    if len(params) not in allowed:
        raise TypeError(
            f"{what} {getattr(func, '__qualname__', func)!r} must take {allowed} positional arguments"
        )
    return len(params)


async def _call(func: Hook, *args: Any) -> Any:
    result = func(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class Hooks:
    def __init__(self) -> None:
        self.before: list[tuple[Hook, int]] = []
        self.after: list[tuple[Hook, int]] = []
        self.middleware: list[Middleware] = []
        self.error_handlers: dict[int | type[BaseException], tuple[Hook, int]] = {}
        self.startup: list[Callable[[], Any | Awaitable[Any]]] = []
        self.shutdown: list[Callable[[], Any | Awaitable[Any]]] = []

    # -- registration -------------------------------------------------------------------------
    def add_before(self, func: Hook) -> None:
        self.before.append((func, _arity(func, (0, 1), "before_request hook")))

    def add_after(self, func: Hook) -> None:
        self.after.append((func, _arity(func, (1, 2), "after_request hook")))

    def add_error_handler(self, key: int | type[BaseException], func: Hook) -> None:
        self.error_handlers[key] = (func, _arity(func, (0, 1, 2), "error handler"))

    def add_middleware(self, middleware: Any) -> None:
        self.middleware.append(adapt_middleware(middleware))

    @property
    def empty(self) -> bool:
        """No hook or middleware: the dispatcher skips the hook calls altogether."""
        return not (self.before or self.after or self.middleware)

    # -- running ------------------------------------------------------------------------------
    async def run_before(self, request_data: dict[str, Any]) -> Any:
        for middleware in self.middleware:
            result = await _call(middleware.before_request, request_data)
            if result is not None:
                return result
        for func, arity in self.before:
            result = await _call(func, *((request_data,) if arity else ()))
            if result is not None:
                return result
        return None

    async def run_after(self, request_data: dict[str, Any], response: Response) -> Response:
        for func, arity in self.after:
            result = await _call(func, *((request_data, response) if arity == 2 else (response,)))
            if result is not None:
                response = make_response(result)
        for middleware in reversed(self.middleware):
            result = await _call(middleware.after_request, request_data, response)
            if result is not None:
                response = make_response(result)
        return response

    async def run_startup(self) -> None:
        """Run the ``on_startup`` hooks in order; the first failure propagates (startup fails)."""
        for func in self.startup:
            await _call(func)

    async def run_shutdown(self) -> None:
        """Run every ``on_shutdown`` hook; a failing one is logged and the rest still run."""
        for func in self.shutdown:
            try:
                await _call(func)
            except Exception:
                logger.exception("shutdown hook failed")

    async def run_error(self, request_data: dict[str, Any], exc: Exception, status: int) -> Response | None:
        for middleware in self.middleware:
            result = await _call(middleware.on_error, request_data, exc)
            if result is not None:
                return make_response(result)
        # As in Flask: the most specific exception-class handler first, then the status code's.
        entry = None
        for cls in type(exc).__mro__:
            entry = self.error_handlers.get(cls)
            if entry is not None:
                break
        if entry is None:
            entry = self.error_handlers.get(status)
        if entry is None:
            return None
        func, arity = entry
        args: tuple[Any, ...] = ((), (exc,), (request_data, exc))[arity]
        result = await _call(func, *args)
        response = make_response(result)
        explicit_status = isinstance(result, Response) or (
            isinstance(result, tuple)
            and any(isinstance(x, int) and not isinstance(x, bool) for x in result[1:])
        )
        if not explicit_status:
            response.status_code = status
        if isinstance(exc, HTTPException):
            for name, value in exc.headers.items():
                response.headers.setdefault(name, value)
        return response
