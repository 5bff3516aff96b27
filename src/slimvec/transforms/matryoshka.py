"""Matryoshka truncation: keep the first D dims and re-normalise.

Matryoshka-trained models (EmbeddingGemma, OpenAI text-embedding-3, nomic) put the most
information in the leading coordinates, so a prefix is itself a usable embedding; its norm is
below one and must be restored before cosine search.
"""

from __future__ import annotations

import numpy as np

from slimvec.transforms.base import Transform, normalise_rows


class Matryoshka(Transform):
    kind = "mrl"

    def __init__(self, dim: int, renormalise: bool = True):
        super().__init__(dim)
        self.renormalise = renormalise

    def transform(self, x: np.ndarray) -> np.ndarray:
        prefix = np.ascontiguousarray(x[:, : self.dim], dtype=np.float32)
        return normalise_rows(prefix) if self.renormalise else prefix
