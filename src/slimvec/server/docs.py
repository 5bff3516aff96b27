"""``/docs`` (Swagger UI) and ``/redoc`` from files a pinned pip package ships.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without Internet
access they are blank. ``fastapi-offline`` (pinned in the ``server`` extra) ships copies of
those files; they are served from ``/docs-assets`` and the pages name nothing else, Google
Fonts and Swagger's online validator included.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs-assets"
STATIC = Path(fastapi_offline.__file__).parent / "static"


def add_docs(app: FastAPI) -> None:
    """Mount the packaged assets and add ``/docs`` and ``/redoc`` to ``app`` (made with
    ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="docs-assets")

    def _prefix(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        prefix = _prefix(request)
        return get_swagger_ui_html(
            openapi_url=prefix + app.openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{prefix}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{prefix}{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no call to swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        prefix = _prefix(request)
        return get_redoc_html(
            openapi_url=prefix + app.openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{prefix}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{prefix}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
