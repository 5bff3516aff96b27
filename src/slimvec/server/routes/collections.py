"""Collection routes: list, create, info, count, indexes, drop, compact, live recall."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from slimvec.server.registry import Registry
from slimvec.server.schemas import CountBody, CreateBody, IndexBody, TargetBody, doc_body
from slimvec.server.service import RequestProblem, Service, json_info, loads


def router(service: Service) -> APIRouter:
    api = APIRouter(tags=["collections"])
    registry = service.registry

    @api.get("/collections")
    async def list_collections(request: Request) -> dict[str, Any]:
        """Names of the collections this key may use."""
        who = service.allow(request, None, write=False)
        return {"collections": [n for n in registry.names() if who.may_see(n)]}

    @api.put("/collections/{name}", status_code=201, openapi_extra=doc_body(CreateBody))
    async def create_collection(name: str, request: Request) -> dict[str, Any]:
        """Create a collection: the body holds ``slimvec.create``'s arguments."""
        service.allow(request, name, write=True)
        body = await service.body(request, "create")  # any of create's options: not parsed

        def work() -> dict[str, Any]:
            options = loads(body["_raw"])
            if not isinstance(options, dict) or "path" in options:
                raise RequestProblem(400, "the body must be a JSON object of create's options")
            return json_info(name, registry.create(name, options).info())

        return await run_in_threadpool(work)

    @api.get("/collections/{name}")
    async def get_info(name: str, request: Request) -> dict[str, Any]:
        """``info()``: counts, spec, bytes per vector, encoder."""
        return await service.call(
            request,
            name,
            "info",
            lambda data, binary: json_info(name, registry.reader(name).info()),
        )

    @api.get("/collections/{name}/count")
    async def get_count(name: str, request: Request) -> dict[str, Any]:
        """``len(collection)``: live vectors."""
        return await service.call(
            request, name, "count", lambda data, binary: {"count": len(registry.reader(name))}
        )

    @api.post("/collections/{name}/count", openapi_extra=doc_body(CountBody))
    async def count(name: str, request: Request) -> dict[str, Any]:
        """``count(filter)``: live vectors whose metadata matches the filter."""

        def work(data: dict[str, Any], binary: bool) -> dict[str, Any]:
            return {"count": registry.reader(name).count(filter=data.get("filter"))}

        return await service.call(request, name, "count", work, fields={"filter"})

    @api.post("/collections/{name}/indexes", openapi_extra=doc_body(IndexBody))
    async def create_index(name: str, request: Request) -> dict[str, Any]:
        """``create_index(field)``: a payload index that makes filters on the field cheap."""

        def work(data: dict[str, Any], binary: bool) -> dict[str, Any]:
            with registry.writer(name) as col:
                col.create_index(data.get("field"))
            return {"indexed": data.get("field")}

        return await service.call(request, name, "create_index", work, write=True, fields={"field"})

    @api.delete("/collections/{name}")
    async def drop_collection(name: str, request: Request) -> dict[str, Any]:
        """Delete a whole collection and its files."""

        def work(data: dict[str, Any], binary: bool) -> dict[str, Any]:
            registry.drop(name)
            return {"deleted": name}

        return await service.call(request, name, "drop", work, write=True)

    @api.post("/collections/{name}/compact")
    async def compact(name: str, request: Request) -> dict[str, Any]:
        """``compact()``: rewrite live vectors, reclaiming deleted ones' space."""

        def work(data: dict[str, Any], binary: bool) -> dict[str, Any]:
            with registry.writer(name) as col:
                col.compact()
            return {"compacted": name}

        return await service.call(request, name, "compact", work, write=True)

    @api.get("/collections/{name}/quality")
    async def get_quality(name: str, request: Request) -> dict[str, Any]:
        """``live_recall()``: recall@k measured on this server's searches, and the target."""
        return await service.call(
            request, name, "live_recall", lambda data, binary: _live_recall(registry, name)
        )

    @api.get("/collections/{name}/target_recall")
    async def get_target(name: str, request: Request) -> dict[str, Any]:
        """The recall target the collection holds (null: it only measures)."""

        def work(data: dict[str, Any], binary: bool) -> dict[str, Any]:
            return {"target_recall": _live_recall(registry, name)["target_recall"]}

        return await service.call(request, name, "target_recall", work)

    @api.put("/collections/{name}/target_recall", openapi_extra=doc_body(TargetBody))
    async def set_target(name: str, request: Request) -> dict[str, Any]:
        """``set_target_recall(target)``: committed, so every worker's searches hold it."""

        def work(data: dict[str, Any], binary: bool) -> dict[str, Any]:
            if "target_recall" not in data:
                raise RequestProblem(400, "the request needs a 'target_recall' field")
            with registry.writer(name) as col:
                col.set_target_recall(data["target_recall"])
            return {"target_recall": _live_recall(registry, name)["target_recall"]}

        return await service.call(
            request, name, "set_target_recall", work, write=True, fields={"target_recall"}
        )

    return api


def _live_recall(registry: Registry, name: str) -> dict[str, Any]:
    """The reader's report: the handle that answers (and so measures) this server's searches."""
    return json.loads(json.dumps(registry.reader(name).live_recall(), default=str))
