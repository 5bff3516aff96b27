"""The flat first pass over RaBitQ codes in the table-scan layout ("FastScan" for flat segments).

A flat segment's RaBitQ codes are residuals to one centroid: the segment is a one-list IVF, so
its bit planes are stored in the same 32-row interleaved blocks as the IVF lists
(``kernels.ivfscan.interleave``) and scored with the same 4-bit table lookups (``pshufb`` on
AVX2, a plain loop elsewhere): about 3 ns a row at 384 dims instead of the bit-plane popcount
kernel's ~100 (``kernels.bitplane``).

The tables give each row's integer sum ``S = sum_p 2^p acc_p`` exactly, and the score is then
computed from it with the very expression and float types of ``bitplane._scan_parts``
(float64 ``w * S``, float32 products of the per-query and per-row scalars), so both kernels
return the same scores bit for bit, and the same rows (ties to the lowest row). Over a chunk
of ``CHUNK_BLOCKS`` blocks each query of a part is scored while the chunk sits in L2 and the
query's tables in L1 (FAISS's query blocking); candidates go to bounded buffers
(``kernels.candidates``); a parallel call splits a batch's queries between the threads, or a
few queries' blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

from slimvec.kernels.candidates import close_part, merge_parts, push
from slimvec.kernels.ivfscan import PAIR, ROWS, QueryTables, _sums, _sums2, interleave
from slimvec.kernels.readonly import readonly
from slimvec.kernels.threads import numba_threads, threads_for

#: Rows interleaved at a time when a segment's codes are laid out (bounds the temporary copies).
CHUNK_ROWS = 32 * 4096
#: Blocks a part scans for one query before the next (FAISS's query blocking turned around):
#: a batch's tables (3 KB a query at 384 dims, 600 KB for 200) would not stay in L1 if every
#: query met every block in turn; a chunk's codes (~100 KB) stay in L2 while each query's
#: tables sit in L1.
CHUNK_BLOCKS = 32


@njit(cache=True, nogil=True, inline="always")
def _block_bound(fb, a, delta, lo, c, top):
    """An upper bound of every score in a block whose largest table sum is ``top``: with
    F in [fb[0], fb[1]] (F >= 0) and L in [fb[2], fb[3]], a score a + delta F S + lo L + c F
    is at most a + delta fb[1] top + max(c fb[0], c fb[1]) + max(lo fb[2], lo fb[3]); a
    margin of 1e-5 of the terms' size covers the rounding of the exact expression."""
    big = np.float64(delta) * fb[1] * top
    term_c = max(c * fb[0], c * fb[1])
    term_l = max(lo * fb[2], lo * fb[3])
    size = abs(a) + abs(big) + abs(term_c) + abs(term_l)
    return a + big + term_c + term_l + 1e-5 * size


@njit(cache=True, nogil=True, inline="always")
def _take_block(
    sums, top, score, b, ok_k, a, delta, lo, qs, gscale, factors, fbounds, block_row, block_len,
    thr, c, buf_s, buf_r, part, i, keep,
):  # fmt: skip
    """Query ``i``'s candidates of block ``b`` from its table sums (``top``: their largest):
    scored unless the block's bound rules every row out, pushed above the threshold.
    Returns the query's new (threshold, count)."""
    if _block_bound(fbounds[b], a, delta, lo, qs * gscale, top) <= thr:
        return thr, c  # no row of the block can enter: most blocks, once the list is full
    fw, fl = factors[b, 0], factors[b, 1]
    above = 0
    for j in range(ROWS):  # bitplane._scan_parts's expression, term for term
        w = fw[j]
        total = np.float64(w) * sums[j]
        s = a + delta * total + lo * fl[j] + qs * (gscale * w)
        score[j] = s
        above += s > thr
    if above == 0:
        return thr, c
    row0 = block_row[b]
    for j in range(block_len[b]):
        if score[j] > thr and ok_k[j]:
            c, thr = push(buf_s, buf_r, part, i, c, thr, score[j], row0 + j, keep)
    return thr, c


