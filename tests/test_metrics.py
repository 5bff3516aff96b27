"""Retrieval metrics against hand-computed cases, and against the committed Debian set's table
(computed independently by scripts/make_test_fixture.py)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import debian_fixture
from slimvec.errors import InvalidInputError
from slimvec.eval.metrics import (
    Judgements,
    mrr_at_k,
    ndcg_at_k,
    per_query_recall,
    qrels_recall_at_k,
    recall_at_k,
)

DOCS = ["d0", "d1", "d2", "d3", "d4", "d5"]


def test_recall_is_set_overlap_of_first_k():
    found = np.array([[1, 2, 3], [4, 5, 6]])
    truth = np.array([[3, 2, 9], [7, 8, 9]])
    # query 0 finds {2, 3} of {3, 2, 9}; query 1 finds nothing
    assert per_query_recall(found, truth, 3) == pytest.approx([2 / 3, 0.0])
    assert recall_at_k(found, truth, 3) == pytest.approx(1 / 3)
    # k=1: 1 vs 3, 4 vs 7
    assert recall_at_k(found, truth, 1) == 0.0
    # k=2: {1, 2} vs {3, 2} -> 1/2; {4, 5} vs {7, 8} -> 0
    assert recall_at_k(found, truth, 2) == pytest.approx(0.25)


def test_recall_ignores_order_padding_and_duplicates():
    assert recall_at_k(np.array([[3, 2, 1]]), np.array([[1, 2, 3]]), 3) == 1.0
    # the corpus held only two neighbours: truth is padded with -1, found too
    assert recall_at_k(np.array([[5, -1, -1]]), np.array([[5, 7, -1]]), 3) == 0.5
    # a repeated result counts once
    assert recall_at_k(np.array([[4, 4, 4]]), np.array([[4, 5, 6]]), 3) == pytest.approx(1 / 3)


def _judgements() -> Judgements:
    qrels = {
        "q0": {"d0": 3, "d1": 2, "d2": 1},
        "q1": {"d4": 1},
        "q2": {"d9": 2, "d3": 0},  # d9 is not in the corpus, relevance 0 is not relevant
    }
    return Judgements.from_qrels(qrels, ["q0", "q1", "q2"], DOCS)


def test_ndcg_with_graded_gains():
    j = _judgements()
    found = np.array([[2, 0, 5], [5, 4, 3], [0, 1, 2]])
    # q0: DCG = 1/log2(2) + 3/log2(3) + 0; ideal = 3/log2(2) + 2/log2(3) + 1/log2(4)
    dcg0 = 1.0 + 3 / np.log2(3)
    idcg0 = 3.0 + 2 / np.log2(3) + 0.5
    # q1: the one relevant doc at rank 2: 1/log2(3) over an ideal of 1
    dcg1 = 1 / np.log2(3)
    # q2 has no relevant document in the corpus: not judged, left out of the mean
    assert j.judged.tolist() == [True, True, False]
    assert ndcg_at_k(found, j, 3) == pytest.approx((dcg0 / idcg0 + dcg1) / 2)
    # perfect ranking gives 1
    assert ndcg_at_k(np.array([[0, 1, 2], [4, 0, 1], [0, 1, 2]]), j, 3) == pytest.approx(1.0)
    # k=1 looks at the first column only: q0 gets 1/3, q1 gets 0
    assert ndcg_at_k(found, j, 1) == pytest.approx((1 / 3 + 0) / 2)


def test_mrr_and_qrels_recall():
    j = _judgements()
    found = np.array([[5, 3, 1], [5, 3, 2], [0, 1, 2]])
    # q0: first relevant (d1) at rank 3 -> 1/3; q1: d4 never found -> 0
    assert mrr_at_k(found, j, 3) == pytest.approx((1 / 3 + 0) / 2)
    # k=2 cuts q0's hit off
    assert mrr_at_k(found, j, 2) == 0.0
    # recall: q0 finds 1 of 3 relevant, q1 0 of 1
    assert qrels_recall_at_k(found, j, 3) == pytest.approx((1 / 3 + 0) / 2)
    assert qrels_recall_at_k(np.array([[0, 1, 2], [4, -1, -1], [0, 1, 2]]), j, 3) == 1.0


def test_gains_lookup_and_missing_results():
    j = _judgements()
    gains = j.gains(np.array([[0, -1, 2], [4, 4, 0], [3, 5, 1]]))
    assert gains.tolist() == [[3, 0, 1], [1, 1, 0], [0, 0, 0]]


def test_bad_input_is_rejected():
    j = _judgements()
    with pytest.raises(InvalidInputError, match="k=4"):
        recall_at_k(np.zeros((2, 3), int), np.zeros((2, 3), int), 4)
    with pytest.raises(InvalidInputError, match="positive"):
        recall_at_k(np.zeros((2, 3), int), np.zeros((2, 3), int), 0)
    with pytest.raises(InvalidInputError, match="same queries"):
        recall_at_k(np.zeros((2, 3), int), np.zeros((3, 3), int), 3)
    with pytest.raises(InvalidInputError, match="integer"):
        recall_at_k(np.zeros((2, 3)), np.zeros((2, 3), int), 3)
    with pytest.raises(InvalidInputError, match="judgements cover 3"):
        ndcg_at_k(np.zeros((2, 3), int), j, 3)
    nobody = Judgements.from_qrels({"q0": {"zz": 1}}, ["q0"], DOCS)
    with pytest.raises(InvalidInputError, match="no query has a relevant document"):
        mrr_at_k(np.zeros((1, 3), int), nobody, 3)


def test_matches_the_fixtures_recorded_exact_search_quality():
    """tests/data/debian_minilm/README.md records nDCG@10 0.8578 and recall@10 0.9312 for exact
    MiniLM search, computed by scripts/make_test_fixture.py with its own code (which also
    reproduces the whole debian-gemma set's published MiniLM row, 0.8086 / 0.9040)."""
    ds = debian_fixture()
    top = np.argsort(-(ds.queries @ ds.docs.T), axis=1, kind="stable")[:, :10]
    j = Judgements.from_qrels(ds.qrels, ds.query_ids, ds.doc_ids)
    assert ndcg_at_k(top, j, 10) == pytest.approx(0.8578, abs=5e-5)
    assert qrels_recall_at_k(top, j, 10) == pytest.approx(0.9312, abs=5e-5)
