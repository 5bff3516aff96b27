"""One handle shared by threads while another process writes: every call runs on one pinned
view, so nothing raises, every filtered result satisfies its filter, and counts stay exact.

Each row's ``tag`` is a function of its id (``"even"``/``"odd"``) that no write changes, so a
result can be checked against its filter after the fact whatever the writer did meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import slimvec

DIM = 16
WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import slimvec

    path, seconds = sys.argv[1], float(sys.argv[2])
    dim = 16
    rng = np.random.default_rng(1)
    col = slimvec.open(path)
    tag = lambda i: "even" if i % 2 == 0 else "odd"
    step, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        step += 1
        ids = col.add(rng.standard_normal((5, dim)).astype(np.float32),
                      texts=["new words"] * 5,
                      metadata=None)
        col.update_metadata(ids, [{"tag": tag(i), "n": step} for i in ids.tolist()])
        live = col.get(limit=None).ids
        doomed = rng.choice(live, 3, replace=False)
        col.delete(doomed)
        keep = rng.choice(np.setdiff1d(live, doomed), 2, replace=False)
        col.upsert(rng.standard_normal((2, dim)).astype(np.float32), ids=keep,
                   metadata=[{"tag": tag(i), "n": -step} for i in keep.tolist()],
                   texts=["replaced words"] * 2)
        if step % 7 == 0:
            col.flush()
        if step % 19 == 0:
            col.compact()
    print(step)
    """
)


def _tag(i: int) -> str:
    return "even" if i % 2 == 0 else "odd"


@pytest.fixture
def collection(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "c"
    col = slimvec.create(path, dim=DIM, spec="rabitq:2*40 > f32")
    n = 3000
    col.add(
        rng.standard_normal((n, DIM)).astype(np.float32),
        metadata=[{"tag": _tag(i), "n": 0} for i in range(n)],
        texts=[f"document number {i} words" for i in range(n)],
    )
    col.close()
    return path


def _hammer(col, stop: threading.Event, failures: list, seed: int) -> None:
    """Searches of every kind on the shared handle, each result checked against its filter."""
    rng = np.random.default_rng(seed)
    calls = 0
    while not stop.is_set():
        calls += 1
        q = rng.standard_normal((3, DIM)).astype(np.float32)
        want = "even" if rng.random() < 0.5 else "odd"
        try:
            kind = calls % 6
            if kind == 0:
                col.search(q, k=10, exact=True)
            elif kind == 1:
                res = col.search(q, k=10, filter={"tag": want})
                bad = [i for i in res.ids.ravel().tolist() if i >= 0 and _tag(i) != want]
                if bad:
                    failures.append(f"filtered search returned {bad[:5]} for tag {want}")
            elif kind == 2:
                res = col.search_texts("words", k=10, mode="sparse", filter={"tag": want})
                bad = [i for i in res.ids.ravel().tolist() if i >= 0 and _tag(i) != want]
                if bad:
                    failures.append(f"filtered BM25 returned {bad[:5]} for tag {want}")
            elif kind == 3:
                got = col.get(filter={"tag": want}, limit=50)
                for i, meta in zip(got.ids.tolist(), got.metadata):
                    if meta is None or meta.get("tag") != want or _tag(i) != want:
                        failures.append(f"get(filter) gave id {i} with metadata {meta}")
                        break
            elif kind == 4:
                if col.count({"tag": want}) > len(col):
                    failures.append("count(filter) above len")
            else:
                col.search(q, k=10)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
    failures.append(calls)  # the count of calls made, checked to be > 0


def test_threads_share_a_handle_while_another_process_writes(collection):
    col = slimvec.open(collection)
    stop, failures = threading.Event(), []
    threads = [threading.Thread(target=_hammer, args=(col, stop, failures, s)) for s in range(4)]
    for t in threads:
        t.start()
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, str(collection), "6"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    time.sleep(0.2)  # let the readers catch the last commit
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert writer.returncode == 0, writer.stderr
    assert int(writer.stdout) > 3  # the writer made several rounds of every kind of write
    calls = [f for f in failures if isinstance(f, int)]
    errors = [f for f in failures if not isinstance(f, int)]
    assert errors == []
    assert len(calls) == 4 and min(calls) > 5
    fresh = slimvec.open(collection)
    assert len(col) == len(fresh)
    assert col.count({"tag": "even"}) == fresh.count({"tag": "even"})
    assert sorted(col.get(limit=None).ids.tolist()) == sorted(fresh.get(limit=None).ids.tolist())


def test_threads_write_and_read_one_handle(collection):
    """Writers and readers on the same handle: the writes are serialised with the reads, so
    every add is counted once and no read sees a half-applied write."""
    col = slimvec.open(collection)
    before = len(col)
    failures: list = []
    stop = threading.Event()

    def write(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(20):
            try:
                ids = col.add(rng.standard_normal((2, DIM)).astype(np.float32))
                col.update_metadata(ids, [{"tag": _tag(i)} for i in ids.tolist()])
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    readers = [threading.Thread(target=_hammer, args=(col, stop, failures, s)) for s in range(2)]
    writers = [threading.Thread(target=write, args=(s,)) for s in (10, 11)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=120)
    stop.set()
    for t in readers:
        t.join(timeout=120)
    assert [f for f in failures if not isinstance(f, int)] == []
    assert len(col) == before + 80 == len(slimvec.open(collection))
