"""RAT Engine's "current request" helpers: ``rat_engine.request()``, ``rat_engine.path_params()``
and ``rat_engine.web_app.get_path_params()``.

A context variable, set by the dispatcher for each request. It reaches every place a handler's
code runs: the request's task, the thread pool of plain handlers and the thread of a sync
generator (both run in a copy of the request's context).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["current_request", "path_params", "request"]

current_request: ContextVar[Any] = ContextVar("rat_engine.request_data", default=None)


def request() -> Any:
    """The ``request_data`` of the request being handled.

    Raises:
        RuntimeError: called outside a request (at import time, in a background task).
    """
    data = current_request.get()
    if data is None:
        raise RuntimeError("rat_engine.request() is only available while a request is being handled")
    return data


def path_params() -> dict[str, Any]:
    """The path parameters of the request being handled, as the strings of the path."""
    params: dict[str, Any] = request().get("path_params", {})
    return params
