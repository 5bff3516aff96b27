"""What every route does besides its one library call: who may ask (API keys), the body read
and checked against the route's fields and the server's limits, the work run in a pool
thread, and the library's exceptions turned into ``{"error": {"type", "message"}}``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

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
from slimvec.remote.wire import decode_array, from_npy, result_to_json
from slimvec.server.auth import ANONYMOUS, KeyFile, Principal
from slimvec.server.registry import Registry
from slimvec.server.schemas import NPY

COOKIE = "slimvec_key"


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


def status_of(exc: SlimvecError) -> int:
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


def problem(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(kind, message), status_code=status)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestProblem(400, f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise RequestProblem(400, "the request body is JSON nested too deeply") from None
    except ValueError:  # CPython reads integers of at most 4,300 digits
        raise RequestProblem(
            400, "the request body has an integer of more than 4,300 digits; no field takes one"
        ) from None


def json_info(name: str, info: dict[str, Any]) -> dict[str, Any]:
    info = {**info, "name": name}
    info.pop("path", None)  # the server's file system is not the client's business
    return json.loads(json.dumps(info, default=str))


def json_response(body: Any) -> Response:
    """A JSON response without FastAPI's per-item encoding walk (results are plain lists)."""
    return Response(json.dumps(body), media_type="application/json")


def wants_binary(request: Request) -> bool:
    return request.query_params.get("binary", "").lower() in {"1", "true", "yes"}


#: A route's work: (the parsed body's fields, whether binary arrays were asked) -> reply.
Work = Callable[[dict[str, Any], bool], Any]


class Service:
    """The routes' shared steps and state (registry, keys, limits), free of HTTP routing."""

    def __init__(self, registry: Registry, keys: KeyFile | None, limits: Limits):
        self.registry, self.keys, self.limits = registry, keys, limits

    async def call(
        self,
        request: Request,
        name: str | None,
        method: str,
        work: Work,
        *,
        write: bool = False,
        fields: set[str] | None = None,
        what: str | None = None,
        npy: bool = False,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """One route: allow the key, read the body (when the route has ``fields``; ``body``
        if the route read it already), then parse it and run ``work`` in a pool thread.
        ``method`` names the library call in errors; ``what`` the body in a wrong-content-type
        error (default: ``method``)."""
        if body is None:
            self.allow(request, name, write)
            if fields is not None:
                body = await self.body(request, what or method, npy)
        binary = wants_binary(request)

        def run() -> Any:
            data = {} if body is None else self.parse(body, fields, method)
            return work(data, binary)

        return await run_in_threadpool(run)

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
        data = loads(body["_raw"])
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
        if "filter" in data and depth(data["filter"]) > self.limits.max_filter_depth:
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
