"""Plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware): the body-size limit
and Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from slimvec.server.registry import Registry
from slimvec.server.service import RequestProblem, problem


class BodyLimit:
    """413 for bodies over ``limit`` bytes, by Content-Length or while streaming."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = (
            f"request body is over the server's limit of {self.limit:,} bytes; send fewer "
            f"vectors per request (float16 or .npy bodies are smaller than JSON)"
        )
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await problem(413, "InvalidInputError", message)(scope, receive, send)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            event = await receive()
            seen += len(event.get("body", b""))
            if seen > self.limit:
                raise RequestProblem(413, message)
            return event

        await self.app(scope, counted, send)


class Metrics:
    """Prometheus request counts and latencies by route template, and collection sizes."""

    def __init__(self, app: Any, registry: Registry, prom: CollectorRegistry):
        self.app = app
        self.requests = Counter(
            "slimvec_requests", "HTTP requests", ["method", "route", "status"], registry=prom
        )
        self.latency = Histogram(
            "slimvec_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
            registry=prom,
        )
        collections = registry

        class Sizes:
            def collect(self):
                gauge = GaugeMetricFamily(
                    "slimvec_collection_vectors", "live vectors", labels=["collection"]
                )
                for name, n in collections.each(lambda name, col: (name, len(col))):
                    gauge.add_metric([name], n)
                yield gauge
                yield from recall_gauges(collections.each(lambda name, col: (name, col)))

        prom.register(Sizes())

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def sent(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.latency.labels(scope["method"], route).observe(time.perf_counter() - start)


def recall_gauges(collections: Iterable[tuple[str, Any]]) -> Iterator[GaugeMetricFamily]:
    """Live recall per collection and plan kind (``slimvec.engine.quality``): the estimate,
    its 95 % interval, the samples it rests on, and the target where one is set."""
    labels = ["collection", "plan"]
    families = {
        "estimate": GaugeMetricFamily(
            "slimvec_recall_estimate", "recall@k measured on sampled searches", labels=labels
        ),
        "low": GaugeMetricFamily(
            "slimvec_recall_lower", "lower bound of the recall's 95% interval", labels=labels
        ),
        "high": GaugeMetricFamily(
            "slimvec_recall_upper", "upper bound of the recall's 95% interval", labels=labels
        ),
        "samples": GaugeMetricFamily(
            "slimvec_recall_samples", "sampled searches the estimate rests on", labels=labels
        ),
    }
    target = GaugeMetricFamily(
        "slimvec_recall_target", "the recall the collection holds", labels=["collection"]
    )
    for name, col in collections:
        report = col.live_recall()  # every kind of collection has it (the protocol)
        if report["target_recall"] is not None:
            target.add_metric([name], report["target_recall"])
        for plan, found in report["plans"].items():
            if found["estimate"] is None:
                continue
            low, high = found["interval"]
            for key, value in zip(families, (found["estimate"], low, high, found["samples"])):
                families[key].add_metric([name, plan], value)
    yield from families.values()
    yield target
