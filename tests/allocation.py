"""Peak allocation of one call, for the tests that bound an add's memory (tracemalloc counts
NumPy's buffers too)."""

from __future__ import annotations

import gc
import threading
import tracemalloc
from collections.abc import Callable

from slimvec.engine.background import THREAD_NAME


def allocated_by(call: Callable[[], object]) -> tuple[int, int]:
    """(peak, kept): bytes allocated at the peak of ``call()`` and still held after it,
    both above what was allocated before it. tracemalloc counts every thread, so a background
    IVF training an earlier test's handle left running is waited for first."""
    for thread in threading.enumerate():
        if thread.name == THREAD_NAME:
            thread.join(120)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        call()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, kept - base
