"""RaBitQ codes: the estimator (unbiased, within its error bound), the compiled scan, the funnel."""

from __future__ import annotations

import numpy as np
import pytest

import slimvec
from conftest import _clustered, recall
from slimvec.codecs.rabitq import RaBitQCodec
from slimvec.errors import CorruptCollectionError, InvalidInputError, SpecError
from slimvec.kernels.bitplane import bitplane_top, quantise_queries
from slimvec.search.funnel import Pipeline
from slimvec.spec import parse_spec


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _pairs(bits: int, d: int = 128, n: int = 2000, nq: int = 50, seed: int = 0):
    """Estimates (float queries) and exact inner products over n x nq pairs."""
    rng = np.random.default_rng(seed)
    x = _clustered(n, d, seed + 1)
    q = _unit(rng, nq, d)
    codec = RaBitQCodec(d, bits, seed=seed).fit(x)
    codes = codec.encode(x)
    prepared = codec.prepare(q)
    est = codec.score_block(prepared, codes)
    bound = codec.error_bound(prepared, np.broadcast_to(codes, (nq, *codes.shape)), eps=1.0)
    return est, q @ x.T, bound


@pytest.mark.parametrize("bits", [1, 3])
def test_estimator_is_unbiased_over_rotations(bits):
    # Unbiased over the random rotation: average each pair's error over independent rotations,
    # then over pairs. The mean must be within 4 standard errors of 0.
    errors = []
    for seed in range(8):
        est, exact, _ = _pairs(bits, n=400, nq=20, seed=seed)
        errors.append(est - exact)
    err = np.stack(errors).ravel()
    assert abs(err.mean()) < 4 * err.std() / np.sqrt(err.size)
    assert err.std() > 0  # the codes do lose information: a real estimate, not the exact value


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_error_within_the_papers_bound(bits):
    # Bound |r| |q| sqrt(1 - a^2) / a * eps0 / sqrt(D - 1): the error is close to Gaussian with
    # that scale (times eps0), so eps0 = 1.9 fails on at most ~5.7% of pairs and eps0 = 3 on ~0.3%.
    est, exact, unit = _pairs(bits)
    err = np.abs(est - exact)
    assert np.mean(err > 1.9 * unit) < 0.07
    assert np.mean(err > 3.0 * unit) < 0.006
    # more bits, smaller errors: the bound scales down with them
    assert np.median(unit) < {1: 0.1, 2: 0.05, 4: 0.012}[bits]


@pytest.mark.parametrize("nq", [1, 6])  # one row at a time / word-major blocks
@pytest.mark.parametrize(("bits", "qbits"), [(1, 4), (2, 8), (3, 1)])
def test_scan_matches_numpy_reference(bits, qbits, nq):
    rng = np.random.default_rng(bits)
    d, n, keep = 100, 3000, 40  # 100 dims: planes padded to 128 bits
    x = _clustered(n, d, 7)
    codec = RaBitQCodec(d, bits, qbits).fit(x)
    codes = codec.encode(x)
    prepared = codec.quantised(codec.prepare(_unit(rng, nq, d)))
    # reference: the same estimate with the quantised query, in floats
    qhat = prepared.lo[:, None] + prepared.delta[:, None] * _levels(prepared, qbits, d)
    u = _unpack(codec, codes)
    f = codec.factors(codes)
    ref = prepared.offsets[:, None] + f[:, 0] * (qhat @ u.T - codec.half * qhat.sum(1)[:, None])
    allow = rng.random(n) > 0.2
    ref[:, ~allow] = -np.inf
    rows, scores = codec.scan(prepared, codes, keep, allow)
    assert allow[rows].all()
    expect = np.sort(ref, axis=1)[:, ::-1][:, :keep]
    np.testing.assert_allclose(scores, expect, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.take_along_axis(ref, rows, axis=1), scores, atol=1e-4)