@njit(cache=True, nogil=True, inline="always")
def _widen(out, sums):
    """uint16 table sums -> int32 (SIMD-friendly for the scoring), and their largest."""
    top = 0
    for j in range(ROWS):
        sums[j] = out[j]
        top = max(top, sums[j])
    return top


@njit(parallel=True, cache=True, nogil=True)
def _scan_blocks(
    luts, lut_row, group_pairs, group_weights, max_pairs, qa, qdelta, qlo, qsum, gscale,
    docs, factors, fbounds, block_row, block_len, allow, keep, qbounds, bounds, buf_s, buf_r,
    counts,
):  # fmt: skip
    nq = qa.shape[0]
    npairs = lut_row // PAIR
    simple = group_weights.shape[0] == 1 and group_weights[0] == 1 and npairs <= max_pairs
    ranges = bounds.shape[0] - 1
    for part in prange((qbounds.shape[0] - 1) * ranges):
        group, span = part // ranges, part % ranges
        out = np.empty(ROWS, np.uint16)
        out2 = np.empty(ROWS, np.uint16)
        sums = np.empty(ROWS, np.int32)  # exact: < 2^31; int32 converts and multiplies in SIMD
        score = np.empty(ROWS, np.float32)
        ok = np.empty((CHUNK_BLOCKS, ROWS), np.bool_)
        allowed = np.empty(CHUNK_BLOCKS, np.int64)
        threshold = np.full(nq, -np.inf, np.float32)
        count = np.zeros(nq, np.int64)
        last = bounds[span + 1]
        for first in range(bounds[span], last, CHUNK_BLOCKS):
            stop = min(first + CHUNK_BLOCKS, last)
            for b in range(first, stop):
                m, row0, k = block_len[b], block_row[b], b - first
                allowed[k] = 0
                for j in range(ROWS):  # padding rows (past m) are never allowed
                    ok[k, j] = j < m and (allow.shape[0] == 0 or allow[row0 + j])
                    allowed[k] += ok[k, j]
            i, q_end = qbounds[group], qbounds[group + 1]
            while i < q_end:
                if simple and i + 1 < q_end:  # two queries per pass over a block's codes
                    for b in range(first, stop):  # the queries' tables stay in L1
                        k = b - first
                        if allowed[k] == 0:
                            continue
                        _sums2(
                            docs, b * lut_row, luts, i * lut_row, (i + 1) * lut_row, npairs, out,
                            out2,
                        )  # fmt: skip
                        for q, q_sums in ((i, out), (i + 1, out2)):
                            threshold[q], count[q] = _take_block(
                                sums, _widen(q_sums, sums), score, b, ok[k], qa[q], qdelta[q],
                                qlo[q], qsum[q], gscale, factors, fbounds, block_row, block_len,
                                threshold[q], count[q], buf_s, buf_r, part, q, keep,
                            )  # fmt: skip
                    i += 2
                    continue
                thr, c = threshold[i], count[i]
                for b in range(first, stop):
                    k = b - first
                    if allowed[k] == 0:
                        continue
                    if simple:  # one group, one accumulation (the default 2 bits, 4-bit queries)
                        _sums(docs, b * lut_row, luts, i * lut_row, npairs, out)
                        top = _widen(out, sums)
                    else:
                        for j in range(ROWS):
                            sums[j] = 0
                        for g in range(group_weights.shape[0]):
                            weight = group_weights[g]
                            for r in range(group_pairs[g], group_pairs[g + 1], max_pairs):
                                n = min(max_pairs, group_pairs[g + 1] - r)
                                doff, loff = b * lut_row + r * PAIR, i * lut_row + r * PAIR
                                _sums(docs, doff, luts, loff, n, out)
                                for j in range(ROWS):
                                    sums[j] += weight * np.int32(out[j])
                        top = 0
                        for j in range(ROWS):
                            top = max(top, sums[j])
                    thr, c = _take_block(
                        sums, top, score, b, ok[k], qa[i], qdelta[i], qlo[i], qsum[i], gscale,
                        factors, fbounds, block_row, block_len, thr, c, buf_s, buf_r, part, i,
                        keep,
                    )  # fmt: skip
                threshold[i], count[i] = thr, c
                i += 1
        close_part(buf_s, buf_r, part, count, keep, counts)


