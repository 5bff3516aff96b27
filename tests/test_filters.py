"""Filtered search: the filter language, its evaluation, search vs exact filtered search."""

import numpy as np
import pytest

import slimvec
from slimvec.errors import InvalidInputError
from slimvec.search.columns import MetadataColumns
from slimvec.search.filters import MAX_DEPTH, MAX_IN, parse_filter

# -- a reference evaluator: the documented semantics, one row at a time ----------------------


def _values(meta, field):
    if not meta or meta.get(field) is None:
        return []
    value = meta[field]
    return [v for v in (value if isinstance(value, list) else [value]) if v is not None]


def _same_kind(a, b):
    return isinstance(a, bool) == isinstance(b, bool) and isinstance(a, str) == isinstance(b, str)


def reference(meta, spec):
    """Does ``meta`` match ``spec``? (MongoDB semantics, written the slow obvious way)."""
    for key, cond in spec.items():
        if key == "$and":
            ok = all(reference(meta, c) for c in cond)
        elif key == "$or":
            ok = any(reference(meta, c) for c in cond)
        elif key == "$not":
            ok = not reference(meta, cond)
        else:
            vals = _values(meta, key)
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            ok = True
            for op, x in ops.items():
                same = [v for v in vals if _same_kind(v, x if op not in ("$in", "$nin") else x[0])]
                if op == "$eq":
                    ok &= any(v == x for v in same)
                elif op == "$ne":
                    ok &= not any(v == x for v in same)
                elif op == "$in":
                    ok &= any(v in x for v in same)
                elif op == "$nin":
                    ok &= not any(v in x for v in same)
                elif op == "$exists":
                    ok &= bool(vals) == x
            lows = [(op, x) for op, x in ops.items() if op in ("$gt", "$gte", "$lt", "$lte")]
            if lows:  # range operators of one field: one value must satisfy all of them
                check = {
                    "$gt": lambda v, x: v > x,
                    "$gte": lambda v, x: v >= x,
                    "$lt": lambda v, x: v < x,
                    "$lte": lambda v, x: v <= x,
                }
                ok &= any(all(_same_kind(v, x) and check[op](v, x) for op, x in lows) for v in vals)
        if not ok:
            return False
    return True


def make_metas(n, seed=0):
    rng = np.random.default_rng(seed)
    metas = []
    for i in range(n):
        meta = {
            "package": f"p{rng.integers(0, 20)}",
            "year": int(rng.integers(2000, 2025)),
            "score": float(np.round(rng.random(), 3)),
            "tags": [f"t{t}" for t in rng.choice(8, rng.integers(0, 3), replace=False)],
            "flag": bool(rng.random() < 0.3),
        }
        if i % 7 == 0:
            del meta["year"]
        if i % 11 == 0:
            meta["score"] = None
        metas.append(meta if i % 13 else None)
    return metas


FILTERS = [
    {"package": "p3"},
    {"package": {"$ne": "p3"}},
    {"year": {"$gte": 2020}},
    {"year": {"$gt": 2005, "$lte": 2010}},
    {"year": {"$lt": 2003}},
    {"score": {"$gt": 0.5}},
    {"package": {"$gte": "p15", "$lt": "p4"}},
    {"package": {"$gt": "p1"}},
    {"package": {"$lt": "p10a"}},
    {"tags": "t1"},
    {"tags": {"$in": ["t2", "t5"]}},
    {"tags": {"$nin": ["t2", "t5"]}},
    {"tags": {"$exists": False}},
    {"year": {"$exists": True}},
    {"nothing": {"$exists": False}},
    {"flag": True},
    {"flag": {"$ne": True}},
    {"package": {"$in": ["p1", "p2", "zz"]}},
    {"year": {"$in": [2001, 2002, 2003.0]}},
    {"year": {"$nin": [2001, 2002]}},
    {"$or": [{"package": "p1"}, {"tags": {"$in": ["t3"]}}]},
    {"$and": [{"package": {"$in": ["p1", "p2", "p3"]}}, {"year": {"$gte": 2010}}]},
    {"$not": {"$or": [{"flag": True}, {"year": {"$lt": 2010}}]}},
    {"package": "p1", "year": {"$gte": 2010}, "tags": {"$ne": "t0"}},
    {"package": "unknown value"},
    {},
]


