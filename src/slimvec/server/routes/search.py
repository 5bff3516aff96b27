"""Search routes: vectors (one search or a batch of them) and texts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from slimvec.remote.wire import result_to_json
from slimvec.server.schemas import (
    SEARCH_FIELDS,
    BatchSearchBody,
    SearchBody,
    SearchTextsBody,
    doc_body,
)
from slimvec.server.service import RequestProblem, Service, json_response, wants_binary

#: Search bodies up to this size (a few queries) run on the event loop, not in a pool thread.
INLINE_BYTES = 16_384


def router(service: Service) -> APIRouter:
    api = APIRouter(tags=["search"])
    registry, limits = service.registry, service.limits

    @api.post("/collections/{name}/search", openapi_extra=doc_body(SearchBody, True))
    async def search(name: str, request: Request) -> Response:
        """``search(vectors, k, exact, filter, nprobe)``: ids and scores per query (scores
        null for -inf padding; ``?binary=true`` returns base64 int64/float32 arrays instead)."""

        def work(data: dict[str, Any], binary: bool) -> Response:
            return json_response(service.search_one(registry.reader(name), data, binary))

        service.allow(request, name, write=False)
        body = await service.body(request, "search", npy=True)
        if len(body.get("_raw") or body.get("vectors")) <= INLINE_BYTES:
            data = service.parse(body, SEARCH_FIELDS, "search")
            if not data.get("exact"):
                # a few approximate queries take about a millisecond: handing them to a pool
                # thread costs as much again, far more when the CPUs are busy
                return work(data, wants_binary(request))
        return await service.call(request, name, "search", work, fields=SEARCH_FIELDS, body=body)

    @api.post("/collections/{name}/search/batch", openapi_extra=doc_body(BatchSearchBody))
    async def search_batch(name: str, request: Request) -> Response:
        """Several searches (each with its own k, exact, filter) in one request."""

        def work(data: dict[str, Any], binary: bool) -> Response:
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
            return json_response(
                {"results": [service.search_one(col, s, binary) for s in searches]}
            )

        return await service.call(
            request, name, "search_batch", work, fields={"searches"}, what="batch search"
        )

    @api.post("/collections/{name}/search_texts", openapi_extra=doc_body(SearchTextsBody))
    async def search_texts(name: str, request: Request) -> Response:
        """``search_texts(queries, k, mode, ...)``: dense, sparse (BM25) or hybrid."""

        def work(data: dict[str, Any], binary: bool) -> Response:
            queries = data.pop("queries", None)
            if isinstance(queries, list):
                service.check_rows(len(queries), limits.max_queries, "queries")
            service.check_k(data.get("k"))
            args = {k: v for k, v in data.items() if v is not None}
            result = registry.reader(name).search_texts(queries, **args)
            return json_response(result_to_json(result.ids, result.scores, binary))

        return await service.call(
            request, name, "search_texts", work, fields=set(SearchTextsBody.model_fields)
        )

    return api
