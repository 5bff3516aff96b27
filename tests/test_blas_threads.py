"""``kernels.threads.one_blas_thread`` from many threads at once (the server's workers share a
handle, and every IVF search enters it). BLAS thread counts are process-wide: blocks that each
saved and restored them left the process on one BLAS thread for good (8 threads x 300 blocks
did, 3 times in 3). Now the first block in sets one thread and the last one out restores.

The BLAS library is replaced by a recorder here: OpenBLAS itself (0.3.31) loses about one in
ten such stress runs' cross-thread changes, which would make a test of the real counts flaky.
"""

import random
import threading
import time
from itertools import pairwise

import pytest

from slimvec.kernels import threads


class _Recorder:
    """Stands in for threadpoolctl's controller: logs each limit and restore."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def limit(self, limits: int, user_api: str):
        assert (limits, user_api) == (1, "blas")
        self.log.append("limit")
        recorder = self

        class _Limiter:
            def restore_original_limits(self) -> None:
                recorder.log.append("restore")

        return _Limiter()


@pytest.fixture
def recorder(monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(threads, "_BLAS", rec)
    return rec


def test_a_block_inside_another_does_not_restore(recorder):
    with threads.one_blas_thread():
        with threads.one_blas_thread():
            pass
        inner = threading.Thread(target=_enter_and_leave)
        inner.start()
        inner.join()
        assert recorder.log == ["limit"]  # blocks in this and another thread left; one holds
    assert recorder.log == ["limit", "restore"]


def _enter_and_leave() -> None:
    with threads.one_blas_thread():
        pass


def test_overlapping_blocks_from_many_threads_limit_once_and_restore_once(recorder):
    start = threading.Barrier(8)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(300):
            with threads.one_blas_thread():
                time.sleep(rng.random() * 1e-4)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    log = recorder.log
    assert log and log[0] == "limit" and log[-1] == "restore"
    assert all(a != b for a, b in pairwise(log))  # never two limits without a restore
    assert threads._HOLDERS == 0 and threads._LIMIT is None
