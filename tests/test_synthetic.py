"""Synthetic data sets: shapes, seeding, the structure they promise, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from slimvec.datasets.synthetic import isotropic, low_rank
from slimvec.errors import InvalidInputError


def test_low_rank_is_unit_seeded_and_concentrated():
    ds = low_rank(3000, queries=20, dim=128, latent=32, noise=0.3, seed=4)
    assert ds.docs.shape == (3000, 128) and ds.queries.shape == (20, 128)
    np.testing.assert_allclose(np.linalg.norm(ds.docs, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(ds.docs, low_rank(3000, 20, 128, 32, 0.3, seed=4).docs)
    spectrum = np.linalg.svd(ds.docs - ds.docs.mean(0), compute_uv=False) ** 2
    assert spectrum[:32].sum() / spectrum.sum() > 0.8  # most variance in the latent directions


def test_isotropic_shapes():
    ds = isotropic(500, queries=7, dim=48, seed=1)
    assert ds.docs.shape == (500, 48) and ds.queries.shape == (7, 48) and not ds.qrels


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"n": 10, "latent": 0}, {"n": 10, "latent": 500}, {"n": 10, "noise": -1}]
)
def test_bad_low_rank_arguments(kwargs):
    with pytest.raises(InvalidInputError):
        low_rank(**kwargs)


def test_bad_isotropic_arguments():
    with pytest.raises(InvalidInputError):
        isotropic(0)
