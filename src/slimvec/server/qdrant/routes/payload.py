"""Qdrant's payload routes: set, overwrite, delete keys of and clear the payloads of points
selected by ids or by a filter. slimvec keeps a payload as the point's metadata, so each is
one read-change-write of that metadata under the write lock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from slimvec.server.qdrant.context import Context, completed
from slimvec.server.qdrant.ids import point_keys
from slimvec.server.qdrant.payload import set_at, to_metadata, to_payload, without
from slimvec.server.qdrant.routes.points import selector_filter

FIELDS = {"payload", "points", "filter", "key", "keys", "shard_key"}
#: A payload change: (the stored payload, the request body) -> the new payload.
Change = Callable[[dict[str, Any], dict[str, Any]], Any]
#: (method, HTTP verb, path under /collections/{name}/points, change) of each route.
ROUTES: list[tuple[str, str, str, Change]] = [
    ("set_payload", "POST", "/payload", lambda p, d: set_at(p, d.get("payload"), d.get("key"))),
    ("overwrite_payload", "PUT", "/payload", lambda p, d: set_at({}, d.get("payload"), None)),
    ("delete_payload", "POST", "/payload/delete", lambda p, d: without(p, d.get("keys"))),
    ("clear_payload", "POST", "/payload/clear", lambda p, d: {}),
]


def router(q: Context) -> APIRouter:
    api = APIRouter()
    for method, verb, path, change in ROUTES:
        api.add_api_route(
            f"/collections/{{name}}/points{path}",
            payload_route(q, method, change),
            methods=[verb],
            name=method,
        )
    return api


def payload_route(q: Context, method: str, change: Change) -> Callable[..., Any]:
    """A route rewriting the payload of selected points (ids or filter) under the write
    lock: read, change, and write back in one ``update_metadata`` commit."""

    async def route(name: str, request: Request) -> Response:
        def work(data: dict[str, Any]) -> Any:
            with q.registry.writer(name) as col:
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

        return await q.call(request, name, method, work, write=True, fields=FIELDS)

    return route
