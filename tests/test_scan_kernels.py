"""Compiled first-pass scans (int8, multi-bit binary) against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import _clustered
from slimvec.codecs.binary import BinaryCodec
from slimvec.codecs.int8 import Int8Codec
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
