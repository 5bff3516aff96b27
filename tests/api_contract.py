"""The collection API contract, written once and run against every kind of collection.

A test module imports these tests (``from api_contract import *``) and defines the fixture
``make_collection(name, dim=None, **create_kwargs)`` returning a fresh, empty collection:
local (``slimvec.create``) in ``test_contract_local.py``, remote (a real server through
``slimvec.connect``) in ``test_server.py``, sharded (2 shards on Ray) in
``test_contract_sharded.py``, upgrading (a model upgrade in progress) in
``test_contract_upgrading.py``; each fixture's param names the kind in the test ids.
Encoders are passed as ``Encoder`` objects; a remote factory sends their name to a server that
knows them. Results and exceptions must be the same: same classes, same messages. Documented
differences, which a factory declares: ``get`` without ids lists rows in insertion order
locally and by id (string ids: by key) on a sharded collection, whose shards share no
insertion order (``make.get_order = "id"``); an upgrading collection always has its models
(``make.has_encoder``); and what a kind cannot do (``make.cannot``: capability -> the clear
error it raises instead, asserted by :func:`_cannot`). ``make.reopen(col)`` closes a
collection the factory made and returns a new handle on it (what a restart does).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import slimvec
from slimvec.encoders import Encoder
from slimvec.errors import IdKindError

__all__ = [
    "HashEncoder",
    "test_add_assigns_increasing_ids_and_search_finds_them",
    "test_bad_input_is_refused_with_the_library_message",
    "test_delete_hides_vectors_and_compact_keeps_answers",
    "test_exact_search_matches_numpy",
    "test_filters_restrict_search_count_get_update_and_delete",
    "test_given_ids_metadata_and_texts_round_trip",
    "test_k_larger_than_the_collection_pads",
    "test_len_and_info",
    "test_string_ids_in_every_call",
    "test_target_recall_is_set_through_the_handle_and_kept",
    "test_text_collections_search_dense_sparse_and_hybrid",
    "test_text_search_filters_every_mode",
    "test_upsert_replaces_vectors_metadata_and_texts",
    "test_vectors_need_texts_for_keyword_search",
]

DIM = 32
TEXTS = [
    "Perl module to extract data from an HTML table",
    "lossless data compression library with a fast decoder",
    "command-line tool to convert images between formats",
    "Python bindings for the SQLite embedded database",
    "fonts with wide Unicode coverage for terminals",
    "HTML parser and tree builder for Python",
]


class HashEncoder(Encoder):
    """A tiny deterministic encoder, so text tests need no model download or torch."""

    dim = 16
    name = "hash-16"

    def _encode(self, texts, kind, batch_size):
        rows = [
            np.random.default_rng([0, *map(ord, t[:32])]).standard_normal(self.dim) for t in texts
        ]
        return np.array(rows, np.float32)


def _data(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _listed(make_collection, ids: list) -> list:
    """``ids`` (insertion order) in the order ``get`` lists rows of this kind of collection."""
    return sorted(ids) if getattr(make_collection, "get_order", "insertion") == "id" else ids


def _cannot(make_collection, capability: str, call) -> bool:
    """Whether this kind of collection cannot do ``capability``; if so, ``call`` must raise
    the clear error the factory names (checked here) and the test has nothing more to do."""
    message = getattr(make_collection, "cannot", {}).get(capability)
    if message is None:
        return False
    with pytest.raises(slimvec.InvalidInputError, match=message):
        call()
    return True


def _top(docs: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ docs.T), axis=1, kind="stable")[:, :k]


def test_add_assigns_increasing_ids_and_search_finds_them(make_collection):
    col = make_collection("basic", DIM)
    assert isinstance(col, slimvec.CollectionProtocol)
    docs = _data(300)
    ids = col.add(docs[:200])
    more = col.add(docs[200:])
    assert ids.dtype == np.int64 and more.dtype == np.int64
    assert ids.tolist() == list(range(200)) and more.tolist() == list(range(200, 300))
    res = col.search(docs[:20], k=5)
    assert isinstance(res, slimvec.SearchResult)
    assert res.ids.shape == (20, 5) and res.ids.dtype == np.int64
    assert res.scores.shape == (20, 5) and res.scores.dtype == np.float32
    assert (res.ids[:, 0] == np.arange(20)).all()  # each vector is its own nearest
    assert np.all(np.diff(res.scores, axis=1) <= 1e-6)
    single = col.search(docs[7], k=3)  # one query as a 1-D vector
    assert single.ids.shape == (1, 3) and single.ids[0, 0] == 7
    listed = col.search(docs[:2].tolist(), k=3)  # plain lists work as well
    assert listed.ids[:, 0].tolist() == [0, 1]


def test_exact_search_matches_numpy(make_collection):
    col = make_collection("exact", DIM, spec="binary*10 > f32")
    docs, queries = _data(500, 1), _data(10, 2)
    col.add(docs)
    exact = col.search(queries, k=10, exact=True)
    assert (exact.ids == _top(docs, queries, 10)).all()
    np.testing.assert_allclose(
        exact.scores, np.sort(queries @ docs.T, axis=1)[:, ::-1][:, :10], rtol=1e-5, atol=1e-5
    )
    approx = col.search(queries, k=10)
    hits = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.ids, exact.ids)])
    assert hits >= 0.8  # recall of the funnel measured against exact search


def test_given_ids_metadata_and_texts_round_trip(make_collection):
    col = make_collection("payload", DIM)
    docs = _data(3, 3)
    ids = col.add(
        docs,
        ids=[10, 20, 30],
        metadata=[{"lang": "en"}, None, {"n": [1, 2]}],
        texts=["a", "b", "c"],
    )
    assert ids.tolist() == [10, 20, 30]
    assert col.metadata([30, 10, 99]) == [{"n": [1, 2]}, {"lang": "en"}, None]
    assert col.texts(np.array([20, 99])) == ["b", None]
    assert col.search(docs[1], k=1).ids[0, 0] == 20
    with pytest.raises(slimvec.DuplicateIdError, match=r"ids already in the collection: \[20\]"):
        col.add(docs[:1], ids=[20])
    assert len(col) == 3


def test_delete_hides_vectors_and_compact_keeps_answers(make_collection):
    col = make_collection("deletes", DIM)
    docs = _data(100, 4)
    col.add(docs)
    assert col.delete([3, 5]) == 2
    assert len(col) == 98
    res = col.search(docs[[3, 5, 6]], k=3, exact=True)
    assert not np.isin([3, 5], res.ids).any() and res.ids[2, 0] == 6
    with pytest.raises(slimvec.InvalidInputError, match=r"ids not in the collection: \[3\]"):
        col.delete([3])
    before = col.search(docs[:10], k=5)
    col.compact()
    after = col.search(docs[:10], k=5)
    assert (before.ids == after.ids).all() and len(col) == 98
    assert col.info()["deleted"] == 0


def test_k_larger_than_the_collection_pads(make_collection):
    col = make_collection("pad", DIM)
    docs = _data(3, 5)
    col.add(docs)
    res = col.search(docs[:2], k=5)
    assert (res.ids[:, 3:] == -1).all() and np.isneginf(res.scores[:, 3:]).all()
    empty = make_collection("empty", DIM)
    for res in (empty.search(docs[:1], k=2), empty.search(docs[:1], k=2, filter={"a": 1})):
        assert res.ids.tolist() == [[-1, -1]] and np.isneginf(res.scores).all()


def test_len_and_info(make_collection):
    col = make_collection("info", DIM, metric="ip", spec="int8*4 > f32")
    col.add(_data(50, 6))
    info = col.info()
    assert len(col) == 50 and info["count"] == 50
    assert info["dim"] == DIM and info["metric"] == "ip" and info["spec"] == "int8*4 > f32"
    assert info["ram_bytes_per_vector"] == DIM + 9
    assert info["float32_bytes_per_vector"] == 4 * DIM


BAD = [
    (lambda d: d[:, :5], r"vectors have 5 dims but this collection holds 32-dim vectors"),
    (lambda d: np.where(np.arange(DIM) == 0, np.nan, d), r"NaN or infinite values in rows \[0, 1"),
    (lambda d: np.zeros_like(d), r"all zeros"),
    (lambda d: [[1.0, 2.0], [1.0]], r"could not read it \(setting an array element"),
    (lambda d: [["a"] * DIM], r"must hold real numbers"),
    (lambda d: d[0], r"must be 2-D"),
]


@pytest.mark.parametrize("make_bad, message", BAD)
def test_bad_input_is_refused_with_the_library_message(make_collection, make_bad, message):
    col = make_collection("bad", DIM)
    docs = _data(4, 7)
    col.add(docs)
    with pytest.raises(slimvec.InvalidInputError, match=message):
        col.add(make_bad(docs))
    assert len(col) == 4  # nothing written
    with pytest.raises(slimvec.InvalidInputError, match="k must be"):
        col.search(docs[:1], k=0)
    with pytest.raises(slimvec.InvalidInputError, match="queries have 5 dims"):
        col.search(docs[:1, :5], k=1)
    with pytest.raises(slimvec.InvalidInputError, match="metadata must be a list with one dict"):
        col.add(docs[:2], ids=[100, 101], metadata=[{}])
    with pytest.raises(slimvec.InvalidInputError, match="ids must be >= 0"):
        col.add(docs[:1], ids=[-1])
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        col.search(docs[:1], k=1, nope=True)
    assert len(col) == 4 and col.search(docs[:1], k=1).ids[0, 0] == 0


def test_text_collections_search_dense_sparse_and_hybrid(make_collection):
    col = make_collection("texts", encoder=HashEncoder())
    ids = col.add_texts(TEXTS, metadata=[{"i": i} for i in range(len(TEXTS))])
    assert ids.tolist() == list(range(len(TEXTS)))
    assert col.info()["encoder"]["name"] == "hash-16"
    dense = col.search_texts(TEXTS[2], k=1)
    assert dense.ids.tolist() == [[2]]
    sparse = col.search_texts(["html parser python", "compression"], k=2, mode="sparse")
    assert sparse.ids.shape == (2, 2) and sparse.ids[0, 0] == 5 and sparse.ids[1, 0] == 1
    hybrid = col.search_texts("HTML table", k=3, mode="hybrid", fusion="weighted")
    assert hybrid.ids[0, 0] in (0, 5) and hybrid.scores.dtype == np.float32
    assert col.texts([5]) == [TEXTS[5]] and col.metadata([5]) == [{"i": 5}]
    with pytest.raises(slimvec.InvalidInputError, match="unknown mode 'fuzzy'"):
        col.search_texts("x", mode="fuzzy")
    with pytest.raises(slimvec.InvalidInputError, match=r"must be strings; items \[1\] are not"):
        col.add_texts(["ok", 3])
    assert len(col) == len(TEXTS)


def test_text_search_filters_every_mode(make_collection):
    col = make_collection("textfilter", encoder=HashEncoder())
    col.add_texts(TEXTS, metadata=[{"even": i % 2 == 0} for i in range(len(TEXTS))])
    even = {"even": True}
    for mode in ("dense", "sparse", "hybrid"):
        res = col.search_texts(["HTML parser for Python", "data"], k=3, mode=mode, filter=even)
        assert res.ids.shape == (2, 3) and set(res.ids[res.ids >= 0].tolist()) <= {0, 2, 4}
    sparse = col.search_texts("html parser python", k=2, mode="sparse", filter=even)
    assert sparse.ids[0, 0] == 0  # 5 and 3 match more words but are odd
    assert col.search_texts(TEXTS[4], k=1, filter=even).ids.tolist() == [[4]]
    assert col.search_texts(TEXTS[3], k=1, filter=even).ids[0, 0] != 3
    with pytest.raises(slimvec.InvalidInputError, match=r"\$near"):
        col.search_texts("x", mode="hybrid", filter={"even": {"$near": 1}})


def test_vectors_need_texts_for_keyword_search(make_collection):
    col = make_collection("notext", DIM)
    col.add(_data(5, 8))
    if getattr(make_collection, "has_encoder", False):  # dense text search works
        assert col.search_texts("anything", k=2).ids.shape == (1, 2)
    else:
        with pytest.raises(slimvec.InvalidInputError, match="has no encoder"):
            col.search_texts("anything")
    with pytest.raises(slimvec.InvalidInputError, match="holds no texts"):
        col.search_texts("anything", mode="sparse")


def test_filters_restrict_search_count_get_update_and_delete(make_collection):
    col = make_collection("filters", DIM)
    docs = _data(300, 11)
    meta = [{"group": ["a", "b", "c"][i % 3], "year": 2000 + i % 25} for i in range(300)]
    col.add(docs, metadata=meta)
    flt = {"group": "b", "year": {"$gte": 2010}}
    match = np.array([m["group"] == "b" and m["year"] >= 2010 for m in meta])
    assert col.count(filter=flt) == int(match.sum()) and col.count() == 300
    res = col.search(docs[:4], k=5, filter=flt, exact=True)
    allowed = np.flatnonzero(match)
    expect = allowed[_top(docs[allowed], docs[:4], 5)]
    assert res.ids.tolist() == expect.tolist()
    assert res.explain["matching"] == int(match.sum())
    page = col.get(filter={"group": {"$in": ["a"]}}, limit=7, offset=2)
    assert page.ids.tolist() == list(range(6, 27, 3)) and page.metadata[0] == meta[6]
    assert page.vectors is None  # vectors only when asked (or when ids are given)
    page = col.get(filter={"group": {"$in": ["a"]}}, limit=2, offset=1, vectors=True)
    np.testing.assert_allclose(page.vectors, docs[[3, 6]], rtol=1e-6, atol=1e-6)
    assert col.update_metadata([1, 4], [{"group": "z"}, None]) == 2
    assert col.metadata([1, 4]) == [{"group": "z"}, None]
    # merge one dict into the rows a filter matches: chosen, read and written in one commit
    assert col.update_metadata(filter={"group": "z"}, merge={"seen": True}) == 1
    assert col.update_metadata([4, 7], filter={"year": 2007}, merge={"n": 1}) == 1
    assert col.metadata([1, 4, 7]) == [{"group": "z", "seen": True}, None, {**meta[7], "n": 1}]
    col.create_index("group")
    assert col.count(filter={"group": "z"}) == 1
    assert col.delete(filter={"group": {"$in": ["z", "c"]}}) == 101
    assert len(col) == 199 and col.count(filter={"group": "c"}) == 0
    with pytest.raises(slimvec.InvalidInputError, match="nprobe must be"):
        col.search(docs[:1], k=1, nprobe=0)  # reaches the library's check
    with pytest.raises(slimvec.InvalidInputError, match=r"\$near"):
        col.search(docs[:1], k=1, filter={"year": {"$near": 3}})
    with pytest.raises(slimvec.InvalidInputError, match="ids not in the collection"):
        col.update_metadata([10_000], [{}])
    with pytest.raises(slimvec.InvalidInputError, match="needs a filter or ids"):
        col.update_metadata(merge={"x": 1})
    with pytest.raises(slimvec.InvalidInputError, match="not both"):
        col.update_metadata([7], [{}], merge={"x": 1})
    with pytest.raises(slimvec.InvalidInputError, match=r"\$near"):
        col.update_metadata(filter={"year": {"$near": 3}}, merge={"x": 1})
    with pytest.raises(slimvec.InvalidInputError, match="filter selects the rows"):
        col.update_metadata([7], [{}], filter={"year": 2007})
    assert len(col) == 199 and col.metadata([7]) == [{**meta[7], "n": 1}]


def test_upsert_replaces_vectors_metadata_and_texts(make_collection):
    col = make_collection("upsert", DIM)
    docs = _data(6, 13)
    col.add(docs[:4], metadata=[{"v": 1}] * 4, texts=["a", "b", "c", "d"])
    if _cannot(make_collection, "upsert", lambda: col.upsert(docs[4:6], ids=[1, 9])):
        assert len(col) == 4 and col.metadata([1]) == [{"v": 1}]  # nothing written
        return
    assert col.upsert(docs[4:6], ids=[1, 9], metadata=[{"v": 2}, None]).tolist() == [1, 9]
    assert len(col) == 5 and col.metadata([1, 9]) == [{"v": 2}, None]
    assert col.texts([1, 2]) == [None, "c"]  # the replaced row's text went with it
    assert col.search(docs[4], k=1, exact=True).ids.tolist() == [[1]]
    with pytest.raises(slimvec.InvalidInputError, match="upsert needs the ids"):
        col.upsert(docs[:1], ids=None)


def test_string_ids_in_every_call(make_collection):
    if _cannot(make_collection, "string ids", lambda: make_collection("s", DIM, ids="str")):
        return
    col = make_collection("strids", DIM, ids="str")
    other = make_collection("intids", DIM)
    docs = _data(6, 12)
    keys = ["doc-a", "docs/b.txt", "c", "ünï"]
    meta = [{"group": g} for g in "xyxyxy"]
    got = col.add(docs[:4], ids=keys, metadata=meta[:4], texts=["ta", "tb", "tc", "td"])
    assert got.dtype == object and got.tolist() == keys
    assert col.info()["id_kind"] == "str" and col.id_kind == "str" and other.id_kind == "int"
    made = col.add(docs[4:6], metadata=meta[4:])  # no ids: UUID strings
    assert made.dtype == object and all(isinstance(k, str) and len(k) == 36 for k in made)
    res = col.search(docs[:3], k=8, exact=True)
    assert res.ids.dtype == object and res.ids.shape == (3, 8)
    assert res.ids[:, 0].tolist() == keys[:3] and res.ids[:, 6:].tolist() == [[None] * 2] * 3
    assert np.isneginf(res.scores[:, 6:]).all()
    assert col.search(docs[1], k=1).ids.tolist() == [["docs/b.txt"]]
    page = col.get(["c", "doc-a", "missing"])  # by id, in that order: vectors too; unknown left out
    assert page.ids.tolist() == ["c", "doc-a"] and page.texts == ["tc", "ta"]
    assert page.metadata == [meta[2], meta[0]] and page.ids.dtype == object
    np.testing.assert_allclose(page.vectors, docs[[2, 0]], rtol=1e-6, atol=1e-6)
    listed = col.get(filter={"group": "y"}, limit=10).ids.tolist()
    assert listed == _listed(make_collection, [keys[1], keys[3], made[1]])
    assert col.metadata(["ünï", "nope"]) == [meta[3], None] and col.texts(["c"]) == ["tc"]
    assert col.count(filter={"group": "x"}) == 3
    assert col.update_metadata(["c"], [{"group": "z"}]) == 1 and col.metadata("c") == [
        {"group": "z"}
    ]
    assert col.upsert(docs[[5, 1]], ids=["c", "new"], texts=["tc2", "tn"]).tolist() == [
        "c",
        "new",
    ]  # "c" replaced, "new" added: one commit
    assert len(col) == 7 and col.texts(["c", "new"]) == ["tc2", "tn"]
    assert col.metadata(["c"]) == [None]  # upsert replaces the metadata too
    assert col.search(docs[5], k=2, exact=True).ids[0].tolist() in (
        [made[1], "c"],
        ["c", made[1]],
    )
    assert col.delete(["doc-a", made[0]]) == 2 and len(col) == 5
    assert col.delete(filter={"group": "y"}) == 3 and len(col) == 2
    col.compact()
    assert sorted(col.get().ids.tolist()) == ["c", "new"]
    # the wrong kind of id is refused with the library's message, nothing written
    with pytest.raises(IdKindError, match=r"ids='str'"):
        other.add(docs[:1], ids=["doc-a"])
    with pytest.raises(IdKindError):
        col.add(docs[:1], ids=[7])
    with pytest.raises(IdKindError):
        col.upsert(docs[:1], ids=[7])
    with pytest.raises(IdKindError):
        col.delete([7])
    with pytest.raises(slimvec.DuplicateIdError, match="use upsert"):
        col.add(docs[:1], ids=["c"])
    with pytest.raises(slimvec.InvalidInputError, match="upsert needs the ids"):
        col.upsert(docs[:1], ids=None)
    with pytest.raises(slimvec.InvalidInputError, match=r"ids not in the collection: \['x'\]"):
        col.delete(["x"])
    assert len(col) == 2 and len(other) == 0
    assert other.upsert(docs[:2], ids=[3, 4]).tolist() == [3, 4]  # int ids upsert too
    assert other.get([4]).vectors.shape == (1, DIM)


def test_target_recall_is_set_through_the_handle_and_kept(make_collection):
    """Live recall's target (``slimvec.engine.quality``): set through any handle, committed
    (it survives a reopen), cleared with None, and a bad value refused with the library's
    message before anything is written."""
    col = make_collection("target", DIM)
    col.add(_data(50, 14))
    report = col.live_recall()
    assert report["target_recall"] is None and report["plans"] == {}
    col.set_target_recall(0.9)
    assert col.live_recall()["target_recall"] == 0.9 == col.info()["quality"]["target_recall"]
    for bad in (0, 1.5, "x", float("nan"), True, -0.5):
        message = f"target_recall must be a number in (0, 1] or None, got {bad!r}"
        with pytest.raises(slimvec.InvalidInputError, match=re.escape(message)):
            col.set_target_recall(bad)
    col = make_collection.reopen(col)
    assert col.info()["quality"]["target_recall"] == 0.9 and len(col) == 50
    col.set_target_recall(1)  # an int is a number
    col.set_target_recall(None)
    col = make_collection.reopen(col)
    assert col.live_recall()["target_recall"] is None
    assert col.search(_data(1, 14), k=1).ids.tolist() == [[0]]
