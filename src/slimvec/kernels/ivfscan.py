"""Compiled scan of the probed inverted lists of bit-plane codes, with fused top-k.

An IVF segment stores its codes grouped by list (``offsets[l]:offsets[l + 1]`` are list l's
positions, ``perm`` maps a position to the segment's local row), each list's blocks of
``BLOCK`` rows stored word-major (``block_major``). Each query reads only the
lists it probes, so unlike ``bitplane.py`` (every query against cached blocks of every row)
the work is split by list: each block of a list is scored against every query that probes
the list, with the same bit-plane popcount form::

    score = qa[i, j] + w[pos] * (qdelta[i] * sum_p pscale_p * acc_p + qsum[i] * gscale)
            + qlo[i] * lterm[pos]

where ``qa[i, j]`` is the per-(query, probed list) offset (RaBitQ residual codes: <q, c_l>).
Candidates go to a bounded buffer under a running threshold (``kernels.candidates``). The scan also
counts, per query, how many allowed rows it saw: a filtered search widens its probes or falls
back to a flat scan when that is fewer than the shortlist it needs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from slimvec.kernels.bitplane import BLOCK
from slimvec.kernels.candidates import close_part, merge_parts, push
from slimvec.kernels.hamming import _popcount64
from slimvec.kernels.threads import numba_threads, threads_for

#: Queries scanned per kernel call (bounds the per-part candidate buffers).
MAX_QUERIES = 256


@njit(parallel=True, cache=True, nogil=True)
def _scan_lists(
    qplanes, qa, qdelta, qlo, qsum, offsets, lq_off, lq_query, lq_probe, perm, docs, planes,
    pwords, pscale, w, lterm, gscale, allow, keep, part_lists, buf_s, buf_r, counts, seen,
):  # fmt: skip
    nq, qbits, _ = qplanes.shape
    words = planes * pwords
    for part in prange(part_lists.shape[0] - 1):
        block = np.empty((words, BLOCK), np.uint64)
        acc = np.empty((planes, BLOCK), np.int64)
        score = np.empty(BLOCK, np.float32)
        ok = np.empty(BLOCK, np.bool_)
        threshold = np.full(nq, -np.inf, np.float32)
        count = np.zeros(nq, np.int64)
        for lst in range(part_lists[part], part_lists[part + 1]):
            first, last = lq_off[lst], lq_off[lst + 1]
            if first == last:
                continue
            for start in range(offsets[lst], offsets[lst + 1], BLOCK):
                m = min(offsets[lst + 1], start + BLOCK) - start
                allowed = 0
                for j in range(m):
                    ok[j] = allow.shape[0] == 0 or allow[perm[start + j]]
                    allowed += ok[j]
                if allowed == 0:
                    continue
                word0 = start * words
                for t in range(words):  # a contiguous copy: the loop below then vectorises
                    for j in range(m):
                        block[t, j] = docs[word0 + t * m + j]
                for e in range(first, last):
                    i = lq_query[e]
                    seen[part, i] += allowed
                    for p in range(planes):
                        for j in range(m):
                            acc[p, j] = 0
                        for t in range(pwords):
                            row = p * pwords + t
                            for k in range(qbits):
                                qw = qplanes[i, k, t]
                                for j in range(m):
                                    acc[p, j] += _popcount64(qw & block[row, j]) << k
                    base = qa[i, lq_probe[e]]
                    for j in range(m):
                        total = 0.0
                        for p in range(planes):
                            total += pscale[p] * acc[p, j]
                        score[j] = (
                            base
                            + w[start + j] * (qdelta[i] * total + qsum[i] * gscale)
                            + qlo[i] * lterm[start + j]
                        )
                    thr = threshold[i]
                    c = count[i]
                    for j in range(m):
                        if score[j] > thr and ok[j]:
                            c, thr = push(
                                buf_s, buf_r, part, i, c, thr, score[j], perm[start + j], keep
                            )
                    threshold[i] = thr
                    count[i] = c
        close_part(buf_s, buf_r, part, count, keep, counts)


@njit(cache=True, nogil=True)
def _block_major(words, offsets, out):
    width = words.shape[1]
    for lst in range(len(offsets) - 1):
        for start in range(offsets[lst], offsets[lst + 1], BLOCK):
            m = min(offsets[lst + 1], start + BLOCK) - start
            base = start * width
            for j in range(m):
                for t in range(width):
                    out[base + t * m + j] = words[start + j, t]


def block_major(words: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(n, width) code words in list order -> the flat layout ``probe_top`` reads: each list's
    rows in blocks of ``BLOCK``, a block stored word by word (``width`` runs of its m rows),
    so the scan's inner loop over a block's rows reads contiguous words (no transposing at
    query time, as FAISS's FastScan lays out its codes)."""
    out = np.empty(words.size, np.uint64)
    _block_major(np.ascontiguousarray(words), offsets, out)
    return out


