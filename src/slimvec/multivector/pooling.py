"""Token pooling at index time: fewer stored token vectors per document, almost the same MaxSim.

Clavié, Chaffin & Adams (2024), "Reducing the Footprint of Multi-Vector Retrieval with Minimal
Performance Impact via Token Pooling": cluster each document's token vectors hierarchically
(Ward linkage) into ``ceil(n_tokens / pool_factor)`` groups and store each group's mean.
Neighbouring tokens of a text are often near-duplicates, so a query token's best match loses
little when they merge; the stored vectors (and MaxSim cost) shrink by about ``pool_factor``.

Clustering is per document (SciPy's Ward linkage, O(n^2) in the document's tokens); cutting the
trees and forming the means of all documents are compiled passes over the whole batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from slimvec.transforms.base import normalise_rows
from slimvec.transforms.fde import check_packed, pack_token_sets
from slimvec.validation import check_int


class TokenPooler:
    """Merge each document's tokens into ``ceil(n / pool_factor)`` Ward clusters (means).

    ``normalise`` re-scales pooled vectors to unit norm, as cosine MaxSim expects; set it False
    for raw inner-product tokens. ``pool_factor=1`` returns the input unchanged.
    """

    def __init__(self, pool_factor: int = 2, normalise: bool = True):
        pool_factor = check_int(pool_factor, "pool_factor")
        self.pool_factor = int(pool_factor)
        self.normalise = bool(normalise)

    def params(self) -> dict[str, Any]:
        return {"pool_factor": self.pool_factor, "normalise": self.normalise}

    def transform(self, tokens: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pool CSR token sets (float32 ``tokens``, int64 ``offsets``); returns the same layout."""
        tokens = np.ascontiguousarray(tokens, np.float32)
        offsets = np.ascontiguousarray(offsets, np.int64)
        check_packed(tokens, offsets, tokens.shape[1] if tokens.ndim == 2 else -1)
        if self.pool_factor == 1:
            return tokens, offsets
        from scipy.cluster.hierarchy import linkage  # 0.7 s to import: only when pooling

        lengths = np.diff(offsets)
        targets = -(-lengths // self.pool_factor)  # ceil
        # Ward merge trees of the documents that shrink; SciPy builds each from the condensed
        # Euclidean distances (compiled, below).
        pooled_docs = np.flatnonzero(targets < lengths)
        trees = np.zeros((max(len(tokens) - len(lengths), 1), 2), np.int64)
        for doc in pooled_docs:
            lo, hi = offsets[doc], offsets[doc + 1]
            tree = linkage(_condensed_distances(tokens[lo:hi]), method="ward")
            trees[lo - doc : hi - doc - 1] = tree[:, :2]
        labels = np.empty(len(tokens), np.int64)
        first_label = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(np.minimum(targets, lengths), out=first_label[1:])
        _cut_trees(trees, offsets, targets, first_label, labels)
        pooled = _cluster_means(tokens, labels, int(first_label[-1]))
        if self.normalise:
            pooled = normalise_rows(pooled)
        return np.ascontiguousarray(pooled, np.float32), first_label

    def transform_sets(self, token_sets: Any, dim: int) -> list[np.ndarray]:
        """Pool a list of (n_i, dim) token matrices; returns a list of pooled matrices."""
        tokens, offsets = pack_token_sets(token_sets, dim, "documents")
        pooled, new_offsets = self.transform(tokens, offsets)
        return np.split(pooled, new_offsets[1:-1])


@njit(cache=True, fastmath={"reassoc", "contract"})
def _condensed_distances(x):
    """Pairwise Euclidean distances in SciPy's condensed order, float64 accumulation.

    Compiled rather than a BLAS Gram matrix: for ~80 x 384 inputs the per-call cost of a
    threaded BLAS (and its stalls when the other core is busy) dominated the pooling time.
    """
    n, dim = x.shape
    sq = np.zeros(n)
    for i in range(n):
        acc = 0.0
        for d in range(dim):
            acc += np.float64(x[i, d]) * x[i, d]
        sq[i] = acc
    out = np.empty(n * (n - 1) // 2)
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            acc = 0.0
            for d in range(dim):
                acc += np.float64(x[i, d]) * x[j, d]
            out[k] = np.sqrt(max(sq[i] + sq[j] - 2.0 * acc, 0.0))
            k += 1
    return out


@njit(cache=True)
def _cut_trees(trees, offsets, targets, first_label, labels):
    """Cluster labels from each document's merge tree, cut to ``targets[doc]`` clusters.

    SciPy's Ward trees list merges by increasing height, so applying the first ``n - target``
    merges (union-find) leaves exactly ``target`` clusters; labels are numbered from
    ``first_label[doc]`` in order of first appearance. Documents kept whole map token to itself.
    """
    for doc in range(len(targets)):
        lo = offsets[doc]
        n = offsets[doc + 1] - lo
        want = targets[doc]
        if want >= n:
            for t in range(n):
                labels[lo + t] = first_label[doc] + t
            continue
        parent = np.arange(2 * n - 1)
        base = lo - doc  # this document's n - 1 merges start here
        for step in range(n - want):
            a = trees[base + step, 0]
            b = trees[base + step, 1]
            parent[a] = n + step
            parent[b] = n + step
        local = np.full(2 * n - 1, -1, np.int64)
        made = 0
        for t in range(n):
            root = t
            while parent[root] != root:
                root = parent[root]
            if local[root] < 0:
                local[root] = made
                made += 1
            labels[lo + t] = first_label[doc] + local[root]


@njit(cache=True)
def _cluster_means(tokens, labels, n_clusters):
    """Mean of the tokens sharing each label (every label in 0..n_clusters-1 is used)."""
    sums = np.zeros((n_clusters, tokens.shape[1]), np.float32)
    counts = np.zeros(n_clusters, np.int64)
    for t in range(tokens.shape[0]):
        c = labels[t]
        counts[c] += 1
        for d in range(tokens.shape[1]):
            sums[c, d] += tokens[t, d]
    for c in range(n_clusters):
        inv = np.float32(1.0) / np.float32(counts[c])
        for d in range(tokens.shape[1]):
            sums[c, d] *= inv
    return sums
