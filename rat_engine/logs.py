"""RAT Engine's logging calls, mapped onto the standard ``logging`` module.

``app.configure_logging(level="info", enable_access_log=True, ...)`` sets up what RAT Engine's
README calls required before ``run()``; ``rat_info("...")`` and its siblings log on the
``rat_engine.app`` logger. Everything ends up in ``logging``, so an application's own handlers
(JSON, a file, syslog) see rat_engine's lines like any other library's.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

__all__ = [
    "TRACE",
    "configure_logging",
    "rat_debug",
    "rat_emergency",
    "rat_error",
    "rat_flush_logs",
    "rat_info",
    "rat_startup_log",
    "rat_trace",
    "rat_warn",
]

#: Below DEBUG: RAT Engine's ``trace`` level (named "TRACE" once logging is configured).
TRACE = 5

_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "emergency": logging.CRITICAL,
    "off": logging.CRITICAL + 10,
}
_COLORS = {
    TRACE: "\x1b[90m",
    logging.DEBUG: "\x1b[36m",
    logging.INFO: "\x1b[32m",
    logging.WARNING: "\x1b[33m",
    logging.ERROR: "\x1b[31m",
    logging.CRITICAL: "\x1b[1;31m",
}
#: Marks the handlers configure_logging() installed, so calling it again replaces them.
_OURS = "_rat_engine_handler"

_app_logger = logging.getLogger("rat_engine.app")


def level_number(level: str | int) -> int:
    """``"info"`` / ``"WARN"`` / ``logging.INFO`` -> the ``logging`` level number."""
    if isinstance(level, int):
        return level
    try:
        return _LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}") from None


class _Formatter(logging.Formatter):
    def __init__(self, show_timestamp: bool, show_module: bool, colors: bool) -> None:
        parts = (["%(asctime)s"] if show_timestamp else []) + ["%(levelname)-7s"]
        parts += ["%(name)s:"] if show_module else []
        super().__init__(" ".join(parts) + " %(message)s")
        self._colors = colors

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if self._colors:
            return f"{_COLORS.get(record.levelno, '')}{text}\x1b[0m"
        return text


def configure_logging(
    level: str | int = "info",
    enable_access_log: bool = True,
    enable_error_log: bool = True,
    enable_colors: bool | None = None,
    enable_emoji: bool = False,
    show_timestamp: bool = True,
    show_module: bool = True,
    log_file: str | os.PathLike[str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Log rat_engine's lines (and the application's, through the root logger) at ``level``.

    Args:
        level: ``trace``, ``debug``, ``info``, ``warn``, ``error``, ``emergency`` or ``off``.
        enable_access_log: One line per request (logger ``rat_engine.access``).
        enable_error_log: False silences rat_engine's error lines (handler exceptions, stream
            generator errors). Their responses (500, ``error`` events) are unchanged.
        enable_colors: Colour by level; None: only when the output is a terminal.
        enable_emoji: Accepted for RAT Engine code; rat_engine's lines carry no emoji (why: log
            viewers and grep handle plain text best).
        show_timestamp, show_module: What each line starts with.
        log_file: Also append every line to this file (no colours there).
        stream: Where lines go (default ``sys.stderr``).
    """
    del enable_emoji
    logging.addLevelName(TRACE, "TRACE")
    number = level_number(level)
    out = stream if stream is not None else sys.stderr
    colors = enable_colors if enable_colors is not None else bool(getattr(out, "isatty", lambda: False)())
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(out)]
    handlers[0].setFormatter(_Formatter(show_timestamp, show_module, colors))
    if log_file is not None:
        file_handler = logging.FileHandler(os.fspath(log_file), encoding="utf-8")
        file_handler.setFormatter(_Formatter(show_timestamp, show_module, False))
        handlers.append(file_handler)
    for handler in handlers:
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    if root.level > number or root.level == logging.NOTSET:
        root.setLevel(number)
    logging.getLogger("rat_engine").setLevel(number)
    logging.getLogger("rat_engine.access").disabled = not enable_access_log
    error_level = number if enable_error_log else logging.CRITICAL + 1
    for name in ("rat_engine.dispatch", "rat_engine.streaming", "rat_engine.server"):
        logging.getLogger(name).setLevel(max(number, error_level))


def server_level(level: str | int) -> str:
    """The name uvicorn (and ``app.run(log_level=...)``) knows for ``level``."""
    number = level_number(level)
    for name, value in (
        ("trace", TRACE),
        ("debug", logging.DEBUG),
        ("info", logging.INFO),
        ("warning", logging.WARNING),
        ("error", logging.ERROR),
    ):
        if number <= value:
            return name
    return "critical"


# -- RAT Engine's log functions ------------------------------------------------------------------


def rat_trace(message: str, *args: Any) -> None:
    _app_logger.log(TRACE, message, *args, stacklevel=2)


def rat_debug(message: str, *args: Any) -> None:
    _app_logger.debug(message, *args, stacklevel=2)


def rat_info(message: str, *args: Any) -> None:
    _app_logger.info(message, *args, stacklevel=2)


def rat_warn(message: str, *args: Any) -> None:
    _app_logger.warning(message, *args, stacklevel=2)


def rat_error(message: str, *args: Any) -> None:
    _app_logger.error(message, *args, stacklevel=2)


def rat_emergency(message: str, *args: Any) -> None:
    _app_logger.critical(message, *args, stacklevel=2)


def rat_startup_log(message: str, *args: Any) -> None:
    """A startup line (INFO on ``rat_engine.app``)."""
    _app_logger.info(message, *args, stacklevel=2)


def rat_flush_logs() -> None:
    """Flush every handler of the root logger and rat_engine's loggers."""
    for logger in (logging.getLogger(), logging.getLogger("rat_engine")):
        for handler in logger.handlers:
            handler.flush()
