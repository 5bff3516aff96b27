"""Compiled first-pass scans (int8, multi-bit binary) against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import _clustered
from slimvec.codecs.binary import BinaryCodec
from slimvec.codecs.int8 import Int8Codec
from slimvec.kernels import ivfscan
from slimvec.kernels.bitplane import quantise_queries
from slimvec.kernels.int8dot import int8_top, quantise_int8
from slimvec.kernels.threads import blas_threads_for


@pytest.mark.parametrize(("n", "nq", "keep", "masked"), [(3000, 7, 50, False), (500, 1, 600, True)])
def test_int8_top_matches_numpy(n, nq, keep, masked):
    rng = np.random.default_rng(n)
    docs = rng.integers(0, 256, (n, 72), dtype=np.uint8)
    qcodes, qscale = quantise_int8(rng.standard_normal((nq, 72)).astype(np.float32))
    offset = rng.standard_normal(nq).astype(np.float32)
    allow = rng.random(n) > 0.4 if masked else None
    rows, scores = int8_top(qcodes, qscale, offset, docs, keep, allow)
    ref = (qcodes.astype(np.int64) @ docs.astype(np.int64).T) * qscale[:, None] + offset[:, None]
    if allow is not None:
        ref[:, ~allow] = -np.inf
    expect = -np.sort(-ref, axis=1)[:, :keep]
    if keep > n:
        expect = np.pad(expect, ((0, 0), (0, keep - n)), constant_values=-np.inf)
    np.testing.assert_allclose(scores, expect, rtol=1e-5)
    valid = rows >= 0
    assert valid.sum() == np.isfinite(expect).sum()
    got = np.take_along_axis(ref, np.where(valid, rows, 0), axis=1)
    np.testing.assert_allclose(got[valid], scores[valid], rtol=1e-5)


def test_int8_codec_scan_is_close_to_float_scores():
    x = _clustered(4000, 64, 1)
    q = _clustered(20, 64, 2)
    codec = Int8Codec(64).fit(x)
    codes = codec.encode(x)
    prepared = codec.prepare(q)
    rows, scores = codec.scan(prepared, codes, 30, None)
    exact = np.take_along_axis(codec.score_block(prepared, codes), rows, axis=1)
    np.testing.assert_allclose(scores, exact, atol=0.02)  # int8 query: ~1/254 of the scale


@pytest.mark.parametrize("bits", [2, 3])
def test_multibit_binary_scan_matches_float_lookup(bits):
    x = _clustered(3000, 128, bits)
    q = _clustered(9, 128, 10 + bits)
    codec = BinaryCodec(128, bits).fit(x)
    codes = codec.encode(x)
    prepared = codec.prepare(q)
    allow = np.random.default_rng(bits).random(3000) > 0.3
    rows, scores = codec.scan(prepared, codes, 40, allow)
    assert allow[rows].all()
    ref = codec.score_block(prepared, codes)  # the float-query lookup-table scores
    ref[:, ~allow] = -np.inf
    best = -np.sort(-ref, axis=1)[:, :40]
    np.testing.assert_allclose(scores, best, atol=0.01)  # 8-bit query vs float query
    np.testing.assert_allclose(np.take_along_axis(ref, rows, axis=1), scores, atol=0.01)


def test_small_blas_work_runs_on_one_thread():
    from threadpoolctl import threadpool_info

    with blas_threads_for(1000):
        assert all(
            lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas"
        )


def _ivf_case(seed: int, nq: int, planes: int, qbits: int, n=3000, nlist=16, nprobe=5):
    """Random codes of 384 dims in two segments' lists (one list empty, one list of a single
    row in the first segment), quantised queries and the per-row scalars."""
    from slimvec.kernels import ivfscan

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, planes * 48), dtype=np.uint8)
    w, lterm = rng.random((2, n)).astype(np.float32)
    segments, lists = [], np.empty(n, np.int64)
    for start, stop in ((0, 1800), (1800, n)):
        assign = np.sort(rng.integers(0, nlist, stop - start))
        assign[assign == 3] = 4
        if start == 0:
            assign[-1], assign[assign == nlist - 1] = nlist - 1, nlist - 2
        offsets = np.zeros(nlist + 1, np.int64)
        np.cumsum(np.bincount(assign, minlength=nlist), out=offsets[1:])
        perm = rng.permutation(stop - start).astype(np.int32)  # position -> segment row
        rows = start + perm
        lists[rows] = assign
        segments.append(
            {"start": start, "offsets": offsets, "blocks": ivfscan.list_blocks(offsets),
             "perm": perm, "docs": ivfscan.interleave(codes[rows], offsets), "w": w[rows],
             "lterm": lterm[rows]}
        )  # fmt: skip
    qplanes = rng.integers(0, 256, (nq, qbits, 48), dtype=np.uint8).view(np.uint64)
    query = {
        "qplanes": qplanes,
        "tables": ivfscan.query_tables(qplanes, planes),
        "qa": rng.random((nq, nprobe)).astype(np.float32),
        "scalars": [rng.random(nq) for _ in range(3)],
        "probes": np.stack([rng.choice(nlist, nprobe, replace=False) for _ in range(nq)]),
    }
    return rng, ivfscan.ListSet.of(segments, nlist), codes, lists, (w, lterm), query


@pytest.mark.parametrize(
    ("threads", "nq", "planes", "qbits"),
    [(1, 7, 2, 4), (2, 7, 2, 4), (2, 1, 2, 4), (2, 7, 4, 4), (2, 7, 2, 6)],
)
@pytest.mark.parametrize("masked", [False, True])
def test_ivf_table_scan_matches_the_popcount_estimate(
    monkeypatch, threads, nq, planes, qbits, masked
):
    """The 4-bit table scan over two segments (queries split between threads, or a single
    query's lists split) returns exactly the top of the bit-plane popcount form (NumPy), with
    the planes folded into one table pass (2 planes of 4-bit queries) or two (4 planes of
    4-bit queries: 3 + 1; 2 planes of 6-bit queries: 1 + 1)."""
    from slimvec.kernels import ivfscan

    monkeypatch.setattr(ivfscan, "threads_for", lambda work: threads)
    rng, list_set, codes, lists, (w, lterm), query = _ivf_case(nq, nq, planes, qbits)
    assert len(query["tables"].group_weights) == (1 if (planes, qbits) == (2, 4) else 2)
    n, keep = len(codes), 40
    allow = rng.random(n) > 0.3 if masked else None
    (qd, ql, qs), probes, qa = query["scalars"], query["probes"], query["qa"]
    rows, scores, seen = ivfscan.probe_top(
        query["tables"], qa, qd, ql, qs, probes, list_set, -0.5, keep, allow
    )
    # the reference: sum_p 2^p sum_d v[d] b_p[d], v the query's values
    q_bits = np.unpackbits(query["qplanes"].view(np.uint8), axis=2, bitorder="little")
    q_values = np.tensordot(q_bits.astype(np.int64), 1 << np.arange(qbits), axes=([1], [0]))
    d_bits = np.unpackbits(codes, axis=1, bitorder="little").reshape(n, planes, 384)
    acc = np.einsum("qd,npd,p->nq", q_values, d_bits.astype(np.int64), 1 << np.arange(planes))
    for i in range(nq):
        pos = np.flatnonzero(np.isin(lists, probes[i]))
        if masked:
            pos = pos[allow[pos]]
        slot = np.argmax(probes[i][None, :] == lists[pos][:, None], axis=1)
        s = qa[i, slot] + w[pos] * (qd[i] * acc[pos, i] - 0.5 * qs[i]) + ql[i] * lterm[pos]
        top = np.argsort(-s, kind="stable")[:keep]
        assert seen[i] == len(pos)
        np.testing.assert_allclose(scores[i], s[top], rtol=1e-5)
        assert set(rows[i]) == set(pos[top])


@pytest.mark.skipif(not __import__("slimvec.kernels.ivfscan").kernels.ivfscan.HAS_AVX2,
                    reason="no AVX2: the plain loop is the only table scan here")  # fmt: skip
def test_ivf_pshufb_sums_equal_the_plain_loop():
    """The AVX2 lookup (uint16 words, odd rows recovered by subtraction) sums exactly as the
    plain loop that CPUs without AVX2 run, up to the largest sums a call may take."""
    from slimvec.kernels import ivfscan

    rng = np.random.default_rng(5)
    for npairs, top in [(1, 60), (48, 60), (512, 60), (7, 0)]:
        docs = rng.integers(0, 256, 32 * (npairs + 2), dtype=np.uint8)
        luts = rng.integers(0, top + 1, 32 * npairs, dtype=np.uint8)
        if top:
            luts[:] = top  # the worst case: every lookup the largest value
            luts[rng.random(luts.size) < 0.5] = rng.integers(0, top + 1)
        simd, loop = np.zeros(32, np.uint16), np.zeros(32, np.uint16)
        ivfscan._sums_simd(docs, 32, luts, 0, npairs, simd)
        ivfscan._sums_loop(docs, 32, luts, 0, npairs, loop)
        np.testing.assert_array_equal(simd, loop)
        # two queries in one pass (the flat scan's query pairs): each as if alone
        luts2 = np.concatenate([luts, rng.permutation(luts)])
        pair, second = np.zeros(32, np.uint16), np.zeros(32, np.uint16)
        ivfscan._sums2_simd(docs, 32, luts2, 0, 32 * npairs, npairs, pair, second)
        ivfscan._sums_loop(docs, 32, luts2, 32 * npairs, npairs, loop)
        np.testing.assert_array_equal(pair, simd)
        np.testing.assert_array_equal(second, loop)


def test_deinterleave_gives_back_the_codes_in_list_order():
    from slimvec.kernels import ivfscan

    rng = np.random.default_rng(8)
    sizes = np.array([0, 1, 31, 32, 33, 0, 70, 5])  # empty, partial and whole blocks
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    codes = rng.integers(0, 256, (int(offsets[-1]), 24), dtype=np.uint8)
    docs = ivfscan.interleave(codes, offsets)
    np.testing.assert_array_equal(ivfscan.deinterleave(docs, offsets, 24), codes)


@pytest.mark.parametrize(("qbits", "planes", "words"), [(4, 2, 6), (4, 1, 1), (6, 3, 2), (2, 4, 1)])
def test_query_tables_are_the_nibble_sums_of_the_query_values(qbits, planes, words):
    """The compiled tables against their definition in NumPy: per plane, per code byte r,
    the 16 sums of the query's values on dims 8r..8r+3 selected by each low nibble, then on
    8r+4..8r+7 for each high one, shifted by the plane's place in its group, as bytes."""
    rng = np.random.default_rng(qbits * 10 + planes)
    nq = 3
    qplanes = rng.integers(0, 2**63, (nq, qbits, words), dtype=np.uint64)
    tables = ivfscan.query_tables(qplanes, planes)
    raw = qplanes.view(np.uint8).reshape(nq, qbits, words * 8)
    bits = np.unpackbits(raw, axis=2, bitorder="little").astype(np.int64)
    values = np.tensordot(bits, 1 << np.arange(qbits), axes=([1], [0]))  # (nq, dims)
    nibbles = (np.arange(16)[:, None] >> np.arange(4)) & 1
    sums = (values.reshape(nq, words * 8, 2, 4) @ nibbles.T).reshape(nq, -1)
    first = [0]
    for p in range(1, planes):
        if 4 * ((1 << qbits) - 1) << (p - first[-1]) > 255:
            first.append(p)
    shift = (
        np.arange(planes) - np.array(first)[np.searchsorted(first, np.arange(planes), "right") - 1]
    )
    expected = (sums[:, None, :] << shift[None, :, None]).astype(np.uint8).reshape(nq, -1)
    np.testing.assert_array_equal(tables.luts, expected)
    np.testing.assert_array_equal(tables.group_pairs, np.array([*first, planes]) * words * 8)


@pytest.mark.parametrize(
    ("nq", "d", "qbits", "pwords"), [(1, 384, 4, 6), (7, 100, 6, 2), (2, 64, 1, 1)]
)
def test_quantised_queries_are_the_rounded_bit_planes(nq, d, qbits, pwords):
    """The compiled quantisation against its NumPy definition, bit for bit (a constant
    query included: span 0, every coordinate at level 0)."""
    rng = np.random.default_rng(d)
    q = rng.standard_normal((nq, d)).astype(np.float32)
    q[-1] = 0.25
    planes, lo, delta, sums = quantise_queries(q, qbits, pwords)
    want_lo = q.min(axis=1)
    span = q.max(axis=1) - want_lo
    want_delta = np.where(span > 0, span / ((1 << qbits) - 1), 1.0).astype(np.float32)
    u = np.rint((q - want_lo[:, None]) / want_delta[:, None]).astype(np.uint8)
    want = np.zeros((nq, qbits, pwords * 8), np.uint8)
    for k in range(qbits):
        packed = np.packbits((u >> k) & 1, axis=1)
        want[:, k, : packed.shape[1]] = packed
    np.testing.assert_array_equal(planes.view(np.uint8).reshape(want.shape), want)
    np.testing.assert_array_equal(lo, want_lo)
    np.testing.assert_array_equal(delta, want_delta)
    want_sums = d * want_lo + want_delta * u.sum(axis=1, dtype=np.int64)
    np.testing.assert_array_equal(sums, want_sums.astype(np.float32))
