"""Fusion arithmetic on hand-computed cases, padding, vectorisation across queries, errors."""

from __future__ import annotations

import numpy as np
import pytest

from slimvec.errors import InvalidInputError
from slimvec.search.fusion import fuse, reciprocal_rank_fusion, weighted_sum

NEG = -np.inf

# Two retrievers, one query. Dense returns 1, 2, 3; sparse returns 3, 4 (then padding).
DENSE = (np.array([[1, 2, 3]]), np.array([[3.0, 2.0, 1.0]]))
SPARSE = (np.array([[3, 4, -1]]), np.array([[10.0, 5.0, NEG]]))


def test_rrf_hand_computed():
    ids, scores = reciprocal_rank_fusion([DENSE, SPARSE], k=5)
    # doc 3: 1/(60+3) + 1/(60+1); doc 1: 1/61; docs 2 and 4: 1/62 each (tie -> smaller id)
    assert ids.tolist() == [[3, 1, 2, 4, -1]]
    expected = [1 / 63 + 1 / 61, 1 / 61, 1 / 62, 1 / 62]
    np.testing.assert_allclose(scores[0, :4], expected, rtol=1e-6)
    assert scores[0, 4] == NEG
    assert ids.dtype == np.int64 and scores.dtype == np.float32


def test_rrf_constant_and_weights():
    ids, scores = reciprocal_rank_fusion([DENSE, SPARSE], k=2, constant=0.0, weights=[1.0, 3.0])
    # doc 3: 1/3 + 3/1; doc 4: 3/2; doc 1: 1/1
    assert ids.tolist() == [[3, 4]]
    np.testing.assert_allclose(scores[0], [1 / 3 + 3, 1.5], rtol=1e-6)


def test_rrf_ranks_skip_padding_inside_a_list():
    # padding before a real entry must not consume a rank
    a = (np.array([[-1, 7]]), np.array([[NEG, 1.0]]))
    ids, scores = reciprocal_rank_fusion([a], k=1)
    assert ids.tolist() == [[7]]
    np.testing.assert_allclose(scores[0, 0], 1 / 61, rtol=1e-6)


def test_weighted_minmax_hand_computed():
    ids, scores = weighted_sum([DENSE, SPARSE], k=4)
    # dense -> 1: 1, 2: .5, 3: 0 ; sparse -> 3: 1, 4: 0 ; absent -> 0
    assert ids.tolist() == [[1, 3, 2, 4]]  # 1 and 3 tie at 1.0 -> smaller id first
    np.testing.assert_allclose(scores[0], [1.0, 1.0, 0.5, 0.0], atol=1e-7)


def test_weighted_minmax_weights():
    ids, scores = fuse([DENSE, SPARSE], k=2, mode="weighted", weights=[0.25, 0.75])
    # doc 3: .25*0 + .75*1; doc 1: .25*1
    assert ids.tolist() == [[3, 1]]
    np.testing.assert_allclose(scores[0], [0.75, 0.25], rtol=1e-6)


def test_weighted_zscore_hand_computed():
    ids, scores = weighted_sum([DENSE, SPARSE], k=4, normalisation="zscore")
    za = (np.array([3.0, 2.0, 1.0]) - 2.0) / np.sqrt(2 / 3)  # population std
    zb = (np.array([10.0, 5.0]) - 7.5) / 2.5
    # absent docs get the list's lowest z
    expected = {1: za[0] + zb.min(), 2: za[1] + zb.min(), 3: za[2] + zb[0], 4: za.min() + zb[1]}
    order = sorted(expected, key=lambda d: -expected[d])
    assert ids[0].tolist() == order
    np.testing.assert_allclose(scores[0], [expected[d] for d in order], rtol=1e-6)


def test_constant_list_minmax_gives_one():
    single = (np.array([[5, -1]]), np.array([[0.3, NEG]]))
    ids, scores = weighted_sum([single, DENSE], k=2)
    # doc 5: 1 (its list is constant) + 0; doc 1: 0 + 1 -> tie, smaller id first
    assert ids.tolist() == [[1, 5]]
    np.testing.assert_allclose(scores[0], [1.0, 1.0])


def test_vectorised_over_queries_matches_per_query():
    rng = np.random.default_rng(0)
    nq, width = 7, 6
    lists = []
    for _ in range(3):
        ids = np.stack([rng.choice(20, width, replace=False) for _ in range(nq)])
        scores = -np.sort(-rng.standard_normal((nq, width)), axis=1)
        ids[rng.random((nq, width)) < 0.2] = -1
        scores[ids < 0] = NEG
        lists.append((ids, scores))
    for mode, kw in [("rrf", {}), ("weighted", {}), ("weighted", {"normalisation": "zscore"})]:
        ids, scores = fuse(lists, 8, mode, **kw)
        for q in range(nq):
            one = [(i[q : q + 1], s[q : q + 1]) for i, s in lists]
            qi, qs = fuse(one, 8, mode, **kw)
            assert qi[0].tolist() == ids[q].tolist()
            np.testing.assert_allclose(qs[0], scores[q], rtol=1e-6)


def test_all_padding_query_and_searchresult_like_inputs():
    class Result:  # duck-typed like slimvec's SearchResult
        def __init__(self, ids, scores):
            self.ids, self.scores = ids, scores

    empty = Result(np.full((2, 3), -1), np.full((2, 3), NEG))
    other = Result(np.array([[4, -1, -1], [-1, -1, -1]]), np.array([[1.0, NEG, NEG], [NEG] * 3]))
    ids, scores = fuse([empty, other], k=2)
    assert ids.tolist() == [[4, -1], [-1, -1]]
    assert np.isneginf(scores[1]).all()


def test_errors():
    with pytest.raises(InvalidInputError, match="unknown fusion mode"):
        fuse([DENSE], 3, mode="borda")
    with pytest.raises(InvalidInputError, match="normalisation"):
        weighted_sum([DENSE], 3, normalisation="rank")
    with pytest.raises(InvalidInputError, match="at least one"):
        fuse([], 3)
    with pytest.raises(InvalidInputError, match="single pair"):
        fuse(DENSE, 3)
    with pytest.raises(InvalidInputError, match="same shape"):
        fuse([(np.array([[1, 2]]), np.array([[1.0]]))], 3)
    with pytest.raises(InvalidInputError, match="queries"):
        fuse([DENSE, (np.array([[1], [2]]), np.array([[1.0], [2.0]]))], 3)
    with pytest.raises(InvalidInputError, match="weights"):
        fuse([DENSE, SPARSE], 3, weights=[1.0])
    with pytest.raises(InvalidInputError, match="weights"):
        fuse([DENSE, SPARSE], 3, weights=[-1.0, 1.0])
    with pytest.raises(InvalidInputError, match="constant"):
        reciprocal_rank_fusion([DENSE], 3, constant=-1)
    with pytest.raises(InvalidInputError, match="repeats"):
        fuse([(np.array([[1, 1]]), np.array([[2.0, 1.0]]))], 3)
    with pytest.raises(InvalidInputError, match="finite"):
        weighted_sum([(np.array([[1, 2]]), np.array([[np.nan, 1.0]]))], 3)
    with pytest.raises(InvalidInputError, match="k must be"):
        fuse([DENSE], 0)
