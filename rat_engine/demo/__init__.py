"""The demo site served by ``rat-engine demo`` (port 8087): rat_engine showing itself off.

Every page is plain HTML and JavaScript served by the app (no build step); every stream is an
ordinary rat_engine route, so this package doubles as an example. One module per demo:
:mod:`.streams` (the seed guide's counter and progress), :mod:`.uploads` (multipart upload with
live progress), :mod:`.logs` (a ``tail -f`` log viewer), :mod:`.chat` (chat and dashboard on
broadcast channels).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from .. import FileResponse, RatApp, safe_join
from . import chat, logs, streams, uploads

__all__ = ["app"]

STATIC = resources.files(__package__).joinpath("static")

app = RatApp(name="rat_engine_demo", broadcast_history=200)
app.enable_status_page("/status")
app.enable_metrics("/metrics")

PAGES = {
    "/": "home.html",
    "/demo/streams": "streams.html",
    "/demo/upload": "upload.html",
    "/demo/logs": "logs.html",
    "/demo/chat": "chat.html",
}


def _page(name: str) -> Any:
    def serve_page() -> str:
        return STATIC.joinpath(name).read_text(encoding="utf-8")

    serve_page.__name__ = f"page_{name.removesuffix('.html')}"
    return serve_page


for _rule, _name in PAGES.items():
    app.add_route(_rule, _page(_name), ("GET",), kind="html")


@app.file("/static/<path:name>")
def static_file(request_data: dict[str, Any], name: str) -> FileResponse:
    return FileResponse(safe_join(str(STATIC), name))


streams.register(app)
uploads.register(app)
logs.register(app)
chat.register(app)