def _unpack(codec, codes):
    """(n, dim) float grid coordinates u of code rows, the slow obvious way."""
    u = np.zeros((len(codes), codec.dim), np.float32)
    for p in range(codec.bits):
        plane = codes[:, p * codec.plane_bytes : (p + 1) * codec.plane_bytes]
        u += np.unpackbits(plane, axis=1)[:, : codec.dim] * np.float32(1 << p)
    return u


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_rescoring_gathered_codes_matches_numpy_reference(bits):
    """``score`` (a shortlist per query, float query) = the estimator written out in NumPy."""
    rng = np.random.default_rng(10 + bits)
    d, n, nq, c = 100, 500, 5, 37
    x = _clustered(n, d, 3)
    codec = RaBitQCodec(d, bits).fit(x)
    codes = codec.encode(x)
    q = _unit(rng, nq, d)
    prepared = codec.prepare(q)
    rows = rng.integers(0, n, (nq, c))
    got = codec.score(prepared, codes[rows])
    f = codec.factors(codes)[:, 0]
    rq = prepared.rotated
    full = (rq @ _unpack(codec, codes).T - codec.half * rq.sum(1)[:, None]) * f
    ref = np.take_along_axis(full, rows, axis=1) + (q @ codec.centroid)[:, None]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    # and it estimates the true inner products (loosely: 1 bit errs by a few hundredths)
    assert np.abs(got - np.take_along_axis(q @ x.T, rows, axis=1)).mean() < 0.1


def _levels(prepared, qbits, d):
    planes = prepared.planes.view(np.uint8)
    levels = np.zeros((planes.shape[0], d))
    for k in range(qbits):
        levels += np.unpackbits(planes[:, k], axis=1)[:, :d] * (1 << k)
    return levels


def test_bitplane_top_pads_when_too_few_rows_are_allowed():
    rng = np.random.default_rng(0)
    docs = rng.integers(0, 2**63, (50, 2), dtype=np.int64).view(np.uint64)
    planes, lo, delta, sums = quantise_queries(_unit(rng, 3, 64), 4, 1)
    w = np.ones((50, 1), np.float32)
    zeros = np.zeros(50, np.float32)
    allow = np.zeros(50, bool)
    allow[[3, 17]] = True
    rows, scores = bitplane_top(planes, lo, delta, lo, sums, docs, 2, 1, np.ones(2), w, zeros,
                                zeros, 5, allow)  # fmt: skip
    assert (np.sort(rows[:, :2], axis=1) == [3, 17]).all()
    assert (rows[:, 2:] == -1).all() and np.isneginf(scores[:, 2:]).all()


@pytest.mark.parametrize(
    ("spec", "floor"), [("rabitq*20 > f32", 0.97), ("rabitq:4*4 > f32", 0.99), ("rabitq:4", 0.9)]
)
def test_funnel_recall_against_exact(tmp_path, minilm, spec, floor):
    docs, queries = minilm
    col = slimvec.create(tmp_path / "c", dim=docs.shape[1], metric="cosine", spec=spec)
    col.add(docs)
    found = col.search(queries[:200], k=10).ids
    exact = col.search(queries[:200], k=10, exact=True).ids
    assert recall(found, exact) >= floor
    col.close()


def test_reopen_and_deletes(tmp_path, small):
    col = slimvec.create(tmp_path / "c", dim=64, metric="ip", spec="rabitq:2*10 > f32")
    ids = col.add(small)
    col.delete(ids[:100])
    before = col.search(small[:20], k=5)
    assert not np.isin(before.ids, ids[:100]).any()
    col.close()
    col = slimvec.open(tmp_path / "c")
    after = col.search(small[:20], k=5)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_allclose(before.scores, after.scores, rtol=1e-5)
    col.close()


def test_spec_spelling_round_trips():
    assert str(parse_spec("RaBitQ:4/q8 * 4 > f32")) == "rabitq:4/q8*4 > f32"
    assert str(parse_spec("rabitq:1/q4*20 > f32")) == "rabitq*20 > f32"
    assert parse_spec("rabitq:4*4 > f32").stages[0].code_key == "rabitq4"


