"""BM25Index: scores against the formula by hand, updates, persistence and crash safety."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from slimvec.errors import CorruptCollectionError, DuplicateIdError, InvalidInputError
from slimvec.sparse import BM25Index

PLAIN = {"stopwords": None, "stemmer": None}  # whitespace words as terms, for hand checks
CORPUS = ["apple banana apple", "banana cherry", "cherry cherry cherry date"]


def lucene_bm25(query: list[str], docs: list[list[str]], k1: float, b: float) -> np.ndarray:
    """Lucene's BM25 (no (k1+1) factor since Lucene 8), straight from the formula."""
    n = len(docs)
    avgdl = sum(map(len, docs)) / n
    scores = np.zeros(n)
    for term in query:
        df = sum(term in d for d in docs)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for j, d in enumerate(docs):
            tf = d.count(term)
            scores[j] += idf * tf / (tf + k1 * (1 - b + b * len(d) / avgdl))
    return scores


def test_lucene_scores_by_hand():
    index = BM25Index(k1=1.2, b=0.75, **PLAIN)
    index.add([100, 200, 300], CORPUS)
    ids, scores = index.search(["apple cherry", "banana", "kiwi"], k=3)
    docs = [d.split() for d in CORPUS]
    for q, query in enumerate(["apple cherry", "banana"]):
        expected = lucene_bm25(query.split(), docs, 1.2, 0.75)
        order = np.argsort(-expected, kind="stable")
        order = order[expected[order] > 0]
        assert sorted(ids[q][: len(order)].tolist()) == sorted((100 * (order + 1)).tolist())
        got = dict(zip(ids[q].tolist(), scores[q].tolist()))
        for j in order:
            assert got[100 * (j + 1)] == pytest.approx(expected[j], rel=1e-5)
        assert (ids[q][len(order) :] == -1).all()
    # a word in no document matches nothing
    assert (ids[2] == -1).all() and np.isneginf(scores[2]).all()
    # hand values: idf(apple) = ln(1 + 2.5/1.5); doc 0 has tf 2, length 3 = avgdl
    assert scores[0][ids[0] == 100][0] == pytest.approx(
        math.log(1 + 2.5 / 1.5) * 2 / (2 + 1.2), rel=1e-5
    )


def test_atire_variant_by_hand():
    index = BM25Index(method="atire", **PLAIN)
    index.add([0, 1, 2], CORPUS)
    ids, scores = index.search(["date"], k=1)
    # ATIRE: idf = ln(N / df), tf part = tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))
    expected = math.log(3 / 1) * 1 * 2.5 / (1 + 1.5 * (0.25 + 0.75 * 4 / 3))
    assert ids[0, 0] == 2 and scores[0, 0] == pytest.approx(expected, rel=1e-5)


def test_default_english_tokenisation():
    index = BM25Index()
    index.add([1, 2, 3], ["The dog runs in the park", "Cats sleep all day", "A running dog"])
    ids, _ = index.search(["dogs RUNNING"], k=3)
    assert set(ids[0][ids[0] >= 0].tolist()) == {1, 3}  # stemmed and lower-cased
    ids, _ = index.search(["the"], k=3)  # a stopword only: no terms, no matches
    assert (ids == -1).all()


def _words(rng: np.random.Generator, n: int) -> list[str]:
    vocab = [f"w{i}" for i in range(40)]
    return [" ".join(rng.choice(vocab, rng.integers(1, 12))) for _ in range(n)]


