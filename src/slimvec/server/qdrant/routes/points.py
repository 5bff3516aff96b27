"""Qdrant's point routes: upsert, retrieve (several or one), scroll, count and delete; and the
pieces the payload and query routes read points with (records, selection by ids or filter,
a point's unnamed vector)."""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

import slimvec
from slimvec.errors import InvalidInputError
from slimvec.server.qdrant.context import Context, completed
from slimvec.server.qdrant.filters import Unsupported, translate
from slimvec.server.qdrant.ids import point_id, point_key, point_keys, sort_key
from slimvec.server.qdrant.payload import select, to_metadata, to_payload
from slimvec.server.qdrant.space import Space
from slimvec.server.service import RequestProblem

UPSERT_FIELDS = {"points", "batch", "shard_key", "update_filter", "update_mode"}
RETRIEVE_FIELDS = {"ids", "with_payload", "with_vector", "shard_key"}
SCROLL_FIELDS = {
    "offset", "limit", "filter", "with_payload", "with_vector", "order_by", "shard_key"
}  # fmt: skip
#: Ids read per ``get`` while a filtered scroll walks the id order.
SCROLL_CHUNK = 4096


def router(q: Context) -> APIRouter:
    api = APIRouter()

    @api.put("/collections/{name}/points")
    async def upsert(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            if data.get("update_filter") is not None:
                raise Unsupported("conditional upserts (update_filter) are not supported")
            with q.registry.writer(name) as col:
                space = Space.of(col)
                keys, vectors, payloads = upsert_rows(q, data, space, col.id_kind)
                if keys:
                    metadata = [to_metadata(p, k) for k, p in zip(keys, payloads)]
                    col.upsert(space.stored(vectors), ids=keys, metadata=metadata)
            return completed()

        return await q.call(request, name, "upsert", work, write=True, fields=UPSERT_FIELDS)

    @api.post("/collections/{name}/points")
    async def retrieve(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col, space = q.opened(name)
            keys = point_keys(data.get("ids"), col.id_kind, "ids")
            return records(
                col, space, keys, data.get("with_payload", True), data.get("with_vector")
            )

        return await q.call(request, name, "retrieve", work, fields=RETRIEVE_FIELDS)

    @api.get("/collections/{name}/points/{pid}")
    async def get_point(name: str, pid: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col, space = q.opened(name)
            key = point_key(int(pid) if pid.isascii() and pid.isdigit() else pid, col.id_kind)
            found = records(col, space, [key], True, True)
            if not found:
                raise RequestProblem(404, f"Not found: No point with id {pid} found", "NotFound")
            return found[0]

        return await q.call(request, name, "get_point", work)

    @api.post("/collections/{name}/points/scroll")
    async def scroll(name: str, request: Request) -> Response:
        return await q.call(
            request, name, "scroll", lambda data: scroll_page(q, name, data), fields=SCROLL_FIELDS
        )

    @api.post("/collections/{name}/points/count")
    async def count(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col = q.registry.reader(name)
            return {"count": col.count(filter=translate(data.get("filter"), col.id_kind))}

        return await q.call(request, name, "count", work, fields={"filter", "exact", "shard_key"})

    @api.post("/collections/{name}/points/delete")
    async def delete(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            with q.registry.writer(name) as col:
                if data.get("points") is not None:
                    keys = point_keys(data["points"], col.id_kind)
                    live = col.get(ids=keys, limit=None, vectors=False).ids if keys else []
                    if len(live):
                        col.delete(ids=live)
                else:
                    col.delete(filter=selector_filter(data, col.id_kind))
            return completed()

        fields = {"points", "filter", "shard_key"}
        return await q.call(request, name, "delete", work, write=True, fields=fields)

    return api


# -- writing ---------------------------------------------------------------------------------
def upsert_rows(
    q: Context, data: dict[str, Any], space: Space, id_kind: str
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
    q.service.check_rows(len(keys), q.limits.max_batch, "points")
    if not keys:
        return [], np.empty((0, space.size), np.float32), []
    last = {k: i for i, k in enumerate(keys)}
    rows = sorted(last.values())
    array = space.check(vectors, "vectors")[rows]
    return [keys[i] for i in rows], array, [payloads[i] for i in rows]


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


def selector_filter(data: dict[str, Any], id_kind: str) -> dict[str, Any]:
    """The slimvec filter of a request that selects points by ``filter`` (not by ids)."""
    if data.get("filter") is None:
        raise InvalidInputError("select the points with points: [ids] or filter: {...}")
    return translate(data["filter"], id_kind) or {}


# -- reading ---------------------------------------------------------------------------------
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


def wants_vector(with_vector: Any) -> bool:
    """Qdrant's ``with_vector``: a bool, or names of vectors (the one unnamed vector is "")."""
    if isinstance(with_vector, list):
        return "" in with_vector or not with_vector
    return bool(with_vector)


def scroll_page(q: Context, name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A page of points in id order (integers, then UUIDs), from ``offset`` on, and the id
    the next page starts at."""
    if data.get("order_by") is not None:
        raise Unsupported("scroll with order_by is not supported; points come in id order")
    col, space = q.opened(name)
    limit = data.get("limit") or 10
    q.check_limit(limit, "limit")
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


def page_of(col: slimvec.Collection, keys: list[Any], start: int, n: int, where: Any) -> list[Any]:
    """The first ``n`` of ``keys[start:]`` that match ``where``, a chunk at a time."""
    if where is None:
        return keys[start : start + n]
    out: list[Any] = []
    while len(out) < n and start < len(keys):
        chunk = keys[start : start + SCROLL_CHUNK]
        out.extend(col.get(ids=chunk, filter=where, limit=None, vectors=False).ids.tolist())
        start += SCROLL_CHUNK
    return out[:n]
