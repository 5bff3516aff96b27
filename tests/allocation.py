"""Peak allocation of one call, for the tests that bound an add's memory (tracemalloc counts
NumPy's buffers too)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable


def allocated_by(call: Callable[[], object]) -> tuple[int, int]:
    """(peak, kept): bytes allocated at the peak of ``call()`` and still held after it,
    both above what was allocated before it."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        call()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, kept - base
