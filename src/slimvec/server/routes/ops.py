"""Service routes: liveness and Prometheus metrics."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

import slimvec
from slimvec.server.service import Service


def router(service: Service, prom: CollectorRegistry) -> APIRouter:
    api = APIRouter(tags=["service"])

    @api.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness: answers without touching any collection."""
        return {"status": "ok", "version": slimvec.__version__, "pid": os.getpid()}

    @api.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of this worker process: request counts, latencies, sizes."""
        service.allow(request, None, write=False)
        body = await run_in_threadpool(generate_latest, prom)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return api
