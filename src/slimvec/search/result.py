"""What every search (and ``get`` listing) returns, local, remote or sharded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class SearchResult:
    """``ids`` (nq, k) int64 and ``scores`` (nq, k) float32, best first; -1 / -inf pad."""

    ids: np.ndarray
    scores: np.ndarray
    #: For filtered searches: which plan ran and why (matching rows, selectivity, timings).
    explain: dict[str, Any] | None = None


@dataclass
class GetResult:
    """Live ids (row order) with their metadata and stored texts, from ``get``; ``vectors``
    (n, dim) float32 as stored (unit-normalised in cosine collections) when asked."""

    ids: np.ndarray
    metadata: list[dict | None]
    texts: list[str | None]
    vectors: np.ndarray | None = None
