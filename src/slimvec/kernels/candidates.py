"""Bounded per-query candidate buffers, shared by the compiled scans (``bitplane``,
``int8dot``, ``ivfscan``).

A parallel scan splits the rows into parts. Each part keeps, per query, a buffer of
(score, row) candidates under a running threshold: a candidate enters only above it, and a
full buffer is cut to its best ``keep`` (a partition, not a sort), which raises the threshold
to the cut-off. ``merge_parts`` then takes the best ``keep`` over all parts, best first. Ties
go to the lowest row everywhere, so results do not depend on the number of threads.

Selection is a hand-written quickselect and the final order a NumPy sort outside the
compiled code: numba's own ``np.partition`` and ``np.argsort`` cost 11 s and 3.5 s of
compilation per signature, most of a cold test run's first minute.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def kth_largest(values, count, keep):
    """The ``keep``-th largest of ``values[:count]`` (Hoare's quickselect on a copy)."""
    a = values[:count].copy()
    k = count - keep
    lo, hi = 0, count - 1
    while lo < hi:
        x, y, z = a[lo], a[(lo + hi) // 2], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@njit(cache=True, nogil=True)
def cut(buf_s, buf_r, count, keep):
    """Keep the ``keep`` best of ``count`` buffered candidates (in place, order kept).

    Returns (new count, threshold): afterwards only scores > threshold can still enter
    (equal scores come later in row order and lose the tie).
    """
    kth = kth_largest(buf_s, count, keep)
    above = 0
    for c in range(count):
        if buf_s[c] > kth:
            above += 1
    at_kth = keep - above
    filled = 0
    for c in range(count):
        s = buf_s[c]
        if s > kth or (s == kth and at_kth > 0):
            if s == kth:
                at_kth -= 1
            buf_s[filled] = s
            buf_r[filled] = buf_r[c]
            filled += 1
    return filled, kth


@njit(cache=True, nogil=True)
def push(buf_s, buf_r, part, i, count, threshold, score, row, keep):
    """Buffer one candidate of query ``i`` in ``part`` (the caller checked it beats
    ``threshold``); a full buffer is cut. Returns the new (count, threshold)."""
    buf_s[part, i, count] = score
    buf_r[part, i, count] = row
    count += 1
    if count == buf_s.shape[2]:
        count, threshold = cut(buf_s[part, i], buf_r[part, i], count, keep)
    return count, threshold


@njit(cache=True, nogil=True)
def close_part(buf_s, buf_r, part, count, keep, counts):
    """End of a part's scan: cut each query's buffer to ``keep``, record the counts."""
    for i in range(count.shape[0]):
        c = count[i]
        if c > keep:
            c, _ = cut(buf_s[part, i], buf_r[part, i], c, keep)
        counts[part, i] = c


#: From this many queries the merge runs on every core; for fewer, waking the threads costs
#: more than the work (and a descheduled worker stalls a single query on a busy machine).
PARALLEL_QUERIES = 16
#: ``best_columns`` of fewer scores runs on one thread (~1 ms of work).
SERIAL_SCORES = 1 << 20


def merge_parts(buf_s, buf_r, counts, keep, rows_out, scores_out) -> None:
    """Best ``keep`` over all parts (parts in row order), best first, ties by lowest row;
    missing places are row -1, score -inf."""
    best = _best_parallel if buf_s.shape[1] >= PARALLEL_QUERIES else _best_serial
    best(buf_s, buf_r, counts, keep, rows_out, scores_out)
    order = np.lexsort((rows_out, -scores_out), axis=-1)
    at = np.arange(len(order))[:, None]  # plain indexing: take_along_axis costs ~15 us a call
    rows_out[:] = rows_out[at, order]
    scores_out[:] = scores_out[at, order]


@njit(cache=True, nogil=True)
def collect(buf, buf_r, counts, i):
    """Query ``i``'s buffered candidates of every part, parts in order: (values, rows)."""
    total = 0
    for p in range(buf.shape[0]):
        total += counts[p, i]
    values = np.empty(total, buf.dtype)
    rows = np.empty(total, np.int64)
    c = 0
    for p in range(buf.shape[0]):
        for s in range(counts[p, i]):
            values[c] = buf[p, i, s]
            rows[c] = buf_r[p, i, s]
            c += 1
    return values, rows


@njit(cache=True, nogil=True)
def _best_of_query(buf_s, buf_r, counts, keep, rows_out, scores_out, i):
    """Query ``i``'s best ``keep`` over all parts, unordered; missing places -1 / -inf."""
    cand_s, cand_r = collect(buf_s, buf_r, counts, i)
    c = len(cand_s)
    if c > keep:
        c, _ = cut(cand_s, cand_r, c, keep)
    for f in range(c):
        rows_out[i, f] = cand_r[f]
        scores_out[i, f] = cand_s[f]
    for f in range(c, keep):
        rows_out[i, f] = -1
        scores_out[i, f] = -np.inf


@njit(cache=True, nogil=True)
def _best_serial(buf_s, buf_r, counts, keep, rows_out, scores_out):
    for i in range(buf_s.shape[1]):
        _best_of_query(buf_s, buf_r, counts, keep, rows_out, scores_out, i)


@njit(parallel=True, cache=True, nogil=True)
def _best_parallel(buf_s, buf_r, counts, keep, rows_out, scores_out):
    for i in prange(buf_s.shape[1]):
        _best_of_query(buf_s, buf_r, counts, keep, rows_out, scores_out, i)


def part_bounds(n: int, threads: int, block: int) -> np.ndarray:
    """Row ranges of the parts a parallel scan splits ``n`` rows into (several per thread)."""
    nparts = max(1, min(4 * threads, -(-n // block))) if threads > 1 else 1
    return np.minimum(np.arange(nparts + 1, dtype=np.int64) * (-(-n // nparts)), n)


@njit(cache=True, nogil=True)
def _best_columns_of(row, keep, out):
    """``out[:keep]`` = columns of ``row``'s ``keep`` largest values, unordered: one pass
    through a bounded buffer under a rising threshold (most values fail one comparison);
    ties go to the lowest column; places left (fewer than ``keep`` values above -inf) take
    the first remaining columns."""
    cap = 2 * keep + 32
    buf_s = np.empty(cap, row.dtype)
    buf_r = np.empty(cap, np.int64)
    count, threshold = 0, -np.inf
    for c in range(row.shape[0]):
        s = row[c]
        if s > threshold:
            buf_s[count] = s
            buf_r[count] = c
            count += 1
            if count == cap:
                count, threshold = cut(buf_s, buf_r, count, keep)
    if count > keep:
        count, _ = cut(buf_s, buf_r, count, keep)
    for f in range(count):
        out[f] = buf_r[f]
    if count < keep:  # the rest are -inf (or NaN): any of them, lowest columns first
        taken = np.zeros(row.shape[0], np.bool_)
        for f in range(count):
            taken[out[f]] = True
        c = 0
        for f in range(count, keep):
            while taken[c]:
                c += 1
            out[f] = c
            c += 1


@njit(cache=True, nogil=True)
def _best_columns_serial(scores, keep, out):
    for i in range(scores.shape[0]):
        _best_columns_of(scores[i], keep, out[i])


@njit(parallel=True, cache=True, nogil=True)
def _best_columns_parallel(scores, keep, out):
    for i in prange(scores.shape[0]):
        _best_columns_of(scores[i], keep, out[i])


def best_columns(scores: np.ndarray, keep: int) -> np.ndarray:
    """(nq, keep) columns of each row's ``keep`` largest float32 ``scores``, unordered (ties
    to the lowest column); ``keep`` < columns. What ``np.argpartition`` returns: one row of
    65,536 takes 45 us here and 918 there, 200 such rows 5 ms and 167."""
    out = np.empty((scores.shape[0], keep), np.int64)
    scores = np.ascontiguousarray(scores)
    if scores.shape[0] >= PARALLEL_QUERIES and scores.size > SERIAL_SCORES:
        _best_columns_parallel(scores, keep, out)
    else:
        _best_columns_serial(scores, keep, out)
    return out