def test_add_delete_then_search_matches_a_fresh_index():
    rng = np.random.default_rng(0)
    texts = dict(enumerate(_words(rng, 60)))
    index = BM25Index(**PLAIN)
    index.add(list(range(30)), [texts[i] for i in range(30)])
    queries = _words(rng, 8)
    index.search(queries, k=5)  # build, so the next changes must invalidate it
    index.delete([3, 4, 5, 999])  # 999 is not held: ignored
    index.add(list(range(30, 60)), [texts[i] for i in range(30, 60)])
    index.delete([40])
    index.add([3], ["w1 w2 w3 brand new words"])  # an id can come back after delete
    texts[3] = "w1 w2 w3 brand new words"
    live = [i for i in range(60) if i not in (4, 5, 40)]
    assert sorted(index.ids.tolist()) == live
    fresh = BM25Index(**PLAIN)
    fresh.add(live, [texts[i] for i in live])
    for k in (1, 7, 100):
        a_ids, a_scores = index.search([*queries, "brand"], k=k)
        b_ids, b_scores = fresh.search([*queries, "brand"], k=k)
        np.testing.assert_allclose(a_scores, b_scores, rtol=1e-6)
        if k == 100:  # every match returned: same sets (ties may be ordered differently)
            for qa, qb in zip(a_ids, b_ids):
                assert set(qa.tolist()) == set(qb.tolist())
    assert index.search(["brand"], k=3)[0][0, 0] == 3
    assert index.delete([0, 1]) == 2 and index.delete([0]) == 0


def test_allow_ids_filters_results():
    rng = np.random.default_rng(1)
    index = BM25Index(**PLAIN)
    index.add(np.arange(50) * 10, _words(rng, 50))
    queries = _words(rng, 5)
    all_ids, all_scores = index.search(queries, k=50)
    allow = np.arange(0, 500, 30)
    ids, scores = index.search(queries, k=50, allow_ids=allow)
    for q in range(len(queries)):
        keep = np.isin(all_ids[q], allow)
        assert set(ids[q][ids[q] >= 0]) == set(all_ids[q][keep])
        np.testing.assert_allclose(np.sort(scores[q][ids[q] >= 0]), np.sort(all_scores[q][keep]))


def _digest(directory: Path, names: list[str]) -> dict[str, str]:
    return {n: hashlib.sha256((directory / n).read_bytes()).hexdigest() for n in names}


def test_persistence_round_trip_and_old_generation_untouched(tmp_path):
    rng = np.random.default_rng(2)
    index = BM25Index(stopwords=["w0", "w1"], stemmer=None, k1=1.1, b=0.6)
    index.add(list(range(20)), _words(rng, 20))
    queries = [*_words(rng, 6), "w0"]
    gen1 = index.save(tmp_path, 1)
    at_gen1 = index.search(queries, k=10)
    before = _digest(tmp_path, gen1)

    index.delete([2, 7])
    index.add(list(range(20, 35)), _words(rng, 15))
    gen2 = index.save(tmp_path, 2)
    assert _digest(tmp_path, gen1) == before  # nothing of generation 1 was rewritten
    assert all(n.startswith("bm25-") for n in gen2)
    assert not set(gen2) & {n for n in gen1 if n.endswith((".json", ".npy"))}

    loaded = BM25Index.load(tmp_path, gen2)
    assert loaded.info()["params"] == index.info()["params"]
    for a, b in zip(loaded.search(queries, k=10), index.search(queries, k=10)):
        np.testing.assert_array_equal(a, b)
    assert (loaded.search(["w0"], k=3)[0] == -1).all()  # custom stopwords survived

    old = BM25Index.load(tmp_path, gen1)  # the previous commit still opens as it was
    for a, b in zip(old.search(queries, k=10), at_gen1):
        np.testing.assert_array_equal(a, b)

    # a loaded index keeps working: add, save, load again
    loaded.add([99], ["w5 zebra"])
    gen3 = loaded.save(tmp_path, 3)
    again = BM25Index.load(tmp_path, gen3)
    assert again.search(["zebra"], k=1)[0][0, 0] == 99
    assert _digest(tmp_path, gen1) == before


def test_compact_rewrites_one_segment_with_same_results(tmp_path):
    rng = np.random.default_rng(3)
    index = BM25Index(**PLAIN)
    index.add(list(range(30)), _words(rng, 30))
    index.add([30], ["only here"])
    gen1 = index.save(tmp_path, 1)
    index.delete([*list(range(0, 30, 2)), 30])
    queries = _words(rng, 5)
    expected = index.search(queries, k=8)
    index.compact()
    assert index.info()["terms"] < 42  # "only", "here" and unused terms dropped
    np.testing.assert_allclose(index.search(queries, k=8)[1], expected[1], rtol=1e-6)
    gen2 = index.save(tmp_path, 2)
    assert len([n for n in gen2 if n.endswith("-seg.npz")]) == 1
    assert not any(n.endswith("-del.npy") for n in gen2)
    np.testing.assert_allclose(BM25Index.load(tmp_path, gen2).search(queries, 8)[1], expected[1])
    assert BM25Index.load(tmp_path, gen1).search(["only"], 1)[0][0, 0] == 30


