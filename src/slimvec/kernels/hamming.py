"""Compiled Hamming scan: popcount over packed sign bits, top-k with a bounded buffer.

Documents are scanned in blocks small enough for L1 (``BLOCK`` rows), transposed to word-major
order so the popcount loop over a block's rows vectorises (AVX-512 VPOPCNTQ where present). Every
query in the batch is scored against the cached block before the next block is read, so the
codes stream from memory once per call. Each query keeps a buffer of candidates under a running
distance threshold; when the buffer fills, a histogram of its (small integer) distances gives
the exact ``keep``-th distance, the buffer is cut down to it and the threshold tightens. No
(queries x rows) distance matrix is ever materialised, and nothing is sorted but the winners.

Ties at the cut-off go to the lowest row number, so results are deterministic.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from slimvec.kernels.candidates import collect, part_bounds
from slimvec.kernels.threads import numba_threads, threads_for

#: Rows per block: nwords * BLOCK * 8 bytes of transposed codes stay in L1/L2.
BLOCK = 512
#: Queries per kernel call, bounding the per-part candidate buffers.
MAX_QUERIES = 1024
#: Below this many queries a block is not worth transposing: rows are scored in place.
TRANSPOSE_MIN_QUERIES = 4


@intrinsic
def _popcount64(typingctx, x):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=True, nogil=True)
def _cut(buf_d, buf_r, count, keep, max_dist):
    """Keep the ``keep`` best of ``count`` buffered candidates (in place, order kept).

    Returns (new count, threshold): afterwards only distances < threshold can still enter.
    """
    hist = np.zeros(max_dist + 2, np.int64)
    for c in range(count):
        hist[buf_d[c]] += 1
    threshold = 0
    total = 0
    while total + hist[threshold] < keep:
        total += hist[threshold]
        threshold += 1
    at_threshold = keep - total
    filled = 0
    for c in range(count):
        d = buf_d[c]
        if d < threshold or (d == threshold and at_threshold > 0):
            if d == threshold:
                at_threshold -= 1
            buf_d[filled] = d
            buf_r[filled] = buf_r[c]
            filled += 1
    return filled, threshold


@njit(parallel=True, cache=True, nogil=True)
def _scan_parts(queries, docs, nwords, allow, keep, bounds, buf_d, buf_r, counts):
    """Per doc part p (rows bounds[p]..bounds[p+1]): each query's best ``keep`` rows."""
    nq = queries.shape[0]
    cap = buf_d.shape[2]
    max_dist = nwords * 64
    nparts = bounds.shape[0] - 1
    for p in prange(nparts):
        lo = bounds[p]
        hi = bounds[p + 1]
        block = np.empty((nwords, BLOCK), np.uint64)
        dist = np.empty(BLOCK, np.int32)
        threshold = np.full(nq, max_dist + 1, np.int32)
        count = np.zeros(nq, np.int64)
        for start in range(lo, hi, BLOCK):
            stop = min(hi, start + BLOCK)
            m = stop - start
            transpose = nq >= TRANSPOSE_MIN_QUERIES
            if transpose:
                for j in range(m):
                    for t in range(nwords):
                        block[t, j] = docs[start + j, t]
            for i in range(nq):
                if transpose:
                    for j in range(m):
                        dist[j] = 0
                    for t in range(nwords):
                        qw = queries[i, t]
                        for j in range(m):
                            dist[j] += _popcount64(qw ^ block[t, j])
                else:
                    for j in range(m):
                        acc = 0
                        for t in range(nwords):
                            acc += _popcount64(queries[i, t] ^ docs[start + j, t])
                        dist[j] = acc
                thr = threshold[i]
                c = count[i]
                for j in range(m):
                    if dist[j] < thr and (allow.shape[0] == 0 or allow[start + j]):
                        buf_d[p, i, c] = dist[j]
                        buf_r[p, i, c] = start + j
                        c += 1
                        if c == cap:
                            c, thr = _cut(buf_d[p, i], buf_r[p, i], c, keep, max_dist)
                threshold[i] = thr
                count[i] = c
        for i in range(nq):
            c = count[i]
            if c > keep:
                c, _ = _cut(buf_d[p, i], buf_r[p, i], c, keep, max_dist)
            counts[p, i] = c


@njit(parallel=True, cache=True, nogil=True)
def _merge(buf_d, buf_r, counts, keep, max_dist, rows_out, dist_out):
    """Best ``keep`` over all parts (parts in row order), unordered: the caller sorts
    (numba's argsort would add seconds of compilation)."""
    for i in prange(buf_d.shape[1]):
        cand_d, cand_r = collect(buf_d, buf_r, counts, i)
        c = len(cand_d)
        if c > keep:
            c, _ = _cut(cand_d, cand_r, c, keep, max_dist)
        for f in range(c):
            rows_out[i, f] = cand_r[f]
            dist_out[i, f] = cand_d[f]
        for f in range(c, keep):
            rows_out[i, f] = -1
            dist_out[i, f] = max_dist + 1


def hamming_top(
    queries: np.ndarray, docs: np.ndarray, nwords: int, keep: int, allow: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and Hamming distances of each query's ``keep`` nearest docs (row -1 if none).

    ``queries`` (nq, >= nwords) and ``docs`` (n, >= nwords) are uint64 words; only the first
    ``nwords`` of each row are compared. Rows where ``allow`` is false are never returned.
    """
    n = docs.shape[0]
    nq = queries.shape[0]
    allow_arr = np.empty(0, np.bool_) if allow is None else np.ascontiguousarray(allow)
    max_dist = nwords * 64
    rows = np.empty((nq, keep), np.int64)
    dists = np.empty((nq, keep), np.int64)
    threads = threads_for(n * nq * nwords)
    bounds = part_bounds(n, threads, BLOCK)
    nparts = len(bounds) - 1
    cap = 2 * keep + BLOCK
    for start in range(0, nq, MAX_QUERIES):
        stop = min(nq, start + MAX_QUERIES)
        q = np.ascontiguousarray(queries[start:stop])
        buf_d = np.empty((nparts, stop - start, cap), np.int32)
        buf_r = np.empty((nparts, stop - start, cap), np.int64)
        counts = np.zeros((nparts, stop - start), np.int64)
        with numba_threads(threads):
            _scan_parts(q, docs, nwords, allow_arr, keep, bounds, buf_d, buf_r, counts)
            _merge(buf_d, buf_r, counts, keep, max_dist, rows[start:stop], dists[start:stop])
    order = np.lexsort((rows, dists), axis=-1)
    return np.take_along_axis(rows, order, axis=1), np.take_along_axis(dists, order, axis=1)
