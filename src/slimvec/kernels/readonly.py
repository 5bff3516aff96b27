"""Read-only array views for compiled kernels.

numba types a read-only array (a memory-mapped segment) apart from a writable one (a log in
RAM), so a kernel fed both compiles twice, seconds each. Kernels take every input array
through ``readonly``: one type, one compilation."""

from __future__ import annotations

import numpy as np


def readonly(a: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """``a`` (as ``dtype``, copied only if it must be) as a read-only plain ndarray view."""
    view = np.asarray(a, dtype).view(np.ndarray)
    view.flags.writeable = False
    return view
