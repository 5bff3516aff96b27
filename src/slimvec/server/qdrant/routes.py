"""The Qdrant REST routes: each reads Qdrant's request body, makes the slimvec calls that
answer it, and replies in Qdrant's envelope ``{"result", "status": "ok", "time"}``.

Requests go through :meth:`slimvec.server.service.Service.call` like slimvec's own routes
(API key, content type, known fields, thread pool); errors become Qdrant's
``{"status": {"error": message}, "time"}`` in :mod:`slimvec.server.qdrant`'s app.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

import slimvec
from slimvec.errors import CollectionExistsError, CollectionNotFoundError, InvalidInputError
from slimvec.server.qdrant.filters import Unsupported, translate
from slimvec.server.qdrant.ids import point_id, point_key, point_keys, sort_key
from slimvec.server.qdrant.payload import select, set_at, stored_key, to_metadata, to_payload
from slimvec.server.qdrant.payload import without as payload_without
from slimvec.server.qdrant.space import METRICS, Space
from slimvec.server.service import RequestProblem, Service, json_response

#: The Qdrant version whose REST API (a subset) this answers: the qdrant-client release the
#: tests pin (the client warns when major.minor differ by more than one).
QDRANT_VERSION = "1.20.0"
#: Collection options that tune Qdrant's own index and storage: accepted, and meaningless here
#: (slimvec's spec replaces them).
TUNING = {
    "shard_number", "sharding_method", "replication_factor", "write_consistency_factor",
    "on_disk_payload", "hnsw_config", "wal_config", "optimizers_config", "quantization_config",
    "strict_mode_config", "payload", "id_tracker",
}  # fmt: skip
CREATE_FIELDS = TUNING | {"vectors", "sparse_vectors", "metadata", "init_from"}
VECTOR_PARAMS = {"size", "distance", "hnsw_config", "quantization_config", "on_disk", "datatype"}
SEARCH_FIELDS = {
    "vector", "filter", "params", "limit", "offset", "with_payload", "with_vector",
    "score_threshold", "shard_key",
}  # fmt: skip
QUERY_FIELDS = {
    "query", "prefetch", "using", "filter", "params", "limit", "offset", "with_payload",
    "with_vector", "score_threshold", "lookup_from", "shard_key",
}  # fmt: skip
#: Ids read per ``get`` while a filtered scroll walks the id order.
SCROLL_CHUNK = 4096
SPEC_FIELD = "slimvec_spec"


def qdrant_error(exc: Exception) -> str:
    """Qdrant's wording where a client or person might match on it; the library's otherwise."""
    if isinstance(exc, CollectionNotFoundError):
        name = str(exc).split("'")[1] if str(exc).count("'") >= 2 else "?"
        return f"Not found: Collection `{name}` doesn't exist!"
    if isinstance(exc, CollectionExistsError):
        return f"Wrong input: {exc}"
    return str(exc)


def ok(result: Any, start: float) -> Response:
    return json_response({"result": result, "status": "ok", "time": time.perf_counter() - start})


def completed() -> dict[str, Any]:
    return {"operation_id": 0, "status": "completed"}


def version_route(service: Service) -> Callable[[Request], Any]:
    """``GET /``: Qdrant's version answer (qdrant-client checks it when it connects)."""

    async def version(request: Request) -> dict[str, Any]:
        service.allow(request, None, write=False)
        return {
            "title": f"qdrant - vector search engine (slimvec {slimvec.__version__})",
            "version": QDRANT_VERSION,
            "commit": None,
        }

    return version


