"""Extended-RaBitQ code search: the B-bit grid point closest in angle to each unit vector.

For a unit vector o and B bits, candidate codes are y(t) = clip(floor(t * o) + 1/2, -h, h) with
h = (2^B - 1) / 2 (a symmetric grid of half-integers), one per scale t. The code kept is the
one whose direction is closest to o, i.e. the largest <y, o> / |y| (Gao et al., "Practical and
asymptotically optimal quantization of high-dimensional vectors", 2025). The paper enumerates
every critical t exactly; a grid of scales between a small fraction and 1.3x of the no-clipping
limit 2^(B-1) / max|o_i| loses almost nothing on rotated (near-Gaussian) coordinates and is
one tight loop per vector.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from slimvec.kernels.threads import numba_threads, threads_for

GRID = 40
LOW, HIGH = 0.2, 1.3


@njit(parallel=True, cache=True, nogil=True)
def _best_grid(o, bits, grid, codes, ip_out, norm_out):
    n, d = o.shape
    h = ((1 << bits) - 1) / 2.0
    top = float(1 << (bits - 1))
    for r in prange(n):
        peak = 0.0
        for i in range(d):
            peak = max(peak, abs(o[r, i]))
        if peak == 0.0:
            for i in range(d):
                codes[r, i] = np.uint8(0)
            ip_out[r] = 0.0
            norm_out[r] = 0.0
            continue
        best_cos = -1.0
        best_t = 0.0
        for g in range(grid):
            t = (LOW + (HIGH - LOW) * g / (grid - 1)) * top / peak
            ip = 0.0
            sq = 0.0
            for i in range(d):
                y = min(max(np.floor(t * o[r, i]) + 0.5, -h), h)
                ip += y * o[r, i]
                sq += y * y
            cos = ip / np.sqrt(sq)
            if cos > best_cos:
                best_cos = cos
                best_t = t
        ip = 0.0
        sq = 0.0
        for i in range(d):
            y = min(max(np.floor(best_t * o[r, i]) + 0.5, -h), h)
            codes[r, i] = np.uint8(y + h)
            ip += y * o[r, i]
            sq += y * y
        ip_out[r] = ip
        norm_out[r] = np.sqrt(sq)


def extended_codes(o: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes u in [0, 2^bits - 1] as uint8, <y, o>, |y|) for unit rows ``o``; y = u - h."""
    o = np.ascontiguousarray(o, dtype=np.float32)
    n, d = o.shape
    codes = np.empty((n, d), np.uint8)
    ip = np.empty(n, np.float64)
    norm = np.empty(n, np.float64)
    with numba_threads(threads_for(n * d * GRID // 8)):
        _best_grid(o, bits, GRID, codes, ip, norm)
    return codes, ip, norm
