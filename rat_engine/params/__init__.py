"""Handler parameters read from the request by their annotations (see :mod:`.binder`)."""

from .binder import Binder, ParamSpec, plan_parameters
from .coerce import UnsupportedType
from .types import resolve_hints

__all__ = ["Binder", "ParamSpec", "UnsupportedType", "plan_parameters", "resolve_hints"]
