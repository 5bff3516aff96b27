"""Qdrant's collection routes: list, exists, create, update, delete, info, and the payload
index schemas that info reports. A Qdrant collection is a slimvec collection with string ids
and a :class:`~slimvec.server.qdrant.space.Space` (size, distance, index schemas) beside it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

import slimvec
from slimvec.errors import CollectionNotFoundError, InvalidInputError
from slimvec.server.qdrant.context import Context, completed
from slimvec.server.qdrant.filters import Unsupported
from slimvec.server.qdrant.payload import stored_key
from slimvec.server.qdrant.space import METRICS, Space

#: Collection options that tune Qdrant's own index and storage: accepted, and meaningless here
#: (slimvec's spec replaces them).
TUNING = {
    "shard_number", "sharding_method", "replication_factor", "write_consistency_factor",
    "on_disk_payload", "hnsw_config", "wal_config", "optimizers_config", "quantization_config",
    "strict_mode_config", "payload", "id_tracker",
}  # fmt: skip
CREATE_FIELDS = TUNING | {"vectors", "sparse_vectors", "metadata", "init_from"}
UPDATE_FIELDS = TUNING | {"vectors", "sparse_vectors", "params", "metadata"}
VECTOR_PARAMS = {"size", "distance", "hnsw_config", "quantization_config", "on_disk", "datatype"}
#: The create body's ``metadata`` key that names a slimvec spec (by default slimvec's).
SPEC_FIELD = "slimvec_spec"


def router(q: Context) -> APIRouter:
    api = APIRouter()
    registry = q.registry

    @api.get("/collections")
    async def list_collections(request: Request) -> Response:
        who = q.service.allow(request, None, write=False)

        def work(data: dict[str, Any]) -> Any:
            return {"collections": [{"name": n} for n in registry.names() if who.may_see(n)]}

        return await q.call(request, None, "get_collections", work)

    @api.get("/collections/{name}/exists")
    async def exists(name: str, request: Request) -> Response:
        return await q.call(
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

        return await q.call(
            request, name, "create_collection", work, write=True, fields=CREATE_FIELDS
        )

    @api.patch("/collections/{name}")
    async def update(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> bool:
            if data.get("vectors") or data.get("sparse_vectors"):
                raise Unsupported("changing a collection's vectors is not supported by slimvec")
            registry.reader(name)  # 404 if there is none
            return True  # the tuning fields: nothing to tune

        return await q.call(
            request, name, "update_collection", work, write=True, fields=UPDATE_FIELDS
        )

    @api.delete("/collections/{name}")
    async def drop(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> bool:
            try:
                registry.drop(name)
            except CollectionNotFoundError:
                return False
            return True

        return await q.call(request, name, "delete_collection", work, write=True)

    @api.get("/collections/{name}")
    async def info(name: str, request: Request) -> Response:
        return await q.call(
            request, name, "get_collection", lambda d: collection_info(*q.opened(name))
        )

    add_index_routes(api, q)
    return api


def add_index_routes(api: APIRouter, q: Context) -> None:
    """Payload indexes: slimvec's sorted index on the key, and the schema info reports."""

    @api.put("/collections/{name}/index")
    async def create_index(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            key = data.get("field_name")
            if not isinstance(key, str) or not key:
                raise InvalidInputError("field_name must be a payload key")
            schema = data.get("field_schema")
            kind = schema.get("type") if isinstance(schema, dict) else schema
            with q.registry.writer(name) as col:
                col.create_index(stored_key(key))
                space = Space.of(col)
                space.indexes[key] = str(kind or "keyword")
                space.save(col.path)
            return completed()

        fields = {"field_name", "field_schema"}
        return await q.call(request, name, "create_payload_index", work, write=True, fields=fields)

    @api.delete("/collections/{name}/index/{field}")
    async def delete_index(name: str, field: str, request: Request) -> Response:
        """Forgets the schema; slimvec's in-RAM sorted index stays (it only makes filters on
        the key faster, and slimvec has no call to drop one)."""

        def work(data: dict[str, Any]) -> Any:
            with q.registry.writer(name) as col:
                space = Space.of(col)
                space.indexes.pop(field, None)
                space.save(col.path)
            return completed()

        return await q.call(request, name, "delete_payload_index", work, write=True)


def create_options(data: dict[str, Any]) -> tuple[Space, str | None]:
    """The space and slimvec spec of a create-collection body (``metadata.slimvec_spec``
    names a spec; by default slimvec's)."""
    if data.get("init_from") is not None:
        raise Unsupported("init_from is not supported by slimvec")
    if data.get("sparse_vectors"):
        raise Unsupported("sparse vectors are not supported by slimvec's Qdrant API")
    params = vector_params(data.get("vectors"))
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


def vector_params(params: Any) -> dict[str, Any]:
    """The one unnamed vector's params of a create body's ``vectors`` (``{size, distance}``,
    or the same under the default name ``""``)."""
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
    return params


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
        "config": collection_config(space),
        "payload_schema": schema,
        "slimvec": {
            key: info[key]
            for key in ("spec", "metric", "dim", "ram_bytes_per_vector", "disk_bytes_per_vector")
        },
    }


def collection_config(space: Space) -> dict[str, Any]:
    """CollectionInfo's ``config``: the vector params, and neutral values for the rest."""
    return {
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
    }
