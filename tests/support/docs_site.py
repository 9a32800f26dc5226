"""The documentation site (mkdocs.yml): build it with ``mkdocs build --strict`` and serve the
result from 127.0.0.1.

    from support.docs_site import build_site, serve_directory

    result = build_site(tmp_path / "site")      # CompletedProcess; returncode 0 when clean
    with serve_directory(tmp_path / "site") as url:
        ...                                     # url: "http://127.0.0.1:PORT/"
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from . import HOST, REPO_ROOT
from .prereq import require_or_skip

BUILD_TIMEOUT = 180


def require_mkdocs() -> None:
    """Skip (or fail under RAT_REQUIRE_ALL=1) when the docs toolchain of the [test] extra is missing."""
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            require_or_skip("mkdocs", f"{module} is not installed (pip install -e '.[test]')")


def build_site(site_dir: Path, root: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` from ``root``'s mkdocs.yml (the repository's) into ``site_dir``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's banner about its successor
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "--site-dir", str(site_dir)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` as static files on 127.0.0.1 (a free port) in a background thread."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="docs-site-http", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