@pytest.mark.parametrize("indexed", [False, True])
def test_columns_match_the_reference_semantics(indexed):
    metas = make_metas(3000)
    n = len(metas) + 50  # rows past the columns' knowledge hold no metadata
    columns = MetadataColumns.from_metadata(np.arange(len(metas)), metas)
    if indexed:
        for field in ("package", "year", "score", "tags"):
            columns.create_index(field)
    for spec in FILTERS:
        want = np.array([reference(m, spec) for m in [*metas, *[None] * 50]])
        got = columns.mask(parse_filter(spec), n)
        assert (got == want).all(), (spec, np.flatnonzero(got != want)[:5])


def test_columns_after_append_and_update():
    metas = make_metas(2000, seed=1)
    columns = MetadataColumns.from_metadata(np.arange(1000), metas[:1000])
    columns.create_index("package")
    columns.append(np.arange(1000, 2000), metas[1000:])
    changed = np.arange(0, 2000, 9)
    fresh = make_metas(len(changed), seed=2)
    columns.drop_rows(changed)
    columns.append(changed, fresh)
    for row, meta in zip(changed, fresh):
        metas[row] = meta
    assert columns.indexed == {"package"}
    for spec in FILTERS:
        want = np.array([reference(metas[r], spec) for r in range(2000)])
        assert (columns.mask(parse_filter(spec), 2000) == want).all(), spec


