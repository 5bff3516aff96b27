"""Haystack: ``SlimvecDocumentStore`` (a Haystack ``DocumentStore``) and
``SlimvecEmbeddingRetriever`` (its embedding retriever component), ``pip install
'slimvec[haystack]'``.

A document's content is stored as the collection's text, its ``meta`` as the collection's
metadata, its id as a string id. Haystack keeps documents without embeddings too, slimvec
needs a vector per row: such documents get a placeholder vector and a reserved metadata flag
(``_hs_embedded: false``) that the retriever filters out; they are returned with
``embedding=None``. Cosine collections store unit vectors, so the norm is kept
(``_hs_norm``) to return the embedding as written (float32-rounded). Metadata keys starting
with ``_hs_`` are reserved.

Filters: Haystack's ``{"field": "meta.x", "operator": ..., "value": ...}`` /
``{"operator": "AND"|"OR"|"NOT", "conditions": [...]}`` become slimvec's operator dicts with
Haystack's meaning (``== None`` is "field missing", ``> None`` matches nothing, ``NOT`` negates
the AND of its conditions); anything slimvec cannot express (a field other than ``meta.*``,
an unknown operator, ``in`` without a list, comparing numbers with strings) raises
``haystack.errors.FilterError`` naming it, never a filter silently dropped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError

from slimvec.errors import InvalidInputError
from slimvec.integrations.common import LazyCollection, resolve_absent_fields
from slimvec.search.filters import parse_filter
from slimvec.spec import DEFAULT_SPEC

EMBEDDED, NORM, NO_CONTENT = "_hs_embedded", "_hs_norm", "_hs_no_content"
_RESERVED = (EMBEDDED, NORM, NO_CONTENT)
_SIMILARITY = {"cosine": "cosine", "dot_product": "ip"}
_COMPARE = {"==": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
#: A condition no row satisfies (Haystack's comparisons with None, an empty ``in``).
_NOTHING = {"$and": [{EMBEDDED: {"$exists": True}}, {EMBEDDED: {"$exists": False}}]}


def convert_filters(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Haystack filters as a slimvec filter dict (validated), or ``FilterError``."""
    if not filters:
        return None
    out = _convert(filters)
    try:
        parse_filter(out)
    except InvalidInputError as exc:
        raise FilterError(str(exc)) from exc
    return out


