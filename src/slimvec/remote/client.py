"""The Python client: a remote collection that behaves like a local one.

``slimvec.connect(url, api_key=...)`` returns a :class:`Client`; its collections have the same
methods, arguments, results (``SearchResult`` with NumPy arrays) and exceptions (the same
``slimvec.errors`` classes with the server's message, which is the library's) as
``slimvec.open``'s, so code moves between the two unchanged. Needs only ``httpx`` and NumPy.
Vectors travel as base64 float32 (or float16 with ``vector_dtype="float16"``): JSON lists of
numbers cost far more to print and parse (``benchmarks/server.py``).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

import slimvec.errors as errors
from slimvec.engine.quality import check_target
from slimvec.errors import AuthError, InvalidInputError, MissingDependencyError, ServerError
from slimvec.remote.names import check_name
from slimvec.remote.wire import (
    RESULT_DTYPES,
    WIRE_DTYPES,
    decode_array,
    encode_array,
    ids_from_json,
    result_from_json,
    to_npy,
)
from slimvec.search.result import GetResult, SearchResult
from slimvec.validation import as_matrix, as_metadata

try:
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "slimvec.connect needs httpx; install the server extra: pip install 'slimvec[server]'"
    ) from exc

WIRES = ("binary", "json", "npy")


def _error_class(kind: str) -> type[Exception] | None:
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, errors.SlimvecError):
        return cls
    if kind == "TypeError":
        return builtins.TypeError
    return None


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        kind, message = error["type"], error["message"]
    except (ValueError, KeyError, TypeError):
        raise ServerError(
            f"HTTP {response.status_code} from {response.url}: {response.text[:300]}",
            status=response.status_code,
        ) from None
    if response.status_code in (401, 403):
        raise AuthError(message, status=response.status_code)
    cls = _error_class(kind)
    if cls is None or issubclass(cls, ServerError):
        raise ServerError(f"{kind}: {message}", status=response.status_code)
    raise cls(message)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {key: _jsonable(v) for key, v in value.items()}
    return value


class Client:
    """A connection to a slimvec server (a pool of keep-alive HTTP connections, thread-safe).

    ``wire``: how vectors travel — "binary" (base64 in JSON, the default), "json" (lists of
    numbers) or "npy" (a raw .npy body for adds of vectors alone). ``vector_dtype``: "float32"
    or "float16" (half the bytes, ~3 significant digits)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 600.0,
        wire: str = "binary",
        vector_dtype: str = "float32",
    ):
        if wire not in WIRES:
            raise InvalidInputError(f"wire must be one of {WIRES}, got {wire!r}")
        if vector_dtype not in WIRE_DTYPES:
            raise InvalidInputError(
                f"vector_dtype must be one of {sorted(WIRE_DTYPES)}, got {vector_dtype!r}"
            )
        headers = {"api-key": api_key} if api_key else {}
        self.url = url.rstrip("/")
        self.wire, self.vector_dtype = wire, vector_dtype
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0)
        )

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """One call to the API: JSON in, JSON out, errors raised as slimvec exceptions."""
        if body is not None:
            try:
                kwargs["content"] = json.dumps(body)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"the request cannot be sent as JSON ({exc})") from None
            kwargs.setdefault("headers", {})["content-type"] = "application/json"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach the slimvec server at {self.url}: {exc}") from exc
        _raise_for(response)
        return response.json()

    def create(self, name: str, dim: int | None = None, **options: Any) -> RemoteCollection:
        """Like ``slimvec.create(path, dim, ...)``, with a collection name instead of a path
        (``encoder`` is a model name the server can load)."""
        body = {"dim": _jsonable(dim), **{k: _jsonable(v) for k, v in options.items()}}
        self.request("PUT", f"/collections/{check_name(name)}", body)
        return RemoteCollection(self, name)

    def open(self, name: str) -> RemoteCollection:
        """Like ``slimvec.open``: ``CollectionNotFoundError`` if there is none."""
        self.request("GET", f"/collections/{check_name(name)}/count")
        return RemoteCollection(self, name)

    def list(self) -> list[str]:
        """Names of the collections this key may use."""
        return self.request("GET", "/collections")["collections"]

    def drop(self, name: str) -> None:
        """Delete a whole collection on the server."""
        self.request("DELETE", f"/collections/{check_name(name)}")

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/healthz")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


