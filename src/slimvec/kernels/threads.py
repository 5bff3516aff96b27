"""When a compiled kernel should run on one thread.

A numba parallel region waits for every worker thread it starts. On a busy machine a worker
that the OS has descheduled stalls the whole region for a scheduler slice, so a 0.3 ms query
can take 10 ms or more (benchmarks/latency.py measures it with busy processes on every core).
Small scans gain nothing from threads anyway: they run with one, large ones with all. BLAS
(OpenBLAS's own pool, used by float matmul scans) has the same problem and gets the same rule.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numba
from threadpoolctl import ThreadpoolController

#: Kernel calls doing at most this much work (their own unit: e.g. rows x queries x words for
#: a Hamming scan, about a millisecond on one core) run single-threaded.
SERIAL_WORK = 1 << 22


def threads_for(work: int) -> int:
    """Threads for a kernel call doing ``work``: one when small, else numba's pool size."""
    return 1 if work <= SERIAL_WORK else numba.get_num_threads()


@contextmanager
def numba_threads(threads: int) -> Iterator[None]:
    """numba runs parallel regions with ``threads`` threads inside the block (this thread)."""
    before = numba.get_num_threads()
    if threads == before:
        yield
        return
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(before)


_BLAS: ThreadpoolController | None = None
_BLAS_LOCK = threading.Lock()
_HOLDERS = 0  # blocks inside ``one_blas_thread`` now, in every thread
_LIMIT: Any = None  # what restores the counts the first of them found


@contextmanager
def blas_threads_for(work: int) -> Iterator[None]:
    """BLAS calls inside the block run on one thread when ``work`` (multiply-adds) is small."""
    if work > SERIAL_WORK:
        yield
        return
    with one_blas_thread():
        yield


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS calls inside the block run on one thread. Also for code that interleaves small
    matmuls with numba scans: OpenBLAS's idle workers spin after each call and take the
    cores from the scan's threads (the IVF search ran at 546 instead of 752 QPS at 1M).

    BLAS thread counts are process-wide, and threads sharing a handle overlap these blocks.
    Each block saving and restoring the count itself left the process on one BLAS thread for
    good (A saves 2 and sets 1, B saves 1, A restores 2, B restores 1). So the blocks are
    counted: the first to enter saves the counts and sets one thread, the last to leave
    restores them, and the changes are made under a lock, one at a time."""
    global _BLAS, _HOLDERS, _LIMIT
    with _BLAS_LOCK:
        if _HOLDERS == 0:
            _BLAS = _BLAS or ThreadpoolController()
            _LIMIT = _BLAS.limit(limits=1, user_api="blas")
        _HOLDERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _HOLDERS -= 1
            if _HOLDERS == 0 and _LIMIT is not None:
                _LIMIT.restore_original_limits()
                _LIMIT = None
