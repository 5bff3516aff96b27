"""Row gathers from a collection's memory-mapped segments, in one compiled call.

Rescoring a shortlist reads a few hundred scattered rows per query from memory-mapped
segments. NumPy's fancy indexing copies them on one thread, one segment at a time, and then
scatters the copy into place: 28 ms for 20,000 float32 rows of 384 dims from a 1M-row file,
and ~1.5 ms of per-segment Python for a single query over 20 segments. ``SegmentRows`` copies
every row straight to its place, all segments in one compiled call (16 ms; one call), on
every core for a batch's gather and on one for a single query's. Float32 rows being rescored
are not copied at all: ``SegmentRows.dots`` scores them where they lie."""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic
from numba.typed import List

from slimvec.kernels.readonly import readonly
from slimvec.kernels.threads import numba_threads

#: From this many bytes a gather runs on every core. A single query's few hundred rows are
#: copied on one thread: they take the same ~0.3 ms either way (first-touch page faults of
#: the memory map dominate), and one thread cannot be stalled by a descheduled worker.
PARALLEL_BYTES = 4 << 20
#: From this many rows a rescoring reads them on every core, even for one query: scattered
#: rows are latency-bound, and two threads keep twice the misses in flight (400 rows of
#: 1.5 KB from a 1M-row file: 170 us on one thread, 134 with prefetching, 76 on two).
PARALLEL_ROWS = 256
#: Rows ahead of the one being scored whose cache lines are prefetched.
PREFETCH_ROWS = 4
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


@intrinsic
def _prefetch(typingctx, address):
    """Ask the CPU for the cache line at ``address`` now (``llvm.prefetch``: a read, kept in
    every cache level); it arrives while the rows before it are being scored."""
    sig = types.void(types.uintp)

    def codegen(context, builder, signature, args):
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        name = "llvm.prefetch.p0i8"
        prefetch = builder.module.globals.get(name) or ir.Function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), name=name
        )
        read, keep, data = ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)
        builder.call(prefetch, [builder.inttoptr(args[0], i8p), read, keep, data])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _row_of(sources, starts, r):
    s = starts.shape[0] - 1
    while starts[s] > r:
        s -= 1
    return sources[s][r - starts[s]]


@njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc"})
def _dots(sources, starts, rows, queries, out, splits):
    """out[i, c] = <queries[i], global row rows[i, c]> (float64 sums, reassociated so that
    they vectorise), -inf where row < 0. Each query's rows are cut into ``splits`` runs
    scored in parallel, and the rows ``PREFETCH_ROWS`` ahead are prefetched: the reads are
    scattered, so the time is memory latency, and more misses in flight is what shortens it."""
    width = rows.shape[1]
    per_split = -(-width // splits)
    for part in prange(rows.shape[0] * splits):
        i, split = part // splits, part % splits
        q = queries[i]
        first, last = split * per_split, min(width, (split + 1) * per_split)
        for c in range(first, last):
            ahead = c + PREFETCH_ROWS
            if ahead < last and rows[i, ahead] >= 0:
                row = _row_of(sources, starts, rows[i, ahead])
                for line in range(0, row.shape[0] * 4, 64):
                    _prefetch(row.ctypes.data + line)
            r = rows[i, c]
            if r < 0:
                out[i, c] = -np.inf
                continue
            row = _row_of(sources, starts, r)
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
        parallel = rows.size >= PARALLEL_ROWS
        threads = numba.get_num_threads() if parallel else 1
        splits = threads if len(rows) < threads else 1  # a single query's rows, split
        with numba_threads(threads):
            _dots(
                self._floats, readonly(self.starts, np.int64), readonly(rows, np.int64), q,
                out, splits,
            )  # fmt: skip
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
