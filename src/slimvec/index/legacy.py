"""Lists written before the 4-bit table scan, read in the current layout.

Those lists stored each segment's codes as ``words.npy`` (uint64 words, each list in blocks of
256 rows, word-major) and ``factors.npy`` ((rows, 2): F and L). A collection that still has
them is searched after an in-memory conversion; its next retrain writes the current layout
(``index.ivf``'s ``nibbles.npy`` and ``scalars.npy``).
"""

from __future__ import annotations

import numpy as np

from slimvec.kernels.ivfscan import interleave


def word_major_lists(
    words: np.ndarray, factors: np.ndarray, offsets: np.ndarray, factor_start: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(interleaved codes, (2, rows) F and L) of a segment's old list files, or None if their
    sizes do not match ``offsets`` (a damaged collection)."""
    rows = int(offsets[-1])
    if words.shape != (rows * factor_start // 8,) or words.dtype != np.uint64:
        return None
    if factors.shape != (rows, 2) or factors.dtype != np.float32:
        return None
    planes = _rows_of_word_major(words, offsets, factor_start // 8).view(np.uint8)
    return interleave(planes, offsets), np.ascontiguousarray(factors.T)


def _rows_of_word_major(words: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """(rows, width) uint64 code words from the pre-table-scan list layout: each list in blocks
    of 256 rows, a block of m rows stored as ``width`` runs of m words."""
    sizes = np.diff(offsets)
    position = np.arange(int(offsets[-1]))
    within = position - np.repeat(offsets[:-1], sizes)
    start = position - within % 256
    m = np.minimum(np.repeat(offsets[1:], sizes) - start, 256)
    index = start[:, None] * width + np.arange(width) * m[:, None] + (position - start)[:, None]
    return np.asarray(words)[index]