@pytest.mark.parametrize(
    "bad",
    ["rabitq:0*4 > f32", "rabitq:9*4 > f32", "rabitq/q0*4 > f32", "rabitq:2/q9 > f32",
     "binary/q4*4 > f32", "int8:2 > f32"],
)  # fmt: skip
def test_bad_bits_are_spec_errors(tmp_path, bad):
    with pytest.raises(SpecError):
        parse_spec(bad)
    with pytest.raises(SpecError):
        slimvec.create(tmp_path / "c", dim=8, spec=bad)
    assert not (tmp_path / "c").exists()


def _damage_state(path, change):
    state_file = next(path.glob("state-*.npz"))
    with np.load(state_file) as f:
        state = dict(f)
    change(state)
    np.savez(state_file, **state)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.update({"codec.rabitq.rotation": np.eye(32, dtype=np.float32)}),
        lambda s: s.pop("codec.rabitq.rotation"),
        lambda s: s.update({"codec.rabitq.centroid": np.full(64, np.nan, np.float32)}),
    ],
    ids=["wrong-shape", "missing", "nan"],
)
def test_damaged_rotation_state_is_corrupt(tmp_path, small, change):
    col = slimvec.create(tmp_path / "c", dim=64, spec="rabitq*10 > f32")
    col.add(small)
    col.close()
    _damage_state(tmp_path / "c", change)
    with pytest.raises(CorruptCollectionError):
        slimvec.open(tmp_path / "c")


def test_zero_query_under_cosine_is_refused(tmp_path, small):
    col = slimvec.create(tmp_path / "c", dim=64, metric="cosine", spec="rabitq*10 > f32")
    col.add(small)
    with pytest.raises(InvalidInputError, match="zeros"):
        col.search(np.zeros((1, 64), np.float32), k=5)
    col.close()


def test_auto_shortlist_keeps_recall_and_shrinks_with_more_bits(tmp_path):
    rng = np.random.default_rng(3)
    docs = rng.standard_normal((5000, 96)).astype(np.float32)  # isotropic: the hard case
    queries = rng.standard_normal((50, 96)).astype(np.float32)
    sizes = {}
    for spec in ("rabitq:2*auto > f32", "rabitq:4*auto > f32"):
        col = slimvec.create(tmp_path / spec[:8], dim=96, metric="cosine", spec=spec)
        col.add(docs)
        found = col.search(queries, k=10).ids
        exact = col.search(queries, k=10, exact=True).ids
        assert recall(found, exact) >= 0.99
        col.close()
        pipe = _pipeline_for(spec, docs)
        codec = pipe.codecs[pipe.first_key]
        z = docs / np.linalg.norm(docs, axis=1, keepdims=True)
        codes = codec.encode(z)
        prepared = codec.prepare(queries / np.linalg.norm(queries, axis=1, keepdims=True))
        rows, scores = codec.scan(prepared, codes, 2000, None)
        rows, _ = codec.prune(prepared, codes, rows, scores, 10)
        sizes[spec] = (rows >= 0).sum(axis=1).mean()
    assert 10 <= sizes["rabitq:4*auto > f32"] < sizes["rabitq:2*auto > f32"]


def _pipeline_for(spec, docs):
    x = docs / np.linalg.norm(docs, axis=1, keepdims=True)
    return Pipeline(parse_spec(spec), docs.shape[1], "cosine").fit(x)


@pytest.mark.parametrize(
    "bad", ["binary*auto > f32", "rabitq*40 > rabitq:4*auto > f32", "rabitq*auto"]
)
def test_auto_needs_a_first_rabitq_stage(bad):
    with pytest.raises(SpecError):
        parse_spec(bad)


def test_collections_with_the_old_default_still_open_and_search(tmp_path, minilm):
    docs, queries = minilm
    col = slimvec.create(tmp_path / "old", dim=docs.shape[1], spec="binary*40 > f32")
    col.add(docs[:2000])
    col.close()
    col = slimvec.open(tmp_path / "old")
    assert col.info()["spec"] == "binary*40 > f32"
    found = col.search(queries[:50], k=10).ids
    assert recall(found, col.search(queries[:50], k=10, exact=True).ids) >= 0.97
    col.close()
