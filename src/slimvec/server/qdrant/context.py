"""What every Qdrant route shares: the service steps (API key, content type, known fields,
thread pool: :meth:`slimvec.server.service.Service.call`, as for slimvec's own routes), the
reply envelope ``{"result", "status": "ok", "time"}``, and Qdrant's error shape
``{"status": {"error": message}, "time"}`` with Qdrant's wording where clients match on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

import slimvec
from slimvec.errors import CollectionExistsError, CollectionNotFoundError, InvalidInputError
from slimvec.server.qdrant.space import Space
from slimvec.server.service import Service, json_response


def ok(result: Any, start: float) -> Response:
    """Qdrant's reply envelope; ``time`` counts from ``start`` (a ``perf_counter`` reading)."""
    return json_response({"result": result, "status": "ok", "time": time.perf_counter() - start})


def completed() -> dict[str, Any]:
    """Qdrant's answer to a write (slimvec's writes are committed when the call returns)."""
    return {"operation_id": 0, "status": "completed"}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": {"error": message}, "time": 0.0}, status_code=status)


def qdrant_error(exc: Exception) -> str:
    """Qdrant's wording where a client or person might match on it; the library's otherwise."""
    if isinstance(exc, CollectionNotFoundError):
        name = str(exc).split("'")[1] if str(exc).count("'") >= 2 else "?"
        return f"Not found: Collection `{name}` doesn't exist!"
    if isinstance(exc, CollectionExistsError):
        return f"Wrong input: {exc}"
    return str(exc)


class Context:
    """The service the Qdrant routers are built from, with the steps they all take."""

    def __init__(self, service: Service):
        self.service = service
        self.registry, self.limits = service.registry, service.limits

    async def call(
        self,
        request: Request,
        name: str | None,
        method: str,
        work: Callable[[dict[str, Any]], Any],
        *,
        write: bool = False,
        fields: set[str] | None = None,
    ) -> Response:
        """One route through :meth:`Service.call`; ``work`` gets the parsed body and its
        result goes back in Qdrant's envelope (Qdrant has no binary replies)."""
        start = time.perf_counter()
        result = await self.service.call(
            request, name, method, lambda data, binary: work(data), write=write, fields=fields
        )
        return ok(result, start)

    def opened(self, name: str) -> tuple[slimvec.Collection, Space]:
        """The collection to read and its Qdrant space."""
        col = self.registry.reader(name)
        return col, Space.of(col)

    def check_limit(self, value: Any, what: str) -> None:
        """A ``limit`` or ``offset``: a non-negative integer within the server's ``max_k``."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInputError(f"{what} must be a non-negative integer, got {value!r:.40}")
        if value > self.limits.max_k:
            raise InvalidInputError(
                f"{what}={value} is over the server's limit of {self.limits.max_k}"
            )
