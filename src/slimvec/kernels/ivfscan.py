"""Compiled scan of the probed inverted lists of bit-plane codes: 4-bit lookup tables in SIMD
registers (FAISS's "FastScan"), with fused top-k.

A RaBitQ code's plane p scores as ``acc_p = sum_d v[d] * b_p[d]`` (``v`` the query quantised to
``qbits`` bits, ``b_p`` the code's bits). Split the dims into groups of 4: each group's share
is one of 16 values, so per query a 16-entry table per group, and per code row one lookup per
4 dims. AVX2's ``pshufb`` does 32 such lookups in one instruction, so the codes of a list are
stored in blocks of ``ROWS`` = 32 rows, interleaved so that one 32-byte load feeds them:
byte i of a block's pair r holds the low nibbles of byte r of rows i and i + 16 (bytes
16..31 the high nibbles). Sums stay integers (uint16 accumulators), so the scan computes the
same estimate as the bit-plane popcount form::

    score = qa[i, j] + w[pos] * (qdelta[i] * sum_p 2^p acc_p + qsum[i] * gscale)
            + qlo[i] * lterm[pos]

where ``qa[i, j]`` is the per-(query, probed list) offset (RaBitQ residual codes: <q, c_l>);
the 2^p is folded into the tables (``QueryTables``), so a code's planes sum in one pass.
Each block of a list is scored against every query that probes the list; candidates go to a
bounded buffer under a running threshold (``kernels.candidates``). The scan also counts, per
query, how many allowed rows it saw: a filtered search widens its probes or falls back to a
flat scan when that is fewer than the shortlist it needs. On a CPU without AVX2 the same
layout is scanned by a plain compiled loop (same results, slower).
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import config
from numba.extending import intrinsic
from numba.typed import List

from slimvec.kernels.candidates import cut, merge_parts, push
from slimvec.kernels.readonly import readonly
from slimvec.kernels.threads import numba_threads, threads_for

#: Rows per block: one 32-byte register holds a pair of 4-bit codes of 32 rows.
ROWS = 32
#: Bytes per code byte in a block (and per table pair of a query): the low then the high
#: nibbles of 32 rows; equally, a pair's two 16-entry tables.
PAIR = 32


def _has_avx2() -> bool:
    """Whether numba compiles for a CPU with AVX2 (``pshufb`` on 32 bytes)."""
    if config.CPU_NAME not in (None, "host"):
        return False  # a portable cache target: take the plain loop
    return bool(llvm.get_host_cpu_features().get("avx2"))


HAS_AVX2 = _has_avx2()


def _pshufb_codegen(queries: int):
    """LLVM IR of ``queries`` queries' per-row table sums over one run of code pairs (AVX2):
    the codes are loaded and split into nibbles once, then looked up in each query's tables
    (two queries share a code load and its nibble masks: FAISS's query blocking).

    The looked-up bytes are added as uint16 words without widening (FAISS's trick): one
    accumulator takes each word whole (even row + 256 * odd row), another the word shifted
    right by 8 (odd row); even = first - 256 * second at the end, exact while sums < 2^16."""

    def codegen(context, builder, signature, args):
        caddr, npairs = args[0], args[1 + queries]
        lut_addrs, out_addrs = args[1 : 1 + queries], args[2 + queries :]
        i8, i16, i32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)
        v32i8, v16i16 = ir.VectorType(i8, 32), ir.VectorType(i16, 16)
        module = builder.module
        name = "llvm.x86.avx2.pshuf.b"
        pshufb = module.globals.get(name) or ir.Function(
            module, ir.FunctionType(v32i8, [v32i8, v32i8]), name=name
        )
        cptr = builder.inttoptr(caddr, v32i8.as_pointer())
        lptrs = [builder.inttoptr(a, v32i8.as_pointer()) for a in lut_addrs]
        optrs = [builder.inttoptr(a, v16i16.as_pointer()) for a in out_addrs]
        nibble = ir.Constant(v32i8, [15] * 32)
        eight = ir.Constant(v16i16, [8] * 16)
        zero = ir.Constant(v16i16, None)
        size = npairs.type
        entry = builder.block
        loop = builder.append_basic_block("pshufb.loop")
        done = builder.append_basic_block("pshufb.done")
        builder.cbranch(builder.icmp_signed(">", npairs, ir.Constant(size, 0)), loop, done)

        builder.position_at_end(loop)
        k = builder.phi(size)
        # per query: rows 0..15 whole, odd; 16..31 whole, odd
        accs = [[builder.phi(v16i16) for _ in range(4)] for _ in range(queries)]
        codes = builder.load(builder.gep(cptr, [k]), align=1)
        four = ir.Constant(v16i16, [4] * 16)
        shifted = builder.bitcast(builder.lshr(builder.bitcast(codes, v16i16), four), v32i8)
        indices = [builder.and_(codes, nibble), builder.and_(shifted, nibble)]
        steps = []
        for q in range(queries):
            table = builder.load(builder.gep(lptrs[q], [k]), align=1)
            for half, index in enumerate(indices):
                words = builder.bitcast(builder.call(pshufb, [table, index]), v16i16)
                steps.append(builder.add(accs[q][2 * half], words))
                steps.append(builder.add(accs[q][2 * half + 1], builder.lshr(words, eight)))
        next_k = builder.add(k, ir.Constant(size, 1))
        body = builder.block
        k.add_incoming(ir.Constant(size, 0), entry)
        k.add_incoming(next_k, body)
        for acc, step in zip([a for query in accs for a in query], steps, strict=True):
            acc.add_incoming(zero, entry)
            acc.add_incoming(step, body)
        builder.cbranch(builder.icmp_signed("<", next_k, npairs), loop, done)

        builder.position_at_end(done)
        totals = []  # every phi first: LLVM wants them at the top of the block
        for step in steps:
            phi = builder.phi(v16i16)
            phi.add_incoming(zero, entry)
            phi.add_incoming(step, body)
            totals.append(phi)
        v8 = ir.VectorType(i32, 8)
        first, second = ir.Constant(v8, list(range(8))), ir.Constant(v8, list(range(8, 16)))
        interleaved = ir.Constant(ir.VectorType(i32, 16), [v for e in range(8) for v in (e, 8 + e)])

        def lanes(x):  # the pair's two tables sit in the two 128-bit lanes: add them
            return builder.add(
                builder.shuffle_vector(x, x, first), builder.shuffle_vector(x, x, second)
            )

        for q in range(queries):
            for half in range(2):
                whole, odd = totals[4 * q + 2 * half], totals[4 * q + 2 * half + 1]
                even = builder.sub(whole, builder.shl(odd, eight))
                rows = builder.shuffle_vector(lanes(even), lanes(odd), interleaved)
                builder.store(rows, builder.gep(optrs[q], [ir.Constant(i32, half)]), align=2)
        return context.get_dummy_value()

    return codegen


@intrinsic
def _pshufb_sums(typingctx, codes_addr, lut_addr, npairs, out_addr):
    """out[0:32] (uint16) = per-row sums over ``npairs`` pairs of table lookups (AVX2)."""
    sig = types.void(types.uintp, types.uintp, types.intp, types.uintp)
    return sig, _pshufb_codegen(1)


@intrinsic
def _pshufb_sums2(typingctx, codes_addr, lut0, lut1, npairs, out0, out1):
    """``_pshufb_sums`` of two queries' tables over the same codes, in one pass."""
    sig = types.void(types.uintp, types.uintp, types.uintp, types.intp, types.uintp, types.uintp)
    return sig, _pshufb_codegen(2)


@njit(cache=True, nogil=True, inline="always")
def _sums_simd(docs, doff, luts, loff, npairs, out):
    _pshufb_sums(docs.ctypes.data + doff, luts.ctypes.data + loff, npairs, out.ctypes.data)


@njit(cache=True, nogil=True, inline="always")
def _sums_loop(docs, doff, luts, loff, npairs, out):
    for j in range(ROWS):
        out[j] = 0
    for r in range(npairs):
        c, t = doff + r * PAIR, loff + r * PAIR
        for i in range(16):
            first, second = docs[c + i], docs[c + 16 + i]
            out[i] += luts[t + (first & 15)] + luts[t + 16 + (second & 15)]
            out[i + 16] += luts[t + (first >> 4)] + luts[t + 16 + (second >> 4)]


_sums = _sums_simd if HAS_AVX2 else _sums_loop


@njit(cache=True, nogil=True, inline="always")
def _sums2_simd(docs, doff, luts, loff0, loff1, npairs, out0, out1):
    base = luts.ctypes.data
    _pshufb_sums2(
        docs.ctypes.data + doff, base + loff0, base + loff1, npairs, out0.ctypes.data,
        out1.ctypes.data,
    )  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def _sums2_loop(docs, doff, luts, loff0, loff1, npairs, out0, out1):
    _sums_loop(docs, doff, luts, loff0, npairs, out0)
    _sums_loop(docs, doff, luts, loff1, npairs, out1)


#: Two queries' sums over one block in one pass (the codes loaded once).
_sums2 = _sums2_simd if HAS_AVX2 else _sums2_loop


@njit(parallel=True, cache=True, nogil=True)
def _scan_lists(
    luts, qa, qdelta, qlo, qsum, starts, offsets_of, blocks_of, perm_of, docs_of, w_of,
    lterm_of, lq_off, lq_query, lq_probe, group_pairs, group_weights, max_pairs, gscale,
    allow, keep, part_lists, buf_s, buf_r, counts, seen,
):  # fmt: skip
    lut_row = luts.shape[1]
    flat_luts = luts.ravel()
    block_bytes = lut_row
    nlist = part_lists[-1]
    ranges = np.int64(part_lists.shape[0] - 1)
    for part in prange(buf_s.shape[0]):
        group = part // ranges
        span = part - group * ranges
        threshold = np.full(qa.shape[0], -np.inf, np.float32)
        out = np.empty(ROWS, np.uint16)
        total = np.empty(ROWS, np.float32)
        score = np.empty(ROWS, np.float32)
        ok = np.empty(ROWS, np.bool_)
        for lst in range(part_lists[span], part_lists[span + 1]):
            first, last = lq_off[group * nlist + lst], lq_off[group * nlist + lst + 1]
            if first == last:
                continue
            for seg in range(len(starts)):
                offsets, blocks, perm = offsets_of[seg], blocks_of[seg], perm_of[seg]
                docs, w, lterm, row0 = docs_of[seg], w_of[seg], lterm_of[seg], starts[seg]
                for b in range(blocks[lst], blocks[lst + 1]):
                    start = offsets[lst] + (b - blocks[lst]) * ROWS
                    m = min(offsets[lst + 1] - start, ROWS)
                    allowed = 0
                    for j in range(m):
                        ok[j] = allow.shape[0] == 0 or allow[row0 + perm[start + j]]
                        allowed += ok[j]
                    if allowed == 0:
                        continue
                    for e in range(first, last):
                        i = lq_query[e]
                        seen[part, i] += allowed
                        for j in range(ROWS):
                            total[j] = 0.0
                        for g in range(group_weights.shape[0]):
                            for r in range(group_pairs[g], group_pairs[g + 1], max_pairs):
                                n = min(max_pairs, group_pairs[g + 1] - r)
                                doff = b * block_bytes + r * PAIR
                                _sums(docs, doff, flat_luts, i * lut_row + r * PAIR, n, out)
                                for j in range(ROWS):
                                    total[j] += group_weights[g] * out[j]
                        base, scale = qa[i, lq_probe[e]], qdelta[i]
                        shift, low = qsum[i] * gscale, qlo[i]
                        thr = threshold[i]
                        above = 0
                        for j in range(m):
                            s = base + w[start + j] * (scale * total[j] + shift)
                            s += low * lterm[start + j]
                            score[j] = s
                            above += s > thr
                        if above == 0:  # most blocks, once the shortlist has filled
                            continue
                        if allowed < m:
                            for j in range(m):
                                if not ok[j]:
                                    score[j] = -np.inf
                        c = counts[part, i]
                        for j in range(m):
                            if score[j] > thr:
                                c, thr = push(
                                    buf_s, buf_r, part, i, c, thr, score[j],
                                    row0 + perm[start + j], keep,
                                )  # fmt: skip
                        threshold[i] = thr
                        counts[part, i] = c
        for i in range(counts.shape[1]):
            if counts[part, i] > keep:
                counts[part, i], _ = cut(buf_s[part, i], buf_r[part, i], counts[part, i], keep)


def list_blocks(offsets: np.ndarray) -> np.ndarray:
    """(nlist + 1,) block offsets: list l's codes are blocks ``blocks[l]:blocks[l + 1]``."""
    blocks = np.zeros(len(offsets), np.int64)
    np.cumsum(-(-np.diff(offsets) // ROWS), out=blocks[1:])
    return blocks


def interleave(planes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(n, plane_bytes * planes) uint8 code planes in list order -> the flat layout the scan
    reads: each list padded to blocks of ``ROWS`` rows (zero codes), and within a block, per
    code byte r, 32 bytes: the low nibbles of byte r of rows i and i + 16 (byte i), then
    their high nibbles (byte 16 + i)."""
    n, width = planes.shape
    sizes = np.diff(offsets)
    blocks = list_blocks(offsets)
    position = np.arange(n) - np.repeat(offsets[:-1] - ROWS * blocks[:-1], sizes)
    padded = np.zeros((int(blocks[-1]) * ROWS, width), np.uint8)
    padded[position] = planes
    halves = padded.reshape(-1, 2, 16, width)  # block, rows i / i + 16, i, byte
    low, high = halves & 15, halves >> 4
    pairs = np.stack([low[:, 0] | low[:, 1] << 4, high[:, 0] | high[:, 1] << 4], axis=2)
    return np.ascontiguousarray(pairs.transpose(0, 3, 2, 1)).ravel()  # block, byte, nibble, i


def deinterleave(docs: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """``interleave``'s inverse: the (n, width) code planes in list order (padding dropped)."""
    blocks = list_blocks(offsets)
    t = np.asarray(docs).reshape(int(blocks[-1]), width, 2, 16)  # block, byte, nibble, i
    low, high = t[:, :, 0], t[:, :, 1]
    first = (low & 15) | (high & 15) << 4  # rows i of each block
    second = low >> 4 | (high >> 4) << 4  # rows 16 + i
    padded = np.concatenate([first, second], axis=2).transpose(0, 2, 1).reshape(-1, width)
    sizes = np.diff(offsets)
    return padded[np.arange(int(offsets[-1])) - np.repeat(offsets[:-1] - ROWS * blocks[:-1], sizes)]


def interleave_rows(
    codes: np.ndarray, perm: np.ndarray, offsets: np.ndarray, width: int, rows: int = 65_536
) -> np.ndarray:
    """``interleave(codes[perm, :width], offsets)``, built a run of whole lists (about
    ``rows`` rows) at a time into one output: the lists' layouts are block-major, so runs
    concatenate, and the working memory is the output plus one run rather than several
    copies of every code."""
    blocks = list_blocks(offsets)
    out = np.empty(int(blocks[-1]) * ROWS * width, np.uint8)
    a, nlist = 0, len(offsets) - 1
    while a < nlist:
        b = max(a + 1, int(np.searchsorted(offsets, offsets[a] + rows, side="right")) - 1)
        b = min(b, nlist)
        part = codes[perm[offsets[a] : offsets[b]], :width]
        out[blocks[a] * ROWS * width : blocks[b] * ROWS * width] = interleave(
            part, offsets[a : b + 1] - offsets[a]
        )
        a = b
    return out


@dataclass
class QueryTables:
    """Per query, uint8 tables over every plane's pairs, ready for the scan.

    Plane p's code counts 2^p times: its tables are shifted left by its place in a group of
    planes whose shifted entries still fit a byte, so a group's planes sum in one pass (with
    the default 4 query bits, 2 planes are one group, 3 planes too) and only each group's
    sum is scaled in floats."""

    luts: np.ndarray  # (nq, planes * plane_bytes * PAIR) uint8
    group_pairs: np.ndarray  # (groups + 1,) int64: each group's first pair
    group_weights: np.ndarray  # (groups,) float32: 2^(the group's first plane)
    max_pairs: int  # pairs one uint16 accumulation can take


@njit(cache=True, nogil=True)
def _nibble_tables(raw, shifts, out):
    """out[i, p, (2 r + h) 16 + n] = the sum of query i's values on the dims of byte r's
    nibble h (dims 8r + 4h .. +3) whose bit is set in n, shifted left by ``shifts[p]``;
    ``raw`` (nq, qbits, bytes): the query's bit planes, dim 8r + j at bit j of byte r. One
    compiled pass: ~5 us a query at 384 dims, and ``query_tables`` 16 us instead of its NumPy
    form's 35."""
    nq, qbits, nbytes = raw.shape
    values = np.empty(8, np.int64)
    for i in range(nq):
        for r in range(nbytes):
            for j in range(8):
                v = 0
                for b in range(qbits):
                    v += ((raw[i, b, r] >> j) & 1) << b
                values[j] = v
            for h in range(2):
                for n in range(16):
                    total = 0
                    for k in range(4):
                        if (n >> k) & 1:
                            total += values[4 * h + k]
                    for p in range(shifts.shape[0]):
                        out[i, p, (2 * r + h) * 16 + n] = (total << shifts[p]) & 255


def query_tables(qplanes: np.ndarray, planes: int) -> QueryTables:
    """Tables of quantised queries (nq, qbits, plane_words) against codes of ``planes``
    bit planes: per plane, per code byte r, 32 bytes: the 16 sums of the query's values on
    dims 8r..8r+3 for each low nibble, then on 8r+4..8r+7 for each high."""
    nq, qbits, pwords = qplanes.shape
    if qbits > 6:
        raise ValueError(f"the IVF scan's tables take queries of at most 6 bits, not {qbits}")
    raw = np.ascontiguousarray(qplanes).view(np.uint8).reshape(nq, qbits, pwords * 8)
    largest = 4 * ((1 << qbits) - 1)
    first = [0]  # each group's first plane
    for p in range(1, planes):
        if largest << (p - first[-1]) > 255:
            first.append(p)
    group_of = np.searchsorted(first, np.arange(planes), "right") - 1
    shift = np.arange(planes) - np.array(first)[group_of]
    luts = np.empty((nq, planes, pwords * 8 * PAIR), np.uint8)
    _nibble_tables(raw, shift.astype(np.int64), luts)
    luts = luts.reshape(nq, -1)
    plane_pairs = pwords * 8
    return QueryTables(
        luts,
        np.array([*first, planes], np.int64) * plane_pairs,
        (2.0 ** np.array(first)).astype(np.float32),
        65535 // (2 * (largest << int(shift.max()))),
    )


_LIST_TYPES = {
    "offsets": (np.int64, types.Array(types.int64, 1, "C", readonly=True)),
    "blocks": (np.int64, types.Array(types.int64, 1, "C", readonly=True)),
    "perm": (np.int32, types.Array(types.int32, 1, "C", readonly=True)),
    "docs": (np.uint8, types.Array(types.uint8, 1, "C", readonly=True)),
    "w": (np.float32, types.Array(types.float32, 1, "C", readonly=True)),
    "lterm": (np.float32, types.Array(types.float32, 1, "C", readonly=True)),
}


@dataclass
class ListSet:
    """Every segment's lists, handed to the scan as numba typed lists: one kernel call (one
    shortlist per query, one parallel region) reads all segments' blocks of a probed list."""

    starts: np.ndarray  # (segments,) int64: each segment's first global row
    sizes: np.ndarray  # (nlist,) int64: rows per list over every segment
    arrays: dict[str, List]  # name -> one array per segment (``_LIST_TYPES``)

    @classmethod
    def of(cls, segments: list[dict[str, np.ndarray | int]], nlist: int) -> ListSet:
        """``segments``: per segment its ``start`` and the arrays named in ``_LIST_TYPES``
        (``offsets`` (nlist + 1,), ``blocks`` = ``list_blocks(offsets)``, ``perm``, the
        ``interleave``d ``docs``, ``w`` and ``lterm`` per position)."""
        arrays = {name: List.empty_list(kind) for name, (_, kind) in _LIST_TYPES.items()}
        sizes = np.zeros(nlist, np.int64)
        for seg in segments:
            for name, (dtype, _) in _LIST_TYPES.items():
                arrays[name].append(readonly(np.ascontiguousarray(seg[name], dtype)))
            sizes += np.diff(seg["offsets"])
        starts = np.array([seg["start"] for seg in segments], np.int64)
        return cls(starts, sizes, arrays)


def probe_top(
    tables: QueryTables,
    qa: np.ndarray,
    qdelta: np.ndarray,
    qlo: np.ndarray,
    qsum: np.ndarray,
    probes: np.ndarray,
    lists: ListSet,
    gscale: float,
    keep: int,
    allow: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global rows, scores (best first, -1 / -inf padded to ``keep``) and allowed rows seen,
    per query, over the lists in ``probes`` (nq, nprobe) of every segment in ``lists``.

    ``tables``: ``query_tables``'s; ``qa`` (nq, nprobe) per-(query, list) offsets; ``allow``
    by global row, or None. A part of the scan runs list by list, each block of a list scored
    against every query of the part probing that list.
    """
    nq, nprobe = probes.shape
    nlist = len(lists.sizes)
    sizes = lists.sizes
    probed = sizes[probes]  # rows of each (query, probe)
    threads = threads_for(int(probed.sum()) * tables.luts.shape[1] // PAIR)
    # Parts: query groups x list ranges. A batch splits its queries (one group per thread,
    # balanced by the rows they scan): a query's candidates then fill one shortlist, not one
    # per part. Fewer queries than threads split the lists instead (balanced by rows x queries).
    groups = threads if nq >= threads else 1
    ranges = 1 if groups > 1 or threads == 1 else 2 * threads
    work = np.cumsum(probed.sum(axis=1))
    group = np.minimum(groups * (work - 1) // max(int(work[-1]), 1), groups - 1)
    list_work = np.cumsum(sizes * np.bincount(probes.ravel(), minlength=nlist))
    cuts = np.searchsorted(list_work, np.arange(1, ranges) * (list_work[-1] / ranges))
    part_lists = np.concatenate([[0], np.minimum(cuts + 1, nlist), [nlist]]).astype(np.int64)
    part_lists = np.maximum.accumulate(part_lists)
    # (query group, list) -> the queries probing it (with their probe index), in CSR form
    key = (group[:, None] * nlist + probes).ravel()
    order = np.argsort(key, kind="stable")
    lq_query, lq_probe = order // nprobe, order % nprobe
    lq_off = np.zeros(groups * nlist + 1, np.int64)
    np.cumsum(np.bincount(key, minlength=groups * nlist), out=lq_off[1:])
    nparts = groups * ranges
    cap = 2 * keep + ROWS
    buf_s = np.empty((nparts, nq, cap), np.float32)
    buf_r = np.empty((nparts, nq, cap), np.int64)
    counts = np.zeros((nparts, nq), np.int64)
    seen = np.zeros((nparts, nq), np.int64)
    allow_arr = np.empty(0, np.bool_) if allow is None else np.ascontiguousarray(allow)
    f32, a = np.float32, lists.arrays
    with numba_threads(threads):
        _scan_lists(
            tables.luts, qa.astype(f32), qdelta.astype(f32), qlo.astype(f32), qsum.astype(f32),
            lists.starts, a["offsets"], a["blocks"], a["perm"], a["docs"], a["w"], a["lterm"],
            lq_off, lq_query, lq_probe, tables.group_pairs, tables.group_weights,
            tables.max_pairs, f32(gscale), allow_arr, keep, part_lists, buf_s, buf_r, counts, seen,
        )  # fmt: skip
        rows = np.empty((nq, keep), np.int64)
        scores = np.empty((nq, keep), np.float32)
        merge_parts(buf_s, buf_r, counts, keep, rows, scores)
    return rows, scores, seen.sum(axis=0)
