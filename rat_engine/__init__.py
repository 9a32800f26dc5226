"""rat_engine: a Python web framework for real-time streaming with Server-Sent Events.

Compatible with RAT Engine's Python API (``from rat_engine import RatApp``), with streams that
are framed per the SSE standard, notice clients leaving, keep alive, and shut down cleanly.
"""

from .app import RatApp
from .compat import HttpMethod, HttpRequest, HttpResponse, LoggingMiddleware
from .compression import CompressionConfig, CompressionType
from .context import path_params
from .context import request as request  # RAT Engine's request(); the module is rat_engine.request
from .datastructures import Headers, QueryParams, UploadedFile
from .exceptions import HTTPException, RouteError, StreamLimitExceeded
from .files import FileResponse, safe_join
from .logs import (
    rat_debug,
    rat_emergency,
    rat_error,
    rat_flush_logs,
    rat_info,
    rat_startup_log,
    rat_trace,
    rat_warn,
)
from .middleware import CORSMiddleware, Middleware
from .request import RequestData
from .responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, redirect
from .settings import BroadcastSettings, Limits, StreamSettings
from .sse.event import SSEEvent
from .sse.response import EventStreamResponse
from .streaming import StreamingResponse

__version__ = "0.1.0"

__all__ = [
    "BroadcastSettings",
    "CORSMiddleware",
    "CompressionConfig",
    "CompressionType",
    "EventStreamResponse",
    "FileResponse",
    "HTMLResponse",
    "HTTPException",
    "HttpMethod",
    "HttpRequest",
    "HttpResponse",
    "Headers",
    "JSONResponse",
    "Limits",
    "LoggingMiddleware",
    "Middleware",
    "PlainTextResponse",
    "QueryParams",
    "RatApp",
    "RedirectResponse",
    "RequestData",
    "Response",
    "RouteError",
    "SSEEvent",
    "StreamLimitExceeded",
    "StreamSettings",
    "StreamingResponse",
    "UploadedFile",
    "__version__",
    "path_params",
    "rat_debug",
    "rat_emergency",
    "rat_error",
    "rat_flush_logs",
    "rat_info",
    "rat_startup_log",
    "rat_trace",
    "rat_warn",
    "redirect",
    "request",
    "safe_join",
]
