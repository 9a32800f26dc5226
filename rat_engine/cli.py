"""``rat-engine run module:app`` / ``rat-engine demo`` (also ``python -m rat_engine``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["load_app", "main"]


def _load_file(path: str) -> Any:
    """Import a script by path (RAT Engine's ``rat-engine app.py`` habit) and find its RatApp."""
    import importlib.util

    from .app import RatApp

    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location("__rat_app__", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot load {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["__rat_app__"] = module
    spec.loader.exec_module(module)  # its `if __name__ == "__main__":` block does not run
    apps = [value for value in vars(module).values() if isinstance(value, RatApp)]
    named = getattr(module, "app", None)
    if isinstance(named, RatApp):
        return named
    if len(apps) == 1:
        return apps[0]
    raise SystemExit(f"error: {path} defines {len(apps)} RatApp objects; use module:attribute")


def load_app(target: str) -> Any:
    """Import ``module:attribute`` (the current directory is importable, as with uvicorn), or
    a script path such as ``app.py``."""
    if target.endswith(".py") and ":" not in target:
        if not os.path.isfile(target):
            raise SystemExit(f"error: no such file {target!r}")
        return _load_file(target)
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"error: expected 'module:app', got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"error: cannot import {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise SystemExit(f"error: module {module_name!r} has no attribute {attribute!r}") from None


def _add_server_options(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=default_port, help="port (default: %(default)s)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--no-access-log", action="store_true", help="do not log one line per request")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rat-engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve an application")
    run.add_argument("target", help="the application, as module:attribute or path/to/app.py")
    _add_server_options(run, 8000)
    run.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    run.add_argument("--reload", action="store_true", help="restart when Python files change")
    demo = commands.add_parser("demo", help="serve the built-in demo site")
    _add_server_options(demo, 8087)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": not args.no_access_log,
    }
    if args.command == "demo":
        from .demo import app as demo_app

        demo_app.run(**options)
        return 0
    if args.reload:
        from .server import run_with_reload

        if args.workers != 1:
            raise SystemExit("error: --reload runs one worker")
        run_with_reload(args.target, **options)
        return 0
    app = load_app(args.target)
    if not hasattr(app, "run"):
        raise SystemExit(f"error: {args.target} is not a RatApp (use uvicorn for other ASGI apps)")
    app.run(workers=args.workers, **options)
    return 0
