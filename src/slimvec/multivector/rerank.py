"""The multi-vector funnel's two ends as pure functions over arrays.

``fde_shortlist`` is a brute-force first pass over document FDEs (inner product, blocked so the
score matrix stays small); a collection would use its single-vector funnel instead.
``rerank`` scores a shortlist with exact MaxSim over the stored token codes and keeps the top k,
over one array of token codes or over a collection's segments (``SegmentedTokens``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.kernels.maxsim import TokenCodes, maxsim
from slimvec.kernels.topk import blocked_top, top_k
from slimvec.validation import check_k

#: Documents scored per block of the FDE first pass.
BLOCK_DOCS = 8192


@dataclass
class SegmentedTokens:
    """Token codes split over consecutive segments, as a collection stores them.

    Segment ``s`` holds rows ``starts[s]`` up to the next start; ``open(s)`` returns its
    :class:`TokenCodes` (local rows from 0). Only segments holding a candidate are opened.
    """

    starts: np.ndarray
    open: Callable[[int], TokenCodes]


def fde_shortlist(query_fdes: np.ndarray, doc_fdes: np.ndarray, n: int) -> np.ndarray:
    """(nq, min(n, n_docs)) indices of the documents with the largest FDE inner products
    (equal products: the lower index first)."""
    q = np.ascontiguousarray(query_fdes, np.float32)
    if q.ndim != 2 or doc_fdes.ndim != 2 or q.shape[1] != doc_fdes.shape[1]:
        raise InvalidInputError(
            f"query FDEs {q.shape} and document FDEs {doc_fdes.shape} must be 2-D with the "
            f"same width; encode both with the same FDE"
        )
    n = min(int(n), doc_fdes.shape[0])
    if n < 1:
        raise InvalidInputError(f"the shortlist needs n >= 1, got {n}")
    ids, _ = blocked_top(
        lambda lo, hi: q @ np.asarray(doc_fdes[lo:hi], np.float32).T,
        doc_fdes.shape[0],
        len(q),
        n,
        block=BLOCK_DOCS,
        ties_by_position=True,
    )
    return ids


def rerank(
    query_tokens: np.ndarray,
    query_offsets: np.ndarray,
    docs: TokenCodes | SegmentedTokens,
    candidates: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim over each query's ``candidates`` row (-1 = padding); returns the top ``k``
    as (doc indices, scores), both (nq, k), best first (equal scores: earlier candidate first),
    padded with -1 / -inf. With ``SegmentedTokens`` the candidates are global row numbers."""
    k = check_k(k)
    candidates = np.asarray(candidates)
    if isinstance(docs, TokenCodes):
        scores = maxsim(query_tokens, query_offsets, docs, candidates)
    else:
        scores = _segmented_maxsim(query_tokens, query_offsets, docs, candidates)
    return top_k(scores, candidates.reshape(scores.shape), k, ties_by_position=True)


def _segmented_maxsim(
    query_tokens: np.ndarray,
    query_offsets: np.ndarray,
    docs: SegmentedTokens,
    rows: np.ndarray,
) -> np.ndarray:
    """MaxSim of each query against its candidate ``rows`` spread over segments (one kernel
    call per segment that holds any of them)."""
    if rows.ndim == 1:
        rows = rows[None, :]
    scores = np.full(rows.shape, -np.inf, np.float32)
    valid = rows >= 0
    seg = np.searchsorted(docs.starts, np.where(valid, rows, 0), side="right") - 1
    for s in np.unique(seg[valid]):
        local = np.where(valid & (seg == s), rows - docs.starts[s], -1)
        found = maxsim(query_tokens, query_offsets, docs.open(int(s)), local)
        scores = np.where(local >= 0, found, scores)
    return scores
