"""OpenAPI 3.2 for a RatApp: ``app.enable_openapi()`` serves the document and a docs page.

    app.enable_openapi(path="/openapi.json", docs="/docs", title="My API", version="1.0")

The document (:mod:`.document`) is built from the routes when it is first asked for, and again
only after routes were added. The docs page (:mod:`.docs_page`) is Swagger UI served from an
installed package, never a CDN.
"""

from __future__ import annotations

import html
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from .. import _json
from ..exceptions import HTTPException
from ..files import FileResponse
from ..responses import HTMLResponse, Response
from .docs_page import ASSET_NAMES, MISSING_PAGE, find_assets, page
from .document import OPENAPI_VERSION, build_document, openapi_path
from .schema import SchemaBuilder

if TYPE_CHECKING:
    from ..app import RatApp

logger = logging.getLogger(__name__)

__all__ = ["OPENAPI_VERSION", "OpenAPI", "SchemaBuilder", "build_document", "install_openapi", "openapi_path"]


class OpenAPI:
    """An app's OpenAPI document and where it is served (``app.enable_openapi()`` returns it)."""

    def __init__(
        self,
        app: RatApp,
        path: str,
        docs: str | None,
        *,
        title: str,
        version: str,
        description: str | None,
        hidden: set[str],
    ) -> None:
        self.app = app
        self.path = path
        self.docs = docs
        self.title = title
        self.version = version
        self.description = description
        #: Rules left out of the document (the document and docs page themselves).
        self.hidden = hidden
        self._lock = threading.Lock()
        self._cached: tuple[int, bytes] | None = None

    def document(self) -> dict[str, Any]:
        """The document as a dict, built now from the app's current routes."""
        return build_document(
            self.app.router.routes(),
            title=self.title,
            version=self.version,
            description=self.description,
            hidden=self.hidden,
        )

    def encoded(self) -> bytes:
        """The document as JSON bytes, rebuilt only when routes were added since."""
        count = len(self.app.router.routes())
        with self._lock:
            if self._cached is None or self._cached[0] != count:
                self._cached = (count, _json.dumps(self.document()))
            return self._cached[1]


def install_openapi(
    app: RatApp,
    path: str = "/openapi.json",
    docs: str | None = "/docs",
    *,
    title: str,
    version: str = "0.1.0",
    description: str | None = None,
    docs_assets: str | os.PathLike[str] | None = None,
) -> OpenAPI:
    """Register the document route at ``path`` and, unless ``docs`` is None, the docs page and
    its assets under ``docs``. Returns the :class:`OpenAPI` (``.document()``)."""
    hidden = {path}
    spec = OpenAPI(app, path, docs, title=title, version=version, description=description, hidden=hidden)

    def openapi_document() -> Response:
        return Response(spec.encoded(), media_type="application/json")

    app.add_route(path, openapi_document, ("GET",), kind="custom", inline=True)
    if docs is None:
        return spec
    docs = docs.rstrip("/") or "/docs"
    assets_rule = f"{docs}/assets/<name>"
    hidden.update({docs, assets_rule})
    assets = find_assets(docs_assets)
    if assets is None:
        logger.warning(
            "enable_openapi: Swagger UI's files not found (pip install 'rat_engine[openapi]'); %s says so",
            docs,
        )
        missing = MISSING_PAGE.format(url=html.escape(path))

        def docs_unavailable() -> Response:
            return HTMLResponse(missing, 503)

        app.add_route(docs, docs_unavailable, ("GET",), kind="html", inline=True)
        return spec
    body = page(title, path, f"{docs}/assets")

    def docs_page() -> Response:
        return HTMLResponse(body)

    def docs_asset(name: str) -> FileResponse:
        if name not in ASSET_NAMES:
            raise HTTPException(404)
        return FileResponse(assets / name, headers={"cache-control": "public, max-age=86400"})

    app.add_route(docs, docs_page, ("GET",), kind="html", inline=True)
    app.add_route(assets_rule, docs_asset, ("GET",), kind="file")
    return spec
