"""The web page: a login form, the collections this key may use, and the bench plot."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from slimvec.errors import AuthError
from slimvec.server.auth import Principal
from slimvec.server.service import COOKIE, Service


def bench_plot(root: Path, given: str | Path | None) -> Path | None:
    """The plot to show: the one given, else the newest bench.png in or one level below root."""
    if given is not None:
        return Path(given) if Path(given).is_file() else None
    found = [p for p in (*root.glob("bench.png"), *root.glob("*/bench.png")) if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def router(service: Service, plot: str | Path | None) -> APIRouter:
    from slimvec.server.page import render_login, render_page

    api = APIRouter(include_in_schema=False)
    registry, keys = service.registry, service.keys

    def page_user(request: Request) -> Principal | None:
        try:
            return service.principal(request)
        except AuthError:
            return None

    @api.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> HTMLResponse:
        who = page_user(request)
        if who is None:
            return HTMLResponse(render_login(failed="failed" in request.query_params))
        shown = bench_plot(registry.root, plot)
        html = await run_in_threadpool(
            render_page, registry, who, dict(request.query_params), shown is not None
        )
        return HTMLResponse(html)

    @api.post("/login")
    async def login(request: Request) -> RedirectResponse:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        key = (form.get("key") or [""])[0]
        try:
            if keys is not None:
                keys.authenticate(key)
        except AuthError:
            return RedirectResponse("/?failed=1", status_code=303)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict")
        return response

    @api.get("/bench.png")
    async def bench_png(request: Request) -> FileResponse:
        if page_user(request) is None:
            raise AuthError("log in on / first", status=401)
        shown = bench_plot(registry.root, plot)
        if shown is None:
            raise StarletteHTTPException(404)
        return FileResponse(shown, media_type="image/png")

    return api
