"""The default spec as a collection grows (issue 29): where ``ivf:auto`` should stop being flat,
and what a user who never names an index gets at 1M.

    .venv/bin/python benchmarks/auto_index.py crossover [--data lowrank|sentences] [--sizes ...]
    .venv/bin/python benchmarks/auto_index.py grow [--data ...] [--n 1000000] [--step 10000]
    .venv/bin/python benchmarks/auto_index.py drift [--data ...] [--n 500000]
    .venv/bin/python benchmarks/auto_index.py calibration [--data ...] [--n 1000000]

* ``crossover``: at each size, the flat default (``rabitq:2*40 > f32``: the table scan) against
  ``ivf:auto`` made to partition at that size (``AUTO_ROWS`` set to 0: N = ``suggested_nlist(n)``
  lists, nprobe measured by ``index.calibrate``), both built from the same vectors; recall@10
  against exact search, QPS at batch 200, p50 single-query latency, and FAISS IndexFlatIP (the
  peer) in the same run. ``index.sizing.AUTO_ROWS`` is where the lists start to win.
* ``grow``: the default spec grown to ``--n`` one ``--step`` add at a time (as an application
  feeding a collection would), then the same search measurements, the states ``info()["ivf"]``
  went through, every add's time (the slowest is the one a training lands on) and the
  process's peak RSS; ``--training both`` (the default) grows one collection with trainings in
  the background and one with them inside the adds, in the same run.
* ``drift``: ``grow`` with the vectors arriving topic by topic (16 k-means topics in turn),
  once with rebalancing (lists retrained when their skew doubles) and once without.
* ``calibration``: how steady ``index.calibrate``'s nprobe is. One ``ivf:auto`` collection of
  ``--n`` vectors (one add, lists trained on all of it), calibrated again with
  ``--samples`` differently seeded samples of 200 and of ``calibrate.QUERIES`` stored vectors;
  for each, the nprobe chosen, the recall it claimed, and the recall@10 the held-out queries
  get at that nprobe. Not timed.

Recall counts a returned id as a hit when its exact score reaches the exact 10th score (ties
among near-duplicates count). Threads: 2 everywhere. The 1-minute load is printed with every
row: a figure taken above 1.5 is not a measurement.
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import slimvec  # noqa: E402
from funnel import load, recall_at_k  # noqa: E402
from slimvec.index import sizing  # noqa: E402

K = 10
BATCH = 200
SINGLE = 100
FLAT = "rabitq:2*40 > f32"
console = Console(width=200)


def measure(search, queries: np.ndarray, docs: np.ndarray, kth: np.ndarray) -> dict:
    """Recall, QPS at batch ``BATCH`` (best of two passes) and p50 single-query ms."""
    search(queries[:BATCH])  # warm-up: JIT, page cache
    best = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        found = np.concatenate(
            [search(queries[i : i + BATCH]) for i in range(0, len(queries), BATCH)]
        )
        best = max(best, len(queries) / (time.perf_counter() - t0))
    lat = []
    for q in queries[:SINGLE]:
        t = time.perf_counter()
        search(q[None, :])
        lat.append(time.perf_counter() - t)
    return {
        "recall": recall_at_k(found, docs, queries, kth),
        "qps": best,
        "p50_ms": 1000 * float(np.median(lat)),
        "load": round(os.getloadavg()[0], 2),
    }


def flat_ip(docs: np.ndarray, queries: np.ndarray) -> tuple[dict, np.ndarray]:
    """FAISS IndexFlatIP: the peer, and the exact 10th scores (ground truth)."""
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(docs)
    kth = np.sort(queries @ docs.T, axis=1)[:, -K] if len(docs) <= 200_000 else None
    if kth is None:
        kth = index.search(queries, K)[0][:, -1]
    row = measure(lambda q: index.search(q, K)[1], queries, docs, kth)
    return row, kth


def build(path: Path, spec: str | None, docs: np.ndarray, step: int) -> tuple[object, float]:
    if path.exists():
        shutil.rmtree(path)
    col = slimvec.create(path, dim=docs.shape[1], **({"spec": spec} if spec else {}))
    t0 = time.perf_counter()
    for lo in range(0, len(docs), step):
        col.add(docs[lo : lo + step])
    return col, time.perf_counter() - t0


def crossover(docs: np.ndarray, queries: np.ndarray, sizes: list[int], tmp: Path) -> list[dict]:
    out = []
    for n in sizes:
        x = np.ascontiguousarray(docs[:n])
        peer, kth = flat_ip(x, queries)
        saved, sizing.AUTO_ROWS = sizing.AUTO_ROWS, 0  # partition at every size here, to compare
        try:
            for spec in (FLAT, f"ivf:auto | {FLAT}"):
                col, build_s = build(tmp / "c", spec, x, 100_000)
                row = measure(lambda q, c=col: c.search(q, K).ids, queries, x, kth)
                lists = col.info().get("ivf") or {}
                row.update(n=n, spec=spec, build_s=build_s, flat_ip_qps=peer["qps"],
                           flat_ip_p50_ms=peer["p50_ms"], nlist=lists.get("nlist"),
                           nprobe=lists.get("default_nprobe"))  # fmt: skip
                row["x_flat_ip"] = row["qps"] / peer["qps"]
                console.print(row)
                out.append(row)
                col.close()
        finally:
            sizing.AUTO_ROWS = saved
    shutil.rmtree(tmp / "c", ignore_errors=True)
    return out


def grow(
    docs: np.ndarray, queries: np.ndarray, step: int, tmp: Path, where: str, rebalance: bool = True
) -> dict:
    """The default grown one ``step`` add at a time; trainings ``where``: "background" (the
    default: on the handle's trainer thread) or "commit" (inside the add that finds them due,
    as before background training); ``rebalance`` False: lists are never retrained for skew.
    Records every add's seconds and every set of lists that was committed."""
    label = where + ("" if rebalance else ", no rebalancing")
    path = tmp / "grown"
    if path.exists():
        shutil.rmtree(path)
    saved = sizing.BACKGROUND_ROWS, sizing.REBALANCE_SKEW
    if where == "commit":
        sizing.BACKGROUND_ROWS = 1 << 62  # no training is large enough for the thread
    if not rebalance:
        sizing.REBALANCE_SKEW = float("inf")
    col = slimvec.create(path, dim=docs.shape[1])  # the default spec: nothing named
    trainings, add_times, t0 = [], [], time.perf_counter()

    def record(rows: int) -> None:
        lists = col.manifest.extra.get("ivf")
        if lists and (not trainings or trainings[-1]["centroids"] != lists["centroids"]):
            training = col.info()["ivf"].get("training") or {}
            trainings.append({"seen_at": rows, "add_s": round(add_times[-1], 2),
                              "seconds": training.get("seconds"),
                              **{k: lists.get(k) for k in ("centroids", "trained_on", "nlist",
                                                           "nprobe", "skew")}})  # fmt: skip
            console.print(trainings[-1])

    try:
        for lo in range(0, len(docs), step):
            t = time.perf_counter()
            col.add(docs[lo : lo + step])
            add_times.append(time.perf_counter() - t)
            record(min(lo + step, len(docs)))
        add_s = time.perf_counter() - t0
        t = time.perf_counter()
        col.wait_for_index()  # a training still running: what the user's close() would wait
        wait_s = time.perf_counter() - t
        record(len(docs))
    finally:
        sizing.BACKGROUND_ROWS, sizing.REBALANCE_SKEW = saved
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    peer, kth = flat_ip(docs, queries)
    row = measure(lambda q: col.search(q, K).ids, queries, docs, kth)
    times = np.array(add_times)
    sizes = col.info()["ivf"]["list_sizes"]
    row.update(rows=len(docs), spec=col.manifest.spec, where=label, add_s=add_s,
               wait_s=wait_s, add_max_s=float(times.max()),
               add_p50_s=float(np.median(times)),
               slowest_adds=[((int(i) + 1) * step, round(float(times[i]), 2))
                             for i in np.argsort(times)[-5:]],
               peak_rss_gib=peak_gib, trainings=trainings, flat_ip=peer,
               x_flat_ip=row["qps"] / peer["qps"], skew=sizes["skew"],
               imbalance=sizes["imbalance"], explain=col.search(queries[:BATCH], K).explain,
               lists={key: col.manifest.extra["ivf"].get(key) for key in
                      ("nlist", "nprobe", "calibrated_recall", "trained_on")})  # fmt: skip
    col.close()
    shutil.rmtree(path, ignore_errors=True)
    return row