class RemoteCollection:
    """A collection on a slimvec server, with a local collection's methods and results."""

    def __init__(self, client: Client, name: str):
        self.client, self.name = client, name
        self._base = f"/collections/{name}"

    # -- vectors on the wire ------------------------------------------------------------------
    def _vectors(self, vectors: Any, what: str) -> Any:
        """Numeric arrays go binary (shape kept, so the server's checks see what a local call
        would); anything else goes as JSON for the library to judge, or fails here with the
        library's own message when it cannot even be sent."""
        try:
            array = np.asarray(vectors)
        except (ValueError, TypeError):
            array = None
        numeric = array is not None and (
            np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
        )
        if numeric and self.client.wire != "json":
            return encode_array(array, self.client.vector_dtype)
        if array is not None and array.dtype != object and not numeric:
            as_matrix(vectors, None, what)  # bool, complex, str...: the library's message
        return _jsonable(vectors)

    def _post(self, path: str, body: dict[str, Any], **params: Any) -> Any:
        return self.client.request("POST", self._base + path, body, params=params or None)

    # -- the Collection API -----------------------------------------------------------------
    def add(
        self,
        vectors: Any,
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Store vectors (n, dim); returns their ids (given, or assigned: increasing int64,
        or UUID strings in an ``ids="str"`` collection)."""
        if self.client.wire == "npy" and ids is None and metadata is None and texts is None:
            array = np.asarray(vectors)
            if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer):
                return self._add_npy(array)
        return self._write("/points", vectors, ids, metadata, texts)

    def upsert(
        self,
        vectors: Any,
        ids: Any,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Store vectors under ``ids``, replacing those that exist, in one commit on the
        server (see ``Collection.upsert``); returns the ids."""
        return self._write("/points/upsert", vectors, ids, metadata, texts)

    def _write(self, path: str, vectors: Any, ids: Any, metadata: Any, texts: Any) -> np.ndarray:
        if metadata is not None:
            try:
                json.dumps(_jsonable(metadata))
            except (TypeError, ValueError):  # cannot travel: the library's message, here
                as_metadata(metadata, len(metadata))
                raise
        body: dict[str, Any] = {"vectors": self._vectors(vectors, "vectors")}
        for key, value in (("ids", ids), ("metadata", metadata), ("texts", texts)):
            if value is not None:
                body[key] = _jsonable(value)
        reply = self._post(path, body, binary="true")
        return self._ids(reply["ids"])

    def _add_npy(self, array: np.ndarray) -> np.ndarray:
        try:
            response = self.client._http.post(
                self._base + "/points",
                content=to_npy(array, self.client.vector_dtype),
                headers={"content-type": "application/x-npy"},
                params={"binary": "true"},
            )
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach the slimvec server: {exc}") from exc
        _raise_for(response)
        return self._ids(response.json()["ids"])

    @staticmethod
    def _ids(field: Any) -> np.ndarray:
        """Ids of a reply asked for with ``binary=true``: int64, or a list of string ids."""
        return ids_from_json(field).reshape(-1)

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` with the collection's encoder (on the server) and store them."""
        body: dict[str, Any] = {"texts": _jsonable(texts)}
        for key, value in (("ids", ids), ("metadata", metadata), ("batch_size", batch_size)):
            if value is not None:
                body[key] = _jsonable(value)
        return self._ids(self._post("/texts", body, binary="true")["ids"])

    def search(
        self,
        queries: Any,
        k: int = 10,
        exact: bool = False,
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """Top-``k`` ids and scores per query (see ``Collection.search``)."""
        body = {"vectors": self._vectors(queries, "queries"), "k": _jsonable(k), "exact": exact}
        for key, value in (("filter", filter), ("nprobe", nprobe)):
            if value is not None:
                body[key] = _jsonable(value)
        reply = self._post("/search", body, binary="true")
        return SearchResult(*result_from_json(reply), explain=reply.get("explain"))

    def search_texts(
        self,
        queries: Sequence[str] | str,
        k: int = 10,
        mode: str = "dense",
        *,
        fusion: str = "rrf",
        weights: Sequence[float] | None = None,
        rrf_constant: float = 60.0,
        candidates: int | None = None,
        exact: bool = False,
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """Search by text (the server embeds the queries): dense, sparse or hybrid (see
        ``Collection.search_texts``)."""
        body: dict[str, Any] = {"queries": _jsonable(queries), "k": _jsonable(k), "mode": mode}
        options = {
            "fusion": fusion,
            "weights": weights,
            "rrf_constant": rrf_constant,
            "candidates": candidates,
            "exact": exact,
            "filter": filter,
            "nprobe": nprobe,
        }
        body.update({key: _jsonable(v) for key, v in options.items() if v is not None})
        return SearchResult(*result_from_json(self._post("/search_texts", body, binary="true")))

    def delete(self, ids: Any = None, filter: Any = None) -> int:  # noqa: A002
        """Delete by ``ids``, or the rows whose metadata matches ``filter`` (one commit on the
        server; see ``Collection.delete``); returns how many."""
        body = {}
        for key, value in (("ids", ids), ("filter", filter)):
            if value is not None:
                body[key] = _jsonable(value)
        return int(self._post("/points/delete", body)["deleted"])

    def count(self, filter: Any = None) -> int:  # noqa: A002
        """Live vectors, or those whose metadata matches ``filter``."""
        if filter is None:
            return len(self)
        return int(self._post("/count", {"filter": _jsonable(filter)})["count"])

    def get(
        self,
        ids: Any = None,
        filter: Any = None,  # noqa: A002
        limit: int | None = 100,
        offset: int = 0,
        vectors: bool | None = None,
    ) -> GetResult:
        """A page of live ids with metadata and texts, and the stored vectors if asked (by
        default when ``ids`` are given). The server caps ``limit`` at its k limit: page with
        ``offset``."""
        body: dict[str, Any] = {"limit": _jsonable(limit), "offset": _jsonable(offset)}
        if ids is not None:
            body["ids"] = _jsonable(np.atleast_1d(ids))
        for key, value in (("filter", filter), ("vectors", vectors)):
            if value is not None:
                body[key] = _jsonable(value)
        reply = self._post("/points/get", body, binary="true")
        stored = reply.get("vectors")
        if stored is not None:
            stored = decode_array(stored, "vectors", RESULT_DTYPES).astype(np.float32)
        return GetResult(self._ids(reply["ids"]), reply["metadata"], reply["texts"], stored)

    def update_metadata(
        self,
        ids: Any = None,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        filter: Any = None,  # noqa: A002
        merge: dict[str, Any] | None = None,
    ) -> int:
        """Replace the metadata of live ``ids`` in one commit, or merge one dict into the rows
        matching ``filter`` (``merge=``, one commit on the server); returns how many."""
        body = {"ids": None if ids is None else _jsonable(np.atleast_1d(ids))}
        body["metadata"] = _jsonable(metadatas)
        for key, value in (("filter", filter), ("merge", merge)):
            if value is not None:
                body[key] = _jsonable(value)
        return int(self._post("/points/update_metadata", body)["updated"])

    def create_index(self, field: str) -> None:
        """A payload index on a metadata field (see ``Collection.create_index``)."""
        self._post("/indexes", {"field": _jsonable(field)})

    def metadata(self, ids: Any) -> list[dict | None]:
        return self._post("/points/metadata", {"ids": _jsonable(np.atleast_1d(ids))})["metadata"]

    def texts(self, ids: Any) -> list[str | None]:
        return self._post("/points/texts", {"ids": _jsonable(np.atleast_1d(ids))})["texts"]

    def compact(self) -> None:
        self._post("/compact", {})

    def info(self) -> dict[str, Any]:
        """The server collection's ``info()`` (its ``name`` instead of its path)."""
        return self.client.request("GET", self._base)

    def set_target_recall(self, target: float | None) -> None:
        """Hold recall@k at or above ``target`` on the server (None: only measure); see
        ``Collection.set_target_recall``. A bad value is refused here, as locally."""
        target = check_target(target)
        self.client.request("PUT", self._base + "/target_recall", {"target_recall": target})

    def live_recall(self) -> dict[str, Any]:
        """Recall@k measured on the server's searches of this collection, and the target."""
        return self.client.request("GET", self._base + "/quality")

    def __len__(self) -> int:
        return int(self.client.request("GET", self._base + "/count")["count"])

    @property
    def dim(self) -> int:
        return int(self.info()["dim"])

    @property
    def id_kind(self) -> str:
        """ "int" or "str": the kind of id the collection takes and returns."""
        return self.info().get("id_kind", "int")

    @property
    def metric(self) -> str:
        return self.info()["metric"]

    @property
    def spec(self) -> str:
        return self.info()["spec"]

    def close(self) -> None:
        """Nothing to release per collection (the client holds the connections)."""

    def __enter__(self) -> RemoteCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteCollection({self.client.url!r}, {self.name!r})"


def connect(url: str, api_key: str | None = None, **options: Any) -> Client:
    """A client for the slimvec server at ``url`` (see :class:`Client` for ``options``)."""
    return Client(url, api_key=api_key, **options)
