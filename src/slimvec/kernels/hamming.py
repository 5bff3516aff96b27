"""Compiled Hamming scan: popcount over packed sign bits, top-k by counting (no sort).

Distances are small integers (at most the number of bits), so each query's shortlist is found
with a histogram: one pass counts distances, the threshold distance falls out of the running
sum, a second pass collects rows under it. That is O(n) per query and needs no heap.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

_DOC_BLOCK = 256

#: Query rows scored per kernel call, bounding the (queries x rows) distance matrix.
MAX_DISTANCE_CELLS = 128 * 1024 * 1024


@intrinsic
def _popcount64(typingctx, x):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return sig, codegen


@njit(parallel=True, cache=True, nogil=True)
def _distances(queries, docs, nwords, allow, out):
    """out[i, j] = popcount(queries[i] ^ docs[j]); blocks of docs stay in L1 across queries."""
    n = docs.shape[0]
    nq = queries.shape[0]
    blocked = nwords * 64 + 1
    masked = allow.shape[0] > 0
    nblocks = (n + _DOC_BLOCK - 1) // _DOC_BLOCK
    for blk in prange(nblocks):
        j0 = blk * _DOC_BLOCK
        j1 = min(n, j0 + _DOC_BLOCK)
        for i in range(nq):
            for j in range(j0, j1):
                acc = 0
                for t in range(nwords):
                    acc += _popcount64(queries[i, t] ^ docs[j, t])
                out[i, j] = acc
        if masked:
            for j in range(j0, j1):
                if not allow[j]:
                    for i in range(nq):
                        out[i, j] = blocked


@njit(parallel=True, cache=True, nogil=True)
def _select(dist, keep, max_dist, rows_out, dist_out):
    nq, n = dist.shape
    for i in prange(nq):
        hist = np.zeros(max_dist + 2, np.int64)
        for j in range(n):
            hist[dist[i, j]] += 1
        threshold = 0
        total = 0
        while threshold <= max_dist and total + hist[threshold] < keep:
            total += hist[threshold]
            threshold += 1
        at_threshold = keep - total  # rows to take at exactly `threshold`
        filled = 0
        for j in range(n):
            d = dist[i, j]
            if d < threshold or (d == threshold and at_threshold > 0 and d <= max_dist):
                if d == threshold:
                    at_threshold -= 1
                rows_out[i, filled] = j
                dist_out[i, filled] = d
                filled += 1
                if filled == keep:
                    break
        for f in range(filled, keep):
            rows_out[i, f] = -1
            dist_out[i, f] = max_dist + 1
        order = np.argsort(dist_out[i, :filled], kind="mergesort")
        rows_out[i, :filled] = rows_out[i, :filled][order]
        dist_out[i, :filled] = dist_out[i, :filled][order]


def hamming_top(
    queries: np.ndarray, docs: np.ndarray, nwords: int, keep: int, allow: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and Hamming distances of each query's ``keep`` nearest docs (row -1 if none).

    ``queries`` (nq, >= nwords) and ``docs`` (n, >= nwords) are uint64 words; only the first
    ``nwords`` of each row are compared.
    """
    n = docs.shape[0]
    nq = queries.shape[0]
    allow_arr = np.empty(0, np.bool_) if allow is None else np.ascontiguousarray(allow)
    max_dist = nwords * 64
    rows = np.empty((nq, keep), np.int64)
    dists = np.empty((nq, keep), np.int64)
    chunk = max(1, MAX_DISTANCE_CELLS // max(n, 1))
    for start in range(0, nq, chunk):
        stop = min(nq, start + chunk)
        dist = np.empty((stop - start, n), np.uint16)
        _distances(queries[start:stop], docs, nwords, allow_arr, dist)
        _select(dist, keep, max_dist, rows[start:stop], dists[start:stop])
    return rows, dists


def set_threads(n: int) -> None:
    """Cap the threads the compiled kernels use (numba's pool)."""
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
