"""Qdrant's query routes: ``query`` (nearest to a vector or to a stored point) and the legacy
``search``, each alone or in a batch. All come down to :func:`nearest`: one slimvec search,
scores back in the collection's distance, then Qdrant's threshold, offset and limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

import slimvec
from slimvec.errors import InvalidInputError
from slimvec.server.qdrant.context import Context
from slimvec.server.qdrant.filters import Unsupported, translate
from slimvec.server.qdrant.ids import point_id, point_key
from slimvec.server.qdrant.routes.points import records, unnamed, wants_vector
from slimvec.server.qdrant.space import Space
from slimvec.server.service import RequestProblem

SEARCH_FIELDS = {
    "vector", "filter", "params", "limit", "offset", "with_payload", "with_vector",
    "score_threshold", "shard_key",
}  # fmt: skip
QUERY_FIELDS = {
    "query", "prefetch", "using", "filter", "params", "limit", "offset", "with_payload",
    "with_vector", "score_threshold", "lookup_from", "shard_key",
}  # fmt: skip


#: A request's answer: (context, collection, space, one request's fields) -> reply.
Answer = Callable[[Context, slimvec.Collection, Space, dict[str, Any]], Any]


def router(q: Context) -> APIRouter:
    api = APIRouter()
    add_routes(api, q, "query", ("query_points", "query_batch_points"), QUERY_FIELDS, query_one)
    add_routes(api, q, "search", ("search", "search_batch"), SEARCH_FIELDS, search_one)
    return api


def add_routes(
    api: APIRouter,
    q: Context,
    kind: str,
    methods: tuple[str, str],
    fields: set[str],
    answer: Answer,
) -> None:
    """``POST .../points/{kind}`` (one request, answered by ``answer``) and
    ``.../points/{kind}/batch`` (``searches``: several, against one opened collection);
    ``methods`` name the single and the batch call in errors."""
    path = f"/collections/{{name}}/points/{kind}"

    async def single(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            return answer(q, *q.opened(name), data)

        return await q.call(request, name, methods[0], work, fields=fields)

    async def batch(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            col, space = q.opened(name)
            return [answer(q, col, space, s) for s in batch_of(q, data, fields)]

        return await q.call(request, name, methods[1], work, fields={"searches"})

    api.add_api_route(path, single, methods=["POST"], name=kind)
    api.add_api_route(f"{path}/batch", batch, methods=["POST"], name=f"{kind}_batch")


def query_one(q: Context, col: slimvec.Collection, space: Space, data: dict[str, Any]) -> Any:
    """``query_points``: the points nearest a vector or a stored point (itself left out)."""
    vector, exclude = query_vector(col, space, data)
    return {"points": nearest(q, col, space, vector, data, exclude)}


def search_one(q: Context, col: slimvec.Collection, space: Space, data: dict[str, Any]) -> Any:
    """The legacy ``search``: a vector and a limit it must give (Qdrant has no default)."""
    if data.get("limit") is None:
        raise InvalidInputError("search needs a limit")
    return nearest(q, col, space, search_vector(space, data.get("vector")), data)


# -- the request -----------------------------------------------------------------------------
def batch_of(q: Context, data: dict[str, Any], fields: set[str]) -> list[dict[str, Any]]:
    """A batch body's ``searches``, each with only the fields its single route takes."""
    searches = data.get("searches")
    if not isinstance(searches, list) or not all(isinstance(s, dict) for s in searches):
        raise InvalidInputError("searches must be a list of request objects")
    q.service.check_rows(len(searches), q.limits.max_queries, "searches")
    for s in searches:
        unknown = sorted(set(s) - fields)
        if unknown:
            raise InvalidInputError(f"a search has the unknown field {unknown[0]!r}")
    return searches


def query_vector(
    col: slimvec.Collection, space: Space, data: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """(vector, id to leave out) of a query request's ``query``: a vector, or the id of a
    stored point (whose vector is searched, and which is left out of its own answer)."""
    for field in ("prefetch", "lookup_from"):
        if data.get(field):
            raise Unsupported(f"query with {field} is not supported by slimvec")
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


def search_vector(space: Space, vector: Any) -> np.ndarray:
    """A legacy search's ``vector``: a list, or ``{"name": "", "vector": [...]}``."""
    if isinstance(vector, dict) and set(vector) == {"name", "vector"}:
        if vector["name"] != "":
            raise Unsupported(f"named vectors are not supported (name={vector['name']!r})")
        vector = vector["vector"]
    return space.check([vector], "vector")[0]


def page_args(q: Context, data: dict[str, Any]) -> tuple[int, int, bool]:
    """(limit, offset, exact) of a search, with Qdrant's defaults (limit 10)."""
    limit = data.get("limit")
    limit = 10 if limit is None else limit
    offset = data.get("offset") or 0
    q.check_limit(limit, "limit")
    q.check_limit(offset, "offset")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidInputError("params must be an object")
    return limit, offset, bool(params.get("exact", False))


# -- the answer ------------------------------------------------------------------------------
def nearest(
    q: Context,
    col: slimvec.Collection,
    space: Space,
    vector: np.ndarray,
    data: dict[str, Any],
    exclude: Any = None,
) -> list[dict[str, Any]]:
    """One search: the scored points of ``vector`` with the request's limit, offset,
    filter, score_threshold, with_payload and with_vector (Qdrant's defaults)."""
    limit, offset, exact = page_args(q, data)
    k = limit + offset + (exclude is not None)
    if k == 0 or limit == 0:
        return []
    q.check_limit(k, "limit + offset")
    found = col.search(
        space.queries(vector[None, :]),
        k=k,
        exact=exact,
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
    return scored_points(col, space, hits[offset : offset + limit], data)


def scored_points(
    col: slimvec.Collection, space: Space, hits: list[tuple[Any, float]], data: dict[str, Any]
) -> list[dict[str, Any]]:
    """Qdrant's ScoredPoints of ``hits`` (key, score), with payload and vector if asked."""
    with_payload = data.get("with_payload", False)
    with_vector = data.get("with_vector", False)
    extra = {}
    if hits and (with_payload or wants_vector(with_vector)):
        found = records(col, space, [h[0] for h in hits], with_payload, with_vector)
        extra = {r["id"]: r for r in found}
    out = []
    for key, score in hits:
        point = {"id": point_id(key), "version": 0, "score": score}
        point.update({k: v for k, v in extra.get(point_id(key), {}).items() if k != "id"})
        out.append(point)
    return out
