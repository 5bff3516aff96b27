"""Qdrant's REST API over slimvec collections, so that unmodified Qdrant clients (e.g.
``QdrantClient(url=..., prefix="qdrant")``) work against ``slimvec serve``.

It lives under ``/qdrant`` (:data:`PREFIX`) rather than on the root because Qdrant's routes
and slimvec's own share paths with different meanings (``POST /collections/{name}/points`` is
slimvec's add and Qdrant's retrieve; ``PUT /collections/{name}`` takes different bodies):
moving slimvec's routes would break every deployed slimvec client, while a prefix is one
setting that every Qdrant client has.

The pieces: ``routes/`` (one router per concern), ``context`` (what the routers share: the
service steps, Qdrant's reply envelope and error shape), ``filters`` (Qdrant filters as
slimvec filters), ``payload`` (payloads as metadata), ``ids`` (integer and UUID point ids),
``space`` (size, distance, Euclid over an inner-product collection). Errors answer Qdrant's
``{"status": {"error": ...}, "time"}`` with the HTTP status slimvec's own routes use.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from slimvec.errors import SlimvecError
from slimvec.server.qdrant.context import Context, error, qdrant_error
from slimvec.server.qdrant.filters import Unsupported
from slimvec.server.qdrant.routes import collections, payload, points, query, status
from slimvec.server.service import RequestProblem, Service, status_of

__all__ = ["PREFIX", "mount"]

PREFIX = "/qdrant"


def app(context: Context, hide: list[str]) -> FastAPI:
    """The Qdrant API as its own ASGI app, with Qdrant-shaped errors (``hide``: strings such
    as the served directory's path, left out of messages)."""
    api = FastAPI(title="slimvec: Qdrant REST API", docs_url="/docs", redoc_url=None)

    def clean(message: str) -> str:
        for text in hide:
            message = message.replace(text, "")
        return message

    @api.exception_handler(SlimvecError)
    async def _slimvec(request: Request, exc: SlimvecError) -> JSONResponse:
        return error(status_of(exc), clean(qdrant_error(exc)))

    @api.exception_handler(RequestProblem)
    async def _problem(request: Request, exc: RequestProblem) -> JSONResponse:
        return error(exc.status, str(exc))

    @api.exception_handler(Unsupported)
    async def _unsupported(request: Request, exc: Unsupported) -> JSONResponse:
        return error(400, f"Unsupported by slimvec: {exc}")

    @api.exception_handler(TypeError)
    async def _type(request: Request, exc: TypeError) -> JSONResponse:
        return error(400, f"Format error: {exc}")

    @api.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, f"Format error: {exc.errors()}")

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"Not found: {request.method} {request.url.path} is not a route slimvec's "
            message += "Qdrant API answers (see /qdrant/docs)"
        return error(exc.status_code, message)

    @api.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"Service internal error: {type(exc).__name__}: {exc}")

    for concern in (status, collections, points, payload, query):
        api.include_router(concern.router(context))
    return api


def mount(parent: Any, service: Service, hide: list[str]) -> None:
    """Serve the Qdrant API under :data:`PREFIX` of ``parent`` (a FastAPI app). The bare
    prefix answers too: qdrant-client asks it for the server version, without a slash."""
    context = Context(service)
    parent.mount(PREFIX, app(context, hide))
    version = status.version_route(context)
    parent.add_api_route(PREFIX, version, methods=["GET"], include_in_schema=False)