def router(service: Service) -> APIRouter:
    api = APIRouter()
    registry, limits = service.registry, service.limits

    async def run(
        request: Request,
        name: str | None,
        method: str,
        work: Callable[[dict[str, Any]], Any],
        *,
        write: bool = False,
        fields: set[str] | None = None,
    ) -> Response:
        start = time.perf_counter()
        result = await service.call(
            request, name, method, lambda data, binary: work(data), write=write, fields=fields
        )
        return ok(result, start)

    def opened(name: str) -> tuple[slimvec.Collection, Space]:
        col = registry.reader(name)
        return col, Space.of(col)

    # -- service -------------------------------------------------------------------------------
    api.get("/")(version_route(service))

    @api.get("/healthz")
    @api.get("/livez")
    @api.get("/readyz")
    async def health() -> Response:
        return Response("healthz check passed", media_type="text/plain")

    # -- collections ---------------------------------------------------------------------------
    @api.get("/collections")
    async def list_collections(request: Request) -> Response:
        who = service.allow(request, None, write=False)

        def work(data: dict[str, Any]) -> Any:
            return {"collections": [{"name": n} for n in registry.names() if who.may_see(n)]}

        return await run(request, None, "get_collections", work)

    @api.get("/collections/{name}/exists")
    async def exists(name: str, request: Request) -> Response:
        return await run(
            request, name, "collection_exists", lambda d: {"exists": name in registry.names()}
        )

    @api.put("/collections/{name}")
    async def create(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> bool:
            space, spec = create_options(data)
            options: dict[str, Any] = {
                "dim": space.dim(), "metric": METRICS[space.distance], "ids": "str"
            }  # fmt: skip
            if spec is not None:
                options["spec"] = spec
            col = registry.create(name, options)
            space.save(col.path)
            return True

        return await run(request, name, "create_collection", work, write=True, fields=CREATE_FIELDS)

    @api.patch("/collections/{name}")
    async def update(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> bool:
            if data.get("vectors") or data.get("sparse_vectors"):
                raise Unsupported("changing a collection's vectors is not supported by slimvec")
            registry.reader(name)  # 404 if there is none
            return True  # the tuning fields: nothing to tune

        fields = TUNING | {"vectors", "sparse_vectors", "params", "metadata"}
        return await run(request, name, "update_collection", work, write=True, fields=fields)

    @api.delete("/collections/{name}")
    async def drop(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> bool:
            try:
                registry.drop(name)
            except CollectionNotFoundError:
                return False
            return True

        return await run(request, name, "delete_collection", work, write=True)

    @api.get("/collections/{name}")
    async def info(name: str, request: Request) -> Response:
        return await run(request, name, "get_collection", lambda d: collection_info(*opened(name)))

    # -- payload indexes -----------------------------------------------------------------------
    @api.put("/collections/{name}/index")
    async def create_index(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            key = data.get("field_name")
            if not isinstance(key, str) or not key:
                raise InvalidInputError("field_name must be a payload key")
            schema = data.get("field_schema")
            kind = schema.get("type") if isinstance(schema, dict) else schema
            with registry.writer(name) as col:
                col.create_index(stored_key(key))
                space = Space.of(col)
                space.indexes[key] = str(kind or "keyword")
                space.save(col.path)
            return completed()

        fields = {"field_name", "field_schema"}
        return await run(request, name, "create_payload_index", work, write=True, fields=fields)

    @api.delete("/collections/{name}/index/{field}")
    async def delete_index(name: str, field: str, request: Request) -> Response:
        """Forgets the schema; slimvec's in-RAM sorted index stays (it only makes filters on
        the key faster, and slimvec has no call to drop one)."""

        def work(data: dict[str, Any]) -> Any:
            with registry.writer(name) as col:
                space = Space.of(col)
                space.indexes.pop(field, None)
                space.save(col.path)
            return completed()

        return await run(request, name, "delete_payload_index", work, write=True)

    # -- points --------------------------------------------------------------------------------
    @api.put("/collections/{name}/points")
    async def upsert(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            if data.get("update_filter") is not None:
                raise Unsupported("conditional upserts (update_filter) are not supported")
            with registry.writer(name) as col:
                space = Space.of(col)
                keys, vectors, payloads = upsert_rows(data, space, col.id_kind)
                if keys:
                    metadata = [to_metadata(p, k) for k, p in zip(keys, payloads)]
                    col.upsert(space.stored(vectors), ids=keys, metadata=metadata)
            return completed()

        fields = {"points", "batch", "shard_key", "update_filter", "update_mode"}
        return await run(request, name, "upsert", work, write=True, fields=fields)

    def upsert_rows(
        data: dict[str, Any], space: Space, id_kind: str
    ) -> tuple[list[Any], np.ndarray, list[Any]]:
        """(keys, vectors, payloads) of an upsert body (``points`` or ``batch``); a repeated
        id keeps its last point, as in Qdrant."""
        if data.get("batch") is not None:
            batch = data["batch"]
            if not isinstance(batch, dict):
                raise InvalidInputError("batch must be {ids, vectors, payloads}")
            ids, vectors = batch.get("ids"), batch.get("vectors")
            payloads = batch.get("payloads") or [None] * len(ids or [])
        else:
            points = data.get("points")
            if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
                raise InvalidInputError("points must be a list of {id, vector, payload}")
            ids = [p.get("id") for p in points]
            vectors = [unnamed(p.get("vector"), "points[].vector") for p in points]
            payloads = [p.get("payload") for p in points]
        keys = point_keys(ids, id_kind, "ids")
        if not isinstance(vectors, list) or len(vectors) != len(keys):
            raise InvalidInputError("give one vector per id")
        if len(payloads) != len(keys):
            raise InvalidInputError("give one payload per id")
        service.check_rows(len(keys), limits.max_batch, "points")
        if not keys:
            return [], np.empty((0, space.size), np.float32), []
        last = {k: i for i, k in enumerate(keys)}
        rows = sorted(last.values())
        array = space.check(vectors, "vectors")[rows]
        return [keys[i] for i in rows], array, [payloads[i] for i in rows]

    @api.post("/collections/{name}/points")
    async def retrieve(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col, space = opened(name)
            keys = point_keys(data.get("ids"), col.id_kind, "ids")
            return records(
                col, space, keys, data.get("with_payload", True), data.get("with_vector")
            )

        fields = {"ids", "with_payload", "with_vector", "shard_key"}
        return await run(request, name, "retrieve", work, fields=fields)

    @api.get("/collections/{name}/points/{pid}")
    async def get_point(name: str, pid: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col, space = opened(name)
            key = point_key(int(pid) if pid.isascii() and pid.isdigit() else pid, col.id_kind)
            found = records(col, space, [key], True, True)
            if not found:
                raise RequestProblem(404, f"Not found: No point with id {pid} found", "NotFound")
            return found[0]

        return await run(request, name, "get_point", work)

    def records(
        col: slimvec.Collection, space: Space, keys: list[Any], with_payload: Any, with_vector: Any
    ) -> list[dict[str, Any]]:
        """Qdrant records of the live ones among ``keys``, in the order given."""
        if not keys:
            return []
        want_vectors = wants_vector(with_vector)
        got = col.get(ids=keys, limit=None, vectors=want_vectors)
        vectors = space.original(got.vectors) if want_vectors else None
        out = []
        for i, (key, meta) in enumerate(zip(got.ids, got.metadata)):
            record: dict[str, Any] = {"id": point_id(key)}
            record["payload"] = select(to_payload(meta), with_payload)
            if vectors is not None:
                record["vector"] = vectors[i].tolist()
            out.append(record)
        return out

    @api.post("/collections/{name}/points/scroll")
    async def scroll(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            if data.get("order_by") is not None:
                raise Unsupported("scroll with order_by is not supported; points come in id order")
            col, space = opened(name)
            limit = data.get("limit") or 10
            check_limit(limit, "limit")
            where = translate(data.get("filter"), col.id_kind)
            keys = sorted(col.live_ids().tolist(), key=sort_key)
            start = 0
            if data.get("offset") is not None:
                first = sort_key(point_key(data["offset"], col.id_kind))
                start = bisect.bisect_left(keys, first, key=sort_key)
            page = page_of(col, keys, start, limit + 1, where)
            found = records(
                col, space, page[:limit], data.get("with_payload", True), data.get("with_vector")
            )
            nxt = point_id(page[limit]) if len(page) > limit else None
            return {"points": found, "next_page_offset": nxt}

        fields = {
            "offset",
            "limit",
            "filter",
            "with_payload",
            "with_vector",
            "order_by",
            "shard_key",
        }
        return await run(request, name, "scroll", work, fields=fields)

    def page_of(
        col: slimvec.Collection, keys: list[Any], start: int, n: int, where: Any
    ) -> list[Any]:
        """The first ``n`` of ``keys[start:]`` that match ``where``, a chunk at a time."""
        if where is None:
            return keys[start : start + n]
        out: list[Any] = []
        while len(out) < n and start < len(keys):
            chunk = keys[start : start + SCROLL_CHUNK]
            out.extend(col.get(ids=chunk, filter=where, limit=None, vectors=False).ids.tolist())
            start += SCROLL_CHUNK
        return out[:n]

    @api.post("/collections/{name}/points/count")
    async def count(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col = registry.reader(name)
            return {"count": col.count(filter=translate(data.get("filter"), col.id_kind))}

        return await run(request, name, "count", work, fields={"filter", "exact", "shard_key"})

    @api.post("/collections/{name}/points/delete")
    async def delete(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            with registry.writer(name) as col:
                if data.get("points") is not None:
                    keys = point_keys(data["points"], col.id_kind)
                    live = col.get(ids=keys, limit=None, vectors=False).ids if keys else []
                    if len(live):
                        col.delete(ids=live)
                else:
                    col.delete(filter=selector_filter(data, col.id_kind))
            return completed()

        fields = {"points", "filter", "shard_key"}
        return await run(request, name, "delete", work, write=True, fields=fields)

    def selector_filter(data: dict[str, Any], id_kind: str) -> dict[str, Any]:
        if data.get("filter") is None:
            raise InvalidInputError("select the points with points: [ids] or filter: {...}")
        return translate(data["filter"], id_kind) or {}

    # -- payload -------------------------------------------------------------------------------
    def payload_route(method: str, change: Callable[[dict[str, Any], dict[str, Any]], Any]):
        """A route rewriting the payload of selected points (ids or filter) under the write
        lock: read, change, and write back in one ``update_metadata`` commit."""

        async def route(name: str, request: Request) -> Response:
            def work(data: dict[str, Any]) -> Any:
                with registry.writer(name) as col:
                    if data.get("points") is not None:
                        keys = point_keys(data["points"], col.id_kind)
                        got = col.get(ids=keys, limit=None, vectors=False) if keys else None
                    else:
                        where = selector_filter(data, col.id_kind)
                        got = col.get(filter=where, limit=None, vectors=False)
                    if got is not None and len(got.ids):
                        metas = [
                            to_metadata(change(to_payload(m), data), key)
                            for key, m in zip(got.ids.tolist(), got.metadata)
                        ]
                        col.update_metadata(got.ids, metas)
                return completed()

            return await run(
                request, name, method, work, write=True,
                fields={"payload", "points", "filter", "key", "keys", "shard_key"},
            )  # fmt: skip

        return route

    api.post("/collections/{name}/points/payload", name="set_payload")(
        payload_route("set_payload", lambda p, d: set_at(p, d.get("payload"), d.get("key")))
    )
    api.put("/collections/{name}/points/payload", name="overwrite_payload")(
        payload_route("overwrite_payload", lambda p, d: set_at({}, d.get("payload"), None))
    )
    api.post("/collections/{name}/points/payload/delete", name="delete_payload")(
        payload_route("delete_payload", lambda p, d: payload_without(p, d.get("keys")))
    )
    api.post("/collections/{name}/points/payload/clear", name="clear_payload")(
        payload_route("clear_payload", lambda p, d: {})
    )

    # -- search --------------------------------------------------------------------------------
    def check_limit(value: Any, what: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInputError(f"{what} must be a non-negative integer, got {value!r:.40}")
        if value > limits.max_k:
            raise InvalidInputError(f"{what}={value} is over the server's limit of {limits.max_k}")

    def nearest(
        col: slimvec.Collection,
        space: Space,
        vector: np.ndarray,
        data: dict[str, Any],
        exclude: Any = None,
    ) -> list[dict[str, Any]]:
        """One search: the scored points of ``vector`` with the request's limit, offset,
        filter, score_threshold, with_payload and with_vector (Qdrant's defaults)."""
        limit = data.get("limit")
        limit = 10 if limit is None else limit
        offset = data.get("offset") or 0
        check_limit(limit, "limit")
        check_limit(offset, "offset")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidInputError("params must be an object")
        k = limit + offset + (exclude is not None)
        if k == 0 or limit == 0:
            return []
        check_limit(k, "limit + offset")
        queries = space.queries(vector[None, :])
        found = col.search(
            queries,
            k=k,
            exact=bool(params.get("exact", False)),
            filter=translate(data.get("filter"), col.id_kind),
        )
        scores = space.scores(found.scores, vector[None, :])[0]
        hits = [
            (key, float(score))
            for key, score, raw in zip(found.ids[0].tolist(), scores, found.scores[0])
            if np.isfinite(raw) and key != exclude
        ]
        threshold = data.get("score_threshold")
        if threshold is not None:
            hits = [h for h in hits if space.better(h[1], threshold)]
        hits = hits[offset : offset + limit]
        with_payload = data.get("with_payload", False)
        with_vector = data.get("with_vector", False)
        extra = {}
        if hits and (with_payload or wants_vector(with_vector)):
            extra = {
                r["id"]: r
                for r in records(col, space, [h[0] for h in hits], with_payload, with_vector)
            }
        out = []
        for key, score in hits:
            point = {"id": point_id(key), "version": 0, "score": score}
            point.update({k: v for k, v in extra.get(point_id(key), {}).items() if k != "id"})
            out.append(point)
        return out

    def query_vector(col: slimvec.Collection, space: Space, data: dict[str, Any]):
        """(vector, id to leave out) of a query request's ``query``."""
        for field, what in (("prefetch", "prefetch"), ("lookup_from", "lookup_from")):
            if data.get(field):
                raise Unsupported(f"query with {what} is not supported by slimvec")
        if data.get("using") not in (None, ""):
            raise Unsupported(f"named vectors are not supported (using={data['using']!r})")
        query = data.get("query")
        if isinstance(query, dict) and set(query) == {"nearest"}:
            query = query["nearest"]
        if query is None:
            raise Unsupported("query_points without a query is not supported; use scroll")
        if isinstance(query, dict):
            raise Unsupported(
                f"query {sorted(query)[0]!r} is not supported by slimvec; it answers nearest "
                f"(a vector or a point id)"
            )
        if isinstance(query, (int, str)) and not isinstance(query, bool):
            key = point_key(query, col.id_kind)
            got = col.get(ids=[key], limit=None, vectors=True)
            if not len(got.ids):
                raise RequestProblem(404, f"Not found: No point with id {query} found", "NotFound")
            return space.original(got.vectors)[0], key
        return space.check([unnamed(query, "query")], "query")[0], None

    @api.post("/collections/{name}/points/query")
    async def query(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col, space = opened(name)
            vector, exclude = query_vector(col, space, data)
            return {"points": nearest(col, space, vector, data, exclude)}

        return await run(request, name, "query_points", work, fields=QUERY_FIELDS)

    @api.post("/collections/{name}/points/query/batch")
    async def query_batch(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col, space = opened(name)
            out = []
            for s in batch_of(data, QUERY_FIELDS):
                vector, exclude = query_vector(col, space, s)
                out.append({"points": nearest(col, space, vector, s, exclude)})
            return out

        return await run(request, name, "query_batch_points", work, fields={"searches"})

    @api.post("/collections/{name}/points/search")
    async def search(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col, space = opened(name)
            return legacy_search(col, space, data)

        return await run(request, name, "search", work, fields=SEARCH_FIELDS)

    @api.post("/collections/{name}/points/search/batch")
    async def search_batch(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col, space = opened(name)
            return [legacy_search(col, space, s) for s in batch_of(data, SEARCH_FIELDS)]

        return await run(request, name, "search_batch", work, fields={"searches"})

    def legacy_search(col: slimvec.Collection, space: Space, data: dict[str, Any]) -> Any:
        if data.get("limit") is None:
            raise InvalidInputError("search needs a limit")
        vector = data.get("vector")
        if isinstance(vector, dict) and set(vector) == {"name", "vector"}:
            if vector["name"] != "":
                raise Unsupported(f"named vectors are not supported (name={vector['name']!r})")
            vector = vector["vector"]
        return nearest(col, space, space.check([vector], "vector")[0], data)

    def batch_of(data: dict[str, Any], fields: set[str]) -> list[dict[str, Any]]:
        searches = data.get("searches")
        if not isinstance(searches, list) or not all(isinstance(s, dict) for s in searches):
            raise InvalidInputError("searches must be a list of request objects")
        service.check_rows(len(searches), limits.max_queries, "searches")
        for s in searches:
            unknown = sorted(set(s) - fields)
            if unknown:
                raise InvalidInputError(f"a search has the unknown field {unknown[0]!r}")
        return searches

    return api


def wants_vector(with_vector: Any) -> bool:
    """Qdrant's ``with_vector``: a bool, or names of vectors (the one unnamed vector is "")."""
    if isinstance(with_vector, list):
        return "" in with_vector or not with_vector
    return bool(with_vector)


def unnamed(vector: Any, where: str) -> Any:
    """A point's vector: a list of numbers, or ``{"": [...]}`` (the default name)."""
    if isinstance(vector, dict):
        if set(vector) == {""}:
            return vector[""]
        if {"indices", "values"} <= set(vector):
            raise Unsupported(f"{where}: sparse vectors are not supported by slimvec")
        raise Unsupported(
            f"{where}: named vectors ({sorted(vector)}) are not supported; a slimvec "
            f"collection holds one unnamed vector per point"
        )
    return vector


def create_options(data: dict[str, Any]) -> tuple[Space, str | None]:
    """The space and slimvec spec of a create-collection body (``metadata.slimvec_spec``
    names a spec; by default slimvec's)."""
    if data.get("init_from") is not None:
        raise Unsupported("init_from is not supported by slimvec")
    if data.get("sparse_vectors"):
        raise Unsupported("sparse vectors are not supported by slimvec's Qdrant API")
    params = data.get("vectors")
    if not isinstance(params, dict) or "size" not in params:
        if isinstance(params, dict) and len(params) == 1 and isinstance(params.get(""), dict):
            params = params[""]
        else:
            raise Unsupported(
                "vectors must be {size, distance}: named vectors are not supported; a slimvec "
                "collection holds one unnamed vector per point"
            )
    unknown = sorted(set(params) - VECTOR_PARAMS)
    if unknown:  # multivector_config among them
        raise Unsupported(f"vector options {unknown} are not supported by slimvec")
    size, distance = params.get("size"), params.get("distance")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidInputError(f"vectors.size must be a positive integer, got {size!r}")
    if distance not in METRICS:
        raise Unsupported(
            f"distance {distance!r} is not supported; slimvec answers Cosine, Dot and Euclid"
        )
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInputError("metadata must be a JSON object")
    spec = (metadata or {}).get(SPEC_FIELD)
    if spec is not None and not isinstance(spec, str):
        raise InvalidInputError(f"metadata.{SPEC_FIELD} must be a spec string, got {spec!r}")
    return Space(size, distance, metadata=metadata), spec


def collection_info(col: slimvec.Collection, space: Space) -> dict[str, Any]:
    """Qdrant's CollectionInfo: counts, the vector config, payload index schemas; Qdrant's
    tuning sections hold neutral values (slimvec has no HNSW graph, WAL or optimizer
    settings), and ``slimvec`` carries what the collection really is."""
    info = col.info()
    n = int(info["count"])
    schema = {}
    for key, kind in space.indexes.items():
        field = stored_key(key)
        schema[key] = {"data_type": kind, "points": col.count({field: {"$exists": True}})}
    return {
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": n,
        "points_count": n,
        "segments_count": max(1, int(info.get("segments") or 0)),
        "config": {
            "params": {
                "vectors": space.describe(),
                "shard_number": 1,
                "replication_factor": 1,
                "write_consistency_factor": 1,
                "on_disk_payload": True,
            },
            "hnsw_config": {"m": 0, "ef_construct": 0, "full_scan_threshold": 0},
            "optimizer_config": {"default_segment_number": 0, "flush_interval_sec": 0},
            "wal_config": {"wal_capacity_mb": 0, "wal_segments_ahead": 0},
            "quantization_config": None,
            "metadata": space.metadata,
        },
        "payload_schema": schema,
        "slimvec": {
            "spec": info["spec"],
            "metric": info["metric"],
            "dim": info["dim"],
            "ram_bytes_per_vector": info["ram_bytes_per_vector"],
            "disk_bytes_per_vector": info["disk_bytes_per_vector"],
        },
    }
