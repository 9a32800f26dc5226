"""The wire: rat_engine's HTTP server (protocol, exchange, flow control, runner).

Nothing in this package imports the application layer: it serves any ASGI 3 app, and gives
rat_engine's streams ``scope["rat.exchange"]`` (see :mod:`rat_engine.streaming.wire`).
"""

from .runner import RatServer, ServerHandle, configure_logging, run_with_reload, serve, server_option_names

__all__ = [
    "RatServer",
    "ServerHandle",
    "configure_logging",
    "run_with_reload",
    "serve",
    "server_option_names",
]