def test_log_writes_update_the_columns_like_a_fresh_build(tmp_path):
    """After adds, metadata updates (one making an indexed field mixed-type), an upsert and a
    delete in the log, the handle that saw them filters exactly as a freshly opened one (which
    builds its columns from scratch), and kept its columns instead of rebuilding them."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((700, 16)).astype(np.float32)
    metas = make_metas(700, seed=5)
    col = slimvec.create(tmp_path / "c", dim=16, spec="binary*10 > f32")
    col.add(x[:500], metadata=metas[:500])
    col.flush()  # rows 0..499 in a segment (metadata in SQLite), the rest goes to the log
    col.create_index("package")
    col.create_index("year")
    col.update_metadata([7], [{"extra": 1}])
    col.create_index("extra")
    assert col.count({"package": "p3"}) == sum(reference(m, {"package": "p3"}) for m in metas[:500])
    col.delete([5, 6])  # opens the write-ahead log: the writes below are log records
    columns = col._view.filter_columns()
    for start in range(500, 600, 20):  # adds under LOG_MAX_ROWS: log records
        col.add(x[start : start + 20], metadata=metas[start : start + 20])
    col.update_metadata([3, 4, 550], [{"package": "p3", "year": 1999}, None, {"extra": "x"}])
    col.upsert(x[10:20] * -1, ids=list(range(10, 20)), metadata=[{"package": "p3"}] * 10)
    col.delete([560])
    col.add(x[600:650], metadata=metas[600:650])
    fresh = slimvec.open(tmp_path / "c")
    q = x[:8] + 0.1
    for spec in FILTERS:
        assert col.count(spec) == fresh.count(spec), spec
        got, want = col.search(q, k=5, filter=spec), fresh.search(q, k=5, filter=spec)
        assert (got.ids == want.ids).all(), spec
    assert col._view.filter_columns() is columns  # followed the log, no rebuild
    assert col.count({"year": {"$lt": 2000}}) == 1  # row 3's new year, on the indexed field
    assert col.count({"extra": {"$exists": True}}) == fresh.count({"extra": {"$exists": True}}) == 2
    indexed = {"package", "year"}
    assert col._view.filter_columns().indexed == fresh._view.filter_columns().indexed == indexed


# -- bad filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, words",
    [
        ('{"package": "git"}', "json.loads"),
        ("package == git", "dict"),
        (["package"], "dict"),
        ({"year": {"$gtt": 3}}, "unknown operator '$gtt'"),
        ({"$xor": [{"a": 1}]}, "unknown operator '$xor'"),
        ({"$gt": 3}, "applies to a field"),
        ({"$or": {"a": 1}}, "non-empty list"),
        ({"$or": []}, "non-empty list"),
        ({"$and": [{"a": 1}, "b"]}, "filter['$and'][1]"),
        ({"$not": [{"a": 1}]}, "one filter dict"),
        ({"a": {}}, "empty operator dict"),
        ({"a": {"b": 1}}, "nested fields"),
        ({"a": [1, 2]}, "$in"),
        ({"a": None}, "$exists"),
        ({"a": float("nan")}, "finite"),
        ({"a": {"$in": [1.0, float("nan")]}}, "finite"),
        ({"a": {"$in": "abc"}}, "list of values"),
        ({"a": {"$in": [1, "x"]}}, "mixes"),
        ({"a": {"$in": list(range(MAX_IN))}}, "100,000"),
        ({"a": {"$exists": 1}}, "true or false"),
        ({"a": {"$gt": True}}, "booleans"),
        ({"a": {"$gt": 1, "$gte": 2}}, "two lower bounds"),
        ({"a": {"$gt": 1, "$lt": "z"}}, "number with a string"),
        ({"a": {"$eq": {"x": 1}}}, "string, number or boolean"),
        ({1: 2}, "field names"),
    ],
)
def test_malformed_filters_are_refused_with_the_offending_part(spec, words):
    with pytest.raises(InvalidInputError, match=None) as info:
        parse_filter(spec)
    assert words in str(info.value)


def test_depth_limit():
    spec = {"a": 1}
    for _ in range(MAX_DEPTH + 1):
        spec = {"$not": spec}
    with pytest.raises(InvalidInputError, match="deeper"):
        parse_filter(spec)
    for _ in range(5000):  # far past Python's recursion limit: still a clear error
        spec = {"$not": spec}
    with pytest.raises(InvalidInputError, match="deeper"):
        parse_filter(spec)


@pytest.fixture
def small(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 16)).astype(np.float32)
    metas = [
        {"package": f"p{i % 4}", "year": 2000 + i % 10, "mixed": i if i % 2 else "s"}
        for i in range(400)
    ]
    metas[5]["obj"] = {"nested": 1}
    col = slimvec.create(tmp_path / "c", dim=16)
    col.add(x, metadata=metas)
    return col, x


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"year": "2001"}, "holds numbers but the filter compares it with strings"),
        ({"package": {"$gt": 3}}, "holds strings"),
        ({"mixed": 3}, "holds numbers and strings"),
        ({"obj": 1}, "holds objects"),
    ],
)
def test_filters_that_do_not_fit_the_data(small, spec, words):
    col, x = small
    for call in (
        lambda: col.search(x[:2], k=3, filter=spec),
        lambda: col.count(spec),
        lambda: col.get(filter=spec),
        lambda: col.delete(filter=spec),
    ):
        with pytest.raises(InvalidInputError) as info:
            call()
        assert words in str(info.value)
    assert len(col) == 400  # nothing was deleted
    assert col.count({"pakage": {"$exists": False}}) == 400


def test_bad_metadata_and_arguments(small):
    col, x = small
    with pytest.raises(InvalidInputError, match="JSON"):
        col.add(x[:1], metadata=[{"a": float("nan")}])
    with pytest.raises(InvalidInputError, match="not in the collection"):
        col.update_metadata([1, 99999], [{"a": 1}, {"a": 2}])
    with pytest.raises(InvalidInputError, match="one dict"):
        col.update_metadata([1, 2], [{"a": 1}])
    with pytest.raises(InvalidInputError, match="not both"):
        col.delete(ids=[1], filter={"package": "p1"})
    with pytest.raises(InvalidInputError, match="ids to delete"):
        col.delete()
    with pytest.raises(InvalidInputError, match="offset"):
        col.get(offset=-1)
    with pytest.raises(InvalidInputError, match="holds numbers and strings"):
        col.create_index("mixed")
    assert len(col) == 400
    assert col.metadata([1])[0]["package"] == "p1"


# -- the collection API --------------------------------------------------------------------


def brute_force(x, q, mask, k):
    """Exact filtered top-k: inner products over the masked originals."""
    scores = q @ x.T
    scores[:, ~mask] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.where(np.isfinite(np.take_along_axis(scores, top, 1)), top, -1), scores


def recall_at(found, exact_ids, scores, k):
    """Hits count ties at the k-th exact score (near-duplicate twins are both right)."""
    hits = 0
    for i in range(len(found)):
        kth = scores[i, exact_ids[i, k - 1]] if exact_ids[i, k - 1] >= 0 else -np.inf
        good = found[i][found[i] >= 0]
        hits += int((scores[i, good] >= kth - 1e-6).sum())
    return hits / max(1, (exact_ids >= 0).sum())


def embedding_like(n, dim, seed):
    """Unit vectors with the structure of text embeddings: clusters in a low-rank,
    anisotropic subspace plus a little full-rank noise (isotropic Gaussians have no near
    neighbours worth finding)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((48, dim)) / np.sqrt(np.arange(1, 49))[:, None]
    centres = rng.standard_normal((200, 48))
    cluster = rng.integers(0, 200, n)
    z = centres[cluster] + 0.8 * rng.standard_normal((n, 48))
    x = (z @ basis + 0.05 * rng.standard_normal((n, dim))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, cluster, rng


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """20,000 embedding-like vectors, metadata with controlled selectivity."""
    n, dim = 20_000, 384
    x, cluster, rng = embedding_like(n, dim, 5)
    bucket = rng.integers(0, 10_000, n)
    metas = [{"bucket": int(b), "package": f"pkg{c}"} for b, c in zip(bucket, cluster)]
    col = slimvec.create(tmp_path_factory.mktemp("f") / "c", dim=dim, spec="binary*10 > f32")
    col.add(x, metadata=metas)
    q = x[rng.choice(n, 40, replace=False)] + 0.02 * rng.standard_normal((40, dim))
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    return col, x, q, bucket, cluster


@pytest.mark.parametrize("selectivity", [0.5, 0.1, 0.01, 0.001])
def test_filtered_search_matches_exact_filtered_search(clustered, selectivity):
    col, x, q, bucket, _ = clustered
    k = 10
    spec = {"bucket": {"$lt": int(selectivity * 10_000)}}
    mask = bucket < selectivity * 10_000
    exact_ids, scores = brute_force(x, q, mask, k)
    res = col.search(q, k=k, filter=spec)
    assert np.isin(res.ids[res.ids >= 0], np.flatnonzero(mask)).all()
    assert recall_at(res.ids, exact_ids, scores, k) >= 0.99, res.explain
    expected = min(k, int(mask.sum()))
    assert ((res.ids >= 0).sum(axis=1) == expected).all()  # no short lists
    assert res.explain["matching"] == mask.sum()
    assert res.explain["plan"] in ("exact-rows", "masked-funnel")
    assert col.count(spec) == mask.sum()


def test_query_correlated_filter(clustered):
    """The filter is the package (cluster) of each query's nearest neighbour."""
    col, x, q, _, cluster = clustered
    k = 10
    nearest = np.argmax(q @ x.T, axis=1)
    for i in range(len(q)):
        package = cluster[nearest[i]]
        mask = cluster == package
        exact_ids, scores = brute_force(x, q[i : i + 1], mask, k)
        res = col.search(q[i], k=k, filter={"package": f"pkg{package}"})
        assert recall_at(res.ids, exact_ids, scores, k) == 1.0
        assert (res.ids >= 0).sum() == k


def test_filtered_search_plans_and_short_matches(clustered):
    col, x, q, bucket, _ = clustered
    wide = col.search(q, k=10, filter={"bucket": {"$lt": 9000}})
    assert wide.explain["plan"] == "masked-funnel"
    few = col.search(q, k=10, filter={"bucket": 17})
    assert few.explain["plan"] == "exact-rows"
    matching = int((bucket == 17).sum())
    assert matching < 10  # fewer matches than k: all of them, then padding
    assert ((few.ids >= 0).sum(axis=1) == matching).all()
    none = col.search(q, k=10, filter={"bucket": -5})
    assert none.explain["plan"] == "empty" and (none.ids == -1).all()
    exact = col.search(q, k=10, exact=True, filter={"bucket": {"$lt": 5000}})
    want, _ = brute_force(x, q, bucket < 5000, 10)
    assert (exact.ids == want).all()
    assert col.search(q, k=10).explain["plan"] == "funnel"  # priced: tests/conftest.py


def test_collection_filter_api_end_to_end(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    metas = make_metas(300, seed=4)
    col = slimvec.create(tmp_path / "c", dim=8)
    col.add(x[:100])  # no metadata at all for these
    col.add(x[100:], metadata=metas[100:])
    metas[:100] = [None] * 100
    spec = {"package": {"$in": ["p1", "p2"]}}
    want = [i for i, m in enumerate(metas) if reference(m, spec)]
    assert col.count(spec) == len(want)
    page = col.get(filter=spec, limit=5, offset=3)
    assert page.ids.tolist() == want[3:8]
    assert page.metadata == [metas[i] for i in want[3:8]]
    assert col.get(ids=[want[0], 5], filter=spec).ids.tolist() == [want[0]]
    assert len(col.get(limit=None).ids) == 300

    col.create_index("package")
    col.update_metadata([want[0], 7], [{"package": "moved"}, {"package": "p1"}])
    assert col.metadata([want[0], 7]) == [{"package": "moved"}, {"package": "p1"}]
    assert col.count({"package": "moved"}) == 1
    assert col.count(spec) == len(want)  # one left, one came in
    reopened = slimvec.open(tmp_path / "c")
    assert reopened.count({"package": "moved"}) == 1
    assert reopened.metadata([7]) == [{"package": "p1"}]

    p1 = col.count({"package": "p1"})
    assert p1 == len(col.get(filter={"package": "p1"}, limit=None).ids) > 0
    deleted = col.delete(filter={"package": "p1"})
    assert deleted == p1
    assert col.count({"package": "p1"}) == 0
    assert len(col) == 300 - deleted
    assert col.delete(filter={"package": "nope"}) == 0
    res = col.search(x, k=3, filter={"package": "p2"})
    assert all(m["package"] == "p2" for m in col.metadata(res.ids[res.ids >= 0]))

    col.compact()
    assert col.metadata([want[0]]) == [{"package": "moved"}]
    assert col.count({"package": "moved"}) == 1 and col.count({"package": "p1"}) == 0
    names = {p.name for p in (tmp_path / "c").iterdir()}
    assert not any(name.startswith(("metaupd", "filters")) for name in names)  # all in RAM


def test_metadata_updates_in_the_log_fold_into_sqlite_and_indexes_persist(tmp_path):
    """update_metadata is a log record; a flush folds it into SQLite; the columns are rebuilt
    from the live metadata after every change (no file), and indexed fields are recorded."""
    rng = np.random.default_rng(3)
    col = slimvec.create(tmp_path / "c", dim=8)
    col.add(rng.standard_normal((100, 8)), metadata=[{"i": i} for i in range(100)])  # segment
    col.add(rng.standard_normal((5, 8)), metadata=[{"i": 100 + i} for i in range(5)])  # log
    col.create_index("i")
    assert col.count({"i": {"$lt": 10}}) == 10
    col.update_metadata([0, 1, 102], [{"i": 1000}, None, {"i": 2000}])  # segment and log rows
    other = slimvec.open(tmp_path / "c")
    assert other.count({"i": {"$gte": 1000}}) == 2
    assert other.metadata([0, 1, 102]) == [{"i": 1000}, None, {"i": 2000}]
    assert other.count({"i": {"$exists": False}}) == 1
    assert col.count({"i": {"$lt": 10}}) == 8  # the first handle catches up too
    col.flush()  # the log (adds and the meta record) folds into a segment and SQLite
    reopened = slimvec.open(tmp_path / "c")
    assert reopened.info()["log_rows"] == 0
    assert reopened.metadata([0, 1, 102]) == [{"i": 1000}, None, {"i": 2000}]
    assert reopened.count({"i": {"$gte": 1000}}) == 2
    assert reopened.manifest.extra["indexes"] == ["i"]
    assert reopened._view.filter_columns().describe()["i"]["indexed"]
    assert not any(p.name.startswith(("filters", "metaupd")) for p in (tmp_path / "c").iterdir())


def test_multivector_filtered_search_is_exact_maxsim_of_the_matching_items(tmp_path):
    rng = np.random.default_rng(1)
    docs = [
        rng.standard_normal((int(rng.integers(3, 9)), 16)).astype(np.float32) for _ in range(300)
    ]
    col = slimvec.create(tmp_path / "m", dim=16, multivector=True)
    col.add(docs, metadata=[{"group": i % 10} for i in range(300)])
    queries = [rng.standard_normal((4, 16)).astype(np.float32) for _ in range(3)]
    exact_all = col.search(queries, k=300, exact=True)
    for spec, groups in (({"group": 3}, {3}), ({"group": {"$lt": 8}}, set(range(8)))):
        res = col.search(queries, k=5, filter=spec)
        for i in range(3):
            want = [d for d in exact_all.ids[i] if d % 10 in groups][:5]
            assert res.ids[i].tolist() == want, res.explain


def test_cli_search_with_a_filter(tmp_path):
    from typer.testing import CliRunner

    from slimvec.cli import app

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8)).astype(np.float32)
    col = slimvec.create(tmp_path / "c", dim=8)
    col.add(x, metadata=[{"section": i % 5} for i in range(200)])
    col.close()
    np.save(tmp_path / "q.npy", x[:3])
    runner = CliRunner()
    args = ["search", str(tmp_path / "c"), "-q", str(tmp_path / "q.npy"), "-k", "4"]
    ok = runner.invoke(app, [*args, "--filter", '{"section": 3}'])
    assert ok.exit_code == 0, ok.output
    assert '{"section": 3}' in ok.output and '{"section": 1}' not in ok.output
    assert "exact-rows" in ok.output
    bad = runner.invoke(app, [*args, "--filter", "section=3"])
    assert bad.exit_code == 2 and "--filter must be JSON" in bad.stderr
    unknown = runner.invoke(app, [*args, "--filter", '{"section": {"$gtt": 1}}'])
    assert unknown.exit_code == 2 and "unknown operator '$gtt'" in unknown.stderr


