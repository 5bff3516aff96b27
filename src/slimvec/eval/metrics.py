"""Retrieval metrics over ranked result rows, vectorised over queries.

Two kinds of truth, two questions:

* **recall@k against exact search** ("did compression lose neighbours?"): the overlap between
  the first k results and the exact float32 top k, as sets. This is what a spec trades away.
* **nDCG@k, MRR@k, recall@k against qrels** ("are the results relevant?"): graded human or
  synthetic judgements. Compression can only lose here too, but the loss is what users feel.

Results are arrays of document *rows* (positions in the corpus), best first, ``-1`` where a
search returned fewer than k. Judgements are turned into arrays once (:class:`Judgements`) so
every metric is a few NumPy operations over all queries at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.validation import check_k

_CHUNK = 2048  # queries per broadcast block in recall_at_k (bounds memory at nq * k * k)


def _rows(found: np.ndarray, what: str = "found") -> np.ndarray:
    array = np.asarray(found)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise InvalidInputError(
            f"{what} must be a 2-D integer array of result rows (n_queries, k), got "
            f"shape {array.shape} and dtype {array.dtype}"
        )
    return array.astype(np.int64, copy=False)


def _check_k(k: int, width: int, what: str) -> int:
    k = check_k(k)
    if k > width:
        raise InvalidInputError(
            f"k={k} but {what} has only {width} columns; search with k >= {k} first"
        )
    return int(k)


def per_query_recall(found: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Per query, |first k of ``found`` ∩ first k of ``truth``| / |first k of ``truth``|.

    ``truth`` is the exact top k (rows, ``-1`` padded when the corpus holds fewer than k);
    order inside the top k does not matter, only membership.
    """
    found, truth = _rows(found), _rows(truth, "truth")
    if len(found) != len(truth):
        raise InvalidInputError(
            f"found has {len(found)} queries but truth has {len(truth)}; pass the same queries"
        )
    k = _check_k(k, found.shape[1], "found")
    k = _check_k(k, truth.shape[1], "truth")
    f, t = found[:, :k], truth[:, :k]
    valid = t >= 0
    hits = np.empty(len(t), np.int64)
    for start in range(0, len(t), _CHUNK):
        block = slice(start, start + _CHUNK)
        # each true neighbour counts once, however often (if ever) it appears in ``found``
        seen = (t[block, :, None] == f[block, None, :]).any(axis=2) & valid[block]
        hits[block] = seen.sum(axis=1)
    n_true = valid.sum(axis=1)
    return np.where(n_true > 0, hits / np.maximum(n_true, 1), 1.0)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean recall@k of ``found`` against the exact top-k ``truth`` (set overlap)."""
    return float(per_query_recall(found, truth, k).mean())


class Judgements:
    """Qrels as sorted arrays, so gains of any (n_queries, k) result block are one lookup.

    Build with :meth:`from_qrels`. Row ``i`` of every result block is ``query_ids[i]``; result
    entries are document rows, i.e. positions in ``doc_ids``. Judgements on documents that are
    not in the corpus, and relevance <= 0, are ignored (they can never be retrieved).
    """

    def __init__(
        self,
        query_rows: np.ndarray,
        doc_rows: np.ndarray,
        rel: np.ndarray,
        n_docs: int,
        n_queries: int,
    ):
        keys = query_rows.astype(np.int64) * max(n_docs, 1) + doc_rows.astype(np.int64)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._rel = rel.astype(np.float64)[order]
        self._query_rows = query_rows.astype(np.int64)[order]
        self.n_docs = int(n_docs)
        self.n_queries = int(n_queries)
        self.n_relevant = np.bincount(self._query_rows, minlength=n_queries)

    @classmethod
    def from_qrels(
        cls,
        qrels: Mapping[str, Mapping[str, int]],
        query_ids: Sequence[str],
        doc_ids: Sequence[str],
    ) -> Judgements:
        doc_row = {d: i for i, d in enumerate(doc_ids)}
        q_rows, d_rows, rels = [], [], []
        for qi, qid in enumerate(query_ids):
            for did, rel in qrels.get(qid, {}).items():
                row = doc_row.get(did)
                if row is not None and rel > 0:
                    q_rows.append(qi)
                    d_rows.append(row)
                    rels.append(rel)
        return cls(
            np.asarray(q_rows, np.int64),
            np.asarray(d_rows, np.int64),
            np.asarray(rels, np.float64),
            len(doc_ids),
            len(query_ids),
        )

    @property
    def judged(self) -> np.ndarray:
        """Boolean mask of queries with at least one relevant document in the corpus."""
        return self.n_relevant > 0

    def gains(self, found: np.ndarray) -> np.ndarray:
        """Relevance of each result (0 where unjudged or missing), shape of ``found``."""
        found = _rows(found)
        if len(found) != self.n_queries:
            raise InvalidInputError(
                f"found has {len(found)} queries but the judgements cover {self.n_queries}"
            )
        if len(self._keys) == 0:
            return np.zeros(found.shape)
        keys = np.arange(len(found), dtype=np.int64)[:, None] * max(self.n_docs, 1) + found
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        hit = (self._keys[pos] == keys) & (found >= 0)
        return np.where(hit, self._rel[pos], 0.0)

    def ideal(self, k: int) -> np.ndarray:
        """(n_queries, k) relevances of the best possible ranking, for ideal DCG."""
        out = np.zeros((self.n_queries, k))
        if len(self._rel) == 0:
            return out
        order = np.lexsort((-self._rel, self._query_rows))  # by query, then relevance desc
        q = self._query_rows[order]
        first = np.searchsorted(q, q, side="left")
        rank = np.arange(len(q)) - first
        keep = rank < k
        out[q[keep], rank[keep]] = self._rel[order][keep]
        return out

    def _require_judged(self) -> np.ndarray:
        judged = self.judged
        if not judged.any():
            raise InvalidInputError(
                "no query has a relevant document in the corpus; qrel-based metrics need "
                "qrels whose document ids match the corpus ids"
            )
        return judged


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def ndcg_at_k(found: np.ndarray, judgements: Judgements, k: int = 10) -> float:
    """Mean nDCG@k over judged queries, linear gains (gain = relevance grade, as trec_eval).

    DCG@k = sum over ranks r <= k of rel_r / log2(r + 1); divided by the DCG of the ideal
    ordering of that query's judged documents.
    """
    found = _rows(found)
    k = _check_k(k, found.shape[1], "found")
    judged = judgements._require_judged()
    disc = _discounts(k)
    dcg = judgements.gains(found[:, :k]) @ disc
    idcg = judgements.ideal(k) @ disc
    return float((dcg[judged] / idcg[judged]).mean())


def mrr_at_k(found: np.ndarray, judgements: Judgements, k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant result within the top k (0 if none)."""
    found = _rows(found)
    k = _check_k(k, found.shape[1], "found")
    judged = judgements._require_judged()
    relevant = judgements.gains(found[:, :k]) > 0
    first = relevant.argmax(axis=1)
    rr = np.where(relevant.any(axis=1), 1.0 / (first + 1), 0.0)
    return float(rr[judged].mean())


def qrels_recall_at_k(found: np.ndarray, judgements: Judgements, k: int = 10) -> float:
    """Mean |relevant ∩ top k| / |relevant| over judged queries."""
    found = _rows(found)
    k = _check_k(k, found.shape[1], "found")
    judged = judgements._require_judged()
    hits = (judgements.gains(found[:, :k]) > 0).sum(axis=1)
    return float((hits[judged] / judgements.n_relevant[judged]).mean())
