"""Compiled kernels against plain NumPy references."""

import numpy as np
import pytest

from slimvec.kernels.candidates import best_columns, kth_largest
from slimvec.kernels.hamming import hamming_top
from slimvec.kernels.lut import asymmetric_scores, byte_tables, gathered_plane_sums
from slimvec.kernels.rotation import rotate


def _reference(queries, docs, nwords, keep, allow):
    q = queries[:, :nwords]
    d = docs[:, :nwords]
    dist = np.bitwise_count(q[:, None, :] ^ d[None, :, :]).sum(axis=2).astype(np.int64)
    if allow is not None:
        dist[:, ~allow] = 10**6
    order = np.argsort(dist, axis=1, kind="stable")[:, :keep]  # ties: lowest row first
    found = np.take_along_axis(dist, order, axis=1)
    rows = np.where(found < 10**6, order, -1)
    missing = keep - rows.shape[1]  # fewer rows than keep: padded with -1
    rows = np.pad(rows, ((0, 0), (0, missing)), constant_values=-1)
    return rows, np.pad(found, ((0, 0), (0, missing)), constant_values=10**6)


@pytest.mark.parametrize(
    ("n", "nq", "keep", "masked"),
    [(5000, 7, 50, False), (5000, 1, 50, True), (300, 12, 400, True), (2048, 3, 1, False)],
)
def test_hamming_top_matches_numpy(n, nq, keep, masked):
    rng = np.random.default_rng(n + nq + keep)
    # few distinct codes, so distances tie a lot and the tie order is tested too
    pool = rng.integers(0, 2**63, (40, 7), dtype=np.int64).view(np.uint64)
    docs = np.ascontiguousarray(pool[rng.integers(0, 40, n)])
    queries = np.ascontiguousarray(pool[rng.integers(0, 40, nq)])
    allow = rng.random(n) > 0.3 if masked else None
    rows, dist = hamming_top(queries, docs, 6, keep, allow)
    ref_rows, ref_dist = _reference(queries, docs, 6, keep, allow)
    np.testing.assert_array_equal(rows, ref_rows)
    valid = ref_rows >= 0
    np.testing.assert_array_equal(dist[valid], ref_dist[valid])


