"""Codecs turn float vectors into compact codes and score queries against those codes.

Every code is a plain 2-D array (one row per vector) saved in segment files, so the store never
needs to know which codec wrote it. Scores are "higher is better" estimates of the inner
product of the (transformed) query and document.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from slimvec.kernels.threads import blas_threads_for
from slimvec.kernels.topk import blocked_top


class Codec:
    """``fit`` (calibrate), ``encode`` documents, ``prepare`` queries, then score.

    ``scan`` is the first pass over every code held in RAM; ``score`` rescores a shortlist
    whose codes were gathered into an (nq, candidates, width) array.
    """

    token: ClassVar[str]

    def __init__(self, dim: int):
        self.dim = dim

    # -- building -----------------------------------------------------------------------
    def fit(self, x: np.ndarray) -> Codec:
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def code_dtype(self) -> np.dtype:
        raise NotImplementedError

    @property
    def code_width(self) -> int:
        """Elements per code row (of ``code_dtype``)."""
        raise NotImplementedError

    @property
    def bytes_per_vector(self) -> int:
        return self.code_width * np.dtype(self.code_dtype).itemsize

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state`` returned."""

    # -- searching ----------------------------------------------------------------------
    def prepare(self, queries: np.ndarray) -> Any:
        return np.ascontiguousarray(queries, dtype=np.float32)

    def score_block(self, prepared: Any, codes: np.ndarray) -> np.ndarray:
        """(nq, len(codes)) scores of every query against a block of code rows."""
        raise NotImplementedError

    def score(self, prepared: Any, codes: np.ndarray) -> np.ndarray:
        """(nq, c) scores for codes gathered per query, shape (nq, c, width)."""
        raise NotImplementedError

    def scan(
        self, prepared: Any, codes: np.ndarray, keep: int, allow: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``keep`` rows per query over all ``codes`` (row -1 where fewer exist)."""
        nq = _num_queries(prepared)
        with blas_threads_for(len(codes) * nq * self.dim):
            return blocked_top(
                lambda a, b: self.score_block(prepared, codes[a:b]), len(codes), nq, keep, allow
            )


def _num_queries(prepared: Any) -> int:
    if isinstance(prepared, np.ndarray):
        return len(prepared)
    return len(prepared[0])
