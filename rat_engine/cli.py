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


def _add_tls_options(parser: argparse.ArgumentParser) -> None:
    tls = parser.add_argument_group("TLS and HTTP/2")
    tls.add_argument("--ssl-certfile", metavar="PEM", help="serve HTTPS with this certificate (chain) file")
    tls.add_argument(
        "--ssl-keyfile", metavar="PEM", help="the certificate's private key (if not in --ssl-certfile)"
    )
    tls.add_argument(
        "--dev-tls",
        action="store_true",
        help="development mode: HTTPS with a cached self-signed certificate for localhost, "
        "127.0.0.1 and --host, h2 and h2c on (needs: pip install 'rat_engine[tls]')",
    )
    tls.add_argument(
        "--no-h2", action="store_true", help="with TLS, offer only HTTP/1.1 (ALPN); h2 is on by default"
    )
    tls.add_argument(
        "--h2c",
        action="store_true",
        help="a cleartext port also accepts HTTP/2 (prior knowledge and Upgrade: h2c)",
    )


def _tls_options(args: argparse.Namespace) -> dict[str, Any]:
    """app.run()'s keywords for the TLS flags that were given (the app's own choice otherwise)."""
    options: dict[str, Any] = {}
    if args.dev_tls and (args.ssl_certfile or args.ssl_keyfile):
        raise SystemExit("error: --dev-tls makes its own certificate; drop --ssl-certfile/--ssl-keyfile")
    if args.ssl_keyfile and not args.ssl_certfile:
        raise SystemExit("error: --ssl-keyfile needs --ssl-certfile")
    for flag, path in (("--ssl-certfile", args.ssl_certfile), ("--ssl-keyfile", args.ssl_keyfile)):
        if path is not None:
            if not os.path.isfile(path):
                raise SystemExit(f"error: {flag}: no such file {path!r}")
            options[flag[2:].replace("-", "_")] = path
    if args.no_h2:
        options["h2"] = False
    if args.h2c:
        options["h2c"] = True
    return options


def _dev_hostnames(host: str) -> list[str]:
    """The development certificate's names: RAT Engine's default, plus the address served."""
    names = ["localhost", "127.0.0.1"]
    if host not in ("", "0.0.0.0", "::") and host not in names:
        names.append(host)
    return names


def _development_mode(app: Any, host: str) -> None:
    try:
        app.enable_development_mode(hostnames=_dev_hostnames(host))
    except (ImportError, ValueError) as exc:
        raise SystemExit(f"error: --dev-tls: {exc}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rat-engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve an application")
    run.add_argument("target", help="the application, as module:attribute or path/to/app.py")
    _add_server_options(run, 8000)
    run.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    run.add_argument("--reload", action="store_true", help="restart when Python files change")
    _add_tls_options(run)
    demo = commands.add_parser("demo", help="serve the built-in demo site")
    _add_server_options(demo, 8087)
    _add_tls_options(demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": not args.no_access_log,
    }
    tls = _tls_options(args)
    if args.command == "demo":
        from .demo import app as demo_app

        if args.dev_tls:
            _development_mode(demo_app, args.host)
        demo_app.run(**options, **tls)
        return 0
    if args.reload:
        return _run_reloading(args, options, tls)
    app = load_app(args.target)
    if not hasattr(app, "run"):
        raise SystemExit(f"error: {args.target} is not a RatApp (use uvicorn for other ASGI apps)")
    if args.dev_tls:
        _development_mode(app, args.host)
    app.run(workers=args.workers, **options, **tls)
    return 0


def _run_reloading(args: argparse.Namespace, options: dict[str, Any], tls: dict[str, Any]) -> int:
    from .server import run_with_reload

    if args.workers != 1:
        raise SystemExit("error: --reload runs one worker")
    if args.h2c or args.no_h2:
        raise SystemExit("error: --h2c and --no-h2 do not work with --reload yet (TLS offers h2 by default)")
    if args.dev_tls:
        from .server.tls import development_certificate

        try:
            certificate = development_certificate(_dev_hostnames(args.host))
        except (ImportError, ValueError) as exc:
            raise SystemExit(f"error: --dev-tls: {exc}") from None
        tls = {"ssl_certfile": certificate.certfile, "ssl_keyfile": certificate.keyfile}
    run_with_reload(args.target, **options, **tls)
    return 0
