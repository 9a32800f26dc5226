"""The demo site served by ``rat-engine demo`` (port 8087): rat_engine showing itself off.

Every page is plain HTML and JavaScript served by the app (no build step); every stream is an
ordinary rat_engine route, so this package doubles as an example. One module per demo:
:mod:`.streams` (the seed guide's counter and progress), :mod:`.uploads` (multipart upload with
live progress), :mod:`.logs` (a ``tail -f`` log viewer), :mod:`.chat` (chat and dashboard on
broadcast channels). The status page is the library's own (``rat_engine.observability``) with
the site's header.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

from .. import FileResponse, RatApp, safe_join
from ..observability import install_status_page
from . import chat, logs, streams, uploads

__all__ = ["app", "site_header"]

STATIC = resources.files(__package__).joinpath("static")

app = RatApp(name="rat_engine_demo", broadcast_history=200)

#: Page path -> static file; each page has the ``<!--site-header-->`` placeholder.
PAGES = {
    "/": "home.html",
    "/demo/streams": "streams.html",
    "/demo/upload": "upload.html",
    "/demo/logs": "logs.html",
    "/demo/chat": "chat.html",
}
#: The navigation, in order (the brand links home).
NAV = (
    ("/demo/streams", "Streams"),
    ("/demo/upload", "Upload"),
    ("/demo/logs", "Logs"),
    ("/demo/chat", "Chat"),
    ("/status", "Status"),
)
HEADER_PLACEHOLDER = "<!--site-header-->"


def site_header(current: str) -> str:
    """The site's header, with the link to ``current`` marked ``aria-current="page"``."""

    def link(href: str, text: str, cls: str = "") -> str:
        attrs = f' class="{cls}"' if cls else ""
        if href == current:
            attrs += ' aria-current="page"'
        return f'<a href="{html.escape(href)}"{attrs}>{html.escape(text)}</a>'

    nav = "".join(link(href, text) for href, text in NAV)
    return (
        f'<header class="site">{link("/", "rat_engine", "brand")}'
        f'<nav aria-label="Demo pages">{nav}</nav></header>'
    )


def _page(path: str, name: str) -> Any:
    def serve_page() -> str:
        text = STATIC.joinpath(name).read_text(encoding="utf-8")
        return text.replace(HEADER_PLACEHOLDER, site_header(path), 1)

    serve_page.__name__ = f"page_{name.removesuffix('.html')}"
    return serve_page


for _rule, _name in PAGES.items():
    app.add_route(_rule, _page(_rule, _name), ("GET",), kind="html")

# The library's status page, in the site's style and with its navigation.
install_status_page(
    app, "/status", header='<link rel="stylesheet" href="/static/style.css">' + site_header("/status")
)
app.enable_metrics("/metrics")


@app.file("/static/<path:name>")
def static_file(request_data: dict[str, Any], name: str) -> FileResponse:
    return FileResponse(safe_join(str(STATIC), name))


streams.register(app)
uploads.register(app)
logs.register(app)
chat.register(app)