def test_asymmetric_lut_scores_match_unpacked_bits():
    rng = np.random.default_rng(0)
    dim, planes, n, nq = 64, 3, 200, 5
    queries = rng.standard_normal((nq, dim)).astype(np.float32)
    bits = rng.random((n, planes, dim)) > 0.5
    stride = 16  # bytes per plane, padded past dim / 8
    codes = np.zeros((n, planes * stride), np.uint8)
    for p in range(planes):
        codes[:, p * stride : p * stride + dim // 8] = np.packbits(bits[:, p], axis=1)
    alphas = rng.random((n, planes)).astype(np.float32)
    out = np.empty((nq, n), np.float32)
    asymmetric_scores(
        byte_tables(queries), queries.sum(axis=1), codes, dim // 8, stride, planes, alphas, out
    )
    signed = np.where(bits, 1.0, -1.0)
    expected = np.einsum("qd,npd,np->qn", queries, signed, alphas)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_gathered_plane_sums_match_unpacked_bits():
    """Each query's own shortlist of code rows, summed per plane through byte tables."""
    rng = np.random.default_rng(1)
    dim, planes, n, nq, c, stride = 64, 2, 300, 4, 25, 16
    queries = rng.standard_normal((nq, dim)).astype(np.float32)
    bits = rng.random((n, planes, dim)) > 0.5
    codes = np.zeros((n, planes * stride + 5), np.uint8)  # + trailing bytes (factors)
    for p in range(planes):
        codes[:, p * stride : p * stride + dim // 8] = np.packbits(bits[:, p], axis=1)
    rows = rng.integers(0, n, (nq, c))
    out = gathered_plane_sums(byte_tables(queries), codes[rows], dim // 8, stride, planes)
    expected = np.einsum("qd,qcpd->qcp", queries, bits[rows].astype(np.float32))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # one code block shared by every query (a broadcast view) gives the same sums
    shared = np.broadcast_to(codes[rows[0]], (nq, c, codes.shape[1]))
    out = gathered_plane_sums(byte_tables(queries), shared, dim // 8, stride, planes)
    expected = np.einsum("qd,cpd->qcp", queries, bits[rows[0]].astype(np.float32))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_small_scans_run_on_one_thread_and_give_the_same_answer(monkeypatch):
    import numba

    from slimvec.kernels import threads

    pool = numba.get_num_threads()
    assert threads.threads_for(threads.SERIAL_WORK) == 1
    assert threads.threads_for(threads.SERIAL_WORK + 1) == pool
    with threads.numba_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == pool  # restored

    rng = np.random.default_rng(3)
    docs = rng.integers(0, 2**63, size=(5000, 6), dtype=np.uint64)
    queries = rng.integers(0, 2**63, size=(7, 6), dtype=np.uint64)
    allow = rng.random(5000) > 0.2
    tables = byte_tables(rng.standard_normal((3, 64)).astype(np.float32))
    codes = rng.integers(0, 256, size=(900, 16), dtype=np.uint8)
    alphas = rng.random((900, 2)).astype(np.float32)
    results = []
    for serial_work in (-1, 1 << 40):  # always parallel, always serial
        monkeypatch.setattr(threads, "SERIAL_WORK", serial_work)
        out = np.empty((3, 900), np.float32)
        asymmetric_scores(tables, np.ones(3, np.float32), codes, 8, 8, 2, alphas, out)
        results.append((*hamming_top(queries, docs, 6, 50, allow), out))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_kth_largest_matches_numpy_partition_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(200):
        count = int(rng.integers(1, 300))
        values = rng.integers(0, 12, count + 5).astype(np.float32)  # many ties
        keep = int(rng.integers(1, count + 1))
        expected = np.sort(values[:count])[count - keep]
        assert kth_largest(values, count, keep) == expected


@pytest.mark.parametrize(("nq", "n", "keep"), [(1, 6000, 10), (40, 30_000, 100), (3, 50, 49)])
def test_best_columns_are_the_largest_ties_to_the_lowest_column(nq, n, keep):
    """The compiled selection against a stable NumPy sort: the same values, and among equal
    values at the cut-off the lowest columns (40 x 30,000 takes the parallel path)."""
    rng = np.random.default_rng(nq)
    scores = rng.integers(0, 50, (nq, n)).astype(np.float32)  # many ties
    scores[:, ::3] = -np.inf  # disallowed rows
    cols = best_columns(scores, keep)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :keep]
    np.testing.assert_array_equal(np.sort(cols, axis=1), np.sort(expected, axis=1))


def test_best_columns_fill_with_the_lowest_columns_when_few_values_are_finite():
    scores = np.full((2, 100), -np.inf, np.float32)
    scores[:, 50:53] = 1.0
    scores[1, 0] = np.nan
    cols = best_columns(scores, 6)
    assert set(cols[0]) == {50, 51, 52, 0, 1, 2}
    assert set(cols[1][:3]) == {50, 51, 52} and len(set(cols[1])) == 6


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.uint64])
def test_segment_rows_equal_numpy_fancy_indexing(tmp_path, monkeypatch, dtype, parallel):
    """Rows of three memory-mapped segments read as one (by the serial or the parallel
    compiled copy; 1-D arrays by NumPy) equal indexing the concatenation."""
    from slimvec.kernels import gather

    monkeypatch.setattr(gather, "PARALLEL_BYTES", 0 if parallel else 1 << 62)
    rng = np.random.default_rng(0)
    whole = rng.integers(0, 1000, (500, 7)).astype(dtype)
    starts = np.array([0, 120, 121])  # the middle segment holds one row
    arrays = []
    for s, (lo, hi) in enumerate(zip(starts, [*starts[1:], len(whole)])):
        np.save(tmp_path / f"{s}.npy", whole[lo:hi])
        arrays.append(np.load(tmp_path / f"{s}.npy", mmap_mode="r"))
    rows = rng.integers(0, len(whole), 300)
    rows[:2] = 120  # the one-row segment, twice
    np.testing.assert_array_equal(gather.SegmentRows(arrays, starts).take(rows), whole[rows])
    assert gather.SegmentRows(arrays, starts).take(rows[:0]).shape == (
        0,
        7,
    )  # compaction of nothing
    columns = [a[:, 0] for a in arrays]
    np.testing.assert_array_equal(gather.SegmentRows(columns, starts).take(rows), whole[rows, 0])


def test_segment_rows_dots_score_float_rows_in_place(tmp_path):
    """Rescoring without a copy: inner products with rows of three memory-mapped segments
    (the middle one a single row, odd width) equal NumPy's in float64, -inf where row -1;
    rows that are not plain float32 matrices say None (the caller gathers)."""
    from slimvec.kernels import gather

    rng = np.random.default_rng(1)
    whole = rng.standard_normal((300, 37)).astype(np.float32)
    starts = np.array([0, 120, 121])
    arrays = []
    for s, (lo, hi) in enumerate(zip(starts, [*starts[1:], len(whole)])):
        np.save(tmp_path / f"{s}.npy", whole[lo:hi])
        arrays.append(np.load(tmp_path / f"{s}.npy", mmap_mode="r"))
    queries = rng.standard_normal((4, 37)).astype(np.float32)
    rows = rng.integers(0, len(whole), (4, 50))
    rows[:, 0], rows[1, 3], rows[2, -1] = 120, -1, 0
    got = gather.SegmentRows(arrays, starts).dots(rows, queries)
    want = np.einsum("qcd,qd->qc", whole[rows].astype(np.float64), queries.astype(np.float64))
    want[rows < 0] = -np.inf
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-6, atol=1e-6)
    assert np.isneginf(got[1, 3]) and got.dtype == np.float32
    halves = [a.astype(np.float16) for a in arrays]
    assert gather.SegmentRows(halves, starts).dots(rows, queries) is None


