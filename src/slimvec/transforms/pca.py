"""PCA rotation fitted on the collection's own vectors, so non-Matryoshka models truncate well.

The rotation is *uncentred* (eigenvectors of X^T X, not of the covariance): a rotation
preserves inner products exactly, whereas subtracting a mean would shift every document's
score by a different amount and change rankings. Keeping the leading D components then keeps
as much of each inner product as any D-dim linear map can. Prefixes of the output are not
re-normalised: the truncated inner product is a direct estimate of the full one.
"""

from __future__ import annotations

import numpy as np

from slimvec.errors import InvalidInputError, not_fitted
from slimvec.transforms.base import Transform

MAX_FIT_ROWS = 100_000


class PCARotation(Transform):
    kind = "pca"
    prefix_renormalises = False

    def __init__(self, dim: int, seed: int = 0):
        super().__init__(dim)
        self.seed = seed
        self.components: np.ndarray | None = None  # (dim, input_dim)

    def fit(self, x: np.ndarray) -> PCARotation:
        if len(x) < 2:
            raise InvalidInputError(
                f"pca:{self.dim} is fitted on the first batch added and needs at least 2 "
                f"vectors (got {len(x)}); add a larger first batch"
            )
        if len(x) > MAX_FIT_ROWS:
            rows = np.random.default_rng(self.seed).choice(len(x), MAX_FIT_ROWS, replace=False)
            x = x[np.sort(rows)]
        x64 = np.asarray(x, dtype=np.float64)
        if self.dim <= len(x64) < x64.shape[1]:
            # Fewer rows than input dims (a 10,240-d MUVERA encoding): the right singular
            # vectors are the same components, without the input dims' cubic eigensolve
            # (minutes at 10,240 dims).
            comps = np.linalg.svd(x64, full_matrices=False)[2][: self.dim]
        else:
            eigvals, eigvecs = np.linalg.eigh(x64.T @ x64)
            order = np.argsort(eigvals)[::-1][: self.dim]
            comps = eigvecs[:, order].T
        # Fix each component's sign so refits on the same data give the same rotation.
        signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
        self.components = np.ascontiguousarray(comps * signs[:, None], dtype=np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.components is None:
            raise not_fitted(self)
        return np.ascontiguousarray(x @ self.components.T, dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {} if self.components is None else {"components": self.components}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.components = np.asarray(state["components"], dtype=np.float32)
