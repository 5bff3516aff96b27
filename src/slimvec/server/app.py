"""The HTTP service: Qdrant-style REST routes over the collections in one directory.

Every route is a thin layer over the library: the request's fields become the same arguments
a local call takes, and the library's exceptions come back as ``{"error": {"type", "message"}}``
with the message unchanged, so ``slimvec.connect`` re-raises exactly what a local collection
would. Work runs in a thread pool (NumPy and the kernels release the GIL); bodies are parsed
by hand so vectors can arrive as JSON lists, base64 or a ``.npy`` body (see ``wire``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import slimvec
from slimvec.errors import (
    AuthError,
    CollectionExistsError,
    CollectionNotFoundError,
    CorruptCollectionError,
    DuplicateIdError,
    InvalidInputError,
    MissingDependencyError,
    SlimvecError,
)
from slimvec.remote.names import check_name
from slimvec.remote.wire import decode_array, encode_array, from_npy, ids_to_json, result_to_json
from slimvec.server.auth import ANONYMOUS, KeyFile, Principal
from slimvec.server.registry import Registry

NPY = "application/x-npy"
COOKIE = "slimvec_key"
#: Search bodies up to this size (a few queries) run on the event loop, not in a pool thread.
INLINE_BYTES = 16_384


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; larger requests get a 4xx before any work is done."""

    max_body_bytes: int = 256 << 20  # 1M x 384 float16 in one .npy body is 768 MB: batch it
    max_batch: int = 200_000  # vectors or texts per add
    max_queries: int = 10_000  # queries per search
    max_k: int = 10_000
    max_filter_depth: int = 16


class RequestProblem(Exception):
    """A request the server rejects before it reaches the library (status and message)."""

    def __init__(self, status: int, message: str, kind: str = "InvalidInputError"):
        super().__init__(message)
        self.status, self.kind = status, kind


def _status(exc: SlimvecError) -> int:
    if isinstance(exc, AuthError):
        return exc.status or 401
    if isinstance(exc, CollectionNotFoundError):
        return 404
    if isinstance(exc, (CollectionExistsError, DuplicateIdError)):
        return 409
    if isinstance(exc, InvalidInputError):
        return 400
    if isinstance(exc, (CorruptCollectionError, MissingDependencyError)):
        return 500
    return 400


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def _problem(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(kind, message), status_code=status)


# -- request bodies (parsed by hand; these models document them in the OpenAPI schema) --------
class BinaryArray(BaseModel):
    """Little-endian array bytes, base64-encoded: much faster than JSON lists for bulk data."""

    b64: str
    dtype: str = Field(description="float32 or float16 (int64/float32 in results)")
    shape: list[int]


Vectors = list[list[float]] | list[float] | BinaryArray
#: int64 ids, or strings in a collection created with ``ids: "str"`` (results use the same kind)
Ids = list[int] | list[str]


class CreateBody(BaseModel):
    dim: int | None = None
    metric: str = "cosine"
    spec: str = Field(slimvec.DEFAULT_SPEC, description="pipeline spec string")
    encoder: str | None = Field(None, description="model name for add_texts/search_texts")
    multivector: bool = False
    keyword: dict[str, Any] | None = None
    ids: str = Field("int", description='id kind: "int" (int64) or "str" (string ids)')


class AddBody(BaseModel):
    vectors: Vectors
    ids: Ids | None = None
    metadata: list[dict[str, Any] | None] | None = None
    texts: list[str] | None = None


class SearchBody(BaseModel):
    vectors: Vectors = Field(description="one query (a list) or several (a matrix)")
    k: int = 10
    exact: bool = False
    filter: dict[str, Any] | None = Field(None, description="forwarded to the library if given")
    nprobe: int | None = Field(None, description="lists read per query ('ivf:N' collections)")


SEARCH_FIELDS = set(SearchBody.model_fields)


class BatchSearchBody(BaseModel):
    searches: list[SearchBody]


class TextsBody(BaseModel):
    texts: list[str]
    ids: Ids | None = None
    metadata: list[dict[str, Any] | None] | None = None
    batch_size: int | None = None


class SearchTextsBody(BaseModel):
    queries: list[str] | str
    k: int = 10
    mode: str = "dense"
    fusion: str = "rrf"
    weights: list[float] | None = None
    rrf_constant: float = 60.0
    candidates: int | None = None
    exact: bool = False
    filter: dict[str, Any] | None = None