def test_text_search_modes_with_a_filter_also_during_an_upgrade(tmp_path):
    from test_upgrade import DOCS, QUERIES, new_model, old_model

    col = slimvec.create(tmp_path / "t", encoder=old_model(), spec="f32")
    topics = ["perl", "python", "fonts", "images", "sqlite"]
    col.add_texts(DOCS, metadata=[{"topic": topics[i % 5], "i": i} for i in range(len(DOCS))])
    spec = {"topic": {"$in": ["fonts", "sqlite"]}, "i": {"$lt": 200}}
    allowed = {i for i in range(len(DOCS)) if i % 5 in (2, 4) and i < 200}
    for mode in ("dense", "sparse", "hybrid"):
        res = col.search_texts(QUERIES[:6], k=5, mode=mode, filter=spec)
        found = res.ids[res.ids >= 0]
        assert len(found) and set(found.tolist()) <= allowed, mode
        if mode == "hybrid":  # fused ranks depend on each side's (filtered) list
            continue
        unfiltered = col.search_texts(QUERIES[:6], k=240, mode=mode)
        for row in range(6):  # the filtered scores are the unfiltered ones restricted
            keep = np.isin(unfiltered.ids[row], list(allowed))
            want = unfiltered.scores[row][keep][:5]
            np.testing.assert_allclose(res.scores[row][: len(want)], want, rtol=1e-5)
    assert (col.search_texts(QUERIES[:3], k=8, filter=spec).ids >= 0).all()  # never short
    with pytest.raises(InvalidInputError, match="unknown operator"):
        col.search_texts(QUERIES[:1], mode="sparse", filter={"i": {"$foo": 1}})

    # during a model upgrade, with half the documents moved to the new model's space, every
    # call filters over both spaces
    col = col.begin_upgrade(new_model())
    col.backfill(limit=len(DOCS) // 2, progress=False)
    for mode in ("dense", "sparse", "hybrid"):
        res = col.search_texts(QUERIES[:6], k=5, mode=mode, filter=spec)
        found = res.ids[res.ids >= 0].tolist()
        assert found and set(found) <= allowed
    assert {i for i in found if i < len(DOCS) // 2} and {i for i in found if i >= len(DOCS) // 2}
    res = col.search(old_model().encode(QUERIES[:4], kind="query"), k=5, filter=spec)
    assert set(res.ids.ravel().tolist()) <= allowed and res.explain["matching"] == len(allowed)
    assert col.count(spec) == len(allowed) == len(col.get(filter=spec, limit=None).ids)
    full = col.get(filter=spec, limit=None).ids.tolist()  # old space's rows, then the new's
    pages = [col.get(filter=spec, limit=7, offset=o).ids.tolist() for o in range(0, 91, 7)]
    assert [i for page in pages for i in page] == full
    assert col.update_metadata([1, 200], [{"i": 1}, {"i": 200}]) == 2  # one in each space
    assert col.update_metadata(filter={"i": {"$in": [1, 200]}}, merge={"seen": 1}) == 2
    assert col.metadata([1, 200]) == [{"i": 1, "seen": 1}, {"i": 200, "seen": 1}]
    assert col.delete(filter={"seen": 1}) == 2 and len(col) == len(DOCS) - 2


def test_an_empty_in_list_matches_nothing_and_an_empty_nin_everything(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=4)
    col.add(np.eye(4)[:3], metadata=[{"n": 2}, {"n": -2}, {"s": "y"}])
    assert col.count({"n": {"$in": []}}) == 0
    assert col.count({"n": {"$nin": []}}) == 3


def test_a_field_no_vector_has_matches_nothing_and_explain_names_it(tmp_path):
    """MongoDB's rule: a row without the field never equals, or falls in a range of, anything;
    $ne / $nin / $not match it. A misspelt field finds nothing, and explain says why."""
    col = slimvec.create(tmp_path / "c", dim=4, spec="f32")
    x = np.eye(4, dtype=np.float32)
    col.add(x, metadata=[{"package": "p1"}, {"package": "p2"}, None, {"other": 1}])
    res = col.search(x[:1], k=4, filter={"pakage": "p1"})
    assert (res.ids == -1).all() and res.explain["plan"] == "empty"
    assert "'pakage'" in res.explain["why"]
    assert col.count({"pakage": {"$in": ["p1"]}}) == 0
    assert col.count({"pakage": {"$gte": 1}}) == 0
    assert col.count({"pakage": {"$ne": "p1"}}) == 4
    assert col.count({"$or": [{"pakage": "p1"}, {"package": "p2"}]}) == 1
    assert col.get(filter={"package": {"$nin": ["p1"]}}).ids.tolist() == [1, 2, 3]