def test_interrupted_save_leaves_last_commit_readable(tmp_path):
    index = BM25Index(**PLAIN)
    index.add([1, 2], ["alpha beta", "beta gamma"])
    gen1 = index.save(tmp_path, 1)
    index.add([3], ["delta"])
    gen2 = index.save(tmp_path, 2)
    (tmp_path / gen2[0]).unlink()  # as if killed before the header (and manifest) were written
    assert BM25Index.load(tmp_path, gen1).search(["delta"], 1)[0][0, 0] == -1
    with pytest.raises(CorruptCollectionError):
        BM25Index.load(tmp_path, gen2)
    seg = next(n for n in gen1 if n.endswith("-seg.npz"))
    (tmp_path / seg).write_bytes(b"not a zip")
    with pytest.raises(CorruptCollectionError):
        BM25Index.load(tmp_path, gen1)
    with pytest.raises(CorruptCollectionError, match="expected one"):
        BM25Index.load(tmp_path, [seg])


def test_save_rewrites_a_segment_that_vanished(tmp_path):
    index = BM25Index(**PLAIN)
    index.add([1], ["alpha"])
    index.save(tmp_path, 1)
    for f in tmp_path.iterdir():  # e.g. swept because that commit never happened
        f.unlink()
    files = index.save(tmp_path, 2)
    assert BM25Index.load(tmp_path, files).search(["alpha"], 1)[0][0, 0] == 1


def test_empty_index_and_empty_documents(tmp_path):
    index = BM25Index()
    ids, scores = index.search(["anything"], k=2)
    assert (ids == -1).all() and np.isneginf(scores).all()
    files = index.save(tmp_path, 1)
    assert len(BM25Index.load(tmp_path, files)) == 0
    index.add([5, 6], ["", "the"])  # documents without any term are held but never match
    index.add([7], ["words here"])
    assert len(index) == 3
    assert index.search(["words"], k=5)[0].tolist() == [[7, -1, -1, -1, -1]]


def test_errors():
    index = BM25Index()
    index.add([1], ["hello world"])
    with pytest.raises(InvalidInputError, match="empty"):
        index.search([], k=1)
    with pytest.raises(InvalidInputError, match="whitespace"):
        index.search(["hello", "  "], k=1)
    assert index.search("hello", k=1)[0].tolist() == [[1]]  # one string is one query
    with pytest.raises(InvalidInputError, match="list of strings"):
        index.search(42, k=1)
    with pytest.raises(InvalidInputError, match="strings"):
        index.add([2], [b"bytes"])
    with pytest.raises(InvalidInputError, match="one id per"):
        index.add([2, 3], ["one text"])
    with pytest.raises(DuplicateIdError):
        index.add([1], ["again"])
    with pytest.raises(InvalidInputError, match="k must be"):
        index.search(["hello"], k=0)
    with pytest.raises(InvalidInputError, match="unknown BM25 method"):
        BM25Index(method="bm25+")
    with pytest.raises(InvalidInputError, match="Snowball"):
        BM25Index(stemmer="klingon")
    with pytest.raises(InvalidInputError, match="stopword"):
        BM25Index(stopwords="klingon")
    with pytest.raises(InvalidInputError, match="k1"):
        BM25Index(b=2.0)


def test_generation_must_grow(tmp_path):
    index = BM25Index()
    index.add([1], ["hello"])
    index.save(tmp_path, 4)
    with pytest.raises(InvalidInputError, match="generation"):
        index.save(tmp_path, 4)
    loaded = BM25Index.load(tmp_path, [f.name for f in tmp_path.iterdir()])
    with pytest.raises(InvalidInputError, match="generation"):
        loaded.save(tmp_path, 3)
