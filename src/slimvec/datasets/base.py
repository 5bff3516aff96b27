"""The shape every dataset takes: texts and/or vectors for documents and queries, plus qrels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Dataset:
    """A retrieval set. Row i of ``docs`` is ``doc_ids[i]``; likewise for queries.

    ``qrels`` maps a query id to {doc id: relevance > 0}; it is empty when the set has no
    relevance judgements (then only recall against exact search can be measured).
    """

    name: str
    doc_ids: list[str]
    query_ids: list[str]
    doc_texts: list[str] | None = None
    query_texts: list[str] | None = None
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    docs: np.ndarray | None = None  # (n_docs, dim) float32, when embedded
    queries: np.ndarray | None = None  # (n_queries, dim) float32, when embedded
    model: str | None = None  # name of the model that produced docs/queries

    @property
    def dim(self) -> int | None:
        return None if self.docs is None else int(self.docs.shape[1])
