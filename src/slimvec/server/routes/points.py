"""Point routes: add, upsert, delete, get, update metadata, look up metadata or texts, and
add texts (embedded on the server)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from slimvec.remote.wire import encode_array, ids_to_json
from slimvec.server.schemas import (
    AddBody,
    GetBody,
    IdsBody,
    TextsBody,
    UpdateMetadataBody,
    doc_body,
)
from slimvec.server.service import RequestProblem, Service, json_response

WRITE_FIELDS = {"vectors", "ids", "metadata", "texts"}


def router(service: Service) -> APIRouter:
    api = APIRouter(tags=["points"])
    registry, limits = service.registry, service.limits

    def write_points(name: str, method: str):
        def work(data: dict[str, Any], binary: bool) -> Response:
            vectors = service.vectors(data, "vectors", limits.max_batch, "vectors")
            args = {k: data[k] for k in ("metadata", "texts") if data.get(k) is not None}
            if method == "upsert" or data.get("ids") is not None:
                args["ids"] = data.get("ids")  # upsert without ids: the library's message
            with registry.writer(name) as col:
                ids = getattr(col, method)(vectors, **args)
            return json_response({"ids": ids_to_json(ids, binary)})

        return work

    @api.post("/collections/{name}/points", openapi_extra=doc_body(AddBody, npy=True))
    async def add(name: str, request: Request) -> Response:
        """``add(vectors, ids, metadata, texts)``; returns the ids. A .npy body is vectors only."""
        return await service.call(
            request, name, "add", write_points(name, "add"),
            write=True, fields=WRITE_FIELDS, what="adding points", npy=True,
        )  # fmt: skip

    @api.post("/collections/{name}/points/upsert", openapi_extra=doc_body(AddBody))
    async def upsert(name: str, request: Request) -> Response:
        """``upsert(vectors, ids, metadata, texts)``: replace the ids that exist, add the
        others, in one commit; returns the ids."""
        return await service.call(
            request, name, "upsert", write_points(name, "upsert"),
            write=True, fields=WRITE_FIELDS, what="upserting points",
        )  # fmt: skip

    @api.post("/collections/{name}/points/delete", openapi_extra=doc_body(IdsBody))
    async def delete(name: str, request: Request) -> dict[str, Any]:
        """``delete(ids)`` (or ``delete(filter=...)`` where the library has filters)."""

        def work(data: dict[str, Any], binary: bool) -> dict[str, Any]:
            args = {k: v for k, v in data.items() if v is not None}
            with registry.writer(name) as col:
                return {"deleted": col.delete(**args)}

        return await service.call(
            request, name, "delete", work, write=True, fields={"ids", "filter"}
        )

    @api.post("/collections/{name}/points/get", openapi_extra=doc_body(GetBody))
    async def get_points(name: str, request: Request) -> Response:
        """``get(ids, filter, limit, offset, vectors)``: a page of live ids with metadata and
        texts, and the stored vectors if asked (by default when ``ids`` are given)."""

        def work(data: dict[str, Any], binary: bool) -> Response:
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
            return json_response(reply)

        return await service.call(request, name, "get", work, fields=set(GetBody.model_fields))

    @api.post(
        "/collections/{name}/points/update_metadata", openapi_extra=doc_body(UpdateMetadataBody)
    )
    async def update_metadata(name: str, request: Request) -> dict[str, Any]:
        """``update_metadata(ids, metadata)``: replace the metadata of live ids, one commit;
        or ``update_metadata(filter=..., merge={...})``: merge one dict into the matching rows,
        one commit."""

        def work(data: dict[str, Any], binary: bool) -> dict[str, Any]:
            args = {k: v for k, v in data.items() if k not in ("ids", "metadata")}
            with registry.writer(name) as col:
                updated = col.update_metadata(data.get("ids"), data.get("metadata"), **args)
            return {"updated": updated}

        return await service.call(
            request, name, "update_metadata", work,
            write=True, fields=set(UpdateMetadataBody.model_fields),
        )  # fmt: skip

    def lookup_route(field: str):
        async def lookup(name: str, request: Request) -> dict[str, Any]:
            def work(data: dict[str, Any], binary: bool) -> dict[str, Any]:
                return {field: getattr(registry.reader(name), field)(data.get("ids"))}

            return await service.call(request, name, field, work, fields={"ids"})

        lookup.__doc__ = f"``{field}(ids)``: the stored {field} of each id (null if none)."
        return lookup

    for field in ("metadata", "texts"):
        api.post(
            f"/collections/{{name}}/points/{field}",
            name=f"get_{field}",
            openapi_extra=doc_body(IdsBody),
        )(lookup_route(field))

    @api.post("/collections/{name}/texts", openapi_extra=doc_body(TextsBody))
    async def add_texts(name: str, request: Request) -> Response:
        """``add_texts(texts, ids, metadata)``: embedded on the server by the collection's
        encoder."""

        def work(data: dict[str, Any], binary: bool) -> Response:
            texts = data.get("texts")
            if isinstance(texts, list):
                service.check_rows(len(texts), limits.max_batch, "texts")
            args = {k: v for k, v in data.items() if k != "texts" and v is not None}
            with registry.writer(name) as col:
                return json_response({"ids": ids_to_json(col.add_texts(texts, **args), binary)})

        return await service.call(
            request, name, "add_texts", work,
            write=True, fields={"texts", "ids", "metadata", "batch_size"}, what="adding texts",
        )  # fmt: skip

    return api
