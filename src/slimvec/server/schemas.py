"""Request bodies as OpenAPI documents them. Bodies are parsed by hand (vectors may be JSON
lists, base64 objects or a ``.npy`` body; see ``slimvec.remote.wire``): these models only
describe them in ``/docs`` and name each route's accepted fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

import slimvec

NPY = "application/x-npy"


class BinaryArray(BaseModel):
    """Little-endian array bytes, base64-encoded: much faster than JSON lists for bulk data."""

    b64: str
    dtype: str = Field(description="float32 or float16 (int64/float32 in results)")
    shape: list[int]


Vectors = list[list[float]] | list[float] | BinaryArray
#: int64 ids, or strings in a collection created with ``ids: "str"`` (results use the same kind)
Ids = list[int] | list[str]


class CreateBody(BaseModel):
    dim: int | None = None
    metric: str = "cosine"
    spec: str = Field(slimvec.DEFAULT_SPEC, description="pipeline spec string")
    encoder: str | None = Field(None, description="model name for add_texts/search_texts")
    multivector: bool = False
    keyword: dict[str, Any] | None = None
    ids: str = Field("int", description='id kind: "int" (int64) or "str" (string ids)')


class AddBody(BaseModel):
    vectors: Vectors
    ids: Ids | None = None
    metadata: list[dict[str, Any] | None] | None = None
    texts: list[str] | None = None


class SearchBody(BaseModel):
    vectors: Vectors = Field(description="one query (a list) or several (a matrix)")
    k: int = 10
    exact: bool = False
    filter: dict[str, Any] | None = Field(None, description="forwarded to the library if given")
    nprobe: int | None = Field(None, description="lists read per query ('ivf:N' collections)")


SEARCH_FIELDS = set(SearchBody.model_fields)


class BatchSearchBody(BaseModel):
    searches: list[SearchBody]


class TextsBody(BaseModel):
    texts: list[str]
    ids: Ids | None = None
    metadata: list[dict[str, Any] | None] | None = None
    batch_size: int | None = None


class SearchTextsBody(BaseModel):
    queries: list[str] | str
    k: int = 10
    mode: str = "dense"
    fusion: str = "rrf"
    weights: list[float] | None = None
    rrf_constant: float = 60.0
    candidates: int | None = None
    exact: bool = False
    filter: dict[str, Any] | None = None
    nprobe: int | None = Field(None, description="lists the dense side reads ('ivf:N')")


class IdsBody(BaseModel):
    ids: Ids | None = None
    filter: dict[str, Any] | None = None


class CountBody(BaseModel):
    filter: dict[str, Any] | None = None


class GetBody(BaseModel):
    ids: Ids | None = None
    filter: dict[str, Any] | None = None
    limit: int | None = 100
    offset: int = 0
    vectors: bool | None = Field(None, description="return stored vectors (default: if ids)")


class UpdateMetadataBody(BaseModel):
    ids: Ids | None = None
    metadata: list[dict[str, Any] | None] | None = None
    filter: dict[str, Any] | None = Field(None, description="rows to merge into (with merge)")
    merge: dict[str, Any] | None = Field(None, description="one dict merged into each row")


class IndexBody(BaseModel):
    field: str


class TargetBody(BaseModel):
    target_recall: float | None = Field(
        description="recall@k the collection holds, in (0, 1]; null: only measure"
    )


def doc_body(model: type[BaseModel], npy: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": model.model_json_schema()}}
    if npy:
        content[NPY] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"content": content, "required": True}}
