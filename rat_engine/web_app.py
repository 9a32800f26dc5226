"""RAT Engine's ``rat_engine.web_app`` helpers (see :mod:`rat_engine.context`)."""

from __future__ import annotations

from typing import Any

from .context import path_params, request

__all__ = ["get_path_params", "get_request"]


def get_path_params() -> dict[str, Any]:
    return path_params()


def get_request() -> Any:
    return request()
