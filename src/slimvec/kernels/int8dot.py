"""Compiled int8 scan: integer dot products with int32 accumulation and fused top-k.

Documents are uint8 codes (``codecs/int8.py``); the query, already multiplied by the
per-dimension step, is quantised to int8 with one scale per query. Then
score = qscale * sum_t qcode_t * code_t + offset, all in integers but the last multiply-add:
255 * 127 * 65,536 dims still fits int32. The dot loop is written so LLVM turns it into packed
16-bit multiply-adds (``pmaddwd``), and no float temporary array is made. Blocks of rows are
scored against every query while they sit in L1/L2, and each query keeps a bounded candidate
buffer under a running threshold, as in ``bitplane.py`` (whose cut and merge this reuses).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from slimvec.kernels.candidates import close_part, merge_parts, part_bounds, push
from slimvec.kernels.threads import numba_threads, threads_for

BLOCK = 128
QGROUP = 4  # queries scored together: each loaded code value feeds four accumulators
MAX_QUERIES = 1024


@njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _scan_parts(qcodes, qscale, offset, docs, allow, keep, bounds, buf_s, buf_r, counts):
    nq, d = qcodes.shape
    nparts = bounds.shape[0] - 1
    for part in prange(nparts):
        lo = bounds[part]
        hi = bounds[part + 1]
        threshold = np.full(nq, -np.inf, np.float32)
        count = np.zeros(nq, np.int64)
        qf = qcodes.astype(np.float32)
        blk = np.empty((d, BLOCK), np.float32)
        acc = np.empty((QGROUP, BLOCK), np.float32)
        for start in range(lo, hi, BLOCK):
            stop = min(hi, start + BLOCK)
            m = stop - start
            for j in range(m):
                for t in range(d):
                    blk[t, j] = docs[start + j, t]
            for i0 in range(0, nq, QGROUP):
                g = min(QGROUP, nq - i0)
                for a in range(QGROUP):
                    for j in range(BLOCK):
                        acc[a, j] = 0.0
                if g == QGROUP:
                    for t in range(d):
                        q0 = qf[i0, t]
                        q1 = qf[i0 + 1, t]
                        q2 = qf[i0 + 2, t]
                        q3 = qf[i0 + 3, t]
                        for j in range(BLOCK):
                            v = blk[t, j]
                            acc[0, j] += v * q0
                            acc[1, j] += v * q1
                            acc[2, j] += v * q2
                            acc[3, j] += v * q3
                else:
                    for a in range(g):
                        for t in range(d):
                            qv = qf[i0 + a, t]
                            for j in range(BLOCK):
                                acc[a, j] += blk[t, j] * qv
                for a in range(g):
                    i = i0 + a
                    thr = threshold[i]
                    c = count[i]
                    for j in range(m):
                        s = np.float32(qscale[i] * acc[a, j] + offset[i])
                        if s > thr and (allow.shape[0] == 0 or allow[start + j]):
                            c, thr = push(buf_s, buf_r, part, i, c, thr, s, start + j, keep)
                    threshold[i] = thr
                    count[i] = c
        close_part(buf_s, buf_r, part, count, keep, counts)


def quantise_int8(weighted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 codes and one scale per row: weighted ~ scale * codes."""
    peak = np.abs(weighted).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.rint(weighted / scale[:, None]).astype(np.int8)
    return codes, scale


def int8_top(
    qcodes: np.ndarray,
    qscale: np.ndarray,
    offset: np.ndarray,
    docs: np.ndarray,
    keep: int,
    allow: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and scores (qscale * <qcode, doc> + offset) of each query's ``keep`` best docs.

    ``qcodes`` (nq, d) int8, ``docs`` (n, d) uint8. Row -1 / score -inf where fewer rows
    are allowed than ``keep``.
    """
    n, d = docs.shape
    nq = len(qcodes)
    allow_arr = np.empty(0, np.bool_) if allow is None else np.ascontiguousarray(allow)
    rows = np.empty((nq, keep), np.int64)
    scores = np.empty((nq, keep), np.float32)
    threads = threads_for(n * nq * d // 8)
    bounds = part_bounds(n, threads, BLOCK)
    nparts = len(bounds) - 1
    cap = 2 * keep + BLOCK
    for start in range(0, nq, MAX_QUERIES):
        stop = min(nq, start + MAX_QUERIES)
        buf_s = np.empty((nparts, stop - start, cap), np.float32)
        buf_r = np.empty((nparts, stop - start, cap), np.int64)
        counts = np.zeros((nparts, stop - start), np.int64)
        with numba_threads(threads):
            _scan_parts(
                np.ascontiguousarray(qcodes[start:stop]),
                qscale[start:stop].astype(np.float32),
                offset[start:stop].astype(np.float32),
                np.ascontiguousarray(docs),
                allow_arr,
                keep,
                bounds,
                buf_s,
                buf_r,
                counts,
            )
            merge_parts(buf_s, buf_r, counts, keep, rows[start:stop], scores[start:stop])
    return rows, scores
