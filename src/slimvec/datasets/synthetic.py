"""Synthetic vector sets that stress first-pass codes the way some real embeddings do.

* ``low_rank``: vectors living near a ``latent``-dimensional subspace (32-64 for many static
  and distilled models) of a larger space, plus isotropic noise, with the latent variance
  decaying across directions, as PCA-ordered models have. Sign bits of raw coordinates waste
  most of their bits here; a rotation and per-vector corrections are what hold recall.
* ``isotropic``: plain Gaussian vectors, the README's own example and the hardest case for any
  compressed first pass (every direction equally informative, neighbours barely closer than
  the rest).

Documents and queries are drawn from the same distribution, independently; everything is
seeded. No qrels: measure recall against exact search.
"""

from __future__ import annotations

import numpy as np

from slimvec.datasets.base import Dataset
from slimvec.errors import InvalidInputError

BLOCK = 100_000


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def low_rank(
    n: int,
    queries: int = 1000,
    dim: int = 384,
    latent: int = 48,
    noise: float = 0.35,
    decay: float = 8.0,
    seed: int = 0,
) -> Dataset:
    """Unit vectors x = normalise(z A + noise * e): z ~ N(0, diag(s)) in ``latent`` dims with
    standard deviations falling ``decay``-fold from the first to the last latent direction, A a
    random (latent x dim) map with unit-norm rows, e ~ N(0, I/dim) (so ``noise`` is the noise
    norm relative to a unit signal)."""
    if not 1 <= latent <= dim or n < 1 or queries < 1 or noise < 0:
        raise InvalidInputError(
            f"low_rank needs n, queries >= 1, 1 <= latent <= dim and noise >= 0 "
            f"(got n={n}, queries={queries}, latent={latent}, dim={dim}, noise={noise})"
        )
    rng = np.random.default_rng(seed)
    mixing = _unit(rng.standard_normal((latent, dim)))
    scales = np.geomspace(1.0, 1.0 / decay, latent) / np.sqrt(
        np.mean(np.geomspace(1, 1 / decay, latent) ** 2) * latent
    )

    def draw(count: int) -> np.ndarray:
        out = np.empty((count, dim), np.float32)
        for start in range(0, count, BLOCK):
            m = min(BLOCK, count - start)
            z = rng.standard_normal((m, latent)) * scales
            e = rng.standard_normal((m, dim)) * (noise / np.sqrt(dim))
            out[start : start + m] = _unit(z @ mixing + e)
        return out

    docs = draw(n)
    qs = draw(queries)
    return _dataset(f"low-rank-{latent}", docs, qs)


def isotropic(n: int, queries: int = 1000, dim: int = 384, seed: int = 0) -> Dataset:
    """Standard Gaussian vectors (not normalised; a cosine collection normalises them)."""
    if n < 1 or queries < 1 or dim < 1:
        raise InvalidInputError(f"isotropic needs n, queries, dim >= 1 (got {n}, {queries}, {dim})")
    rng = np.random.default_rng(seed)
    docs = rng.standard_normal((n, dim), dtype=np.float32)
    qs = rng.standard_normal((queries, dim), dtype=np.float32)
    return _dataset("isotropic", docs, qs)


def _dataset(name: str, docs: np.ndarray, queries: np.ndarray) -> Dataset:
    return Dataset(
        name=name,
        doc_ids=[str(i) for i in range(len(docs))],
        query_ids=[f"q{i}" for i in range(len(queries))],
        docs=docs,
        queries=queries,
        model=name,
    )
