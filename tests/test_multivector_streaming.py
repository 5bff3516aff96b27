"""Multi-vector adds stream (issue 31): documents are read, checked, pooled, encoded and
written a block at a time, blocks cut by token count under the add budget, so an add's peak
allocation does not grow with its size; the blocks give the same segment, byte for byte, as
one block; bad values in a late block refuse the whole add; kill -9 between blocks leaves the
last commit."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import slimvec
from allocation import allocated_by
from killpoints import run_until_killed
from slimvec.kernels.residual import ASSIGN_BLOCK, MAX_CENTROIDS
from slimvec.search.funnel import Pipeline
from slimvec.spec import parse_spec
from slimvec.store.budget import add_memory, weighted_starts
from slimvec.store.segments import verify_segment
from slimvec.transforms.fde import FDE

DIM = 32
FDE_PARAMS = {"r_reps": 2, "k_sim": 3, "d_proj": 8}


def token_sets(n: int, seed: int, dtype=np.float32) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((m, DIM)).astype(dtype) for m in rng.integers(10, 50, n)]


def _peak_of_add(path, docs, spec) -> tuple[int, int]:
    col = slimvec.create(path, dim=DIM, multivector=True, spec=spec, fde=FDE_PARAMS)
    peak, kept = allocated_by(lambda: col.add(docs))
    assert len(col) == len(docs)
    return peak, kept


def test_the_peak_of_a_multivector_add_does_not_grow_with_its_size(tmp_path, monkeypatch):
    """3,000 and 12,000 float16 token sets under an 8 MiB budget: the larger add allocates at
    its peak no more than the smaller (plus what it keeps: ids, FDE codes), within the budget
    and the codebook fit's fixed scratch; the whole-add path held float32 copies of every
    token (normalised, pooled), every FDE and every code: 230 MB here against 73 MB."""
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "8M")
    spec = "rabitq:2*10 > maxsim:rq2"
    warm = slimvec.create(tmp_path / "warm", dim=DIM, multivector=True, spec=spec, fde=FDE_PARAMS)
    warm.add(token_sets(300, 9, np.float16))  # compiles the kernels outside the count
    warm.search(token_sets(2, 8), k=3)
    small, large = token_sets(3_000, 0, np.float16), token_sets(12_000, 1, np.float16)
    peak_small, kept_small = _peak_of_add(tmp_path / "s", small, spec)
    peak_large, kept_large = _peak_of_add(tmp_path / "l", large, spec)
    assert peak_large < peak_small + (kept_large - kept_small) + (2 << 20), (peak_small, peak_large)
    # the budget, and the fixed scratch of fitting the token codebook (k-means assignments)
    scratch = ASSIGN_BLOCK * MAX_CENTROIDS * 4 * 2
    assert peak_large < add_memory() + kept_large + scratch, (peak_large, kept_large)


@pytest.mark.parametrize(
    ("spec", "metric", "pool_factor"),
    [("int8*10 > maxsim", "cosine", 1), ("rabitq:2*10 > maxsim:rq2", "ip", 2)],
)
def test_blocks_write_the_same_token_segment_as_one_block(
    tmp_path, monkeypatch, spec, metric, pool_factor
):
    """1,000 documents in 3-4 blocks and in one: identical token files, offsets and ids, and
    FDE codes but for the last, short block's (BLAS rounds its float32 matrix product its own
    way: 1 ulp, enough to change RaBitQ's float factors); the stored tokens, offsets and FDE
    codes are NumPy's."""
    docs = token_sets(1000, 2)
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "20M")
    widths = np.array([len(d) for d in docs]) * DIM + FDE(DIM, **FDE_PARAMS).out_dim
    starts = weighted_starts(widths)
    assert 3 <= len(starts) <= 4
    options = {"dim": DIM, "metric": metric, "multivector": True, "spec": spec}
    options |= {"fde": FDE_PARAMS, "pool_factor": pool_factor}
    small = slimvec.create(tmp_path / "small", **options)
    small.add(docs)
    monkeypatch.delenv("SLIMVEC_ADD_MEMORY")
    whole = slimvec.create(tmp_path / "whole", **options)
    whole.add(docs)
    assert len(weighted_starts(widths)) == 1
    [seg] = list((tmp_path / "small" / "segments").iterdir())
    names = sorted(p.name for p in seg.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "whole" / "segments" / seg.name).iterdir())
    for name in ("ids", "tokens", "token_offsets"):  # with their checksums
        for file in (f"{name}.npy", f"{name}.npy.crc32"):
            other = tmp_path / "whole" / "segments" / seg.name / file
            assert (seg / file).read_bytes() == other.read_bytes(), file
    assert verify_segment(tmp_path / "small", seg.name) == []
    first, rows = small._view.pipeline.first_key, np.arange(1000)
    agree = (small._view.gather(first, rows) == whole._view.gather(first, rows)).all(axis=1)
    assert agree[: starts[-1]].all()  # the last, short block's FDEs are rounded its own way
    queries = token_sets(20, 3)
    a, b = small.search(queries, k=10), whole.search(queries, k=10)
    assert (a.ids == b.ids).mean() >= 0.95
    # NumPy's reading of the same documents
    lengths = np.array([len(d) for d in docs])
    offsets = np.concatenate([[0], np.cumsum(-(-lengths // pool_factor))])
    stored = small._view.segments[0][1]
    np.testing.assert_array_equal(np.asarray(stored["token_offsets"]), offsets)
    if pool_factor == 1:  # the FDE codes of every document, fitted and encoded at once
        unit = [
            (d / np.linalg.norm(d.astype(np.float64), axis=1, keepdims=True)).astype(np.float32)
            for d in docs
        ]
        np.testing.assert_array_equal(
            np.asarray(stored["tokens"]), np.concatenate(unit).astype(np.float16)
        )
        fdes = FDE(DIM, **FDE_PARAMS, fill_empty=False).encode_documents(unit)
        pipeline = Pipeline(parse_spec(spec).vector_stages(), fdes.shape[1], "ip", originals=False)
        for key, codes in pipeline.fit(fdes).encode(fdes).items():
            assert (small._view.gather(key, rows) == codes).all(axis=1).mean() >= 0.99


@pytest.mark.parametrize("fault", ["nan", "zero"])
def test_bad_values_in_a_late_block_refuse_the_whole_add(tmp_path, monkeypatch, fault):
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "1M")
    col = slimvec.create(tmp_path / "c", dim=DIM, multivector=True, fde=FDE_PARAMS)
    col.add(token_sets(100, 4))
    before = sorted(p.name for p in (tmp_path / "c").rglob("*"))
    docs = token_sets(1000, 5)
    if fault == "nan":
        docs[930][3, 1] = np.nan
        message = r"documents \[930\] contain NaN"
    else:
        docs[951][7] = 0
        message = r"documents \[951\] hold all-zero token vectors"
    with pytest.raises(slimvec.InvalidInputError, match=message):
        col.add(docs)
    assert sorted(p.name for p in (tmp_path / "c").rglob("*")) == before
    assert len(col) == 100 and len(slimvec.open(tmp_path / "c")) == 100
    docs[930][3, 1] = docs[951][7, 0] = 1.0
    col.add(docs)
    assert len(slimvec.open(tmp_path / "c")) == 1100


CHILD = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import slimvec
    from killpoints import die_at_block
    from test_multivector_streaming import token_sets

    os.environ["SLIMVEC_ADD_MEMORY"] = "1M"
    die_at_block("tokens.npy", 3)  # two blocks of tokens on disk
    slimvec.open(sys.argv[1]).add(token_sets(1000, 6), ids=np.arange(10_000, 11_000))
    print("finished without crashing")
    """
)


def test_kill_between_blocks_of_a_multivector_add_leaves_the_last_commit(tmp_path):
    spec = "rabitq:2*10 > maxsim:rq2"
    col = slimvec.create(tmp_path / "c", dim=DIM, multivector=True, spec=spec, fde=FDE_PARAMS)
    col.add(token_sets(200, 7))
    queries = token_sets(5, 8)
    expected = col.search(queries, k=5)
    col.close()
    run_until_killed(CHILD, tmp_path / "c")
    reopened = slimvec.open(tmp_path / "c")
    assert len(reopened) == 200
    again = reopened.search(queries, k=5)
    np.testing.assert_array_equal(again.ids, expected.ids)
    np.testing.assert_array_equal(again.scores, expected.scores)
    segments = tmp_path / "c" / "segments"
    assert len(list(segments.iterdir())) == len(reopened.manifest.segments) + 1  # the partial one
    new = token_sets(100, 9)
    reopened.add(new, ids=np.arange(10_000, 10_100))
    assert len(slimvec.open(tmp_path / "c")) == 300
    assert len(list(segments.iterdir())) == len(reopened.manifest.segments)  # swept
    found = reopened.search(new[:5], k=1, exact=True).ids[:, 0]
    np.testing.assert_array_equal(found, np.arange(10_000, 10_005))
