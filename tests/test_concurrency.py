"""One handle shared by threads while another process writes: every call runs on one pinned
view (slimvec.engine.pin), so nothing raises, every filtered result satisfies its filter, and
counts stay exact. The load itself is in concurrent_load.py (benchmarks/concurrency.py runs a
longer one)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import slimvec
from concurrent_load import DIM, WRITER, join, run_readers, seed_collection, tag


@pytest.fixture
def collection(tmp_path):
    path = tmp_path / "c"
    col = slimvec.create(path, dim=DIM, spec="rabitq:2*40 > f32")
    seed_collection(col)
    col.close()
    return path


def test_threads_share_a_handle_while_another_process_writes(collection):
    col = slimvec.open(collection)
    stop = threading.Event()
    tally, readers = run_readers(lambda _: col, 4, stop)
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, str(collection), "6"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    time.sleep(0.2)
    stop.set()
    join(readers)
    assert writer.returncode == 0, writer.stderr
    assert int(writer.stdout) >= 2, writer.stdout  # rounds of every kind of write
    assert tally.errors == [], tally.errors[:5]
    assert tally.wrong == [], tally.wrong[:5]
    assert tally.calls >= 8, tally.calls  # the readers really ran alongside
    fresh = slimvec.open(collection)
    assert len(col) == len(fresh)
    assert col.count({"tag": "even"}) == fresh.count({"tag": "even"})
    assert sorted(col.get(limit=None).ids.tolist()) == sorted(fresh.get(limit=None).ids.tolist())


def test_threads_write_and_read_one_handle(collection):
    """Writers and readers on the same handle: writes are serialised with the reads, so every
    add is counted once and no read sees a half-applied write."""
    col = slimvec.open(collection)
    before, errors = len(col), []

    def write(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(20):
            try:
                ids = col.add(rng.standard_normal((2, DIM)).astype(np.float32))
                col.update_metadata(ids, [{"tag": tag(i)} for i in ids.tolist()])
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    stop = threading.Event()
    tally, readers = run_readers(lambda _: col, 2, stop)
    writers = [threading.Thread(target=write, args=(s,)) for s in (10, 11)]
    for t in writers:
        t.start()
    join(writers)
    stop.set()
    join(readers)
    assert errors == [] and tally.errors == [] and tally.wrong == []
    assert len(col) == before + 80 == len(slimvec.open(collection))
