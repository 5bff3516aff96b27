"""Token pooling: factor 1 is the identity, factor f keeps ceil(n/f) normalised cluster means,
and MaxSim over pooled documents stays close to MaxSim over all tokens (real MiniLM tokens)."""

from __future__ import annotations

import numpy as np
import pytest

from slimvec.errors import InvalidInputError
from slimvec.kernels.maxsim import TokenCodes, maxsim
from slimvec.multivector import TokenPooler
from slimvec.transforms.fde import pack_token_sets
from test_fde import debian_texts, minilm_token_sets, token_cache


@pytest.fixture(scope="module")
def real_tokens(request, tmp_path_factory):
    docs, queries = debian_texts(200, 100)
    cache = token_cache(request, tmp_path_factory)
    return minilm_token_sets(docs, cache), minilm_token_sets(queries, cache)


def test_factor_one_is_identity():
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((30, 8)).astype(np.float32)
    offsets = np.array([0, 10, 11, 30])
    pooled, new_offsets = TokenPooler(1).transform(tokens, offsets)
    np.testing.assert_array_equal(pooled, tokens)
    np.testing.assert_array_equal(new_offsets, offsets)


def test_groups_become_their_normalised_means():
    """Two tight groups of four tokens, factor 4: exactly the two group directions remain."""
    rng = np.random.default_rng(1)
    a, b = np.eye(6)[0], np.eye(6)[3]
    doc = np.vstack(
        [a + 0.01 * rng.standard_normal((4, 6)), b + 0.01 * rng.standard_normal((4, 6))]
    )
    pooled = TokenPooler(4).transform_sets([doc], 6)[0]
    assert pooled.shape == (2, 6)
    means = np.stack([doc[:4].mean(0), doc[4:].mean(0)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    order = np.argsort(-pooled[:, 0])  # group a first
    np.testing.assert_allclose(pooled[order], means, atol=1e-6)
    raw = TokenPooler(4, normalise=False).transform_sets([doc], 6)[0]
    np.testing.assert_allclose(
        np.sort(raw[:, 0]), np.sort([doc[4:, 0].mean(), doc[:4, 0].mean()]), atol=1e-6
    )


def test_clusters_match_scipy_ward_maxclust():
    """The pooled vectors are the means of SciPy's own Ward clusters (fcluster maxclust)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    rng = np.random.default_rng(2)
    docs = [rng.standard_normal((int(n), 16)).astype(np.float32) for n in (2, 3, 7, 30, 61)]
    pooled = TokenPooler(3, normalise=False).transform_sets(docs, 16)
    for doc, got in zip(docs, pooled):
        want = -(-len(doc) // 3)
        labels = fcluster(linkage(doc, method="ward"), t=want, criterion="maxclust")
        means = np.stack([doc[labels == c].mean(0) for c in np.unique(labels)])
        assert got.shape == means.shape
        order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
        np.testing.assert_allclose(order(got), order(means), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("factor", [2, 3])
def test_real_tokens_counts_and_maxsim(real_tokens, factor):
    docs, queries = real_tokens
    tokens, offsets = pack_token_sets(docs, 384)
    pooled, new_offsets = TokenPooler(factor).transform(tokens, offsets)
    lengths = np.diff(offsets)
    np.testing.assert_array_equal(np.diff(new_offsets), -(-lengths // factor))
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1, atol=1e-5)
    q_tokens, q_offsets = pack_token_sets(queries, 384)
    full = maxsim(q_tokens, q_offsets, TokenCodes(tokens, offsets))
    small = maxsim(q_tokens, q_offsets, TokenCodes(pooled, new_offsets))
    rel = np.abs(small - full) / full
    assert rel.mean() < MEAN_REL_ERROR[factor], rel.mean()
    top_full, top_small = np.argsort(-full, 1)[:, :10], np.argsort(-small, 1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_full, top_small)])
    assert overlap > TOP10_OVERLAP[factor], overlap


# Measured (the committed set's first 200 docs x 100 queries): mean relative MaxSim change
# 0.039 / 0.108 and top-10 overlap 0.917 / 0.847 for factors 2 / 3.
MEAN_REL_ERROR = {2: 0.06, 3: 0.15}
TOP10_OVERLAP = {2: 0.85, 3: 0.75}


def test_short_documents_are_kept():
    docs = [np.ones((1, 4), np.float32), np.eye(4, dtype=np.float32)[:2]]
    out = TokenPooler(2).transform_sets(docs, 4)
    assert [len(d) for d in out] == [1, 1]
    np.testing.assert_allclose(out[0], [[0.5, 0.5, 0.5, 0.5]])  # normalised


@pytest.mark.parametrize("factor", [0, -2, 1.5, True, "2"])
def test_bad_pool_factor(factor):
    with pytest.raises(InvalidInputError, match="pool_factor"):
        TokenPooler(factor)


def test_bad_token_sets():
    with pytest.raises(InvalidInputError, match="offsets must"):
        TokenPooler(2).transform(np.ones((4, 3), np.float32), np.array([0, 3]))
    with pytest.raises(InvalidInputError, match="zero tokens"):
        TokenPooler(2).transform_sets([np.ones((2, 4)), np.ones((0, 4))], 4)
    with pytest.raises(InvalidInputError, match="NaN"):
        TokenPooler(2).transform_sets([np.full((2, 4), np.nan)], 4)