def _convert(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise FilterError(f"a filter must be a dict, got {node!r}")
    if "field" not in node:
        if "operator" not in node or "conditions" not in node:
            raise FilterError(
                f"a logical filter needs 'operator' and 'conditions', got keys {sorted(node)}"
            )
        op, conditions = node["operator"], node["conditions"]
        if not isinstance(conditions, list) or not conditions:
            raise FilterError(f"'conditions' must be a non-empty list, got {conditions!r}")
        parts = [_convert(c) for c in conditions]
        if op == "AND":
            return {"$and": parts}
        if op == "OR":
            return {"$or": parts}
        if op == "NOT":
            return {"$not": {"$and": parts}}
        raise FilterError(f"unknown logical operator {op!r}; use AND, OR or NOT")
    for key in ("operator", "value"):
        if key not in node:
            raise FilterError(f"comparison {node!r} has no {key!r}")
    field, op, value = node["field"], node["operator"], node["value"]
    if not isinstance(field, str) or not field.startswith("meta.") or field[5:] in _RESERVED:
        raise FilterError(
            f"slimvec filters on metadata only: use 'meta.<name>', got field {field!r}"
        )
    name = field[5:]
    if op in ("in", "not in"):
        if not isinstance(value, list):
            raise FilterError(f"'{op}' needs a list of values, got {value!r}")
        if not value:
            return _NOTHING if op == "in" else {name: {"$nin": []}}
        return {name: {"$in" if op == "in" else "$nin": value}}
    if op not in _COMPARE:
        raise FilterError(
            f"unknown comparison operator {op!r}; use {', '.join(_COMPARE)}, in, not in"
        )
    if value is None:
        if op in ("==", "!="):
            return {name: {"$exists": op == "!="}}
        return _NOTHING  # Haystack: an order comparison with None matches nothing
    if isinstance(value, (list, dict)):
        raise FilterError(f"'{op}' compares with a single value, got {value!r}")
    return {name: {_COMPARE[op]: value}}


class SlimvecDocumentStore:
    """A Haystack document store persisted as a slimvec collection directory (string ids).

    ``path``: the collection (opened if it exists; ``None``: a temporary directory);
    ``embedding_dim``: the vectors' dimension; ``similarity``: "cosine" or "dot_product";
    ``spec``: the slimvec funnel.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        embedding_dim: int = 768,
        similarity: str = "cosine",
        spec: str = DEFAULT_SPEC,
    ) -> None:
        if similarity not in _SIMILARITY:
            raise InvalidInputError(
                f"similarity must be 'cosine' or 'dot_product', got {similarity!r}"
            )
        self.embedding_dim, self.similarity, self.spec = embedding_dim, similarity, spec
        self._store = LazyCollection(path, _SIMILARITY[similarity], spec)
        self.path = self._store.path
        self._col = self._store.get(dim=embedding_dim)

    @property
    def collection(self) -> Any:
        """The slimvec collection behind the store."""
        return self._col

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            path=str(self.path),
            embedding_dim=self.embedding_dim,
            similarity=self.similarity,
            spec=self.spec,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlimvecDocumentStore:
        return default_from_dict(cls, data)

    def count_documents(self) -> int:
        return len(self._col)

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """Every document matching ``filters``, in the order they were written."""
        where = resolve_absent_fields(self._col, convert_filters(filters))
        try:
            got = self._col.get(filter=where, limit=None, vectors=True)
        except InvalidInputError as exc:  # bound against the data: a type mismatch
            raise FilterError(str(exc)) from exc
        return self._documents(got.ids, got.metadata, got.texts, got.vectors)

    def _documents(self, ids, metas, texts, vectors, scores=None) -> list[Document]:
        out = []
        for n, (doc_id, meta, text) in enumerate(zip(ids.tolist(), metas, texts)):
            meta = dict(meta or {})
            embedded, norm = meta.pop(EMBEDDED, True), meta.pop(NORM, None)
            no_content = meta.pop(NO_CONTENT, False)
            embedding = None
            if embedded and vectors is not None:
                vector = vectors[n] * norm if norm is not None else vectors[n]
                embedding = vector.tolist()
            out.append(
                Document(
                    id=doc_id,
                    content=None if no_content else text,
                    meta=meta,
                    embedding=embedding,
                    score=None if scores is None else float(scores[n]),
                )
            )
        return out

    def write_documents(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        """Store documents; ``policy`` decides for ids already stored: FAIL (the default, as
        Haystack's in-memory store: nothing is written), SKIP, or OVERWRITE (one atomic
        upsert). Returns how many were written."""
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise ValueError("write_documents takes a list of haystack Documents")
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        by_id: dict[str, Document] = {}
        for doc in documents:  # repeated ids in one batch: the last wins (SKIP: the first)
            if policy != DuplicatePolicy.SKIP or doc.id not in by_id:
                by_id[doc.id] = doc
        if not by_id:
            return 0
        stored = set(self._col.get(list(by_id), limit=None, vectors=False).ids.tolist())
        if stored and policy == DuplicatePolicy.FAIL:
            raise DuplicateDocumentError(
                f"ids already stored: {sorted(stored)[:10]}; nothing was written (use "
                f"policy=DuplicatePolicy.OVERWRITE or SKIP)"
            )
        if policy == DuplicatePolicy.SKIP:
            by_id = {i: d for i, d in by_id.items() if i not in stored}
            if not by_id:
                return 0
        docs = list(by_id.values())
        vectors, metas = self._rows(docs)
        texts = [d.content if d.content is not None else "" for d in docs]
        if policy == DuplicatePolicy.OVERWRITE:  # replaces atomically what exists by then
            self._col.upsert(vectors, ids=list(by_id), metadata=metas, texts=texts)
        else:
            self._col.add(vectors, ids=list(by_id), metadata=metas, texts=texts)
        return len(docs)

    def _rows(self, docs: list[Document]) -> tuple[np.ndarray, list[dict]]:
        """Vectors (placeholders for documents without one) and metadata with the flags."""
        vectors = np.zeros((len(docs), self.embedding_dim), np.float32)
        vectors[:, 0] = 1.0
        metas = []
        for n, doc in enumerate(docs):
            if doc.blob is not None or doc.sparse_embedding is not None:
                raise InvalidInputError(
                    f"document {doc.id!r}: blobs and sparse embeddings are not stored by "
                    f"slimvec; store the text and a dense embedding"
                )
            clash = [k for k in doc.meta if k in _RESERVED]
            if clash:
                raise InvalidInputError(f"document {doc.id!r}: meta keys {clash} are reserved")
            meta = dict(doc.meta)
            if doc.content is None:
                meta[NO_CONTENT] = True
            if doc.embedding is None:
                meta[EMBEDDED] = False
            else:
                v = np.asarray(doc.embedding, np.float32)
                if v.shape != (self.embedding_dim,):
                    raise InvalidInputError(
                        f"document {doc.id!r} has a {v.shape}-shaped embedding; this store "
                        f"holds {self.embedding_dim}-dim vectors (embedding_dim)"
                    )
                vectors[n] = v
                if self.similarity == "cosine":
                    meta[NORM] = float(np.linalg.norm(v.astype(np.float64)))
            metas.append(meta)
        return vectors, metas

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete these ids; ids not stored are ignored."""
        if not document_ids:
            return
        present = self._col.get(list(document_ids), limit=None, vectors=False).ids
        if len(present):
            self._col.delete(list(present))

    def delete_all_documents(self, recreate_index: bool = False) -> None:
        """Delete every document (one commit); ``recreate_index`` also compacts the
        collection, reclaiming the space."""
        live = self._col.live_ids()
        if len(live):
            self._col.delete(list(live))
        if recreate_index:
            self._col.compact()

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        """Delete the documents matching ``filters`` in one atomic commit; returns how many."""
        where = resolve_absent_fields(self._col, convert_filters(filters))
        if where is None:
            raise FilterError("delete_by_filter needs a filter; use delete_all_documents")
        try:
            return self._col.delete(filter=where)
        except InvalidInputError as exc:
            raise FilterError(str(exc)) from exc

    def update_by_filter(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        """Merge ``meta`` into the metadata of the documents matching ``filters`` (every
        document if there are none, as Haystack's in-memory store); returns how many were
        updated. One slimvec call: the rows are matched, read and rewritten under the
        collection's write lock as one log record, so a concurrent writer's change is never
        lost between the read and the write."""
        if not isinstance(meta, dict):
            raise InvalidInputError(f"meta must be a dict, got {meta!r}")
        clash = [k for k in meta if k in _RESERVED]
        if clash:
            raise InvalidInputError(f"meta keys {clash} are reserved")
        where = resolve_absent_fields(self._col, convert_filters(filters))
        try:
            return self._col.update_metadata(filter={} if where is None else where, merge=meta)
        except InvalidInputError as exc:
            if str(exc).startswith("merge"):  # meta itself (not JSON-able), not the filter
                raise
            raise FilterError(str(exc)) from exc

    def embedding_retrieval(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
    ) -> list[Document]:
        """The ``top_k`` documents nearest ``query_embedding`` (with embeddings, matching
        ``filters``), best first, ``score`` set (cosine similarity or inner product)."""
        where = resolve_absent_fields(self._col, convert_filters(filters))
        embedded = {EMBEDDED: {"$exists": False}}
        where = embedded if where is None else {"$and": [embedded, where]}
        if len(self._col) == 0:
            return []
        try:
            res = self._col.search(np.asarray(query_embedding, np.float32), k=top_k, filter=where)
        except InvalidInputError as exc:
            if "holds" in str(exc) or "field" in str(exc):
                raise FilterError(str(exc)) from exc
            raise
        hits = [(i, s) for i, s in zip(res.ids[0].tolist(), res.scores[0].tolist()) if i]
        if not hits:
            return []
        got = self._col.get([i for i, _ in hits], limit=None, vectors=True)
        docs = {d.id: d for d in self._documents(got.ids, got.metadata, got.texts, got.vectors)}
        return [replace(docs[doc_id], score=score) for doc_id, score in hits]


@component
class SlimvecEmbeddingRetriever:
    """Retrieves documents from a :class:`SlimvecDocumentStore` by embedding similarity."""

    def __init__(
        self,
        document_store: SlimvecDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
    ) -> None:
        if not isinstance(document_store, SlimvecDocumentStore):
            raise InvalidInputError("document_store must be a SlimvecDocumentStore")
        self.document_store, self.filters, self.top_k = document_store, filters, top_k
        convert_filters(filters)  # a bad default filter fails here, not at the first query

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            document_store=self.document_store.to_dict(),
            filters=self.filters,
            top_k=self.top_k,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlimvecEmbeddingRetriever:
        params = data["init_parameters"]
        params["document_store"] = SlimvecDocumentStore.from_dict(params["document_store"])
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
    ) -> dict[str, list[Document]]:
        """``filters`` given here replace the retriever's default ones."""
        return {
            "documents": self.document_store.embedding_retrieval(
                query_embedding,
                filters=self.filters if filters is None else filters,
                top_k=self.top_k if top_k is None else top_k,
            )
        }