class IdsBody(BaseModel):
    ids: Ids | None = None
    filter: dict[str, Any] | None = None


class CountBody(BaseModel):
    filter: dict[str, Any] | None = None


class GetBody(BaseModel):
    ids: Ids | None = None
    filter: dict[str, Any] | None = None
    limit: int | None = 100
    offset: int = 0
    vectors: bool | None = Field(None, description="return stored vectors (default: if ids)")


class UpdateMetadataBody(BaseModel):
    ids: Ids | None = None
    metadata: list[dict[str, Any] | None] | None = None
    filter: dict[str, Any] | None = Field(None, description="rows to merge into (with merge)")
    merge: dict[str, Any] | None = Field(None, description="one dict merged into each row")


class IndexBody(BaseModel):
    field: str


def _doc_body(model: type[BaseModel], npy: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": model.model_json_schema()}}
    if npy:
        content[NPY] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"content": content, "required": True}}


# -- middleware: body size limit and metrics (plain ASGI: cheaper than BaseHTTPMiddleware) ----
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
            return await _problem(413, "InvalidInputError", message)(scope, receive, send)
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


# -- helpers ------------------------------------------------------------------------------------
def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestProblem(400, f"the request body is not valid JSON ({exc})") from None


def _json_info(name: str, info: dict[str, Any]) -> dict[str, Any]:
    info = {**info, "name": name}
    info.pop("path", None)  # the server's file system is not the client's business
    return json.loads(json.dumps(info, default=str))


def _json(body: Any) -> Response:
    """A JSON response without FastAPI's per-item encoding walk (results are plain lists)."""
    return Response(json.dumps(body), media_type="application/json")


def _binary(request: Request) -> bool:
    return request.query_params.get("binary", "").lower() in {"1", "true", "yes"}


