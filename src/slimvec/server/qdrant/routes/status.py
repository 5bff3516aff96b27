"""Qdrant's service routes: the version answer qdrant-client checks when it connects, and the
health probes (slimvec has no background work that could make it not ready)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

import slimvec
from slimvec.server.qdrant.context import Context

#: The Qdrant version whose REST API (a subset) this answers: the qdrant-client release the
#: tests pin (the client warns when major.minor differ by more than one).
QDRANT_VERSION = "1.20.0"


def version_route(q: Context) -> Callable[[Request], Any]:
    """``GET /``: Qdrant's version answer (also mounted on the bare prefix, see ``mount``)."""

    async def version(request: Request) -> dict[str, Any]:
        q.service.allow(request, None, write=False)
        return {
            "title": f"qdrant - vector search engine (slimvec {slimvec.__version__})",
            "version": QDRANT_VERSION,
            "commit": None,
        }

    return version


def router(q: Context) -> APIRouter:
    api = APIRouter()
    api.get("/")(version_route(q))

    @api.get("/healthz")
    @api.get("/livez")
    @api.get("/readyz")
    async def health() -> Response:
        return Response("healthz check passed", media_type="text/plain")

    return api
