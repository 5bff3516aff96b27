"""Concurrent readers and a writer on one collection, for tests and benchmarks/concurrency.py.

Every row's ``tag`` is a function of its id (``"even"``/``"odd"``) that no write changes, so a
filtered result can be checked after the fact whatever the writer did meanwhile. Works on any
collection kind (local handle or ``slimvec.connect`` one): it uses the public API only.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

DIM = 16

#: A writer process: small adds, metadata updates, deletes, upserts, flushes and compactions
#: through its own handle, for ``seconds``; prints how many rounds it made.
WRITER = """
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
    ids = col.add(rng.standard_normal((5, dim)).astype(np.float32), texts=["new words"] * 5)
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


def tag(i: int) -> str:
    return "even" if i % 2 == 0 else "odd"


def seed_collection(col, n: int = 3000) -> None:
    """``n`` random vectors with tags and texts (the BM25 side has something to find)."""
    rng = np.random.default_rng(0)
    col.add(
        rng.standard_normal((n, DIM)).astype(np.float32),
        metadata=[{"tag": tag(i), "n": 0} for i in range(n)],
        texts=[f"document number {i} words" for i in range(n)],
    )


@dataclass
class Tally:
    calls: int = 0
    errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # results that break their filter
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, calls: int, errors: list[str], wrong: list[str]) -> None:
        with self.lock:
            self.calls += calls
            self.errors += errors
            self.wrong += wrong


def _one_call(col, kind: int, rng) -> str | None:
    """One read of kind ``kind``; returns what was wrong with its result, if anything."""
    q = rng.standard_normal((3, DIM)).astype(np.float32)
    want = "even" if rng.random() < 0.5 else "odd"
    if kind == 0:
        col.search(q, k=10, exact=True)
    elif kind == 1:
        res = col.search(q, k=10, filter={"tag": want})
        bad = [i for i in res.ids.ravel().tolist() if i >= 0 and tag(i) != want]
        return f"filtered search returned {bad[:5]} for tag {want}" if bad else None
    elif kind == 2:
        res = col.search_texts("words", k=10, mode="sparse", filter={"tag": want})
        bad = [i for i in res.ids.ravel().tolist() if i >= 0 and tag(i) != want]
        return f"filtered BM25 returned {bad[:5]} for tag {want}" if bad else None
    elif kind == 3:
        got = col.get(filter={"tag": want}, limit=50)
        for i, meta in zip(got.ids.tolist(), got.metadata):
            if meta is None or meta.get("tag") != want or tag(i) != want:
                return f"get(filter) gave id {i} with metadata {meta}"
    elif kind == 4:
        col.count({"tag": want})
    else:
        col.search(q, k=10)
    return None


def hammer(col, tally: Tally, stop: threading.Event, seed: int, calls: int | None = None) -> None:
    """Reads of every kind on ``col`` until ``stop`` is set (or ``calls`` were made)."""
    rng = np.random.default_rng(seed)
    made, errors, wrong = 0, [], []
    while not stop.is_set() and (calls is None or made < calls):
        try:
            problem = _one_call(col, made % 6, rng)
            if problem:
                wrong.append(problem)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        made += 1
    tally.add(made, errors, wrong)


def run_readers(open_handle, threads: int, stop: threading.Event, calls: int | None = None):
    """``threads`` readers (``open_handle(i)`` gives reader i its handle: the same one for a
    shared handle); returns (tally, started threads)."""
    tally = Tally()
    workers = [
        threading.Thread(target=hammer, args=(open_handle(i), tally, stop, i, calls))
        for i in range(threads)
    ]
    for t in workers:
        t.start()
    return tally, workers


def join(workers: list[threading.Thread], timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    for t in workers:
        t.join(max(0.1, end - time.monotonic()))
