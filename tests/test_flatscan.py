"""The flat table scan (``kernels.flatscan``) returns what the bit-plane kernel returns: the
same integer sums, the same float32 scores bit for bit, the same rows (ties to the lowest)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import _clustered
from slimvec.codecs.rabitq import RaBitQCodec
from slimvec.kernels.flatscan import FlatBlocks, FlatCodes, flat_top
from slimvec.kernels.ivfscan import query_tables


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _case(d, n, bits, qbits, nq, seed=0, dup=0):
    """A fitted codec, codes (with ``dup`` exact copies of rows: tied scores) and queries."""
    rng = np.random.default_rng(seed)
    x = _clustered(n, d, seed + 1)
    if dup:
        x[rng.choice(n, dup, replace=False)] = x[rng.integers(0, n, dup)]
    codec = RaBitQCodec(d, bits, qbits).fit(x)
    codes = codec.encode(x)
    prepared = codec.quantised(codec.prepare(_unit(rng, nq, d)))
    return codec, codes, prepared, rng


def _reference(codec, codes, p):
    """Every (query, row) score written out in NumPy with the bit-plane kernel's float types:
    integer sums of the quantised query's levels over the code's levels, then
    qa + qdelta * (F * S) in float64, plus the float32 products qlo * L and qsum * (g * F)."""
    d = codec.dim
    planes = p.planes.view(np.uint8)
    levels = np.zeros((len(planes), d), np.int64)
    for k in range(codec.qbits):
        levels += np.unpackbits(planes[:, k], axis=1)[:, :d].astype(np.int64) << k
    u = np.zeros((len(codes), d), np.int64)
    for b in range(codec.bits):
        plane = codes[:, b * codec.plane_bytes : (b + 1) * codec.plane_bytes]
        u += np.unpackbits(plane, axis=1)[:, :d].astype(np.int64) << b
    sums = levels @ u.T  # (nq, n) exact integers
    f = codec.factors(codes)
    w, lterm = f[:, 0], f[:, 1]
    g = np.float32(-codec.half) * w
    total = w.astype(np.float64)[None, :] * sums
    score = p.offsets[:, None] + p.delta[:, None] * total
    score = score + p.lo[:, None] * lterm[None, :]
    score = score + p.qsums[:, None] * g[None, :]
    return score.astype(np.float32)


def _top(ref, keep, allow):
    """Best ``keep`` per query, ties to the lowest row; -1 / -inf padded."""
    ref = np.where(allow[None, :], ref, -np.inf) if allow is not None else ref
    order = np.lexsort((np.broadcast_to(np.arange(ref.shape[1]), ref.shape), -ref), axis=-1)
    order = order[:, :keep]
    scores = np.take_along_axis(ref, order, 1)
    rows = np.where(np.isfinite(scores), order, -1)
    pad = keep - rows.shape[1]
    if pad > 0:
        rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return rows, scores


def _blocks(codec, codes, cuts):
    """``codes`` split into segments at ``cuts``, laid out and joined as one ``FlatBlocks``."""
    bounds = [0, *cuts, len(codes)]
    parts = []
    for a, b in itertools.pairwise(bounds):
        docs, factors = codec.table_layout(codes[a:b])
        parts.append((a, b - a, docs, factors))
    return FlatBlocks.of(parts)


@pytest.mark.parametrize(
    ("d", "n", "bits", "qbits", "nq"),
    [
        (384, 2000, 2, 4, 1),  # the default spec's codes, one query
        (100, 1037, 2, 4, 7),  # dims not a multiple of 8 or 64; rows not of 32
        (37, 333, 1, 4, 40),  # odd dims, one plane, many queries
        (130, 515, 3, 6, 3),  # three planes, 6 query bits: several table groups
        (64, 97, 4, 1, 2),  # four planes, 1 query bit
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_flat_top_equals_bitplane_and_numpy(d, n, bits, qbits, nq, masked):
    codec, codes, p, rng = _case(d, n, bits, qbits, nq, seed=d + n, dup=n // 10)
    keep = 25
    allow = rng.random(n) > 0.3 if masked else None
    ref_rows, ref_scores = _top(_reference(codec, codes, p), keep, allow)
    plain_rows, plain_scores = codec.scan(p, codes, keep, allow)  # the bit-plane kernel
    np.testing.assert_array_equal(plain_scores, ref_scores)
    np.testing.assert_array_equal(plain_rows, ref_rows)
    blocks = _blocks(codec, codes, [n // 3, n // 3 + 45])  # three segments, ragged blocks
    tables = query_tables(p.planes, codec.bits)
    rows, scores = flat_top(
        tables, p.offsets, p.delta, p.lo, p.qsums, -codec.half, blocks, keep, allow
    )
    np.testing.assert_array_equal(scores, ref_scores)
    np.testing.assert_array_equal(rows, ref_rows)


@pytest.mark.parametrize("nq", [1, 5])  # blocks split between threads / queries split
def test_parallel_parts_answer_alike(nq, monkeypatch):
    """Two threads: one query's blocks in several parts merged, or a batch's queries in one
    group per thread: the same rows and scores as the NumPy reference."""
    import slimvec.kernels.flatscan as flatscan

    monkeypatch.setattr(flatscan, "threads_for", lambda work: 2)
    codec, codes, p, rng = _case(100, 2021, 2, 4, nq, seed=3, dup=300)
    allow = rng.random(len(codes)) > 0.4
    tables = query_tables(p.planes, codec.bits)
    blocks = _blocks(codec, codes, [999])
    for mask in (None, allow):
        rows, scores = flat_top(
            tables, p.offsets, p.delta, p.lo, p.qsums, -codec.half, blocks, 30, mask
        )
        ref_rows, ref_scores = _top(_reference(codec, codes, p), 30, mask)
        np.testing.assert_array_equal(rows, ref_rows)
        np.testing.assert_array_equal(scores, ref_scores)


def test_ties_go_to_the_lowest_row():
    """Copies of one code score alike: the lowest rows win, as in every kernel."""
    codec, codes, p, _ = _case(96, 300, 2, 4, 3, seed=5)
    codes = np.concatenate([codes[:10]] * 30)  # 300 rows: 30 copies of 10 codes
    keep = 7
    blocks = _blocks(codec, codes, [])
    tables = query_tables(p.planes, codec.bits)
    rows, scores = flat_top(
        tables, p.offsets, p.delta, p.lo, p.qsums, -codec.half, blocks, keep, None
    )
    ref_rows, ref_scores = _top(_reference(codec, codes, p), keep, None)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(scores, ref_scores)
    # each query's best code comes first in rows 0..9, its copies every 10 rows after
    np.testing.assert_array_equal(rows, rows[:, :1] + 10 * np.arange(keep))


@pytest.mark.parametrize("nq", [1, 9])
def test_codec_scan_of_flat_codes_merges_the_log_rows(nq):
    """``FlatCodes``: segments in the table layout, then log rows through the bit-plane
    kernel, one shortlist; tombstones and filters as an allow mask over all rows; pruning
    reads whole rows through ``gather``."""
    codec, codes, p, rng = _case(200, 1500, 2, 4, nq, seed=11, dup=100)
    committed, keep = 1430, 40
    allow = rng.random(len(codes)) > 0.5
    flat = FlatCodes(
        _blocks(codec, codes[:committed], [700]),
        codes[committed:],
        committed,
        lambda rows: codes[rows],
    )
    for mask in (None, allow):
        rows, scores = codec.scan(p, flat, keep, mask)
        want_rows, want_scores = codec.scan(p, codes, keep, mask)
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(scores, want_scores)
    picked = np.array([[3, 1499], [0, 700]])
    np.testing.assert_array_equal(flat[picked], codes[picked])
    pruned = codec.prune(p, flat, rows, scores, 10)
    np.testing.assert_array_equal(pruned[0], codec.prune(p, codes, rows, scores, 10)[0])


def test_no_rows_allowed_and_no_blocks_pad():
    codec, codes, p, _ = _case(64, 70, 2, 4, 2)
    tables = query_tables(p.planes, codec.bits)
    none = np.zeros(len(codes), bool)
    for blocks, allow in ((_blocks(codec, codes, []), none), (FlatBlocks.of([]), None)):
        rows, scores = flat_top(
            tables, p.offsets, p.delta, p.lo, p.qsums, -codec.half, blocks, 5, allow
        )
        assert (rows == -1).all() and np.isneginf(scores).all()


def test_a_collection_answers_alike_through_either_kernel(tmp_path, monkeypatch):
    """Through the collection: tombstones, a filter and rows still in the log give the same
    ids and scores from the table scan as from the bit-plane kernel (the same collection
    with its table-scan files removed, as one written before they existed)."""
    import slimvec
    from slimvec.engine import planner, searcher

    monkeypatch.setattr(searcher, "EXACT_FILTER_ROWS", 0)  # the masked first pass, not exact
    rng = np.random.default_rng(4)
    x = _clustered(2500, 72, 9)
    col = slimvec.create(tmp_path / "c", dim=72)
    col.add(x[:1700], metadata=[{"g": i % 3} for i in range(1700)])
    col.add(x[1700:2450], metadata=[{"g": i % 3} for i in range(750)])
    col.delete(rng.choice(2450, 300, replace=False))
    for i in range(2450, 2480):  # rows in the log
        col.add(x[i : i + 1], metadata=[{"g": i % 3}])
    q = _unit(rng, 6, 72)

    def answers(c):
        with planner.funnel_only():
            plain = c.search(q, k=20)
            one = c.search(q[:1], k=7)
            filtered = c.search(q, k=10, filter={"g": 1})
        assert filtered.explain["plan"] == "masked-funnel"
        return [(r.ids, r.scores) for r in (plain, one, filtered)]

    assert col._view.tables is not None
    tables = answers(col)
    col.close()
    for table_file in (tmp_path / "c" / "segments").rglob("fastscan*"):
        table_file.unlink()
    old = slimvec.open(tmp_path / "c")
    assert old._view.tables is None
    for (ids, scores), (want_ids, want_scores) in zip(tables, answers(old), strict=True):
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(scores, want_scores)
