"""Row gathers from a collection's memory-mapped segments, in one compiled call.

Rescoring a shortlist reads a few hundred scattered rows per query from memory-mapped
segments. NumPy's fancy indexing copies them on one thread, one segment at a time, and then
scatters the copy into place: 28 ms for 20,000 float32 rows of 384 dims from a 1M-row file,
and ~1.5 ms of per-segment Python for a single query over 20 segments. ``SegmentRows`` copies
every row straight to its place, all segments in one compiled call (16 ms; one call), on
every core for a batch's gather and on one for a single query's. Float32 rows being rescored
are not copied at all: ``SegmentRows.dots`` scores them where they lie."""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.typed import List

from slimvec.kernels.readonly import readonly
from slimvec.kernels.threads import numba_threads, threads_for

#: From this many bytes a gather runs on every core. A single query's few hundred rows are
#: copied on one thread: they take the same ~0.3 ms either way (first-touch page faults of
#: the memory map dominate), and one thread cannot be stalled by a descheduled worker.
PARALLEL_BYTES = 4 << 20
_BYTE_ROWS = types.Array(types.uint8, 2, "C", readonly=True)
_FLOAT_ROWS = types.Array(types.float32, 2, "C", readonly=True)


@njit(cache=True, nogil=True, inline="always")
def _copy_row(sources, seg, local, at, out, i):
    """One row, byte by byte in a loop LLVM vectorises: numba's slice assignment
    (``out[a] = src[b]``) copies a byte at a time, 3x slower for 1.5 KB rows."""
    src, dst = sources[seg[i]][local[i]], out[at[i]]
    for b in range(dst.shape[0]):
        dst[b] = src[b]


@njit(cache=True, nogil=True)
def _copy_serial(sources, seg, local, at, out):
    for i in range(seg.shape[0]):
        _copy_row(sources, seg, local, at, out, i)


@njit(parallel=True, cache=True, nogil=True)
def _copy_parallel(sources, seg, local, at, out):
    for i in prange(seg.shape[0]):
        _copy_row(sources, seg, local, at, out, i)


@njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc"})
def _dots(sources, starts, rows, queries, out):
    """out[i, c] = <queries[i], global row rows[i, c]> (float64 sums, reassociated so that
    they vectorise), -inf where row < 0."""
    for i in prange(rows.shape[0]):
        q = queries[i]
        for c in range(rows.shape[1]):
            r = rows[i, c]
            if r < 0:
                out[i, c] = -np.inf
                continue
            s = starts.shape[0] - 1
            while starts[s] > r:
                s -= 1
            row = sources[s][r - starts[s]]
            total = 0.0
            for d in range(q.shape[0]):
                total += np.float64(q[d]) * row[d]
            out[i, c] = total


class SegmentRows:
    """Same-dtype, same-width 2-D arrays (one per segment, segment s holding global rows
    ``starts[s]`` on) read as one array by global row."""

    def __init__(self, arrays: list[np.ndarray], starts: np.ndarray):
        self.arrays, self.starts = arrays, starts
        self.dtype, self.shape = arrays[0].dtype, arrays[0].shape[1:]
        self._bytes: List | None = None
        self._floats: List | None = None
        if all(a.ndim == 2 and a.flags.c_contiguous for a in arrays):
            self._bytes = List.empty_list(_BYTE_ROWS)
            for a in arrays:
                self._bytes.append(readonly(a.view(np.uint8)))
            if self.dtype == np.float32:
                self._floats = List.empty_list(_FLOAT_ROWS)
                for a in arrays:
                    self._floats.append(readonly(a))

    def dots(self, rows: np.ndarray, queries: np.ndarray) -> np.ndarray | None:
        """(nq, c) float32 inner products of ``queries`` (nq, width) with the float32 rows at
        ``rows`` (nq, c) (-inf where a row is -1), read in place: rescoring a shortlist
        without copying its rows out first (a batch's 80,000 rows of 1.5 KB). None when the
        rows are not plain float32 matrices."""
        if self._floats is None:
            return None
        out = np.empty(rows.shape, np.float64)
        q = readonly(np.ascontiguousarray(queries, np.float32))
        with numba_threads(threads_for(rows.size * q.shape[1])):
            _dots(self._floats, readonly(self.starts, np.int64), readonly(rows, np.int64), q, out)
        return out.astype(np.float32)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows at global row numbers ``rows`` (any order, repeats allowed)."""
        out = np.empty((len(rows), *self.shape), self.dtype)
        if not len(rows):
            return out
        order = np.argsort(rows)  # ascending reads from each memory map
        ascending = rows[order]
        seg = np.searchsorted(self.starts, ascending, side="right") - 1
        local = ascending - self.starts[seg]
        if self._bytes is None:  # strided or 1-D arrays: NumPy, segment by segment
            for s in np.unique(seg):
                where = seg == s
                out[order[where]] = self.arrays[s][local[where]]
            return out
        copy = _copy_parallel if out.nbytes >= PARALLEL_BYTES else _copy_serial
        copy(self._bytes, seg, local, order, out.view(np.uint8))
        return out
