"""The planner prices exact search against the funnel and runs the cheaper (its prices are
measured by benchmarks/planner.py; here: which plan is chosen, and that it answers right)."""

import numpy as np
import pytest

import slimvec
from slimvec.engine import planner

pytestmark = pytest.mark.planner  # the real prices (tests/conftest.py prices exact out)

RABITQ2_384 = 104  # first-stage bytes of the default spec at 384 dims (codes + factors)


def test_small_collections_are_searched_exactly_and_large_ones_through_the_funnel():
    for batch in (1, 200):
        assert planner.choose(batch, 1_000, 384, RABITQ2_384, table_bytes=96).kind == "exact"
        assert planner.choose(batch, 10_000, 384, RABITQ2_384, table_bytes=96).kind == "exact"
        assert planner.choose(batch, 1_000_000, 384, RABITQ2_384, table_bytes=96).kind == "funnel"
    # Segments without the table layout (written before it existed, until a write converts
    # them): the bit-plane code scan pays off for one query, but a batch is faster exact
    # (measured at 200k x 384, 200 queries: code scan 426 ms, exact 276, table scan 168).
    assert planner.choose(1, 1_000_000, 384, RABITQ2_384).kind == "funnel"
    assert planner.choose(200, 1_000_000, 384, RABITQ2_384).kind == "exact"


def test_the_crossover_moves_with_what_each_plan_reads():
    """One crossover per setting: exact below it, the funnel above; an IVF first pass that
    reads 1/16 of the rows takes over sooner than a flat scan."""

    def crossover(**kw):
        """Index of the first size the funnel takes (len: none of them)."""
        kinds = [planner.choose(rows=int(n), **kw).kind for n in 2 ** np.arange(8, 24)]
        assert kinds == sorted(kinds, key=lambda k: k == "funnel")  # exact..., funnel...
        return kinds.index("funnel") if "funnel" in kinds else len(kinds)

    flat = crossover(queries=200, dim=384, code_bytes=RABITQ2_384, table_bytes=96)
    ivf = crossover(queries=200, dim=384, code_bytes=RABITQ2_384, scanned=1 / 16)
    assert ivf <= flat < 16
    for queries in (1, 200):  # the flat table scan reads 96 bit-plane bytes a row, faster
        code = crossover(queries=queries, dim=384, code_bytes=RABITQ2_384)
        tables = crossover(queries=queries, dim=384, code_bytes=RABITQ2_384, table_bytes=96)
        assert tables < code


def test_explain_names_the_flat_table_scan(tmp_path):
    """A collection whose segments carry the table layout: its funnel plan says which first
    pass ran; before a write converts an old collection, the code scan."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, 40)).astype(np.float32)
    col = slimvec.create(tmp_path / "c", dim=40)
    col.add(x)
    with planner.funnel_only():
        assert col.search(x[:2], k=5).explain["first_pass"] == "flat table scan"
        col.close()
        for table_file in (tmp_path / "c" / "segments").rglob("fastscan*"):
            table_file.unlink()
        old = slimvec.open(tmp_path / "c")
        assert old.search(x[:2], k=5).explain["first_pass"] == "flat code scan"


def test_a_small_collection_answers_exactly_and_says_so(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 64)).astype(np.float32)
    col = slimvec.create(tmp_path / "c", dim=64)
    col.add(x, metadata=[{"even": i % 2 == 0} for i in range(2000)])
    q = rng.standard_normal((5, 64)).astype(np.float32)
    res = col.search(q, k=10)
    assert res.explain["plan"] == "exact-scan" and "exact search costs less" in res.explain["why"]
    assert (res.ids == col.search(q, k=10, exact=True).ids).all()
    filtered = col.search(q, k=10, filter={"even": True})
    assert filtered.explain["plan"] in ("exact-scan", "exact-rows")
    assert (filtered.ids % 2 == 0).all()