def probe_top(
    qplanes: np.ndarray,
    qa: np.ndarray,
    qdelta: np.ndarray,
    qlo: np.ndarray,
    qsum: np.ndarray,
    probes: np.ndarray,
    offsets: np.ndarray,
    perm: np.ndarray,
    docs: np.ndarray,
    planes: int,
    pwords: int,
    pscale: np.ndarray,
    w: np.ndarray,
    lterm: np.ndarray,
    gscale: float,
    keep: int,
    allow: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local rows, scores (best first, -1 / -inf padded to ``keep``) and allowed rows seen, per
    query, over the lists in ``probes`` (nq, nprobe).

    ``docs`` the (n * planes * pwords,) uint64 code words in list order, each list's blocks
    transposed (``block_major``); ``w``, ``lterm`` (n,) per-position scalars (strided views are
    fine); ``qa`` (nq, nprobe) per-(query, list) offsets; ``allow`` by local row (``perm``'s
    values) or None. The scan runs list by list (parts of consecutive lists in parallel),
    each block of a list scored against every query probing that list.
    """
    nq, nprobe = probes.shape
    nlist = len(offsets) - 1
    rows = np.empty((nq, keep), np.int64)
    scores = np.empty((nq, keep), np.float32)
    seen = np.zeros(nq, np.int64)
    allow_arr = np.empty(0, np.bool_) if allow is None else np.ascontiguousarray(allow)
    f32 = np.float32
    for lo in range(0, nq, MAX_QUERIES):
        hi = min(nq, lo + MAX_QUERIES)
        chunk = probes[lo:hi]
        # the queries probing each list, as (list -> [query, probe index]) in CSR form
        order = np.argsort(chunk, axis=None, kind="stable")
        lq_query = (order // nprobe).astype(np.int64)
        lq_probe = (order % nprobe).astype(np.int64)
        lq_off = np.zeros(nlist + 1, np.int64)
        np.cumsum(np.bincount(chunk.ravel(), minlength=nlist), out=lq_off[1:])
        work = np.diff(offsets) * np.diff(lq_off)
        total = int(work.sum())
        threads = threads_for(total * planes * pwords * qplanes.shape[1])
        nparts = 1 if threads == 1 else 4 * threads
        cuts = np.searchsorted(np.cumsum(work), np.arange(1, nparts) * (total / nparts))
        part_lists = np.concatenate([[0], cuts + 1, [nlist]]).astype(np.int64)
        part_lists = np.maximum.accumulate(np.minimum(part_lists, nlist))
        cap = 2 * keep + BLOCK
        buf_s = np.empty((nparts, hi - lo, cap), np.float32)
        buf_r = np.empty((nparts, hi - lo, cap), np.int64)
        counts = np.zeros((nparts, hi - lo), np.int64)
        part_seen = np.zeros((nparts, hi - lo), np.int64)
        with numba_threads(threads):
            _scan_lists(
                np.ascontiguousarray(qplanes[lo:hi]), qa[lo:hi].astype(f32),
                qdelta[lo:hi].astype(f32), qlo[lo:hi].astype(f32), qsum[lo:hi].astype(f32),
                offsets, lq_off, lq_query, lq_probe, perm, docs, planes, pwords,
                pscale.astype(f32), w, lterm, f32(gscale), allow_arr, keep, part_lists,
                buf_s, buf_r, counts, part_seen,
            )  # fmt: skip
            merge_parts(buf_s, buf_r, counts, keep, rows[lo:hi], scores[lo:hi])
        seen[lo:hi] = part_seen.sum(axis=0)
    return rows, scores, seen
