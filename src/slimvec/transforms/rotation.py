"""Random orthogonal rotation: spreads variance evenly over dimensions before binarisation.

Some embeddings put most of their variance in a few coordinates (PCA-ordered static models:
the top ten dims of the distilled MiniLM used for the 1M benchmark carry 170x the variance of
the bottom ten). One sign bit per dimension then spends most bits on noise. A rotation keeps
every inner product exactly and makes each coordinate carry a similar share, so sign bits
become informative again (1M sentences, ``binary*40 > f32``: recall@10 0.79 -> 0.87).
``rot:D`` with D below the input dimension keeps D rotated coordinates (a random projection).
"""

from __future__ import annotations

import numpy as np

from slimvec.errors import not_fitted
from slimvec.transforms.base import Transform


class RandomRotation(Transform):
    kind = "rot"
    prefix_renormalises = False

    def __init__(self, dim: int, seed: int = 0):
        super().__init__(dim)
        self.seed = seed
        self.components: np.ndarray | None = None  # (dim, input_dim), orthonormal rows

    def fit(self, x: np.ndarray) -> RandomRotation:
        n_in = x.shape[1]
        gaussian = np.random.default_rng(self.seed).standard_normal((n_in, n_in))
        q, r = np.linalg.qr(gaussian)
        q *= np.sign(np.diag(r))  # Haar-distributed, independent of the QR routine's signs
        self.components = np.ascontiguousarray(q.T[: self.dim], dtype=np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.components is None:
            raise not_fitted(self)
        return np.ascontiguousarray(x @ self.components.T, dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {} if self.components is None else {"components": self.components}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.components = np.asarray(state["components"], dtype=np.float32)
