"""Transforms map vectors to the space the codes are computed in, scikit-learn style."""

from __future__ import annotations

from typing import ClassVar

import numpy as np


class Transform:
    """``fit`` on the collection's first vectors, then ``transform`` documents and queries alike.

    ``state()`` returns the fitted arrays so the collection can persist them; ``load_state``
    restores them. ``prefix_renormalises`` tells stages that take a prefix (``@D``) of this
    transform's output whether to re-normalise it (true for Matryoshka-style outputs).
    """

    kind: ClassVar[str]
    prefix_renormalises: ClassVar[bool] = True

    def __init__(self, dim: int):
        self.dim = dim

    def fit(self, x: np.ndarray) -> Transform:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state`` returned."""


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (rows of zeros stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1).astype(x.dtype)
