"""What it costs that a probed list is cut into one piece per segment (issue 29): one collection
searched with its segments' own lists and with all of them joined into one list set
(``index.joined.write_joined``, what a commit writes; into a temporary folder beside the
collection), in the same process, alternating. The codes are the same, only their layout
differs, so the results must be too (checked).

    .venv/bin/python benchmarks/joined_lists.py --path COLLECTION [--nprobes 64 128]
    .venv/bin/python benchmarks/joined_lists.py --build 1000000 --step 50000 [--nlist 1024]

``--path``: an existing collection of the 384-d sentence vectors (e.g. ``scale.py``'s
``WORK/collection``); ``--build``: a fresh ``ivf:NLIST | rabitq:2*20 > f32`` collection of the
first N pool sentences, added ``--step`` rows at a time (about N / step segments). Queries: the
pool's held-out sentences. QPS at batch 100, best of ``--rounds``; p50 of single queries. The
1-minute load is printed with every row: above 1.5 a figure is not a measurement.
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import slimvec  # noqa: E402
from slimvec.datasets.sentences import load_sentences  # noqa: E402
from slimvec.index.joined import write_joined  # noqa: E402
from slimvec.store.manifest import SegmentEntry  # noqa: E402

K = 10
BATCH = 100
console = Console(width=160)


def timed(col, queries: np.ndarray, nprobe: int, rounds: int) -> tuple[np.ndarray, float, float]:
    """(ids, best QPS at batch ``BATCH``, p50 single-query ms)."""
    col.search(queries[:BATCH], K, nprobe=nprobe)  # warm-up: JIT, page cache
    best, ids = 0.0, None
    for _ in range(rounds):
        t0 = time.perf_counter()
        ids = np.concatenate(
            [col.search(queries[i : i + BATCH], K, nprobe=nprobe).ids
             for i in range(0, len(queries), BATCH)]
        )  # fmt: skip
        best = max(best, len(queries) / (time.perf_counter() - t0))
    lat = []
    for q in queries[:100]:
        t = time.perf_counter()
        col.search(q[None, :], K, nprobe=nprobe)
        lat.append(time.perf_counter() - t)
    return ids, best, 1000 * float(np.median(lat))


def build(path: Path, n: int, step: int, nlist: int) -> None:
    docs = load_sentences(n, n_queries=1).docs
    col = slimvec.create(path, dim=docs.shape[1], spec=f"ivf:{nlist} | rabitq:2*20 > f32")
    for lo in range(0, n, step):
        col.add(np.ascontiguousarray(docs[lo : lo + step], np.float32))
    col.wait_for_index()
    col.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", type=Path, default=None)
    parser.add_argument("--build", type=int, default=0, help="rows of a fresh collection")
    parser.add_argument("--step", type=int, default=50_000)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    a = parser.parse_args()
    tmp = None
    if a.path is None:
        tmp = Path(tempfile.mkdtemp(prefix="joined_lists_", dir=os.environ.get("BENCH_TMP")))
        a.path = tmp / "c"
        build(a.path, a.build, a.step, a.nlist)
    try:
        queries = np.ascontiguousarray(load_sentences(1, n_queries=None).queries, np.float32)
        queries = queries[: a.queries]
        col = slimvec.open(a.path)
        index = col._view.ivf
        pieces = [index.segment_lists[e.name] for e in col.manifest.segments]
        rows_listed = sum(len(p.perm) for p in pieces)
        if pieces[0].start != 0 or pieces[-1].start + len(pieces[-1].perm) != rows_listed:
            raise SystemExit("the segments' lists do not cover rows 0.. in order")
        folder = Path(tempfile.mkdtemp(prefix="joined_", dir=a.path.parent))
        t0 = time.perf_counter()
        write_joined(pieces, 0, folder, index.codec.factor_start, index.nlist)
        join_s = time.perf_counter() - t0
        joined = [index.open_lists(folder, SegmentEntry(name="joined", start=0, rows=rows_listed))]
        console.print(f"{len(col):,} rows, {len(pieces)} segments' lists joined in {join_s:.1f} s")
        rows = []
        for nprobe in a.nprobes:
            found = {}
            for layout, lists in (("segments", pieces), ("joined", joined), ("segments", pieces),
                                  ("joined", joined)):  # fmt: skip
                index.lists = lists
                ids, qps, p50 = timed(col, queries, nprobe, a.rounds)
                same = layout not in found or all(
                    set(x) == set(y) for x, y in zip(ids, found[layout], strict=True)
                )
                found.setdefault(layout, ids)
                rows.append({"layout": layout, "pieces": len(lists), "nprobe": nprobe, "qps": qps,
                             "p50_ms": p50, "load": round(os.getloadavg()[0], 2),
                             "repeatable": same})  # fmt: skip
                console.print(rows[-1])
            identical = all(
                set(x) == set(y) for x, y in zip(found["segments"], found["joined"], strict=True)
            )
            rows[-1]["identical_results"] = identical
        index.lists = pieces
        col.close()
        shutil.rmtree(folder, ignore_errors=True)
        table = Table(title=f"{a.path}: a probed list in {len(pieces)} pieces or in one")
        for c in ("nprobe", "layout", "QPS (batch 100)", "p50 ms", "load"):
            table.add_column(c)
        for r in rows:
            table.add_row(str(r["nprobe"]), f"{r['layout']} ({r['pieces']})", f"{r['qps']:,.0f}",
                          f"{r['p50_ms']:.2f}", str(r["load"]))  # fmt: skip
        console.print(table)
        for nprobe in a.nprobes:
            best = {lay: max(r["qps"] for r in rows if r["nprobe"] == nprobe and r["layout"] == lay)
                    for lay in ("segments", "joined")}  # fmt: skip
            console.print(f"nprobe {nprobe}: joined / segments = "
                          f"{best['joined'] / best['segments']:.2f}x")  # fmt: skip
        if a.out:
            a.out.write_text(json.dumps({"path": str(a.path), "join_s": join_s, "rows": rows},
                                        indent=2) + "\n")  # fmt: skip
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