@pytest.mark.parametrize("nq", [3, 40])  # the serial and the parallel merge
def test_merge_parts_is_the_best_keep_of_every_part_ties_to_the_lowest_row(nq):
    from slimvec.kernels.candidates import merge_parts

    rng = np.random.default_rng(nq)
    nparts, cap, keep = 3, 50, 20
    buf_s = rng.integers(0, 8, (nparts, nq, cap)).astype(np.float32)  # many ties
    buf_r = np.arange(nparts * cap).reshape(nparts, 1, cap).repeat(nq, axis=1)
    counts = rng.integers(0, cap, (nparts, nq))
    counts[:, 0] = [3, 0, 2]  # fewer candidates than keep: padded
    rows, scores = np.empty((nq, keep), np.int64), np.empty((nq, keep), np.float32)
    merge_parts(buf_s, buf_r, counts, keep, rows, scores)
    for i in range(nq):
        s = np.concatenate([buf_s[p, i, : counts[p, i]] for p in range(nparts)])
        r = np.concatenate([buf_r[p, i, : counts[p, i]] for p in range(nparts)])
        order = np.lexsort((r, -s))[:keep]
        pad = keep - len(order)
        np.testing.assert_array_equal(rows[i], np.r_[r[order], [-1] * pad])
        np.testing.assert_array_equal(scores[i], np.r_[s[order], [-np.inf] * pad])


@pytest.mark.parametrize("rows", [1, 3, 8, 9])
def test_rotation_of_a_few_rows_equals_the_matrix_product(rows):
    """The compiled rotation (up to FEW_ROWS) and BLAS (beyond) give x @ R.T, odd dims too."""
    rng = np.random.default_rng(rows)
    rotation = rng.standard_normal((101, 101)).astype(np.float32)
    x = rng.standard_normal((rows, 101)).astype(np.float32)
    got = rotate(x, rotation)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, x.astype(np.float64) @ rotation.T, rtol=1e-4, atol=1e-4)
