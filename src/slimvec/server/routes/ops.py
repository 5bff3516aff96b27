"""Service routes: liveness and Prometheus metrics."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from starlette.concurrency import run_in_threadpool

import slimvec
from slimvec.server.auth import Principal
from slimvec.server.service import Service


class VisibleMetrics:
    """The registry's metrics as one key may see them: samples labelled with a collection
    outside its allow-list are left out, so a key learns neither the names nor the sizes of
    collections it may not use."""

    def __init__(self, prom: CollectorRegistry, who: Principal):
        self.prom, self.who = prom, who

    def collect(self) -> Iterator[Metric]:
        for metric in self.prom.collect():
            visible = copy.copy(metric)
            visible.samples = [
                s
                for s in metric.samples
                if "collection" not in s.labels or self.who.may_see(s.labels["collection"])
            ]
            yield visible


def router(service: Service, prom: CollectorRegistry) -> APIRouter:
    api = APIRouter(tags=["service"])

    @api.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness: answers without touching any collection."""
        return {"status": "ok", "version": slimvec.__version__, "pid": os.getpid()}

    @api.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of this worker process: request counts, latencies, and the sizes
        of the collections this key may use."""
        who = service.allow(request, None, write=False)
        source = prom if who.collections is None else VisibleMetrics(prom, who)
        body = await run_in_threadpool(generate_latest, source)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return api