class Service:
    """The routes' logic, free of HTTP details where possible."""

    def __init__(self, registry: Registry, keys: KeyFile | None, limits: Limits):
        self.registry, self.keys, self.limits = registry, keys, limits

    # auth
    def principal(self, request: Request) -> Principal:
        if self.keys is None:
            return ANONYMOUS
        key = request.headers.get("api-key")
        if key is None:
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token:
                key = token.strip()
        if key is None:
            key = request.cookies.get(COOKIE)
        return self.keys.authenticate(key)

    def allow(self, request: Request, name: str | None, write: bool) -> Principal:
        if name is not None:
            check_name(name)
        who = self.principal(request)
        who.check(name, write)
        return who

    async def body(self, request: Request, what: str, npy: bool = False) -> dict[str, Any]:
        """The JSON object (or, where allowed, .npy vectors) of a request, checked for type."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if npy and ctype == NPY:
            return {"vectors": raw, "_npy": True}
        if ctype != "application/json":
            accepted = "application/json" + (f" or {NPY}" if npy else "")
            raise RequestProblem(
                415,
                f"{what} needs Content-Type {accepted}, got {ctype or 'none'}",
            )
        return {"_raw": raw}

    def parse(self, body: dict[str, Any], fields: set[str], what: str) -> dict[str, Any]:
        if body.get("_npy"):
            return {"vectors": from_npy(body["vectors"])}
        data = _loads(body["_raw"])
        if not isinstance(data, dict):
            raise RequestProblem(400, f"{what} must be a JSON object with fields {sorted(fields)}")
        unknown = sorted(set(data) - fields)
        if unknown:  # worded as Python words an unknown argument of the same method
            raise RequestProblem(
                400,
                f"Collection.{what}() got an unexpected keyword argument {unknown[0]!r} "
                f"(fields: {', '.join(sorted(fields))})",
                kind="TypeError",
            )
        if "filter" in data and _depth(data["filter"]) > self.limits.max_filter_depth:
            raise RequestProblem(
                400, f"filter is nested deeper than the limit of {self.limits.max_filter_depth}"
            )
        return data

    def check_rows(self, n: int, limit: int, what: str) -> None:
        if n > limit:
            raise RequestProblem(
                413,
                f"{n:,} {what} in one request is over the server's limit of {limit:,}; "
                f"split it into batches",
            )

    def check_k(self, k: Any) -> None:
        if isinstance(k, int) and k > self.limits.max_k:
            raise RequestProblem(400, f"k={k} is over the server's limit of {self.limits.max_k}")

    def vectors(self, data: dict[str, Any], key: str, limit: int, what: str) -> Any:
        if key not in data:
            raise RequestProblem(400, f"the request needs a {key!r} field")
        vectors = decode_array(data[key], key)
        nested = isinstance(vectors, list) and bool(vectors) and isinstance(vectors[0], list)
        if nested or (isinstance(vectors, np.ndarray) and vectors.ndim > 1):
            self.check_rows(len(vectors), limit, what)
        return vectors

    def search_one(self, col: slimvec.Collection, data: dict[str, Any], binary: bool) -> dict:
        queries = self.vectors(data, "vectors", self.limits.max_queries, "queries")
        k = data.get("k", 10)
        self.check_k(k)
        extra = {key: data[key] for key in ("filter", "nprobe") if data.get(key) is not None}
        result = col.search(queries, k=k, exact=data.get("exact", False), **extra)
        reply = result_to_json(result.ids, result.scores, binary)
        if result.explain is not None:
            reply["explain"] = result.explain
        return reply


def create_app(
    root: str | Path,
    keys: KeyFile | None = None,
    limits: Limits | None = None,
    encoders: dict[str, Any] | None = None,
    bench_plot: str | Path | None = None,
) -> Any:
    """The ASGI app serving the collections under ``root`` (each sub-directory is one): the
    FastAPI routes wrapped in the body-size limit and the metrics middleware.

    ``keys``: accepted API keys (None: no authentication). ``encoders``: encoder objects to use
    for collections recording those encoder names. ``bench_plot``: a PNG shown on the page (by
    default the newest ``bench.png`` under ``root``)."""
    from slimvec.server.page import render_login, render_page

    limits = limits or Limits()
    registry = Registry(root, encoders)
    service = Service(registry, keys, limits)
    prom = CollectorRegistry()
    app = FastAPI(
        title="slimvec",
        version=slimvec.__version__,
        description="Compressed embedding retrieval over HTTP. Vectors travel as JSON lists or "
        "binary (base64 float32/float16 objects, or an application/x-npy body). Errors are "
        '`{"error": {"type", "message"}}` with the library\'s own message.',
    )

    prefix = str(registry.root.resolve()) + os.sep

    @app.exception_handler(SlimvecError)
    async def _slimvec_error(request: Request, exc: SlimvecError) -> JSONResponse:
        # the library's message, with the server's directory left out of collection paths
        message = str(exc).replace(prefix, "").replace(str(registry.root) + os.sep, "")
        return _problem(_status(exc), type(exc).__name__, message)

    @app.exception_handler(RequestProblem)
    async def _request_problem(request: Request, exc: RequestProblem) -> JSONResponse:
        return _problem(exc.status, exc.kind, str(exc))

    @app.exception_handler(TypeError)
    async def _type_error(request: Request, exc: TypeError) -> JSONResponse:
        return _problem(400, "TypeError", str(exc))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        return _problem(500, "InternalError", f"{type(exc).__name__}: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _problem(400, "InvalidInputError", f"invalid request: {exc.errors()}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs for the API"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return _problem(exc.status_code, "HTTPError", str(message))

    # -- service routes ------------------------------------------------------------------------
    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness: answers without touching any collection."""
        return {"status": "ok", "version": slimvec.__version__, "pid": os.getpid()}

    @app.get("/metrics", tags=["service"])
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of this worker process: request counts, latencies, sizes."""
        service.allow(request, None, write=False)
        body = await run_in_threadpool(generate_latest, prom)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/collections", tags=["collections"])
    async def list_collections(request: Request) -> dict[str, Any]:
        """Names of the collections this key may use."""
        who = service.allow(request, None, write=False)
        return {"collections": [n for n in registry.names() if who.may_see(n)]}

    @app.put(
        "/collections/{name}",
        status_code=201,
        tags=["collections"],
        openapi_extra=_doc_body(CreateBody),
    )
    async def create_collection(name: str, request: Request) -> dict[str, Any]:
        """Create a collection: the body holds ``slimvec.create``'s arguments."""
        service.allow(request, name, write=True)
        body = await service.body(request, "create")

        def work() -> dict[str, Any]:
            data = _loads(body["_raw"])
            if not isinstance(data, dict) or "path" in data:
                raise RequestProblem(400, "the body must be a JSON object of create's options")
            return _json_info(name, registry.create(name, data).info())

        return await run_in_threadpool(work)

    @app.get("/collections/{name}", tags=["collections"])
    async def get_info(name: str, request: Request) -> dict[str, Any]:
        """``info()``: counts, spec, bytes per vector, encoder."""
        service.allow(request, name, write=False)
        return await run_in_threadpool(lambda: _json_info(name, registry.reader(name).info()))

    @app.get("/collections/{name}/count", tags=["collections"])
    async def get_count(name: str, request: Request) -> dict[str, Any]:
        """``len(collection)``: live vectors."""
        service.allow(request, name, write=False)
        return {"count": len(await run_in_threadpool(registry.reader, name))}

    @app.post("/collections/{name}/count", tags=["collections"], openapi_extra=_doc_body(CountBody))
    async def count(name: str, request: Request) -> dict[str, Any]:
        """``count(filter)``: live vectors whose metadata matches the filter."""
        service.allow(request, name, write=False)
        body = await service.body(request, "count")

        def work() -> dict[str, Any]:
            data = service.parse(body, {"filter"}, "count")
            return {"count": registry.reader(name).count(filter=data.get("filter"))}

        return await run_in_threadpool(work)

    @app.post(
        "/collections/{name}/indexes", tags=["collections"], openapi_extra=_doc_body(IndexBody)
    )
    async def create_index(name: str, request: Request) -> dict[str, Any]:
        """``create_index(field)``: a payload index that makes filters on the field cheap."""
        service.allow(request, name, write=True)
        body = await service.body(request, "create_index")

        def work() -> dict[str, Any]:
            data = service.parse(body, {"field"}, "create_index")
            with registry.writer(name) as col:
                col.create_index(data.get("field"))
            return {"indexed": data.get("field")}

        return await run_in_threadpool(work)

    @app.delete("/collections/{name}", tags=["collections"])
    async def drop_collection(name: str, request: Request) -> dict[str, Any]:
        """Delete a whole collection and its files."""
        service.allow(request, name, write=True)
        await run_in_threadpool(registry.drop, name)
        return {"deleted": name}

    @app.post("/collections/{name}/compact", tags=["collections"])
    async def compact(name: str, request: Request) -> dict[str, Any]:
        """``compact()``: rewrite live vectors, reclaiming deleted ones' space."""
        service.allow(request, name, write=True)

        def work() -> dict[str, Any]:
            with registry.writer(name) as col:
                col.compact()
            return {"compacted": name}

        return await run_in_threadpool(work)

    # -- points --------------------------------------------------------------------------------
    @app.post(
        "/collections/{name}/points", tags=["points"], openapi_extra=_doc_body(AddBody, npy=True)
    )
    async def add(name: str, request: Request) -> Response:
        """``add(vectors, ids, metadata, texts)``; returns the ids. A .npy body is vectors only."""
        return await write_points(name, request, "add")

    @app.post(
        "/collections/{name}/points/upsert",
        tags=["points"],
        openapi_extra=_doc_body(AddBody),
    )
    async def upsert(name: str, request: Request) -> Response:
        """``upsert(vectors, ids, metadata, texts)``: replace the ids that exist, add the
        others, in one commit; returns the ids."""
        return await write_points(name, request, "upsert")

    async def write_points(name: str, request: Request, method: str) -> Response:
        service.allow(request, name, write=True)
        what = "adding points" if method == "add" else "upserting points"
        body = await service.body(request, what, npy=method == "add")
        binary = _binary(request)

        def work() -> Response:
            data = service.parse(body, {"vectors", "ids", "metadata", "texts"}, method)
            vectors = service.vectors(data, "vectors", limits.max_batch, "vectors")
            args = {k: data[k] for k in ("metadata", "texts") if data.get(k) is not None}
            if method == "upsert" or data.get("ids") is not None:
                args["ids"] = data.get("ids")  # upsert without ids: the library's message
            with registry.writer(name) as col:
                ids = getattr(col, method)(vectors, **args)
            return _json({"ids": ids_to_json(ids, binary)})

        return await run_in_threadpool(work)

    @app.post(
        "/collections/{name}/points/delete", tags=["points"], openapi_extra=_doc_body(IdsBody)
    )
    async def delete(name: str, request: Request) -> dict[str, Any]:
        """``delete(ids)`` (or ``delete(filter=...)`` where the library has filters)."""
        service.allow(request, name, write=True)
        body = await service.body(request, "delete")

        def work() -> dict[str, Any]:
            data = service.parse(body, {"ids", "filter"}, "delete")
            args = {k: v for k, v in data.items() if v is not None}
            with registry.writer(name) as col:
                return {"deleted": col.delete(**args)}

        return await run_in_threadpool(work)

    @app.post("/collections/{name}/points/get", tags=["points"], openapi_extra=_doc_body(GetBody))
    async def get_points(name: str, request: Request) -> Response:
        """``get(ids, filter, limit, offset, vectors)``: a page of live ids with metadata and
        texts, and the stored vectors if asked (by default when ``ids`` are given)."""
        service.allow(request, name, write=False)
        body = await service.body(request, "get")
        binary = _binary(request)

        def work() -> Response:
            data = service.parse(body, set(GetBody.model_fields), "get")
            limit = data.get("limit", 100)
            if limit is None or (isinstance(limit, int) and limit > limits.max_k):
                raise RequestProblem(
                    400,
                    f"limit must be at most the server's limit of {limits.max_k} (got "
                    f"{limit}); page through with offset",
                )
            args = {k: v for k, v in data.items() if k != "limit" and v is not None}
            got = registry.reader(name).get(**args, limit=limit)
            reply = {
                "ids": ids_to_json(got.ids, binary),
                "metadata": got.metadata,
                "texts": got.texts,
            }
            if got.vectors is not None:
                reply["vectors"] = (
                    encode_array(got.vectors, "float32") if binary else got.vectors.tolist()
                )
            return _json(reply)

        return await run_in_threadpool(work)

    @app.post(
        "/collections/{name}/points/update_metadata",
        tags=["points"],
        openapi_extra=_doc_body(UpdateMetadataBody),
    )
    async def update_metadata(name: str, request: Request) -> dict[str, Any]:
        """``update_metadata(ids, metadata)``: replace the metadata of live ids, one commit;
        or ``update_metadata(filter=..., merge={...})``: merge one dict into the matching rows,
        one commit."""
        service.allow(request, name, write=True)
        body = await service.body(request, "update_metadata")

        def work() -> dict[str, Any]:
            data = service.parse(body, set(UpdateMetadataBody.model_fields), "update_metadata")
            args = {k: v for k, v in data.items() if k not in ("ids", "metadata")}
            with registry.writer(name) as col:
                updated = col.update_metadata(data.get("ids"), data.get("metadata"), **args)
            return {"updated": updated}

        return await run_in_threadpool(work)

    def _lookup(field: str):
        async def lookup(name: str, request: Request) -> dict[str, Any]:
            service.allow(request, name, write=False)
            body = await service.body(request, field)

            def work() -> dict[str, Any]:
                data = service.parse(body, {"ids"}, field)
                col = registry.reader(name)
                return {field: getattr(col, field)(data.get("ids"))}

            return await run_in_threadpool(work)

        lookup.__doc__ = f"``{field}(ids)``: the stored {field} of each id (null if none)."
        return lookup

    for field in ("metadata", "texts"):
        app.post(
            f"/collections/{{name}}/points/{field}",
            tags=["points"],
            name=f"get_{field}",
            openapi_extra=_doc_body(IdsBody),
        )(_lookup(field))

    @app.post("/collections/{name}/texts", tags=["points"], openapi_extra=_doc_body(TextsBody))
    async def add_texts(name: str, request: Request) -> Response:
        """``add_texts(texts, ids, metadata)``: embedded on the server by the collection's
        encoder."""
        service.allow(request, name, write=True)
        body = await service.body(request, "adding texts")
        binary = _binary(request)

        def work() -> Response:
            data = service.parse(body, {"texts", "ids", "metadata", "batch_size"}, "add_texts")
            texts = data.get("texts")
            if isinstance(texts, list):
                service.check_rows(len(texts), limits.max_batch, "texts")
            args = {k: v for k, v in data.items() if k != "texts" and v is not None}
            with registry.writer(name) as col:
                return _json({"ids": ids_to_json(col.add_texts(texts, **args), binary)})

        return await run_in_threadpool(work)

    # -- search --------------------------------------------------------------------------------
    @app.post(
        "/collections/{name}/search", tags=["search"], openapi_extra=_doc_body(SearchBody, True)
    )
    async def search(name: str, request: Request) -> Response:
        """``search(vectors, k, exact)``: ids and scores per query (scores null for -inf
        padding; ``?binary=true`` returns base64 int64/float32 arrays instead)."""
        service.allow(request, name, write=False)
        body = await service.body(request, "search", npy=True)
        binary = _binary(request)

        def work(data: dict[str, Any] | None = None) -> Response:
            if data is None:
                data = service.parse(body, SEARCH_FIELDS, "search")
            return _json(service.search_one(registry.reader(name), data, binary))

        if len(body.get("_raw") or body.get("vectors")) <= INLINE_BYTES:
            data = service.parse(body, SEARCH_FIELDS, "search")
            if not data.get("exact"):
                # a few approximate queries take about a millisecond: handing them to a pool
                # thread costs as much again, far more when the CPUs are busy
                return work(data)
            return await run_in_threadpool(work, data)
        return await run_in_threadpool(work)

    @app.post(
        "/collections/{name}/search/batch",
        tags=["search"],
        openapi_extra=_doc_body(BatchSearchBody),
    )
    async def search_batch(name: str, request: Request) -> Response:
        """Several searches (each with its own k, exact, filter) in one request."""
        service.allow(request, name, write=False)
        body = await service.body(request, "batch search")
        binary = _binary(request)

        def work() -> Response:
            data = service.parse(body, {"searches"}, "search_batch")
            searches = data.get("searches")
            if not isinstance(searches, list) or not all(isinstance(s, dict) for s in searches):
                raise RequestProblem(400, "'searches' must be a list of search objects")
            service.check_rows(len(searches), limits.max_queries, "searches")
            col = registry.reader(name)
            for s in searches:
                if set(s) - SEARCH_FIELDS:
                    raise RequestProblem(
                        400, f"a search has unknown fields {sorted(set(s) - SEARCH_FIELDS)}"
                    )
            return _json({"results": [service.search_one(col, s, binary) for s in searches]})

        return await run_in_threadpool(work)

    @app.post(
        "/collections/{name}/search_texts",
        tags=["search"],
        openapi_extra=_doc_body(SearchTextsBody),
    )
    async def search_texts(name: str, request: Request) -> Response:
        """``search_texts(queries, k, mode, ...)``: dense, sparse (BM25) or hybrid."""
        service.allow(request, name, write=False)
        body = await service.body(request, "search_texts")
        binary = _binary(request)

        def work() -> Response:
            data = service.parse(body, set(SearchTextsBody.model_fields), "search_texts")
            queries = data.pop("queries", None)
            if isinstance(queries, list):
                service.check_rows(len(queries), limits.max_queries, "queries")
            service.check_k(data.get("k"))
            args = {k: v for k, v in data.items() if v is not None}
            result = registry.reader(name).search_texts(queries, **args)
            return _json(result_to_json(result.ids, result.scores, binary))

        return await run_in_threadpool(work)

    # -- the web page ------------------------------------------------------------------------
    def _page_user(request: Request) -> Principal | None:
        try:
            return service.principal(request)
        except AuthError:
            return None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request) -> HTMLResponse:
        who = _page_user(request)
        if who is None:
            return HTMLResponse(render_login(failed="failed" in request.query_params))
        plot = _bench_plot(registry.root, bench_plot)
        html = await run_in_threadpool(
            render_page, registry, who, dict(request.query_params), plot is not None
        )
        return HTMLResponse(html)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> RedirectResponse:
        from urllib.parse import parse_qs

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

    @app.get("/bench.png", include_in_schema=False)
    async def bench_png(request: Request) -> FileResponse:
        if _page_user(request) is None:
            raise AuthError("log in on / first", status=401)
        plot = _bench_plot(registry.root, bench_plot)
        if plot is None:
            raise StarletteHTTPException(404)
        return FileResponse(plot, media_type="image/png")

    return BodyLimit(Metrics(app, registry, prom), limits.max_body_bytes)


def _bench_plot(root: Path, given: str | Path | None) -> Path | None:
    """The plot to show: the one given, else the newest bench.png in or one level below root."""
    if given is not None:
        return Path(given) if Path(given).is_file() else None
    found = [p for p in (*root.glob("bench.png"), *root.glob("*/bench.png")) if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


# -- process entry points (uvicorn imports this in each worker) ------------------------------
CONFIG_ENV = "SLIMVEC_SERVE_CONFIG"


@dataclass
class ServeConfig:
    root: str
    key_file: str | None = None
    bench_plot: str | None = None
    limits: dict[str, int] | None = None


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
        config.root, keys=keys, limits=Limits(**(config.limits or {})), bench_plot=config.bench_plot
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