def drift_order(docs: np.ndarray, topics: int = 16) -> np.ndarray:
    """``docs`` reordered to arrive topic by topic (their nearest of ``topics`` k-means
    centroids, topics in turn, a seeded shuffle within each): a collection whose early lists
    are trained on a few topics and then crowded by the others."""
    sample = docs[np.random.default_rng(0).choice(len(docs), 64 * topics, replace=False)]
    kmeans = faiss.Kmeans(docs.shape[1], topics, niter=10, seed=1)
    kmeans.train(np.ascontiguousarray(sample, np.float32))
    _, topic = kmeans.index.search(np.ascontiguousarray(docs, np.float32), 1)
    within = np.random.default_rng(1).random(len(docs))
    return docs[np.lexsort((within, topic[:, 0]))]


def calibration(docs: np.ndarray, queries: np.ndarray, tmp: Path, samples: int) -> list[dict]:
    from slimvec.index import calibrate

    col = slimvec.create(tmp / "calibrated", dim=docs.shape[1])  # the default spec
    col.add(docs)
    col.wait_for_index()
    kth = faiss_kth(docs, queries)
    index, deleted = col._view.ivf, col._view.deleted.array[: len(col)]
    held_out: dict[int, float] = {}
    out, saved = [], calibrate.QUERIES
    try:
        for count in sorted({200, saved}):
            calibrate.QUERIES = count
            for seed in range(samples):
                t0 = time.perf_counter()
                nprobe, claimed = calibrate.calibrate(index, col.path, col.manifest, deleted, seed)
                seconds = time.perf_counter() - t0
                if nprobe not in held_out:
                    found = col.search(queries, K, nprobe=nprobe).ids
                    held_out[nprobe] = recall_at_k(found, docs, queries, kth)
                out.append({"queries": count, "seed": seed, "nprobe": nprobe,
                            "claimed": claimed, "held_out": held_out[nprobe],
                            "seconds": seconds, "nlist": index.nlist})  # fmt: skip
                console.print(out[-1])
    finally:
        calibrate.QUERIES = saved
        col.close()
    return out