@dataclass
class FlatBlocks:
    """Segments' first-stage codes in the table-scan layout, one after another in row order."""

    docs: np.ndarray  # (blocks * block bytes,) uint8: ``interleave``d bit planes
    factors: np.ndarray  # (blocks, 2, ROWS) float32: F then L of each block's rows (0: padding)
    block_row: np.ndarray  # (blocks,) int64: global row of each block's first row
    block_len: np.ndarray  # (blocks,) int64: rows in each block (ROWS but a segment's last)
    #: (blocks, 4) float64: min and max of F, min and max of L over each block's rows (F's
    #: max is inf where F < 0 somewhere: then the block is never skipped by its bound)
    bounds: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        f, fl = self.factors[:, 0], self.factors[:, 1]
        bounds = np.stack([f.min(1), f.max(1), fl.min(1), fl.max(1)], axis=1).astype(np.float64)
        bounds[bounds[:, 0] < 0, 1] = np.inf
        self.bounds = np.ascontiguousarray(bounds)

    @classmethod
    def of(cls, parts: list[tuple[int, int, np.ndarray, np.ndarray]]) -> FlatBlocks:
        """(first row, rows, docs, factors) per segment, in row order, as one set of arrays."""
        rows, lens = [], []
        for start, n, _, _ in parts:
            blocks = -(-n // ROWS)
            rows.append(start + ROWS * np.arange(blocks, dtype=np.int64))
            lens.append(np.minimum(n - ROWS * np.arange(blocks, dtype=np.int64), ROWS))

        def joined(arrays, empty):
            return np.concatenate(arrays) if arrays else empty

        return cls(
            joined([p[2] for p in parts], np.empty(0, np.uint8)),
            joined([p[3] for p in parts], np.empty((0, 2, ROWS), np.float32)),
            joined(rows, np.empty(0, np.int64)),
            joined(lens, np.empty(0, np.int64)),
        )

    def segment(self, first_block: int, blocks: int) -> tuple[np.ndarray, np.ndarray]:
        """(docs, factors) of ``blocks`` blocks from ``first_block`` (views, for reuse)."""
        width = len(self.docs) // max(len(self.block_len), 1)
        docs = self.docs[first_block * width : (first_block + blocks) * width]
        return docs, self.factors[first_block : first_block + blocks]


def layout(codes: np.ndarray, plane_bytes: int, factor_start: int) -> tuple[np.ndarray, np.ndarray]:
    """RaBitQ code rows (n, width) uint8 -> (docs, factors) of ``FlatBlocks``: the first
    ``plane_bytes`` bytes of each row interleaved in blocks of ``ROWS`` rows, and the F and L
    scalars (float32 at ``factor_start``) padded to whole blocks, per block all F then all L
    (the scoring loop reads them contiguously)."""
    n = len(codes)
    blocks = -(-n // ROWS)
    docs = np.empty(blocks * ROWS * plane_bytes, np.uint8)
    for start in range(0, n, CHUNK_ROWS):
        part = np.ascontiguousarray(codes[start : start + CHUNK_ROWS, :plane_bytes])
        laid = interleave(part, np.array([0, len(part)], np.int64))
        docs[start * plane_bytes : start * plane_bytes + len(laid)] = laid
    padded = np.zeros((blocks * ROWS, 2), np.float32)
    padded[:n] = np.ascontiguousarray(codes[:, factor_start : factor_start + 8]).view(np.float32)
    return docs, np.ascontiguousarray(padded.reshape(blocks, ROWS, 2).transpose(0, 2, 1))


#: Queries scored per kernel call (bounds the candidate buffers: parts x queries x 2 keep).
MAX_QUERIES = 512


def flat_top(
    tables: QueryTables,
    qa: np.ndarray,
    qdelta: np.ndarray,
    qlo: np.ndarray,
    qsum: np.ndarray,
    gscale: float,
    blocks: FlatBlocks,
    keep: int,
    allow: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Global rows and scores of each query's ``keep`` best rows of ``blocks`` (best first,
    ties to the lowest row; row -1, score -inf where fewer): what ``bitplane_top`` returns for
    the same codes. ``tables``: ``ivfscan.query_tables`` of the quantised queries; ``qa``,
    ``qdelta``, ``qlo``, ``qsum``, ``gscale``: as ``bitplane_top``'s (``gscale`` its number
    ``gterm``); ``allow`` by global row, or None."""
    nq, lut_row = tables.luts.shape
    nblocks = len(blocks.block_len)
    rows = np.full((nq, keep), -1, np.int64)
    scores = np.full((nq, keep), -np.inf, np.float32)
    if nblocks == 0:
        return rows, scores
    threads = threads_for(nblocks * ROWS * nq * (lut_row // PAIR))
    cap, f32 = 2 * keep + ROWS, np.float32
    allow_arr = readonly(np.empty(0, np.bool_) if allow is None else allow, np.bool_)
    weights = readonly(tables.group_weights, np.int32)
    args = (readonly(blocks.docs), readonly(blocks.factors), readonly(blocks.bounds))
    args += (readonly(blocks.block_row),)
    args += (readonly(blocks.block_len), allow_arr, keep)
    for start in range(0, nq, MAX_QUERIES):
        stop = min(nq, start + MAX_QUERIES)
        # Parts: a batch splits its queries (one group per thread): each query then fills one
        # shortlist over all rows, not one per part to merge; fewer queries split the blocks.
        groups = threads if stop - start >= threads else 1
        qbounds = np.linspace(0, stop - start, groups + 1).astype(np.int64)
        # One part per thread: each part fills its own shortlist (a part's first ~keep rows
        # all enter it), so more, smaller parts cost more than their balance gains.
        bounds = np.linspace(0, nblocks, (threads if groups == 1 else 1) + 1).astype(np.int64)
        nparts = groups * (len(bounds) - 1)
        buf_s = np.empty((nparts, stop - start, cap), np.float32)
        buf_r = np.empty((nparts, stop - start, cap), np.int64)
        counts = np.zeros((nparts, stop - start), np.int64)
        with numba_threads(threads):
            _scan_blocks(
                readonly(tables.luts[start:stop].ravel()), lut_row,
                readonly(tables.group_pairs), weights, tables.max_pairs,
                readonly(qa[start:stop], f32), readonly(qdelta[start:stop], f32),
                readonly(qlo[start:stop], f32), readonly(qsum[start:stop], f32), f32(gscale),
                *args, qbounds, bounds, buf_s, buf_r, counts,
            )  # fmt: skip
            merge_parts(buf_s, buf_r, counts, keep, rows[start:stop], scores[start:stop])
    return rows, scores


@dataclass
class FlatCodes:
    """What a flat first pass scans once every segment carries the table-scan layout: their
    ``blocks``, then the log's rows as plain code rows (``tail`` from row ``tail_start``, for
    the bit-plane kernel). Indexing by rows gathers whole code rows (``gather``: the
    memory-mapped segment files): what pruning a shortlist reads."""

    blocks: FlatBlocks
    tail: np.ndarray
    tail_start: int
    gather: Callable[[np.ndarray], np.ndarray]

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        return self.gather(rows.ravel()).reshape(*rows.shape, -1)
