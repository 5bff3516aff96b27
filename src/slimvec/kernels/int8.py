"""The arithmetic of int8 scalar codes, shared by the int8 vector codec and the token kernel.

A value is stored as ``code = round((x - low) / step)`` clipped to ``[0, 255]`` and read back as
``low + step * code``, with ``low``/``step`` per dimension. Both :class:`slimvec.codecs.Int8Codec`
(one vector per item) and :class:`slimvec.kernels.maxsim.TokenCodes` (many token vectors per
item) use these functions, so the two codes are the same code and the kernel layer needs nothing
from the codec layer above it.
"""

from __future__ import annotations

import numpy as np

#: Highest code: 256 levels.
LEVELS = 255.0


def fit_range(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension ``(low, step)`` covering the 0.05th to 99.95th percentile of ``x``.

    The percentiles (not min/max) keep one outlier from spending the 256 levels on empty range;
    a floor on the span keeps constant dimensions from dividing by zero.
    """
    low, high = np.percentile(x, [0.05, 99.95], axis=0)
    span = np.maximum(high - low, 1e-6)
    return low.astype(np.float32), (span / LEVELS).astype(np.float32)


def quantise(x: np.ndarray, low: np.ndarray, step: np.ndarray) -> np.ndarray:
    """uint8 codes of ``x`` (values outside the range clip to 0 or 255)."""
    return np.clip(np.rint((x - low) / step), 0, LEVELS).astype(np.uint8)


def dequantise(codes: np.ndarray, low: np.ndarray, step: np.ndarray) -> np.ndarray:
    """float32 values the codes stand for."""
    return low + codes.astype(np.float32) * step