def faiss_kth(docs: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The exact 10th score of every query (FAISS IndexFlatIP, untimed)."""
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(docs)
    return index.search(queries, K)[0][:, -1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("crossover", "grow", "drift", "calibration"))
    parser.add_argument("--samples", type=int, default=5, help="calibration: samples per size")
    parser.add_argument("--data", default="lowrank", choices=("lowrank", "sentences"))
    parser.add_argument("--sizes", default="20000,50000,100000,200000,500000,1000000")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--step", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--training", default="both", choices=("background", "commit", "both"),
        help="grow: where trainings run (both: one collection each, in this run)",
    )  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    n = max(sizes) if args.mode == "crossover" else args.n
    ds = load(args.data, n, args.queries)
    docs, queries = np.ascontiguousarray(ds.docs, np.float32), ds.queries.astype(np.float32)
    tmp = Path(tempfile.mkdtemp(prefix="auto_index_", dir=os.environ.get("BENCH_TMP")))
    try:
        if args.mode == "calibration":
            result: object = calibration(docs, queries, tmp, args.samples)
            table = Table(title=f"ivf:auto's calibration, sample by sample ({ds.name})")
            for col in ("stored queries", "nprobes chosen", "claimed", "held-out recall@10"):
                table.add_column(col)
            for count in sorted({r["queries"] for r in result}):
                rows = [r for r in result if r["queries"] == count]
                table.add_row(
                    f"{count:,}", ", ".join(str(r["nprobe"]) for r in rows),
                    ", ".join(f"{r['claimed']:.3f}" for r in rows),
                    ", ".join(f"{r['held_out']:.3f}" for r in rows),
                )  # fmt: skip
        elif args.mode == "crossover":
            result = crossover(docs, queries, sizes, tmp)
            table = Table(title=f"flat default vs its ivf:auto lists ({ds.name})")
            for col in ("n", "first pass", "recall", "QPS", "x FlatIP", "p50 ms", "FlatIP p50",
                        "load"):  # fmt: skip
                table.add_column(col)
            for r in result:
                lists = f"ivf {r['nlist']}/{r['nprobe']}" if r["nprobe"] else "flat"
                table.add_row(
                    f"{r['n']:,}", lists, f"{r['recall']:.3f}", f"{r['qps']:,.0f}",
                    f"{r['x_flat_ip']:.1f}", f"{r['p50_ms']:.2f}", f"{r['flat_ip_p50_ms']:.2f}",
                    f"{r['load']}",
                )  # fmt: skip
        else:
            if args.mode == "drift":  # the same arrivals, with and without rebalancing
                docs = drift_order(docs)
                runs = [("background", True), ("background", False)]
            elif args.training == "both":
                runs = [("background", True), ("commit", True)]
            else:
                runs = [(args.training, True)]
            result = [grow(docs, queries, args.step, tmp, w, r) for w, r in runs]
            title = "arriving topic by topic" if args.mode == "drift" else "in random order"
            table = Table(title=f"default spec grown by {args.step:,}, {title} ({ds.name})")
            for col in ("training", "rows", "trained on", "lists", "skew", "recall", "QPS",
                        "x FlatIP", "p50 ms", "adds s", "slowest add s", "add p50 s",
                        "then wait s", "peak RSS", "load"):  # fmt: skip
                table.add_column(col)
            for r in result:
                lists = r["lists"]
                table.add_row(
                    r["where"], f"{r['rows']:,}",
                    ", ".join(f"{t['trained_on']:,}" for t in r["trainings"]),
                    f"{lists['nlist']}/{lists['nprobe']}", f"{r['skew']}",
                    f"{r['recall']:.3f}", f"{r['qps']:,.0f}", f"{r['x_flat_ip']:.1f}",
                    f"{r['p50_ms']:.2f}", f"{r['add_s']:.0f}", f"{r['add_max_s']:.1f}",
                    f"{r['add_p50_s']:.2f}", f"{r['wait_s']:.1f}",
                    f"{r['peak_rss_gib']:.2f} GiB", f"{r['load']}",
                )  # fmt: skip
        console.print(table)
        if args.out:
            args.out.write_text(json.dumps(result, indent=2, default=str))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
