"""The ``/docs`` page: Swagger UI, with every asset served by the app from an installed package.

Nothing is loaded from a CDN (the page works on a machine without internet). The assets come
from the ``flask-swagger-ui`` distribution (Swagger UI 5.34, which renders OpenAPI 3.2; the
``rat_engine[openapi]`` extra installs it): only its static files are read, the package is
never imported (nor Flask). ``docs_assets=`` points at any other Swagger UI ``dist`` folder.
"""

from __future__ import annotations

import html
import importlib.util
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["ASSET_NAMES", "find_assets", "page"]

#: The files the page uses; nothing else in the folder is served.
ASSET_NAMES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})


def find_assets(directory: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder holding Swagger UI's ``swagger-ui-bundle.js`` and ``swagger-ui.css``: the
    given one, else the installed ``flask_swagger_ui`` package's ``dist``; None when absent."""
    candidates: list[Path] = []
    if directory is not None:
        candidates.append(Path(directory))
    else:
        spec = importlib.util.find_spec("flask_swagger_ui")  # finds, does not import
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            candidates.append(Path(location) / "dist")
    for candidate in candidates:
        if (candidate / "swagger-ui-bundle.js").is_file() and (candidate / "swagger-ui.css").is_file():
            return candidate
    return None


def page(title: str, openapi_url: str, assets_url: str) -> str:
    """The HTML of the docs page. ``validatorUrl: null``: Swagger UI would otherwise load a
    badge from validator.swagger.io."""
    config = json.dumps(
        {
            "url": openapi_url,
            "dom_id": "#swagger-ui",
            "deepLinking": True,
            "validatorUrl": None,
            "displayRequestDuration": True,
            "tryItOutEnabled": False,
        }
    ).replace("</", "<\\/")
    assets = html.escape(assets_url, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - API docs</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
<style>body {{ margin: 0; }}</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle(Object.assign({config}, {{
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}}));
</script>
</body>
</html>
"""


MISSING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API docs unavailable</title></head>
<body><h1>API docs unavailable</h1>
<p>Swagger UI's files are not installed: <code>pip install "rat_engine[openapi]"</code>
(or pass <code>docs_assets=</code> to <code>enable_openapi</code>).
The OpenAPI document is at <a href="{url}">{url}</a>.</p></body></html>
"""
