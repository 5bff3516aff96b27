"""The HTTP service: Qdrant-style REST routes over the collections in one directory.

Every route is a thin layer over the library: the request's fields become the same arguments
a local call takes, and the library's exceptions come back as ``{"error": {"type", "message"}}``
with the message unchanged, so ``slimvec.connect`` re-raises exactly what a local collection
would. Work runs in a thread pool (NumPy and the kernels release the GIL); bodies are parsed
by hand so vectors can arrive as JSON lists, base64 or a ``.npy`` body (see ``wire``).

The pieces: ``service`` (the steps every route shares: keys, bodies, limits, errors),
``routes/`` (one router per concern), ``schemas`` (the bodies as /docs shows them),
``middleware`` (body-size limit, metrics), ``registry`` (the served directory's handles).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException

import slimvec
from slimvec.errors import SlimvecError
from slimvec.server import qdrant
from slimvec.server.auth import KeyFile
from slimvec.server.docs import add_docs
from slimvec.server.middleware import BodyLimit, Metrics
from slimvec.server.registry import Registry
from slimvec.server.routes import collections, ops, page, points, search
from slimvec.server.service import Limits, RequestProblem, Service, problem, status_of

__all__ = ["Limits", "ServeConfig", "create_app", "serve"]


def create_app(
    root: str | Path,
    keys: KeyFile | None = None,
    limits: Limits | None = None,
    encoders: dict[str, Any] | None = None,
    bench_plot: str | Path | None = None,
    models: Sequence[str] = (),
) -> Any:
    """The ASGI app serving the collections under ``root`` (each sub-directory is one): the
    routers wrapped in the body-size limit and the metrics middleware.

    ``keys``: accepted API keys (None: no authentication). ``encoders``: encoder objects to use
    for collections recording those encoder names. ``bench_plot``: a PNG shown on the page (by
    default the newest ``bench.png`` under ``root``). ``models``: the model names a create may
    give as ``encoder`` (``encoders``' names are offered too); any other is a 400."""
    limits = limits or Limits()
    registry = Registry(root, encoders, models)
    service = Service(registry, keys, limits)
    prom = CollectorRegistry()
    app = FastAPI(
        title="slimvec",
        version=slimvec.__version__,
        description="Compressed embedding retrieval over HTTP. Vectors travel as JSON lists or "
        "binary (base64 float32/float16 objects, or an application/x-npy body). Errors are "
        '`{"error": {"type", "message"}}` with the library\'s own message.',
        docs_url=None,  # add_docs: the same pages from packaged files, not a CDN
        redoc_url=None,
    )
    add_docs(app)
    prefix = str(registry.root.resolve()) + os.sep

    @app.exception_handler(SlimvecError)
    async def _slimvec_error(request: Request, exc: SlimvecError) -> JSONResponse:
        # the library's message, with the server's directory left out of collection paths
        message = str(exc).replace(prefix, "").replace(str(registry.root) + os.sep, "")
        return problem(status_of(exc), type(exc).__name__, message)

    @app.exception_handler(RequestProblem)
    async def _request_problem(request: Request, exc: RequestProblem) -> JSONResponse:
        return problem(exc.status, exc.kind, str(exc))

    @app.exception_handler(TypeError)
    async def _type_error(request: Request, exc: TypeError) -> JSONResponse:
        return problem(400, "TypeError", str(exc))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        return problem(500, "InternalError", f"{type(exc).__name__}: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(400, "InvalidInputError", f"invalid request: {exc.errors()}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs for the API"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return problem(exc.status_code, "HTTPError", str(message))

    app.include_router(ops.router(service, prom))
    app.include_router(collections.router(service))
    app.include_router(points.router(service))
    app.include_router(search.router(service))
    app.include_router(page.router(service, bench_plot))
    qdrant.mount(app, service, hide=[prefix, str(registry.root) + os.sep])  # Qdrant's API
    return BodyLimit(Metrics(app, registry, prom), limits.max_body_bytes)


# -- process entry points (uvicorn imports this in each worker) ------------------------------
CONFIG_ENV = "SLIMVEC_SERVE_CONFIG"


@dataclass
class ServeConfig:
    root: str
    key_file: str | None = None
    bench_plot: str | None = None
    limits: dict[str, int] | None = None
    models: list[str] | None = None


def thread_only_progress_lock() -> None:
    """Give tqdm a thread lock instead of the multiprocessing lock it makes by default.

    An encoder's (disabled) progress bar makes tqdm create a named POSIX semaphore in the
    worker; a worker stopped by ``serve --workers N``'s parent (SIGTERM) never unlinks it, and
    Python's resource tracker then prints "There appear to be 1 leaked semaphore objects" at
    shutdown. A worker serves requests on threads and never shares bars with other processes,
    so a thread lock is all it needs."""
    import threading

    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def app_from_env() -> Any:
    """The app of a ``slimvec serve`` worker, configured through an environment variable
    (uvicorn starts ``--workers`` processes by import string, so arguments cannot be passed)."""
    config = ServeConfig(**json.loads(os.environ[CONFIG_ENV]))
    thread_only_progress_lock()
    keys = KeyFile.load(config.key_file) if config.key_file else None
    return create_app(
        config.root,
        keys=keys,
        limits=Limits(**(config.limits or {})),
        bench_plot=config.bench_plot,
        models=config.models or (),
    )


def serve(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Run uvicorn with ``workers`` processes over the same directory."""
    import uvicorn

    os.environ[CONFIG_ENV] = json.dumps(asdict(config))
    uvicorn.run(
        "slimvec.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_keep_alive=30,
        timeout_worker_healthcheck=120,  # importing numpy, numba and the kernels takes seconds
    )
