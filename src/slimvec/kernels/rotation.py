"""Rotating a few queries without BLAS.

A single query's rotation (768 x 768 multiply-adds) is tiny, but at 768 dims OpenBLAS runs
it on every core and its workers then spin, waiting for more work, while the scan that
follows wants those cores for numba's threads: the two pools take turns and one query
through the flat table scan took 8 ms instead of ~1 (benchmarks/planner.py, 30k x 768). A
compiled loop on the calling thread does the product in ~30 us and leaves the cores idle.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Up to this many rows are rotated here; more go to BLAS (a batch pays its wake-up once).
FEW_ROWS = 8


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _rotate(x, rotation, out):
    for i in range(x.shape[0]):
        for r in range(rotation.shape[0]):
            s = np.float32(0.0)
            for c in range(x.shape[1]):
                s += x[i, c] * rotation[r, c]
            out[i, r] = s


def rotate(x: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``x @ rotation.T`` as float32 (C order): a compiled loop for a few rows, else BLAS."""
    if len(x) > FEW_ROWS:
        return np.ascontiguousarray(x @ rotation.T, dtype=np.float32)
    out = np.empty((len(x), rotation.shape[0]), np.float32)
    _rotate(np.ascontiguousarray(x, np.float32), np.ascontiguousarray(rotation), out)
    return out
