"""The multi-vector funnel's two ends as pure functions over arrays.

``fde_shortlist`` is a brute-force first pass over document FDEs (inner product, blocked so the
score matrix stays small); a collection would use its single-vector funnel instead.
``rerank`` scores a shortlist with exact MaxSim over the stored token codes and keeps the top k.
"""

from __future__ import annotations

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.kernels.maxsim import TokenCodes, maxsim, top_k

#: Documents scored per block of the FDE first pass.
BLOCK_DOCS = 8192


def fde_shortlist(query_fdes: np.ndarray, doc_fdes: np.ndarray, n: int) -> np.ndarray:
    """(nq, min(n, n_docs)) indices of the documents with the largest FDE inner products."""
    q = np.ascontiguousarray(query_fdes, np.float32)
    if q.ndim != 2 or doc_fdes.ndim != 2 or q.shape[1] != doc_fdes.shape[1]:
        raise InvalidInputError(
            f"query FDEs {q.shape} and document FDEs {doc_fdes.shape} must be 2-D with the "
            f"same width; encode both with the same FDE"
        )
    n = min(int(n), doc_fdes.shape[0])
    if n < 1:
        raise InvalidInputError(f"the shortlist needs n >= 1, got {n}")
    best_ids = np.empty((len(q), 0), np.int64)
    best = np.empty((len(q), 0), np.float32)
    for lo in range(0, doc_fdes.shape[0], BLOCK_DOCS):
        block = np.asarray(doc_fdes[lo : lo + BLOCK_DOCS], np.float32)
        scores = np.concatenate([best, q @ block.T], axis=1)
        ids = np.concatenate(
            [best_ids, np.broadcast_to(np.arange(lo, lo + len(block)), (len(q), len(block)))],
            axis=1,
        )
        keep = min(n, scores.shape[1])
        part = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        best = np.take_along_axis(scores, part, axis=1)
        best_ids = np.take_along_axis(ids, part, axis=1)
    order = np.argsort(-best, axis=1, kind="stable")
    return np.take_along_axis(best_ids, order, axis=1)


def rerank(
    query_tokens: np.ndarray,
    query_offsets: np.ndarray,
    docs: TokenCodes,
    candidates: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim over each query's ``candidates`` row (-1 = padding); returns the top ``k``
    as (doc indices, scores), both (nq, k), best first, padded with -1 / -inf."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    candidates = np.asarray(candidates)
    scores = maxsim(query_tokens, query_offsets, docs, candidates)
    return top_k(scores, candidates.reshape(scores.shape), int(k))
